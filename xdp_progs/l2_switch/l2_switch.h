/* L2 learning switch: data-only header shared by the BPF C and its ctypes mirror
 * (nf/nfs/l2_switch.py). Structs only, no code; a test compares every size and field offset
 * with the BTF of the built object. */
#ifndef L2_SWITCH_H
#define L2_SWITCH_H

#include <linux/types.h>

#define L2SW_MAX_PORTS   64      /* port index is a bit in a u64 VLAN member mask */
#define L2SW_STATS_SLOTS (L2SW_MAX_PORTS + 1) /* last slot: frames on an unknown ifindex */
#define L2SW_VLAN_SLOTS  4096    /* indexed by VID; 0 and 4095 are never valid */
#define L2SW_FDB_DEFAULT 65536
#define L2SW_IFINDEX_FAST 4096  /* ports with a smaller ifindex are also in port_by_ifindex */

enum l2sw_port_mode {
	L2SW_ACCESS = 0, /* one VLAN (pvid), untagged in and out */
	L2SW_TRUNK = 1,  /* allowed VLANs tagged; optional native VLAN (pvid) untagged */
};

enum l2sw_fdb_flags {
	L2SW_FDB_STATIC = 1, /* added by the controller: never learned over, never aged */
};

enum l2sw_port_flags {
	/* access port: drop frames tagged with its own VLAN (untagged and priority-tagged only);
	 * by default they are that VLAN's frames, as on the Linux bridge */
	L2SW_PORT_UNTAGGED_ONLY = 1,
};

/* ports: HASH, key = ifindex (u32); also port_by_ifindex: ARRAY[L2SW_IFINDEX_FAST] indexed by
 * ifindex (ifindex 0 there = no port), an inlined array read instead of a hash lookup per frame */
struct l2sw_port {
	__u32 ifindex;
	__u16 idx;      /* 0..L2SW_MAX_PORTS-1: bit in l2sw_vlan masks, slot in stats */
	__u16 pvid;     /* access VLAN, or trunk native VLAN; 0 = none (untagged frames dropped) */
	__u8 mode;      /* enum l2sw_port_mode */
	__u8 learning;  /* 1 = learn source MACs on this port */
	__u8 flags;     /* enum l2sw_port_flags */
	__u8 pad;
};

/* vlans: ARRAY[L2SW_VLAN_SLOTS], index = VID */
struct l2sw_vlan {
	__u64 members;  /* bit idx set: port idx carries this VLAN */
	__u64 untagged; /* bit idx set: the port sends this VLAN without a tag */
};

/* fdb: HASH (pure-eBPF variant) */
struct l2sw_fdb_key {
	__u8 mac[6];
	__u16 vid;      /* host byte order */
};

struct l2sw_fdb_val {
	__u32 ifindex;  /* egress port */
	__u16 idx;      /* its port index */
	__u16 flags;    /* enum l2sw_fdb_flags */
	__u64 ts_ns;    /* last seen, bpf_ktime_get_coarse_ns (CLOCK_MONOTONIC_COARSE) */
};

/* config: ARRAY[1]; runtime knobs changed without reload, and the FDB's key */
struct l2sw_config {
	__u64 aging_ns;      /* 0 = entries never age */
	__u64 wheel_tick_ns; /* eNetSTL variant: period of the aging timer (timing-wheel tick) */
	/* eNetSTL variant: the table's secret, xored into every key word before the mix (so nobody
	 * who does not know it can pick MACs that share a bucket). Written once, by the controller,
	 * when the table is new and before anything is attached; every later program is loaded on
	 * this pinned map, so a reload keeps the placement. */
	__u64 seed;
	__u32 keyed;         /* enum l2sw_keyed: where seed came from */
	__u32 pad;
};

enum l2sw_keyed {
	L2SW_KEYED_NOT_YET = 0, /* a table being made: nothing is attached yet */
	L2SW_KEYED_DRAWN = 1,   /* seed drawn from the kernel's random source (config seed unset) */
	L2SW_KEYED_CONFIG = 2,  /* seed given by the config */
	L2SW_KEYED_KERNEL = 3,  /* pure variant: the kernel's hash map seeds itself at random, per map */
};

/* fdb_gen: ARRAY[1] of __u64, the FDB's generation. Any change that can make a learned entry
 * disappear or point elsewhere bumps it. In BPF (datapath moves; the eNetSTL variant's entry
 * removals and control adds) by an atomic +1; the pure variant's controller writes from user
 * space (read, next multiple of L2SW_GEN_CTL_STEP, write), so its new value was never produced
 * by +1s even if it races one. Each CPU's learn memo (BPF only, see l2_switch_dp.h) is valid
 * only for the generation it was written in. */
#define L2SW_GEN_CTL_STEP (1ULL << 32)

/* fdb_room: ARRAY[1]. How the datapath makes room in a full table by itself: when a learn
 * finds the table full it removes every aged-out entry in one walk, unless none can have aged
 * out since the last walk (every dynamic entry was last seen at oldest_ns or later). */
struct l2sw_fdb_room {
	__u64 oldest_ns;  /* no dynamic entry is older than this (0: unknown, walk when full) */
	__u64 used;       /* eNetSTL table: entries in it (at most efdb_cfg.max_entries) */
	__u64 walks;      /* reclaim walks made */
	__u64 reclaimed;  /* aged-out entries they removed */
};

/* stats: PERCPU_ARRAY[L2SW_STATS_SLOTS], index = port idx; the controller sums over CPUs.
 * rx, unicast, flood, to_stack, drop and its reasons, learn, move and fdb_full count frames
 * received on the port; tx_* count copies sent out of the port (counted by the egress program).
 * drop = sum of drop_* reasons. */
struct l2sw_stats {
	__u64 rx_packets;
	__u64 rx_bytes;
	__u64 tx_packets;
	__u64 tx_bytes;
	__u64 unicast;        /* forwarded to one known port */
	__u64 flood;          /* flooded to the VLAN */
	__u64 drop;
	__u64 drop_vlan;      /* VLAN not allowed on the port (ingress) */
	__u64 drop_malformed; /* truncated, VID 4095, multicast/zero source */
	__u64 drop_local;     /* destination learned on the ingress port */
	__u64 drop_egress;    /* egress program refused the copy (port not in the VLAN) */
	__u64 learn;
	__u64 move;
	__u64 fdb_full;       /* could not learn: table (or its bucket) full; the frame still goes on */
	__u64 fdb_busy;       /* eNetSTL variant: not learned now, another CPU held the bucket */
	__u64 to_stack;       /* to 01:80:c2:00:00:02-0f: handed to the port's own stack, not relayed */
	__u64 drop_reserved;  /* to 01:80:c2:00:00:01 (MAC control: PAUSE): dropped, not learned */
};

/* ---- eNetSTL FDB variant (l2_switch_enetstl.bpf.c) ----
 * efdb: ARRAY of buckets; h = fmix64(key word ^ config.seed) (murmur3's finaliser: L2SW_EFDB_MIX*):
 * bucket = h & mask, signature = h >> 48 (0 -> 1); a way is found by comparing 16 u16
 * signatures. The module's bucket table (struct enetstl_bt_bucket, kmod/include/enetstl.h):
 * with the module a lookup is one enetstl_bt_find call, without it the same probe in BPF. */
#define L2SW_EFDB_MIX1   0xff51afd7ed558ccdull
#define L2SW_EFDB_MIX2   0xc4ceb9fe1a85ec53ull
#define L2SW_WAYS        16
#define L2SW_WHEEL_SLOTS 256    /* timing-wheel slots (a power of two) */
#define L2SW_WHEEL_CAP   256    /* filings per slot: 256 x 256 x 16 B = 1 MiB, one atomic allocation */
#define L2SW_WHEEL_BATCH 64     /* filings handled per bpf_loop of one timer run */

struct l2sw_efdb_entry {
	struct l2sw_fdb_key key;
	__u32 ifindex;
	__u16 idx;
	__u16 flags;    /* enum l2sw_fdb_flags */
	__u64 ts_ns;
	__u32 filed;    /* wheel tick of this entry's live filing; other filings of it are stale */
	__u32 pad;
};

struct l2sw_efdb_bucket {
	__u32 seq;      /* seqcount: odd while one writer owns the bucket (taken by cmpxchg) */
	__u32 pad;
	__u16 sig[L2SW_WAYS];   /* 0 = free way; else 16 bits of the key's hash (never 0) */
	struct l2sw_efdb_entry e[L2SW_WAYS];
};

/* efdb_cfg: rodata, set before load */
struct l2sw_efdb_cfg {
	__u32 bucket_mask; /* buckets - 1 (a power of two) */
	__u32 max_entries; /* fdb_size: entries the table takes (static ones included) */
};

/* A timing-wheel filing (list-bucket value): the key, and the tick it was filed under. */
struct l2sw_wheel_item {
	struct l2sw_fdb_key key;
	__u32 tick;
	__u32 pad;
};

/* wheel_stats: ARRAY[1] */
struct l2sw_wheel_stats {
	__u32 handle;     /* list-bucket handle (0: no wheel: module absent or not started) */
	__u32 pad;
	__u64 next_tick;  /* first tick not yet processed */
	__u64 runs;       /* timer runs */
	__u64 filed;      /* filings pushed (learns and re-filings) */
	__u64 expired;    /* entries the wheel removed */
	__u64 refiled;    /* filings popped whose entry was still fresh */
	__u64 stale;      /* filings whose entry was gone, moved on, or static */
	__u64 push_fail;  /* slot full: that entry ages only lazily (and by the controller) */
	__u64 busy;       /* filings put back because a writer held the bucket */
};

/* fdb_ctl requests: the test_run data of xdp_l2sw_fdb_ctl; the answer is written in place. */
enum l2sw_fdb_op {
	L2SW_OP_ADD = 1,         /* add/replace key -> (ifindex, idx, flags) */
	L2SW_OP_DEL = 2,         /* remove key */
	L2SW_OP_FLUSH = 3,       /* remove dynamic entries (flags & L2SW_FDB_STATIC: all) */
	L2SW_OP_EXPIRE = 4,      /* remove dynamic entries older than aging at now_ns */
	L2SW_OP_WHEEL_START = 5, /* create the wheel's list buckets, start the aging timer */
	L2SW_OP_FIND = 6,        /* fdb_batch only: the datapath's lookup: ret >= 0 found (the
				  * eNetSTL table: the way), the value in ifindex, idx, flags and
				  * now_ns (its ts_ns); -ENOENT; -EBUSY (writers kept it busy) */
	L2SW_OP_FIND_BPF = 7,    /* fdb_batch only: FIND by the BPF probe even with the module (the
				  * eNetSTL table; enetstl_bt_find answers as it does) */
};

/* fdb_batch: requests of xdp_l2sw_fdb_batch, which runs the first n (the frame: a __u32 n) with
 * one bpf_loop: FIND and FIND_BPF in both variants, ADD in the eNetSTL one (bulk control-plane
 * loads and the benchmark at scale); op 0 reads the request only (the loop's own cost). */
#define L2SW_BATCH 65536

struct l2sw_fdb_req {
	__u32 op;
	__s32 ret;        /* 0 (FIND: >= 0), or -errno (-EBUSY: a writer held a bucket: retry) */
	struct l2sw_fdb_key key;
	__u32 ifindex;
	__u16 idx;
	__u16 flags;
	__u64 now_ns;
	__u64 count;      /* entries removed by FLUSH/EXPIRE/DEL */
	__u64 busy;       /* buckets skipped because a writer held them */
};

/* Test hooks, used only by the *_test entry points (tier-1 test_run has no real ports). */
enum l2sw_action {
	L2SW_ACT_DROP = 1,
	L2SW_ACT_UNICAST = 2,
	L2SW_ACT_FLOOD = 3,
	L2SW_ACT_PASS = 4,   /* handed to the port's own stack (reserved group addresses) */
};

struct l2sw_test_ctl {
	__u64 now_override;    /* nonzero: the clock the test entries use instead of ktime */
	__u32 ingress_ifindex; /* ifindex the test ingress entry pretends the frame came in on */
	__u32 egress_ifindex;  /* ifindex the test egress entry pretends it sends out of */
	__u32 seq;             /* bumped by every test ingress run */
	__u32 action;          /* enum l2sw_action of the last run */
	__u32 out_ifindex;     /* unicast target of the last run */
	__u16 vid;             /* VLAN the last frame was classified to (0 = none) */
	__u16 pad;
};

#endif

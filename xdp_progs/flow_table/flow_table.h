/* Cuckoo flow table: data-only header shared by flow_table.bpf.c and its ctypes mirror
 * (nf/models/flow_table.py). Structs and constants only; a test compares every size and field
 * offset with the BTF of the built object.
 *
 * Layout (DPDK rte_hash style):
 *   ft_buckets  ARRAY[n_buckets]   16 slots of (u16 signature, u32 key index); signature 0 = empty
 *   ft_entries  ARRAY[capacity+1]  key store: key + per-flow value; index 0 is never used
 *   ft_free     ARRAY[capacity]    FIFO ring of recycled key indices (never-used ones come from a
 *                                  bump counter first, so a freed index is reused as late as possible)
 *   ft_state    ARRAY[1]           writer lock, change counter, allocator, entry count, and the
 *                                  table's keyed hash (written once, when the table is created)
 *   ft_metrics  PERCPU_ARRAY[1]    lookups, hits, inserts, failures, displacement histogram
 *   ft_bfs      PERCPU_ARRAY[1]    per-CPU insert state: search budget, refused bucket pairs,
 *                                  and the scratch queue of the displacement search
 * Hash (ft_state.hash, enetstl.h struct enetstl_ck_hash): the key's five u64 words times five
 * secret odd multipliers, summed and folded (MUL64) or CRC-32C of the products (CRC32C);
 * primary = h & mask; sig = h >> 16 (0 -> 1);
 * alternate = bucket ^ ((mix(sig) & mask) | 1), an involution that never maps a bucket to itself.
 * The multipliers are the deployment's secret (drawn at `nf up` unless the config pins a seed):
 * which flows share a bucket pair cannot be known, so it cannot be aimed at.
 */
#ifndef FLOW_TABLE_H
#define FLOW_TABLE_H

#include <linux/types.h>
#include "enetstl.h"

#define FT_SLOTS 16            /* slots per bucket: one 16 x u16 signature compare */
#define FT_KEY_SIZE 40         /* sizeof(struct ft_key) */
#define FT_BFS_QUEUE 1024      /* nodes of the displacement search queue */
#define FT_SEARCH_MAX 1024     /* upper bound of cfg.max_search (bpf_loop iterations) */
#define FT_PATH_MAX 8          /* longest displacement path (moves) the search may return */
/* Never-used key indices are handed out this far apart (mod capacity, a power of two: an odd
 * stride visits every index once). Consecutive indices would put flows learned one after the
 * other in one cache line (an entry is 88 bytes), and two CPUs counting two such flows would
 * bounce that line on every packet. */
#define FT_ALLOC_STRIDE 3
#define FT_PATH_SLOTS 16       /* path arrays: a power of two > FT_PATH_MAX */
#define FT_HIST_BINS 16        /* displacement histogram: moves 0..14, last bin = 15 or more */
#define FT_LOOKUP_RETRIES 3    /* lookups repeated when a writer moved entries meanwhile */
#define FT_LOCK_SPINS 65536    /* bounded spin on the writer lock (bpf_loop iterations) */
#define FT_SIG_MIX 0x9E3779B1u /* multiplier of the alternate-bucket mix */
#define FT_REFUSED 64          /* per-CPU cache of bucket pairs whose full search failed */
#define FT_TICK_NS 1000000ull  /* the search budget is search_budget steps per CPU per tick */
#define FT_BURST_TICKS 4       /* ... saved up for at most this many ticks (a jiffy at 250 Hz) */
#define FT_MIN_BUCKETS 2
#define FT_MAX_BUCKETS (1u << 20)
#define FT_BATCH 65536         /* requests per batch run (xdp_ft_batch*: bulk inserts, benchmark) */

/* cfg.hash: the key hash; the values are enetstl_cuckoo_cand's ENETSTL_CK_HASH_* */
enum ft_hash {
	FT_HASH_CRC32C = 0, /* rte_hash's default: one instruction per 8 bytes with SSE4.2, a
			     * table walk in eBPF */
	FT_HASH_MUL64 = 1,  /* five independent 64-bit multiplies: cheap everywhere */
};

enum ft_action {
	FT_ACT_PASS = 0,
	FT_ACT_DROP = 1,
	FT_ACT_REDIRECT = 2, /* bpf_redirect to value.port (an ifindex) */
};

enum ft_flags {
	FT_F_STATIC = 1,  /* inserted by the controller (static rule / API): never aged */
	FT_F_LEARNED = 2, /* inserted by the datapath for a new flow */
};

/* Result codes of an insert (also ft_req.ret of the control program). */
enum ft_rc {
	FT_OK = 0,
	FT_EXISTS = 1,      /* key already present (insert) */
	FT_NOT_FOUND = 2,   /* lookup / delete of an absent key */
	FT_FULL = 3,        /* no path within the search bound */
	FT_NO_INDEX = 4,    /* key store exhausted */
	FT_BUSY = 5,        /* writer lock not obtained within FT_LOCK_SPINS */
	FT_BAD_REQ = 6,
	FT_DEFERRED = 7,    /* datapath: not searched (budget spent, or the pair failed lately) */
};

/* 5-tuple. IPv4 addresses sit in addr[0] (network byte order) with addr[1..3] zero; ports host
 * order; family 4 or 6. All padding is zero so the key hashes and compares as 40 bytes. */
struct ft_key {
	__u32 saddr[4];
	__u32 daddr[4];
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 family;
	__u8 pad[2];
};

struct ft_value {
	__u64 packets;    /* atomically added by every CPU */
	__u64 bytes;
	__u64 first_seen; /* bpf_ktime_get_coarse_ns (CLOCK_MONOTONIC_COARSE: ns, tick resolution;
			   * plenty for idle timeouts, a third of ktime_get_ns's cost) at insert */
	__u64 last_seen;  /* at the last packet (or insert) */
	__u32 action;     /* enum ft_action */
	__u32 port;       /* redirect target ifindex */
	__u32 flags;      /* enum ft_flags */
	__u32 pad;
};

struct ft_entry {
	struct ft_key key;
	struct ft_value val;
};

struct ft_bucket {
	__u16 sig[FT_SLOTS]; /* first: 8-byte aligned for the SWAR compare */
	__u32 idx[FT_SLOTS]; /* key index into ft_entries; 0 when sig is 0 */
};

struct ft_state {
	struct enetstl_ck_hash hash; /* the keyed bucket choice: kind and secret multipliers (first:
				      * the eNetSTL lookup passes the state pointer itself) */
	__u32 lock;       /* writer lock: 0 free, 1 held (cmpxchg); see flow_table.bpf.c */
	__u32 entries;    /* keys in the table */
	__u64 chg;        /* bumped before every slot overwrite of a displacement (readers retry) */
	__u32 fresh;      /* never-used key indices handed out: the next one is fresh + 1 */
	__u32 free_head;  /* ring of freed indices: pop at head, push at tail (free-running) */
	__u32 free_tail;
	__u32 frees;      /* deletes so far: a refused bucket pair is retried after one */
};

struct ft_metrics {
	__u64 lookups;       /* unused: lookups = hits + misses (one counter less per packet) */
	__u64 hits;
	__u64 misses;
	__u64 inserts;       /* successful inserts (datapath and control) */
	__u64 fail_full;     /* no displacement path within the bound */
	__u64 fail_index;    /* key store exhausted */
	__u64 fail_busy;     /* writer lock contended past the spin bound */
	__u64 fail_budget;   /* not searched: this CPU's search budget for the tick was spent */
	__u64 fail_cached;   /* not searched: the bucket pair failed a full search since the last
			      * delete (the per-CPU refusal cache) */
	__u64 deletes;
	__u64 retries;       /* lookups repeated because chg moved */
	__u64 search_steps;  /* bpf_loop iterations spent searching */
	__u64 hist[FT_HIST_BINS]; /* successful inserts by number of displacements */
};

/* Per-CPU insert state. A datapath insert that needs a displacement search spends search
 * steps from a token bucket (search_budget per tick, FT_BURST_TICKS ticks saved at most); a
 * full search that fails records the bucket pair (b1 << 32 | sig: it decides the search) with
 * the table's delete count, and later keys of that pair are refused without a search until a
 * delete. Then the queue: one search node per entry, a bucket reached by moving the entry in
 * `slot` of node `parent`. */
struct ft_bfs {
	__u64 tick;                  /* coarse-clock time of the last refill */
	__u32 tokens;                /* search steps left */
	__u32 pad;
	__u64 refused[FT_REFUSED];   /* pair | 1 << 63, 0 = none */
	__u32 refused_gen[FT_REFUSED]; /* ft_state.frees when it failed */
	__u32 bkt[FT_BFS_QUEUE];
	__u16 parent[FT_BFS_QUEUE];
	__u8 slot[FT_BFS_QUEUE];
};

/* Load-time config (rodata). */
struct ft_cfg {
	__u32 bucket_mask;    /* n_buckets - 1, n_buckets a power of two >= 2 */
	__u32 capacity;       /* key store size (= n_buckets * FT_SLOTS) */
	__u32 search_budget;  /* datapath search steps per CPU per FT_TICK_NS */
	__u32 max_search;     /* displacement search: nodes expanded, 1..FT_SEARCH_MAX */
	__u32 learn;          /* 1: insert new flows from the datapath */
	__u32 default_action; /* enum ft_action for flows without an entry (and failed inserts) */
	__u32 default_port;   /* ifindex when default_action is REDIRECT */
	__u32 non_ip_action;  /* enum ft_action for frames without IPv4/IPv6 */
	__u32 hash;           /* enum ft_hash (= ft_state.hash.kind: the branch the verifier keeps) */
};

/* Control request: the payload of a test_run of xdp_ft_ctl (the frame is this struct, padded),
 * or an element of ft_batch (xdp_ft_batch*: the frame is struct ft_batch_run). */
enum ft_op {
	FT_OP_NONE = 0,   /* batch only: read the request, nothing else (the loop's own cost) */
	FT_OP_INSERT = 1, /* insert key with val.action/port/flags; EXISTS if present (val updated
			   * when ft_req.update = 1) */
	FT_OP_DELETE = 2,
	FT_OP_LOOKUP = 3, /* val returned */
	FT_OP_FIND = 4,   /* batch only: the datapath's lock-free lookup; ret OK or NOT_FOUND */
};

struct ft_req {
	__u32 op;
	__s32 ret;        /* enum ft_rc */
	__u32 update;     /* INSERT: overwrite action/port/flags of an existing key */
	__u32 moves;      /* INSERT: displacements done */
	__u32 bucket;     /* where the key sits (INSERT/LOOKUP) */
	__u32 slot;
	__u32 idx;
	__u32 pad;
	struct ft_key key;
	struct ft_value val;
};

/* The frame of a batch run: requests 0..n-1 of ft_batch, each with its own op. */
struct ft_batch_run {
	__u32 n;
	__u32 pad;
};

#endif /* FLOW_TABLE_H */

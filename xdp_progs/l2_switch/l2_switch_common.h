/* SPDX-License-Identifier: GPL-2.0 */
/* L2 switch datapath, part 1 of 2 (BPF only): maps and helpers shared by both FDB variants
 * (l2_switch.bpf.c: BPF hash map; l2_switch_enetstl.bpf.c: bucketised table). The includer
 * then defines its FDB (fdb_find, fdb_learn) and includes l2_switch_dp.h. */
#ifndef L2_SWITCH_COMMON_H
#define L2_SWITCH_COMMON_H

#include "common.h"
#include "stats.h"
#include "l2_switch.h"

#define VLAN_HLEN 4
#define ETH_P_8021Q_BE bpf_htons(0x8100)
#define ETH_P_8021AD_BE bpf_htons(0x88a8)

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} fdb_gen SEC(".maps");

/* learn_memo: this CPU's last source learned on each port (PERCPU_ARRAY[L2SW_MAX_PORTS]).
 * A frame whose (MAC, VID) equals it, in the same clock tick and FDB generation, is already
 * learned on this port with this timestamp: the FDB is not touched. */
struct l2sw_learn_memo {
	__u64 key;   /* struct l2sw_fdb_key as one word */
	__u64 ts_ns;
	__u64 gen;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, L2SW_MAX_PORTS);
	__type(key, __u32);
	__type(value, struct l2sw_learn_memo);
} learn_memo SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct l2sw_fdb_room);
} fdb_room SEC(".maps");

/* Every learn memo is stale from here (see fdb_gen in l2_switch.h). */
static __always_inline void fdb_gen_bump(void)
{
	__u32 zero = 0;
	__u64 *g = bpf_map_lookup_elem(&fdb_gen, &zero);

	if (g)
		__sync_fetch_and_add(g, 1);
}

/* Per-CPU per-verdict counters of the ingress program, recorded at its one exit point. */
NF_STATS_MAP(nf_stats);

/* nf_stats reasons of this NF (beside the shared TRUNCATED / MALFORMED / CONFIG) */
#define L2SW_REASON_LOCAL NF_REASON_NF(0)   /* destination is on the ingress port */
#define L2SW_REASON_NO_PORT NF_REASON_NF(1) /* ingress ifindex is not a configured port */
#define L2SW_REASON_RESERVED NF_REASON_NF(2) /* to 01:80:c2:00:00:01 (PAUSE): never relayed */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, L2SW_MAX_PORTS);
	__type(key, __u32);
	__type(value, struct l2sw_port);
} ports SEC(".maps");

/* The same port records by ifindex for ifindex < L2SW_IFINDEX_FAST (the usual case): the
 * verifier inlines an array read, a hash lookup per frame costs ~100 instructions more. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, L2SW_IFINDEX_FAST);
	__type(key, __u32);
	__type(value, struct l2sw_port);
} port_by_ifindex SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, L2SW_VLAN_SLOTS);
	__type(key, __u32);
	__type(value, struct l2sw_vlan);
} vlans SEC(".maps");


struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct l2sw_config);
} config SEC(".maps");

/* The FDB's key (config.seed) where no config pointer is at hand (learns, control, batches);
 * the datapath's lookup takes it from the config it reads per frame anyway. */
static __always_inline __u64 fdb_seed(void)
{
	__u32 zero = 0;
	struct l2sw_config *c = bpf_map_lookup_elem(&config, &zero);

	return c ? c->seed : 0;
}

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, L2SW_STATS_SLOTS);
	__type(key, __u32);
	__type(value, struct l2sw_stats);
} stats SEC(".maps");

/* One DEVMAP_HASH per VLAN (key = ifindex, value carries the egress program), created by the
 * controller when a VLAN gets its first port. Hash, not DEVMAP: ifindexes in a netns are sparse and
 * grow without bound; the array of maps lets VLANs come and go without reloading the program. */
struct vlan_devmap {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__uint(max_entries, L2SW_MAX_PORTS);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(struct bpf_devmap_val));
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, L2SW_VLAN_SLOTS);
	__type(key, __u32);
	__array(values, struct vlan_devmap);
} vlan_ports SEC(".maps");

/* Known unicast leaves through this one (port index -> ifindex, no egress program): the ingress
 * program already gave the frame its final tagging. An array devmap indexed by the FDB entry's
 * port index, not a hash devmap keyed by ifindex: measured in the lab (perf, one CPU),
 * dev_hash_map_redirect took 6.8 % of the frame's time against 2.4 % for dev_map_redirect. */
struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__uint(max_entries, L2SW_MAX_PORTS);
	__type(key, __u32);
	__type(value, __u32);
} tx_ports SEC(".maps");

/* per CPU, so concurrent test_runs on several CPUs can play different ports */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct l2sw_test_ctl);
} test_ctl SEC(".maps");

static __always_inline struct l2sw_port *port_of(__u32 ifindex)
{
	struct l2sw_port *p;

	if (ifindex < L2SW_IFINDEX_FAST) {
		p = bpf_map_lookup_elem(&port_by_ifindex, &ifindex);
		return p && p->ifindex == ifindex ? p : 0;
	}
	return bpf_map_lookup_elem(&ports, &ifindex);
}

static __always_inline struct l2sw_stats *port_stats(__u32 idx)
{
	return bpf_map_lookup_elem(&stats, &idx);
}

static __always_inline __u64 clock_ns(struct l2sw_test_ctl *t)
{
	if (t && t->now_override)
		return t->now_override;
	return bpf_ktime_get_coarse_ns();
}

/* Last seen at ts: aged out at `now`? ts can be a little after now (stored by another CPU
 * after we read the clock): that is age 0, not 2^64 minus a bit, hence the signed difference.
 * The timing wheel removed freshly refreshed entries that way (found by the differential test
 * against the Linux bridge). aging 0: never. */
static __always_inline int aged_out(__u64 ts, __u64 now, __u64 aging)
{
	return aging && (__s64)(now - ts) > (__s64)aging;
}

static __always_inline int expired(const struct l2sw_fdb_val *e, __u64 now, __u64 aging)
{
	return !(e->flags & L2SW_FDB_STATIC) && aged_out(e->ts_ns, now, aging);
}

/* A full table: may a reclaim walk find an aged-out entry? Not while every dynamic entry was
 * seen after room->oldest_ns less than `aging` ago (the last walk's minimum; entries only get
 * newer since, and a walk that could not see every entry stores 0). */
static __always_inline struct l2sw_fdb_room *room_to_reclaim(__u64 now, __u64 aging)
{
	__u32 zero = 0;
	struct l2sw_fdb_room *r = bpf_map_lookup_elem(&fdb_room, &zero);

	if (!r || !aged_out(r->oldest_ns, now, aging))
		return 0;
	return r;
}

/* After a reclaim walk that removed n entries and found none older than oldest. */
static __always_inline void room_walked(struct l2sw_fdb_room *r, __u64 oldest, __u64 n)
{
	r->oldest_ns = oldest;
	__sync_fetch_and_add(&r->walks, 1);
	if (n) {
		__sync_fetch_and_add(&r->reclaimed, n);
		fdb_gen_bump(); /* learn memos of the removed entries are stale */
	}
}

#endif

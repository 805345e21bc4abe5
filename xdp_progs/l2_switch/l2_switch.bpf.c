// SPDX-License-Identifier: GPL-2.0
/* L2 learning switch, pure-eBPF FDB variant (the FDB is a preallocated BPF hash map).
 *
 * Ingress (xdp_l2sw, attached to every port): classify the frame to a VLAN by the port's mode,
 * learn its source MAC, then either
 *  - known unicast: give the frame the tagging of the egress port (push, pop, or nothing) and
 *    redirect it through tx_ports (a DEVMAP by port index, without programs), or
 *  - flood it in the kernel through the VLAN's DEVMAP_HASH with BPF_F_BROADCAST |
 *    BPF_F_EXCLUDE_INGRESS. A flooded frame leaves the ingress tagged with its VLAN, and the
 *    egress program (xdp_l2sw_egress, the bpf_prog of every entry of those devmaps) pops the tag
 *    on each copy bound for a port that sends that VLAN untagged, and counts the copy.
 *
 * *_test entry points run the same code with ports/clock taken from the test_ctl map, for
 * BPF_PROG_TEST_RUN tables (test_run has no real ingress ports and cannot run devmap programs).
 */
#include "l2_switch_common.h"

char LICENSE[] SEC("license") = "GPL";

/* Preallocated (not LRU): when it is full learning fails and is counted, nothing is evicted. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, L2SW_FDB_DEFAULT);
	__type(key, struct l2sw_fdb_key);
	__type(value, struct l2sw_fdb_val);
} fdb SEC(".maps");

/* kw: the struct l2sw_fdb_key as one word (same 8 bytes, so it is the map key as it is) */
static __always_inline int fdb_find(__u64 kw, struct l2sw_fdb_val *out)
{
	struct l2sw_fdb_val *e = bpf_map_lookup_elem(&fdb, &kw);

	if (!e)
		return 0;
	*out = *e;
	return 1;
}

/* Learn src on vid at port p. Entries are replaced whole with bpf_map_update_elem (the hash map
 * swaps elements under RCU, so a lookup on another CPU sees the old or the new entry, never a
 * mix); only the timestamp of an unchanged entry is refreshed in place (one aligned u64 store). */
static __always_inline int fdb_learn(__u64 kw, const struct l2sw_port *p, struct l2sw_stats *st,
				     __u64 now, __u64 aging)
{
	struct l2sw_fdb_val *e, nv;
	long err;

	e = bpf_map_lookup_elem(&fdb, &kw);
	if (e) {
		if (e->flags & L2SW_FDB_STATIC)
			return 0; /* never learned over, even when the MAC shows up elsewhere */
		if (e->ifindex == p->ifindex) {
			if (e->ts_ns != now) /* at most one store per clock tick */
				e->ts_ns = now;
			return 1;
		}
		nv = (struct l2sw_fdb_val){ .ifindex = p->ifindex, .idx = p->idx, .ts_ns = now };
		if (bpf_map_update_elem(&fdb, &kw, &nv, BPF_ANY))
			return 0;
		fdb_gen_bump(); /* other CPUs' memos of this MAC on its old port are stale */
		if (st) {
			/* an expired entry elsewhere is a fresh learn, not a move */
			if (expired(e, now, aging))
				st->learn++;
			else
				st->move++;
		}
		return 1;
	}
	nv = (struct l2sw_fdb_val){ .ifindex = p->ifindex, .idx = p->idx, .ts_ns = now };
	err = bpf_map_update_elem(&fdb, &kw, &nv, BPF_NOEXIST);
	if (st) {
		if (err == 0)
			st->learn++;
		else if (err != -17 /* EEXIST: another CPU learned it first */)
			st->fdb_full++;
	}
	return err == 0;
}

#include "l2_switch_dp.h"

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

/* kw: the struct l2sw_fdb_key as one word (same 8 bytes, so it is the map key as it is). No
 * seed: the kernel's hash map keys itself (a random seed per map). */
static __always_inline int fdb_find(__u64 kw, __u64 seed, struct l2sw_fdb_val *out)
{
	struct l2sw_fdb_val *e = bpf_map_lookup_elem(&fdb, &kw);

	if (!e)
		return -2; /* -ENOENT */
	*out = *e;
	return 0;
}

struct reclaim_ctx {
	__u64 now;
	__u64 aging;
	__u64 oldest;
	__u64 n;
};

static long reclaim_one(void *map, __u64 *kw, struct l2sw_fdb_val *v,
			struct reclaim_ctx *c)
{
	if (v->flags & L2SW_FDB_STATIC)
		return 0;
	if (aged_out(v->ts_ns, c->now, c->aging)) {
		if (!bpf_map_delete_elem(map, kw))
			c->n++;
	} else if (v->ts_ns < c->oldest) {
		c->oldest = v->ts_ns;
	}
	return 0;
}

/* The table is full: remove every aged-out entry (one walk over the hash map, made only when
 * one can have aged out: room_to_reclaim). Returns how many went. */
static __always_inline __u64 fdb_reclaim(__u64 now, __u64 aging)
{
	struct l2sw_fdb_room *r = room_to_reclaim(now, aging);
	struct reclaim_ctx c = { .now = now, .aging = aging, .oldest = now };
	__u64 base;

	if (!r)
		return 0;
	/* the count starts from a value the verifier cannot know: with n = 0, 1, 2, ... each
	 * simulated callback call would be a new state and the walk would never converge */
	base = *(volatile __u64 *)&r->walks;
	c.n = base;
	bpf_for_each_map_elem(&fdb, reclaim_one, &c, 0);
	room_walked(r, c.oldest, c.n - base);
	return c.n - base;
}

/* Learn src on vid at port p. Entries are replaced whole with bpf_map_update_elem (the hash map
 * swaps elements under RCU, so a lookup on another CPU sees the old or the new entry, never a
 * mix); only the timestamp of an unchanged entry is refreshed in place (one aligned u64 store).
 * An aged-out entry is gone: learning its key again is a learn, wherever it pointed. */
static __always_inline int fdb_learn(__u64 kw, const struct l2sw_port *p, struct l2sw_stats *st,
				     __u64 now, __u64 aging)
{
	struct l2sw_fdb_val *e, nv;
	long err;
	int gone;

	e = bpf_map_lookup_elem(&fdb, &kw);
	if (e) {
		if (e->flags & L2SW_FDB_STATIC)
			return 0; /* never learned over, even when the MAC shows up elsewhere */
		if (e->ifindex == p->ifindex) {
			if (e->ts_ns != now) { /* at most one store per clock tick */
				if (expired(e, now, aging))
					st->learn++;
				e->ts_ns = now;
			}
			return 1;
		}
		/* read before the update: the replaced element goes back to the free list */
		gone = expired(e, now, aging);
		nv = (struct l2sw_fdb_val){ .ifindex = p->ifindex, .idx = p->idx, .ts_ns = now };
		if (bpf_map_update_elem(&fdb, &kw, &nv, BPF_ANY))
			return 0;
		fdb_gen_bump(); /* other CPUs' memos of this MAC on its old port are stale */
		if (gone)
			st->learn++;
		else
			st->move++;
		return 1;
	}
	nv = (struct l2sw_fdb_val){ .ifindex = p->ifindex, .idx = p->idx, .ts_ns = now };
	err = bpf_map_update_elem(&fdb, &kw, &nv, BPF_NOEXIST);
	if (err == -7 /* E2BIG: full */ && fdb_reclaim(now, aging))
		err = bpf_map_update_elem(&fdb, &kw, &nv, BPF_NOEXIST);
	if (err == 0)
		st->learn++;
	else if (err != -17 /* EEXIST: another CPU learned it first */)
		st->fdb_full++;
	return err == 0;
}

#include "l2_switch_dp.h"

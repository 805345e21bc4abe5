// SPDX-License-Identifier: GPL-2.0
/* L2 learning switch, pure-eBPF FDB variant.
 *
 * Ingress (xdp_l2sw, attached to every port): classify the frame to a VLAN by the port's mode,
 * learn its source MAC, then either
 *  - known unicast: give the frame the tagging of the egress port (push, pop, or nothing) and
 *    redirect it through tx_ports (a DEVMAP_HASH without programs), or
 *  - flood it in the kernel through the VLAN's DEVMAP_HASH with BPF_F_BROADCAST |
 *    BPF_F_EXCLUDE_INGRESS. A flooded frame leaves the ingress tagged with its VLAN, and the
 *    egress program (xdp_l2sw_egress, the bpf_prog of every entry of those devmaps) pops the tag
 *    on each copy bound for a port that sends that VLAN untagged, and counts the copy.
 *
 * *_test entry points run the same code with ports/clock taken from the test_ctl map, for
 * BPF_PROG_TEST_RUN tables (test_run has no real ingress ports and cannot run devmap programs).
 */
#include "common.h"
#include "stats.h"
#include "l2_switch.h"

#define VLAN_HLEN 4
#define ETH_P_8021Q_BE bpf_htons(0x8100)

char LICENSE[] SEC("license") = "GPL";

/* Per-CPU per-verdict counters of the ingress program, recorded at its one exit point. */
NF_STATS_MAP(nf_stats);

/* nf_stats reasons of this NF (beside the shared TRUNCATED / MALFORMED / CONFIG) */
#define L2SW_REASON_LOCAL NF_REASON_NF(0)   /* destination is on the ingress port */
#define L2SW_REASON_NO_PORT NF_REASON_NF(1) /* ingress ifindex is not a configured port */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, L2SW_MAX_PORTS);
	__type(key, __u32);
	__type(value, struct l2sw_port);
} ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, L2SW_VLAN_SLOTS);
	__type(key, __u32);
	__type(value, struct l2sw_vlan);
} vlans SEC(".maps");

/* Preallocated (not LRU): when it is full learning fails and is counted, nothing is evicted. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, L2SW_FDB_DEFAULT);
	__type(key, struct l2sw_fdb_key);
	__type(value, struct l2sw_fdb_val);
} fdb SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct l2sw_config);
} config SEC(".maps");

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

/* Known unicast leaves through this one (ifindex -> ifindex, no egress program): the ingress
 * program already gave the frame its final tagging. */
struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__uint(max_entries, L2SW_MAX_PORTS);
	__type(key, __u32);
	__type(value, __u32);
} tx_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct l2sw_test_ctl);
} test_ctl SEC(".maps");

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

static __always_inline int expired(const struct l2sw_fdb_val *e, __u64 now, __u64 aging)
{
	if (e->flags & L2SW_FDB_STATIC || !aging)
		return 0;
	return now - e->ts_ns > aging;
}

/* Learn src on vid at port p. Entries are replaced whole with bpf_map_update_elem (the hash map
 * swaps elements under RCU, so a lookup on another CPU sees the old or the new entry, never a
 * mix); only the timestamp of an unchanged entry is refreshed in place (one aligned u64 store). */
static __always_inline void learn(const __u8 *src, __u16 vid, const struct l2sw_port *p,
				  struct l2sw_stats *st, __u64 now, __u64 aging)
{
	struct l2sw_fdb_key k = { .vid = vid };
	struct l2sw_fdb_val *e, nv;
	long err;

	__builtin_memcpy(k.mac, src, ETH_ALEN);
	e = bpf_map_lookup_elem(&fdb, &k);
	if (e) {
		if (e->flags & L2SW_FDB_STATIC)
			return; /* never learned over, even when the MAC shows up elsewhere */
		if (e->ifindex == p->ifindex) {
			if (e->ts_ns != now) /* at most one store per clock tick */
				e->ts_ns = now;
			return;
		}
		nv = (struct l2sw_fdb_val){ .ifindex = p->ifindex, .idx = p->idx, .ts_ns = now };
		if (bpf_map_update_elem(&fdb, &k, &nv, BPF_ANY) == 0 && st) {
			/* an expired entry elsewhere is a fresh learn, not a move */
			if (expired(e, now, aging))
				st->learn++;
			else
				st->move++;
		}
		return;
	}
	nv = (struct l2sw_fdb_val){ .ifindex = p->ifindex, .idx = p->idx, .ts_ns = now };
	err = bpf_map_update_elem(&fdb, &k, &nv, BPF_NOEXIST);
	if (!st)
		return;
	if (err == 0)
		st->learn++;
	else if (err != -17 /* EEXIST: another CPU learned it first */)
		st->fdb_full++;
}

static __always_inline void record(struct l2sw_test_ctl *t, __u32 action, __u32 out, __u16 vid)
{
	if (!t)
		return;
	t->seq++;
	t->action = action;
	t->out_ifindex = out;
	t->vid = vid;
}

static __always_inline int drop(struct l2sw_stats *st, __u64 *reason, struct l2sw_test_ctl *t,
				__u16 vid, __u32 *why, __u32 code)
{
	*why = code;
	st->drop++;
	if (reason)
		(*reason)++;
	record(t, L2SW_ACT_DROP, 0, vid);
	return XDP_DROP;
}

/* Give the frame the form it leaves in: tagged with vid (want_tag) or untagged. has_tag: it
 * carries an 802.1Q header now (a VLAN or a priority tag, whose PCP/DEI are kept). */
static __always_inline int set_tag(struct xdp_md *ctx, const __u8 *dst, const __u8 *src,
				   int has_tag, __u16 tci, __u16 vid, int want_tag)
{
	void *data, *data_end;
	struct ethhdr *eth;

	if (has_tag && want_tag) {
		data = (void *)(long)ctx->data;
		data_end = (void *)(long)ctx->data_end;
		if (data + sizeof(struct ethhdr) + VLAN_HLEN > data_end)
			return -1;
		*(__be16 *)(data + sizeof(struct ethhdr)) = bpf_htons((tci & 0xf000) | vid);
		return 0;
	}
	if (!has_tag && !want_tag)
		return 0;
	if (bpf_xdp_adjust_head(ctx, want_tag ? -VLAN_HLEN : VLAN_HLEN))
		return -1;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	eth = data;
	if (data + (want_tag ? sizeof(*eth) + VLAN_HLEN : 2 * ETH_ALEN) > data_end)
		return -1;
	/* the EtherType after the tag is already in place: only the MACs (and a new tag) move */
	__builtin_memcpy(eth->h_dest, dst, ETH_ALEN);
	__builtin_memcpy(eth->h_source, src, ETH_ALEN);
	if (want_tag) {
		eth->h_proto = ETH_P_8021Q_BE;
		*(__be16 *)(eth + 1) = bpf_htons(vid);
	}
	return 0;
}

static __always_inline int switch_ingress(struct xdp_md *ctx, __u32 in_ifindex,
					  struct l2sw_test_ctl *t, __u32 *why)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 zero = 0, vkey;
	struct l2sw_config *cfg;
	struct l2sw_port *p;
	struct l2sw_stats *st;
	struct l2sw_vlan *vl;
	struct ethhdr *eth = data;
	__u8 dst[ETH_ALEN], src[ETH_ALEN];
	__u16 vid, tci = 0;
	int has_tag;
	__u64 now, aging;
	void *fwd;

	p = bpf_map_lookup_elem(&ports, &in_ifindex);
	st = port_stats(p ? p->idx : L2SW_MAX_PORTS);
	if (!st) /* cannot happen: the index is below L2SW_STATS_SLOTS */
		return XDP_ABORTED;
	st->rx_packets++;
	st->rx_bytes += data_end - data;
	if (!p)
		return drop(st, 0, t, 0, why, L2SW_REASON_NO_PORT);
	if ((void *)(eth + 1) > data_end)
		return drop(st, &st->drop_malformed, t, 0, why, NF_REASON_TRUNCATED);

	__builtin_memcpy(dst, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(src, eth->h_source, ETH_ALEN);
	/* a source must be a unicast, nonzero address: never learn or forward anything else */
	if ((src[0] & 1) || !(src[0] | src[1] | src[2] | src[3] | src[4] | src[5]))
		return drop(st, &st->drop_malformed, t, 0, why, NF_REASON_MALFORMED);

	has_tag = eth->h_proto == ETH_P_8021Q_BE;
	if (has_tag) {
		__be16 *tcip = (void *)(eth + 1);

		if ((void *)(tcip + 2) > data_end)
			return drop(st, &st->drop_malformed, t, 0, why, NF_REASON_TRUNCATED);
		tci = bpf_ntohs(*tcip);
		vid = tci & 0x0fff;
		if (vid == 0x0fff)
			return drop(st, &st->drop_malformed, t, 0, why, NF_REASON_MALFORMED);
		if (vid) {
			if (p->mode != L2SW_TRUNK) /* access ports take untagged frames only */
				return drop(st, &st->drop_vlan, t, vid, why, NF_REASON_CONFIG);
		} else {
			vid = p->pvid; /* priority tag: classify like untagged, keep its PCP */
		}
	} else {
		vid = p->pvid;
	}
	if (!vid)
		return drop(st, &st->drop_vlan, t, 0, why, NF_REASON_CONFIG);
	vkey = vid;
	vl = bpf_map_lookup_elem(&vlans, &vkey);
	if (!vl || !(vl->members & (1ULL << (p->idx & 63))))
		return drop(st, &st->drop_vlan, t, vid, why, NF_REASON_CONFIG);

	cfg = bpf_map_lookup_elem(&config, &zero);
	aging = cfg ? cfg->aging_ns : 0;
	now = clock_ns(t);
	if (p->learning)
		learn(src, vid, p, st, now, aging);

	if (!(dst[0] & 1)) {
		struct l2sw_fdb_key k = { .vid = vid };
		struct l2sw_fdb_val *e;

		__builtin_memcpy(k.mac, dst, ETH_ALEN);
		e = bpf_map_lookup_elem(&fdb, &k);
		if (e && !expired(e, now, aging)) {
			__u32 out = e->ifindex;
			__u32 oidx = e->idx;
			__u64 obit = 1ULL << (oidx & 63);
			struct l2sw_stats *so;

			if (out == in_ifindex)
				return drop(st, &st->drop_local, t, vid, why, L2SW_REASON_LOCAL);
			if (!(vl->members & obit)) /* only a stale static entry can point outside */
				return drop(st, &st->drop_vlan, t, vid, why, NF_REASON_CONFIG);
			/* Unicast leaves in its final form straight from here: no tag round trip, no
			 * egress program (tx_ports has none), tx counted for the egress port here. */
			if (set_tag(ctx, dst, src, has_tag, tci, vid, !(vl->untagged & obit)))
				return drop(st, &st->drop_malformed, t, vid, why, NF_REASON_MALFORMED);
			st->unicast++;
			so = port_stats(oidx);
			if (so) {
				so->tx_packets++;
				so->tx_bytes += ctx->data_end - ctx->data;
			}
			record(t, L2SW_ACT_UNICAST, out, vid);
			if (t) /* test_run: tx_ports of a test holds no real devices */
				return XDP_REDIRECT;
			return bpf_redirect_map(&tx_ports, out, XDP_DROP);
		}
	}

	/* Flood: tagged with its VID through the VLAN's devmap; each copy's egress program pops
	 * the tag where that port sends the VLAN untagged. */
	fwd = bpf_map_lookup_elem(&vlan_ports, &vkey);
	if (!fwd)
		return drop(st, &st->drop_vlan, t, vid, why, NF_REASON_CONFIG);
	if (set_tag(ctx, dst, src, has_tag, tci, vid, 1))
		return drop(st, &st->drop_malformed, t, vid, why, NF_REASON_MALFORMED);
	st->flood++;
	record(t, L2SW_ACT_FLOOD, 0, vid);
	return bpf_redirect_map(fwd, 0, BPF_F_BROADCAST | BPF_F_EXCLUDE_INGRESS);
}

/* Egress: the frame is tagged with its VLAN; pop the tag where this port sends it untagged. */
static __always_inline int switch_egress(struct xdp_md *ctx, __u32 out_ifindex)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct l2sw_port *p;
	struct l2sw_stats *st;
	struct l2sw_vlan *vl;
	__u8 macs[2 * ETH_ALEN];
	__u32 vkey;
	__u64 bit;

	p = bpf_map_lookup_elem(&ports, &out_ifindex);
	if (!p)
		return XDP_DROP;
	st = port_stats(p->idx);
	if ((void *)eth + sizeof(*eth) + VLAN_HLEN > data_end || eth->h_proto != ETH_P_8021Q_BE)
		goto refuse; /* cannot happen for frames of the ingress program */
	vkey = bpf_ntohs(*(__be16 *)(eth + 1)) & 0x0fff;
	vl = bpf_map_lookup_elem(&vlans, &vkey);
	bit = 1ULL << (p->idx & 63);
	if (!vl || !(vl->members & bit))
		goto refuse; /* port left the VLAN (or a static entry points outside it) */
	if (vl->untagged & bit) {
		__builtin_memcpy(macs, data, sizeof(macs));
		if (bpf_xdp_adjust_head(ctx, VLAN_HLEN))
			goto refuse;
		data = (void *)(long)ctx->data;
		data_end = (void *)(long)ctx->data_end;
		if (data + sizeof(macs) > data_end)
			goto refuse;
		__builtin_memcpy(data, macs, sizeof(macs));
	}
	if (st) {
		st->tx_packets++;
		st->tx_bytes += data_end - data;
	}
	return XDP_PASS;
refuse:
	if (st)
		st->drop_egress++;
	return XDP_DROP;
}

SEC("xdp")
int xdp_l2sw(struct xdp_md *ctx)
{
	__u32 why = NF_REASON_NONE;
	int act = switch_ingress(ctx, ctx->ingress_ifindex, 0, &why);

	return xdp_exit_why(ctx, &nf_stats, act, why);
}

SEC("xdp/devmap")
int xdp_l2sw_egress(struct xdp_md *ctx)
{
	return switch_egress(ctx, ctx->egress_ifindex);
}

SEC("xdp")
int xdp_l2sw_test(struct xdp_md *ctx)
{
	__u32 zero = 0;
	struct l2sw_test_ctl *t = bpf_map_lookup_elem(&test_ctl, &zero);

	__u32 why = NF_REASON_NONE;
	int act;

	if (!t)
		return XDP_ABORTED;
	act = switch_ingress(ctx, t->ingress_ifindex, t, &why);
	return xdp_exit_why(ctx, &nf_stats, act, why);
}

SEC("xdp")
int xdp_l2sw_egress_test(struct xdp_md *ctx)
{
	__u32 zero = 0;
	struct l2sw_test_ctl *t = bpf_map_lookup_elem(&test_ctl, &zero);

	if (!t)
		return XDP_ABORTED;
	return switch_egress(ctx, t->egress_ifindex);
}

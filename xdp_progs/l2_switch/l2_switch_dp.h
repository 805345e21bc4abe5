/* SPDX-License-Identifier: GPL-2.0 */
/* L2 switch datapath, part 2 of 2 (BPF only): ingress, egress and the entry points. Needs
 *   int  fdb_find(__u64 kw, __u64 seed, struct l2sw_fdb_val *out);
 *        >= 0: found, copied; < 0: -errno (seed: the FDB's key, config.seed, for a table that
 *        hashes keys itself; a BPF hash map keys itself)
 *   int  fdb_learn(__u64 kw, const struct l2sw_port *p,
 *                  struct l2sw_stats *st, __u64 now, __u64 aging);
 *        1 = (k) is now in the FDB on port p with timestamp `now` (learned, refreshed, moved)
 * from the FDB variant that includes it; a MAC move there calls fdb_gen_bump(). */
#ifndef L2_SWITCH_DP_H
#define L2_SWITCH_DP_H

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
 * carries an 802.1Q header now (a VLAN or a priority tag, whose PCP/DEI are kept). macs: the
 * frame's destination and source MACs as they were, three words. */
static __always_inline int set_tag(struct xdp_md *ctx, const __u32 *macs,
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
	/* the EtherType after the tag is already in place: only the MACs (and a new tag) move;
	 * word stores (clang splits a 6-byte memcpy into bytes) */
	((__u32 *)eth)[0] = macs[0];
	((__u32 *)eth)[1] = macs[1];
	((__u32 *)eth)[2] = macs[2];
	if (want_tag) {
		eth->h_proto = ETH_P_8021Q_BE;
		*(__be16 *)(eth + 1) = bpf_htons(vid);
	}
	return 0;
}

_Static_assert(sizeof(struct l2sw_fdb_key) == 8, "FDB keys are built as one little-endian word");

/* Learn k on p, skipping the FDB when this CPU learned exactly this on p in this clock tick and
 * FDB generation (a sender's frames mostly come in bursts: one FDB access per tick instead of
 * per frame). The generation is read before the FDB, so a change racing the learn leaves a memo
 * that is already stale. A MAC moving away on another CPU bumps the generation too; a move back
 * seen by this CPU costs at most the rest of the tick (a coarse-clock tick, a few ms). */
static __always_inline void learn(__u64 kw, const struct l2sw_port *p, struct l2sw_stats *st,
				  __u64 now, __u64 aging)
{
	__u32 zero = 0, slot = p->idx;
	struct l2sw_learn_memo *m = bpf_map_lookup_elem(&learn_memo, &slot);
	__u64 *gp = bpf_map_lookup_elem(&fdb_gen, &zero);
	__u64 g = gp ? *(volatile __u64 *)gp : 0;

	if (m && m->key == kw && m->ts_ns == now && m->gen == g)
		return;
	if (fdb_learn(kw, p, st, now, aging) && m) {
		m->key = kw;
		m->ts_ns = now;
		m->gen = g;
	}
}

/* A frame for the port's own stack, not relayed (reserved group addresses). */
static __always_inline int to_stack(struct l2sw_stats *st, struct l2sw_test_ctl *t, __u16 vid)
{
	st->to_stack++;
	record(t, L2SW_ACT_PASS, 0, vid);
	return XDP_PASS;
}

/* 01:80:c2:00:00:0X (IEEE 802.1Q reserved group addresses) -> X + 1; anything else -> 0.
 * dst0: destination bytes 0-3, dst1: bytes 4-5 in its low half (little-endian words). */
static __always_inline __u32 reserved_group(__u32 dst0, __u32 dst1)
{
	if (dst0 != 0x00c28001 || (dst1 & 0xf0ff))
		return 0;
	return ((dst1 >> 8) & 0xf) + 1;
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
	__u32 macs[3];   /* destination and source MAC as in the frame (little-endian words) */
	__u32 src_lo;    /* source MAC bytes 0-1 */
	__u32 rsv;       /* reserved_group() of the destination */
	__u16 vid, tci = 0;
	int has_tag, local;
	__u64 now, aging;
	void *fwd;

	p = port_of(in_ifindex);
	st = port_stats(p ? p->idx : L2SW_MAX_PORTS);
	if (!st) /* cannot happen: the index is below L2SW_STATS_SLOTS */
		return XDP_ABORTED;
	st->rx_packets++;
	st->rx_bytes += data_end - data;
	if (!p)
		return drop(st, 0, t, 0, why, L2SW_REASON_NO_PORT);
	if ((void *)(eth + 1) > data_end)
		return drop(st, &st->drop_malformed, t, 0, why, NF_REASON_TRUNCATED);
	/* A bridge port never sees an 802.1Q or 802.1ad frame without room for its tag and the two
	 * bytes behind it: the kernel's receive path (skb_vlan_untag) drops it first. */
	has_tag = eth->h_proto == ETH_P_8021Q_BE;
	if ((has_tag || eth->h_proto == ETH_P_8021AD_BE) &&
	    data + sizeof(*eth) + VLAN_HLEN + 2 > data_end)
		return drop(st, &st->drop_malformed, t, 0, why, NF_REASON_TRUNCATED);

	macs[0] = ((__u32 *)eth)[0];
	macs[1] = ((__u32 *)eth)[1];
	macs[2] = ((__u32 *)eth)[2];
	src_lo = macs[1] >> 16;
	/* a source must be a unicast, nonzero address: never learn or forward anything else */
	if ((src_lo & 1) || !(src_lo | macs[2]))
		return drop(st, &st->drop_malformed, t, 0, why, NF_REASON_MALFORMED);

	/* Reserved group addresses, as the Linux bridge with STP off treats them (br_handle_frame):
	 * 00 (bridge group, STP BPDUs) is forwarded like any multicast, so the STP bridges around a
	 * switch that runs no STP still see each other; 01 (MAC control, PAUSE) is dropped before
	 * anything, its sender not learned; 02-0f (LACP, 802.1X, LLDP, ...) are never relayed but
	 * handed to the port's own stack (its agents live there), the sender learned only where a
	 * frame of its VLAN would be. */
	rsv = reserved_group(macs[0], macs[1]);
	if (rsv == 2)
		return drop(st, &st->drop_reserved, t, 0, why, L2SW_REASON_RESERVED);
	local = rsv > 2;

	if (has_tag) {
		__be16 *tcip = (void *)(eth + 1);

		if ((void *)(tcip + 2) > data_end) /* checked above; again for the verifier */
			return drop(st, &st->drop_malformed, t, 0, why, NF_REASON_TRUNCATED);
		tci = bpf_ntohs(*tcip);
		vid = tci & 0x0fff;
		if (vid == 0x0fff)
			return local ? to_stack(st, t, 0) :
				drop(st, &st->drop_malformed, t, 0, why, NF_REASON_MALFORMED);
		if (!vid)
			vid = p->pvid; /* priority tag: classify like untagged, keep its PCP */
		else if (p->flags & L2SW_PORT_UNTAGGED_ONLY)
			return local ? to_stack(st, t, 0) :
				drop(st, &st->drop_vlan, t, vid, why, NF_REASON_CONFIG);
	} else {
		vid = p->pvid;
	}
	/* membership decides the rest: an access port is a member of its VLAN only */
	vkey = vid;
	vl = vid ? bpf_map_lookup_elem(&vlans, &vkey) : 0;
	if (!vl || !(vl->members & (1ULL << (p->idx & 63))))
		return local ? to_stack(st, t, 0) :
			drop(st, &st->drop_vlan, t, vid, why, NF_REASON_CONFIG);

	cfg = bpf_map_lookup_elem(&config, &zero);
	if (!cfg) /* cannot happen: ARRAY[1] */
		return drop(st, 0, t, vid, why, NF_REASON_CONFIG);
	aging = cfg->aging_ns;
	now = clock_ns(t);
	/* FDB keys as one word each: struct l2sw_fdb_key is mac[6] then vid, little-endian */
	if (p->learning)
		learn(src_lo | (__u64)macs[2] << 16 | (__u64)vid << 48, p, st, now, aging);
	if (local)
		return to_stack(st, t, vid);

	if (!(macs[0] & 1)) {
		__u64 kw = macs[0] | (__u64)(macs[1] & 0xffff) << 32 | (__u64)vid << 48;
		struct l2sw_fdb_val e;

		if (likely(fdb_find(kw, cfg->seed, &e) >= 0) && !expired(&e, now, aging)) {
			__u32 out = e.ifindex;
			__u32 oidx = e.idx;
			__u64 obit = 1ULL << (oidx & 63);
			struct l2sw_stats *so;

			if (out == in_ifindex)
				return drop(st, &st->drop_local, t, vid, why, L2SW_REASON_LOCAL);
			if (!(vl->members & obit)) /* only a stale static entry can point outside */
				return drop(st, &st->drop_vlan, t, vid, why, NF_REASON_CONFIG);
			/* Unicast leaves in its final form straight from here: no tag round trip, no
			 * egress program (tx_ports has none), tx counted for the egress port here. */
			if (set_tag(ctx, macs, has_tag, tci, vid, !(vl->untagged & obit)))
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
			return bpf_redirect_map(&tx_ports, oidx, XDP_DROP);
		}
	}

	/* Flood: tagged with its VID through the VLAN's devmap; each copy's egress program pops
	 * the tag where that port sends the VLAN untagged. */
	fwd = bpf_map_lookup_elem(&vlan_ports, &vkey);
	if (!fwd)
		return drop(st, &st->drop_vlan, t, vid, why, NF_REASON_CONFIG);
	if (set_tag(ctx, macs, has_tag, tci, vid, 1))
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

	p = port_of(out_ifindex);
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

/* ---- batches (enum l2sw_fdb_op, L2SW_BATCH) ---------------------------------------------- */
#ifndef L2SW_BATCH_CTL
#define L2SW_BATCH_CTL(r) (-95) /* -EOPNOTSUPP: the hash map is written by the controller */
#endif
#ifndef L2SW_BATCH_FIND_BPF
#define L2SW_BATCH_FIND_BPF(kw, seed, v) fdb_find(kw, seed, v) /* one probe: it is in BPF */
#endif

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, L2SW_BATCH);
	__type(key, __u32);
	__type(value, struct l2sw_fdb_req);
} fdb_batch SEC(".maps");

static long fdb_batch_cb(__u32 i, void *ctx)
{
	struct l2sw_fdb_req *r = bpf_map_lookup_elem(&fdb_batch, &i);
	struct l2sw_fdb_val v;

	if (!r)
		return 1;
	if (r->op == L2SW_OP_FIND || r->op == L2SW_OP_FIND_BPF) {
		__u64 kw = *(__u64 *)&r->key;
		__u64 seed = fdb_seed();
		int ret = r->op == L2SW_OP_FIND ? fdb_find(kw, seed, &v) :
			  L2SW_BATCH_FIND_BPF(kw, seed, &v);

		r->ret = ret;
		r->ifindex = ret < 0 ? 0 : v.ifindex;
		if (ret >= 0) { /* the whole value, for the tests comparing the probes */
			r->idx = v.idx;
			r->flags = v.flags;
			r->now_ns = v.ts_ns;
		}
	} else if (r->op == L2SW_OP_ADD) {
		r->ret = L2SW_BATCH_CTL(r);
	}
	return 0;
}

SEC("xdp")
int xdp_l2sw_fdb_batch(struct xdp_md *ctx)
{
	__u32 *n = (void *)(long)ctx->data;

	if ((void *)(n + 1) > (void *)(long)ctx->data_end || *n > L2SW_BATCH)
		return XDP_ABORTED;
	bpf_loop(*n, fdb_batch_cb, NULL, 0);
	return XDP_PASS;
}

#endif

// SPDX-License-Identifier: GPL-2.0
/*
 * Heavy-hitter sketch: count-min (d rows x w counters) over a configurable flow key, with a
 * bounded table of heavy-hitter candidates, two banks swapped by the controller, optional
 * NitroSketch sampling and a drop/redirect action for flows flagged heavy.
 *
 * Two update paths chosen by sk_cfg.variant (rodata: the verifier removes the other):
 *  - pure eBPF: d seeded xxh32 hashes (algo/xxh32.h, unrolled, constant key length) and d adds;
 *  - eNetSTL: one call of the module's fused enetstl_cm_add[_atomic] (hash x d, add, min).
 * Both hash with xxh32(key, len, seed + i * 0x9E3779B1) and index h & (w - 1), so the counters
 * are identical for the same traffic; seed is the bank's cm.seed, the sketch's secret (sketch.h).
 * Without the module the eNetSTL variant runs the pure path (bpf_ksym_exists).
 *
 * Epochs: the bank in use is the one inner map of sk_active. The program looks it up once per
 * packet; the controller replaces it with a syscall map update, which returns only after
 * synchronize_rcu() (array-of-maps updates wait for running programs), so once it returns no
 * program can still add to the old bank: read and clear it then, nothing lost or counted twice.
 *
 * Threshold with per-CPU banks: each CPU compares its own estimate (its share of the flow) with
 * the threshold, and in fraction mode its estimate with the fraction of its own total. An
 * RSS-pinned flow is all on one CPU, so this equals the global rule; a flow spread over c CPUs
 * is flagged late (at about c x threshold in total), never early. The controller's
 * heavy_hitters() applies the threshold to the counters summed over CPUs.
 *
 * Top k whatever the threshold: every update feeds the CPU's top table (sk_top, struct
 * sketch_top), which keeps the SKETCH_TOP largest flows by estimate; the controller re-ranks
 * them (and the candidates) by the estimates summed over CPUs.
 *
 * Acting on heavy flows with NitroSketch: an unsampled packet has no estimate. A flagged flow's
 * fingerprint bit is set in sk_heavy before its candidate entry is tried, so an unsampled packet
 * whose bit is clear is not of a flagged flow (one load); one whose bit is set is looked up in
 * the candidates, and without an entry (the bank's candidates all taken, or a bit shared with
 * another flow) its estimate is read (an update by 0) and compared as a sampled packet's would
 * be. So acting does not depend on a free candidate slot.
 */
#include "common.h"
#include "parse.h"
#include "stats.h"
#include "algo/xxh32.h"
#include "enetstl.h"
#include "sketch.h"

char LICENSE[] SEC("license") = "GPL";

const volatile struct sketch_cfg sk_cfg = {
	.variant = SK_VAR_PURE,
	.key_kind = SK_KEY_5TUPLE,
	.flags = 0,
	.d = 4,
	.w = 1024,
	.action = SK_ACT_MONITOR,
	.threshold = 1000,
	.nitro_scale_q16 = 1 << 16,
};

/* Q32 log2(1 + (i + 0.5) / SKETCH_LOG2_TAB), filled by the controller (pure-eBPF sampling). */
const volatile __u32 sk_log2_tab[SKETCH_LOG2_TAB];

/* handle + 1 of the module random pool (0: none), written by xdp_sketch_pool. */
__u32 sk_pool_handle;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} sk_active SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 2048);	/* set by the controller: 2 x candidates */
	__type(key, struct sketch_cand_key);
	__type(value, struct sketch_cand);
} sk_cand SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct sketch_top);
} sk_top SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct sketch_heavy);
} sk_heavy SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sketch_nitro);
} sk_nitro SEC(".maps");

struct sketch_pool {
	struct enetstl_rp __kptr *rp;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sketch_pool);
} sk_pool SEC(".maps");

/* Never used: give struct sketch_bank / sketch_hashcheck a place in the object's BTF (for the
 * layout test against the Python mirrors); locals alone are not emitted. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sketch_bank);
} sk_bank_layout SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sketch_hashcheck);
} sk_hc_layout SEC(".maps");

NF_STATS_MAP(sk_stats);

/* sk_cfg.flags is read once per packet (each sk_cfg access is a load: volatile) and passed on */
#define SK_SHARED (flags & SK_F_SHARED)

/* Measurement hook of the per-phase profile (nf/bench/sketch.py: phase_objects): built with
 * -DSK_PHASE=n the program returns PASS through the stats exit right after phase n
 * (0 nothing, 1 parse and key, 2 bank lookups, 3 bank totals, 4 count-min update), so the
 * differences between the builds are the phases' costs. The shipped object has no stop. */
#ifndef SK_PHASE
#define SK_PHASE 99
#endif
#define SK_STOP_AFTER(n)						\
	do {								\
		if (SK_PHASE == (n))					\
			return xdp_exit(ctx, &sk_stats, XDP_PASS);	\
	} while (0)

static __always_inline void add64(__u64 *p, __u64 v, __u32 flags)
{
	if (SK_SHARED)
		__sync_fetch_and_add(p, v);
	else
		*p += v;
}

/* ---- flow key ---- */

/* Fills kw (zeroed by the caller) with the key bytes; returns their length, 0 when the frame has
 * no key of the configured kind. */
static __always_inline __u32 build_key(struct xdp_md *ctx, struct pkt_meta *m, __u32 *kw)
{
	__u32 kind = sk_cfg.key_kind;
	__u32 ports = (__u32)bpf_htons(m->sport) | (__u32)bpf_htons(m->dport) << 16;

	if (kind == SK_KEY_SRC_MAC) {
		struct ethhdr *eth = xdp_ptr(ctx, 0, sizeof(*eth));

		if (!eth)
			return 0;
		__builtin_memcpy(kw, eth->h_source, ETH_ALEN);
		return 8;
	}
	if (m->flags & PKT_F_IPV4) {
		struct iphdr *iph = xdp_ptr(ctx, m->l3_off, sizeof(*iph));

		if (!iph)
			return 0;
		switch (kind) {
		case SK_KEY_5TUPLE:
			kw[0] = iph->saddr;
			kw[1] = iph->daddr;
			kw[2] = ports;
			kw[3] = m->l4_proto;
			return 16;
		case SK_KEY_SRC_IP:
			kw[0] = iph->saddr;
			return 4;
		case SK_KEY_DST_IP:
			kw[0] = iph->daddr;
			return 4;
		default:
			kw[0] = iph->saddr;
			kw[1] = iph->daddr;
			return 8;
		}
	}
	if (m->flags & PKT_F_IPV6) {
		struct ipv6hdr *ip6 = xdp_ptr(ctx, m->l3_off, sizeof(*ip6));

		if (!ip6)
			return 0;
		switch (kind) {
		case SK_KEY_5TUPLE:
			__builtin_memcpy(kw, &ip6->saddr, 16);
			__builtin_memcpy(kw + 4, &ip6->daddr, 16);
			kw[8] = ports;
			kw[9] = m->l4_proto;
			return 40;
		case SK_KEY_SRC_IP:
			__builtin_memcpy(kw, &ip6->saddr, 16);
			return 16;
		case SK_KEY_DST_IP:
			__builtin_memcpy(kw, &ip6->daddr, 16);
			return 16;
		default:
			__builtin_memcpy(kw, &ip6->saddr, 16);
			__builtin_memcpy(kw + 4, &ip6->daddr, 16);
			return 32;
		}
	}
	return 0;
}

/*
 * Fast path for the frames a sketch mostly sees: untagged Ethernet, IPv4 without options and
 * not a fragment, or IPv6 without extension headers, then TCP or UDP. It makes exactly the
 * checks parse_pkt makes for such a frame (header bounds, version, IP total / payload length
 * against the frame, UDP length, TCP data offset, L4 header within the IP packet) and builds
 * the key straight from the headers (the L4 port word is already sport | dport << 16 in
 * network order). Returns the key length, or 0 when the frame is anything else or a check
 * fails: the caller then runs parse_pkt + build_key, which give the same key, or the parse
 * error to count. Measured: parse + key 138 -> 67 guest instructions (NOTES.md). The words a
 * failed fast path wrote are all rewritten by build_key for the same frame.
 */
static __always_inline __u32 fast_key(struct xdp_md *ctx, __u32 *kw)
{
	void *data = xdp_data(ctx), *end = xdp_data_end(ctx);
	struct ethhdr *eth = data;
	__u32 kind = sk_cfg.key_kind, l4_off, limit, proto, ports;
	__u8 *l4;

	if ((void *)(eth + 1) > end)
		return 0;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *iph = (void *)(eth + 1);
		__u32 tot;

		if ((void *)(iph + 1) > end)
			return 0;
		/* version 4, IHL 5; no MF, offset 0 (DF may be set) */
		if (*(__u8 *)iph != 0x45 || (iph->frag_off & bpf_htons(PARSE_IPV4_MF | PARSE_IPV4_OFFSET)))
			return 0;
		tot = bpf_ntohs(iph->tot_len);
		/* 6.12's verifier loses the bounds of a byte swap; clang drops a plain mask */
		barrier_var(tot);
		tot &= 0xffff;
		if (tot < sizeof(*iph) || (void *)eth + sizeof(*eth) + tot > end)
			return 0;
		proto = iph->protocol;
		l4_off = sizeof(*eth) + sizeof(*iph);
		limit = sizeof(*eth) + tot;
		l4 = (void *)(iph + 1);
		switch (kind) {
		case SK_KEY_SRC_IP:
			kw[0] = iph->saddr;
			break;
		case SK_KEY_DST_IP:
			kw[0] = iph->daddr;
			break;
		case SK_KEY_SRC_MAC:
			break;
		default:	/* 5-tuple, src+dst */
			kw[0] = iph->saddr;
			kw[1] = iph->daddr;
		}
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		__u32 plen;

		if ((void *)(ip6 + 1) > end)
			return 0;
		if ((*(__u8 *)ip6 >> 4) != 6)
			return 0;
		plen = bpf_ntohs(ip6->payload_len);
		barrier_var(plen);
		plen &= 0xffff;
		if ((void *)eth + sizeof(*eth) + sizeof(*ip6) + plen > end)
			return 0;
		proto = ip6->nexthdr;
		l4_off = sizeof(*eth) + sizeof(*ip6);
		limit = l4_off + plen;
		l4 = (void *)(ip6 + 1);
		switch (kind) {
		case SK_KEY_SRC_IP:
			__builtin_memcpy(kw, &ip6->saddr, 16);
			break;
		case SK_KEY_DST_IP:
			__builtin_memcpy(kw, &ip6->daddr, 16);
			break;
		case SK_KEY_SRC_MAC:
			break;
		default:
			__builtin_memcpy(kw, &ip6->saddr, 32);	/* saddr, daddr adjacent */
		}
	} else {
		return 0;
	}
	if (proto == IPPROTO_UDP) {
		struct udphdr *uh = (void *)l4;
		__u32 ulen;

		if ((void *)(uh + 1) > end || l4_off + sizeof(*uh) > limit)
			return 0;
		ulen = bpf_ntohs(uh->len);
		if (ulen < sizeof(*uh) || l4_off + ulen > limit)
			return 0;
		ports = *(__u32 *)uh;
	} else if (proto == IPPROTO_TCP) {
		struct tcphdr *th = (void *)l4;
		__u32 hlen;

		if ((void *)(th + 1) > end || l4_off + sizeof(*th) > limit)
			return 0;
		hlen = th->doff * 4;
		if (hlen < sizeof(*th) || l4_off + hlen > limit)
			return 0;
		ports = *(__u32 *)th;
	} else {
		return 0;
	}
	/* the same lengths as build_key */
	if (kind == SK_KEY_SRC_MAC) {
		__builtin_memcpy(kw, eth->h_source, ETH_ALEN);
		return 8;
	}
	if (l4_off == sizeof(*eth) + sizeof(struct iphdr)) {
		switch (kind) {
		case SK_KEY_5TUPLE:
			kw[2] = ports;
			kw[3] = proto;
			return 16;
		case SK_KEY_SRC_IP:
		case SK_KEY_DST_IP:
			return 4;
		default:
			return 8;
		}
	}
	switch (kind) {
	case SK_KEY_5TUPLE:
		kw[8] = ports;
		kw[9] = proto;
		return 40;
	case SK_KEY_SRC_IP:
	case SK_KEY_DST_IP:
		return 16;
	default:
		return 32;
	}
}

/* ---- count-min update ---- */

/* d rows with a compile-time key length (clang unrolls xxh32 completely). */
static __always_inline __u32 cm_rows(__u32 *cnt, const __u32 *kw, const __u32 len, __u32 inc,
				     __u32 flags, const __u32 seed)
{
	/* d and w read once: each sk_cfg access is a load (volatile), and the verifier, which
	 * knows the values, only removes the branches on them. barrier_var hides d's invariance
	 * from clang, which otherwise no longer unrolls the loop completely; the verifier still
	 * knows the register, so the per-row test disappears. */
	__u32 d = sk_cfg.d;
	const __u32 w = sk_cfg.w;
	__u32 min = 0xffffffff, i;

#pragma unroll
	for (i = 0; i < SKETCH_MAX_D; i++) {
		__u32 h, idx, v;

		barrier_var(d);
		if (i >= d)
			break;
		h = algo_xxh32(kw, len, ALGO_ROW_SEED(seed, i));
		idx = i * w + (h & (w - 1));
		if (SK_SHARED) {
			v = __sync_fetch_and_add(&cnt[idx], inc) + inc;
		} else {
			v = cnt[idx] + inc;
			cnt[idx] = v;
		}
		if (v < min)
			min = v;
	}
	return min;
}

static __always_inline __u32 cm_pure(struct sketch_bank *b, const __u32 *kw, __u32 len, __u32 inc,
				     __u32 flags)
{
	__u32 *cnt = (__u32 *)(b + 1), seed = b->cm.seed;

	switch (len) {
	case 4:
		return cm_rows(cnt, kw, 4, inc, flags, seed);
	case 8:
		return cm_rows(cnt, kw, 8, inc, flags, seed);
	case 16:
		return cm_rows(cnt, kw, 16, inc, flags, seed);
	case 32:
		return cm_rows(cnt, kw, 32, inc, flags, seed);
	default:
		return cm_rows(cnt, kw, 40, inc, flags, seed);
	}
}

/* Returns the estimate after the update (the min of the d updated counters). */
static __always_inline __u32 cm_update(struct sketch_bank *b, __u32 *kw, __u32 len, __u32 inc,
				       __u32 flags)
{
	if (sk_cfg.variant == SK_VAR_ENETSTL && bpf_ksym_exists(enetstl_cm_add)) {
		__u32 tsz = sizeof(struct enetstl_cm_hdr) + sk_cfg.d * sk_cfg.w * sizeof(__u32);
		__s64 r;

		if (len > SKETCH_KEY_MAX)
			len = SKETCH_KEY_MAX;
		if (SK_SHARED)
			r = enetstl_cm_add_atomic(kw, len, &b->cm, tsz, inc);
		else
			r = enetstl_cm_add(kw, len, &b->cm, tsz, inc);
		/* Only a corrupt header makes the kfunc refuse; the pure path checks nothing else. */
		if (r >= 0)
			return (__u32)r;
	}
	return cm_pure(b, kw, len, inc, flags);
}

/* ---- NitroSketch sampling ---- */

/* Geometric skip count in pure eBPF: K = floor(-log2(U) / -log2(1 - p)), U uniform in (0, 1],
 * with log2 from the bit length and a 1024-entry mantissa table (error < 1e-3 in log2 units). */
static __always_inline __u32 draw_pure(void)
{
	__u64 nl = sk_cfg.nitro_neglog_q32, mm, x, lg, k;
	__u32 n = 0, idx;

	if (!nl)
		return 0;
	mm = (__u64)bpf_get_prandom_u32() + 1;	/* [1, 2^32] */
	x = mm;
	if (x >> 32) { n += 32; x >>= 32; }
	if (x >> 16) { n += 16; x >>= 16; }
	if (x >> 8) { n += 8; x >>= 8; }
	if (x >> 4) { n += 4; x >>= 4; }
	if (x >> 2) { n += 2; x >>= 2; }
	if (x >> 1) { n += 1; }
	idx = ((mm << (63 - n)) >> 53) & (SKETCH_LOG2_TAB - 1);
	lg = ((__u64)n << 32) + sk_log2_tab[idx];
	if (lg >= (32ull << 32))
		return 0;
	k = ((32ull << 32) - lg) / nl;
	return k > 0xffffffffull ? 0xffffffff : (__u32)k;
}

static __always_inline __u32 draw_skip(void)
{
	if (sk_cfg.variant == SK_VAR_ENETSTL && bpf_ksym_exists(enetstl_rp_get)) {
		__u32 h = sk_pool_handle;

		if (h) {
			struct enetstl_rp *rp = enetstl_rp_get(h - 1);

			if (rp) {
				__u32 k = enetstl_rp_skip(rp);

				enetstl_rp_release(rp);
				return k;
			}
		}
	}
	return draw_pure();
}

/* 1 when this packet updates the sketch. Per-CPU skip counter: unsampled packets cost a load,
 * a decrement and a store; a draw happens only on sampled ones. */
static __always_inline int nitro_take(void)
{
	__u32 zero = 0;
	struct sketch_nitro *st = bpf_map_lookup_elem(&sk_nitro, &zero);

	if (!st)
		return 1;
	if (!st->primed) {
		st->left = draw_skip();
		st->primed = 1;
	}
	if (st->left) {
		st->left--;
		return 0;
	}
	st->left = draw_skip();
	return 1;
}

/* ---- fingerprints and the top table ---- */

/* 32-bit fingerprint of the (zero-padded) key, the flagged-flow bitmap's index: five
 * multiplies and a fold (the eNetSTL variant never sees the count-min's hashes). */
static __always_inline __u32 sk_fp(const struct sketch_bank *b, const __u32 *kw)
{
	const __u64 *w = (const __u64 *)kw;
	__u64 a = b->cm.seed + w[0] * 0x9E3779B185EBCA87ull + w[1] * 0xC2B2AE3D27D4EB4Full +
		  w[2] * 0x165667B19E3779F9ull + w[3] * 0x85EBCA77C2B2AE63ull +
		  w[4] * 0x27D4EB2F165667C5ull;

	a ^= a >> 29;
	return (a * 0x94D049BB133111EBull) >> 32;
}

static __always_inline int sk_key_eq(const __u64 *a, const __u32 *kw)
{
	const __u64 *w = (const __u64 *)kw;
	__u64 d = (a[0] ^ w[0]) | (a[1] ^ w[1]) | (a[2] ^ w[2]) | (a[3] ^ w[3]) | (a[4] ^ w[4]);

	barrier_var(d);
	return d == 0;
}

/* The slot with the smallest estimate becomes the bar (the table is full); a per-CPU bank keeps
 * a copy in its header. */
static __always_inline void top_min(struct sketch_top *t, struct sketch_bank *b)
{
	__u32 i, m = 0, v = t->est[0];

#pragma unroll
	for (i = 1; i < SKETCH_TOP; i++) {
		if (t->est[i] < v) {
			v = t->est[i];
			m = i;
		}
	}
	t->min = m;
	t->bar = v;
	if (!(sk_cfg.flags & SK_F_SHARED))
		b->top_bar = v;
}

/* The position index of a key: its five words folded to a byte (no multiply: a collision
 * costs the scan, never a wrong answer). */
static __always_inline __u32 top_pos(const __u64 *w)
{
	__u64 x = w[0] ^ w[1] ^ w[2] ^ w[3] ^ w[4];

	x ^= x >> 32;
	x ^= x >> 16;
	return (x ^ x >> 8) & (SKETCH_TOP_POS - 1);
}

/* A flow at or above the bar: raise its estimate if held (found by the position index, else
 * by a scan), else enter it in place of the smallest. Inline: out of line (a BPF subprogram)
 * it cost 17 more guest instructions per held packet and saved none below the bar. */
static __always_inline void top_update(struct sketch_top *t, struct sketch_bank *b,
				       const __u32 *kw, __u32 len, __u32 est)
{
	const __u64 *w = (const __u64 *)kw;
	__u32 p = top_pos(w), i, s;
	__u64 *k;

	s = t->pos[p] - 1;
	if (s < SKETCH_TOP && t->len[s] == len && sk_key_eq(t->key[s], kw))
		goto held;
#pragma unroll
	for (i = 0; i < SKETCH_TOP; i++) {
		if (t->key[i][0] == w[0] && t->len[i] == len && sk_key_eq(t->key[i], kw)) {
			s = i;
			t->pos[p] = i + 1;
			goto held;
		}
	}
	if (t->n < SKETCH_TOP) {
		s = t->n++;
	} else {
		s = t->min;
		if (est <= t->bar)
			return;
	}
	s &= SKETCH_TOP - 1;
	k = t->key[s];
	__builtin_memcpy(k, kw, SKETCH_KEY_MAX);
	t->len[s] = len;
	t->est[s] = est;
	t->pos[p] = s + 1;
	if (t->n >= SKETCH_TOP)
		top_min(t, b);
	return;
held:
	s &= SKETCH_TOP - 1;
	if (est > t->est[s]) {
		t->est[s] = est;
		if (s == t->min && t->n >= SKETCH_TOP)
			top_min(t, b);
	}
}

/* Whether an estimate that just grew by inc crossed a multiple of 2^s, s = max(0, log2(est) -
 * 6): 32 to 64 times per doubling of a flow's estimate. The top table sees a flow only then, so
 * the packets of a held flow (most packets, under skew) skip its lookup and key compare; what it
 * stores lags an estimate by under 1/16, which moves an eviction or an admission by as little,
 * and topk() ranks by the counters anyway. */
static __always_inline int top_due(__u32 est, __u32 inc)
{
	__u32 s = 0, v = est >> 6;

	if (v >> 16) {
		s += 16;
		v >>= 16;
	}
	if (v >> 8) {
		s += 8;
		v >>= 8;
	}
	if (v >> 4) {
		s += 4;
		v >>= 4;
	}
	if (v >> 2) {
		s += 2;
		v >>= 2;
	}
	s += v >> 1 ? 2 : v;
	return est < inc || (est >> s) != ((est - inc) >> s);
}

/* Feed the CPU's top table of bank b with a flow's estimate after its update: below the bar
 * (the table full, its smallest estimate larger) nothing changes, and with per-CPU banks that is
 * known from the bank's header alone; above it, only when the estimate is due (top_due). */
static __always_inline void top_track(struct sketch_bank *b, const __u32 *kw, __u32 len,
				      __u32 est, __u32 inc, __u32 flags)
{
	__u32 bid = b->id & 1;
	struct sketch_top *t;

	if (!SK_SHARED && est < b->top_bar)
		return;
	if (!top_due(est, inc))
		return;
	t = bpf_map_lookup_elem(&sk_top, &bid);
	if (t && est >= t->bar)
		top_update(t, b, kw, len, est);
}

/* ---- heavy hitters ---- */

static __always_inline int over_threshold(struct sketch_bank *b, __u64 est, __u32 flags)
{
	if (flags & SK_F_FRACTION) {
		__u64 total = b->total;

		if (total < sk_cfg.min_total || !total)
			return 0;
		return (est << 16) >= sk_cfg.threshold * total;
	}
	return est >= sk_cfg.threshold;
}

static __always_inline void cand_key(struct sketch_cand_key *ck, struct sketch_bank *b,
				     const __u32 *kw, __u32 len)
{
	ck->bank = b->id;
	ck->len = len;
	ck->kind = sk_cfg.key_kind;
	ck->pad = 0;
	__builtin_memcpy(ck->key, kw, SKETCH_KEY_MAX);
}

/* Unsampled packets test the flagged-flow bitmap (NitroSketch with an action only). */
#define SK_MARKS(flags) (((flags) & SK_F_NITRO) && sk_cfg.action != SK_ACT_MONITOR)

static __always_inline __u64 *heavy_word(struct sketch_heavy *h, __u32 fp)
{
	return &h->bits[(fp / 64) & (SKETCH_HEAVY_BITS / 64 - 1)];
}

/* Records (or refreshes) a flagged flow; returns the reason to count for this packet. A bank
 * holds at most cfg.candidates entries (its count in sk_heavy: reserved before the insert,
 * given back when the insert fails); past that the flow is acted on without an entry. */
static __always_inline __u32 flag(struct sketch_bank *b, const __u32 *kw, __u32 len, __u64 est,
				  __u32 flags)
{
	__u32 bid = b->id & 1, fp;
	struct sketch_cand *c, nc = {};
	struct sketch_cand_key ck;
	struct sketch_heavy *h;
	__u64 *w, m;
	long rc;

	cand_key(&ck, b, kw, len);
	c = bpf_map_lookup_elem(&sk_cand, &ck);
	if (c) {
		if (est > c->estimate)
			c->estimate = est;
		__sync_fetch_and_add(&c->hits, 1);
		return NF_REASON_NF(SK_REASON_HEAVY);
	}
	h = bpf_map_lookup_elem(&sk_heavy, &bid);
	if (!h)
		return NF_REASON_NF(SK_REASON_CAND_FULL);
	if (SK_MARKS(flags)) {
		fp = sk_fp(b, kw);
		w = heavy_word(h, fp);
		m = 1ull << (fp & 63);
		if (!(*w & m))
			__sync_fetch_and_or(w, m);
	}
	if (h->cands >= sk_cfg.candidates)
		return NF_REASON_NF(SK_REASON_CAND_FULL);
	if (__sync_fetch_and_add(&h->cands, 1) >= sk_cfg.candidates) {
		__sync_fetch_and_add(&h->cands, -1);
		return NF_REASON_NF(SK_REASON_CAND_FULL);
	}
	nc.estimate = est;
	nc.first_seen_ns = bpf_ktime_get_ns();
	nc.hits = 1;
	nc.first_cpu = bpf_get_smp_processor_id();
	rc = bpf_map_update_elem(&sk_cand, &ck, &nc, BPF_NOEXIST);
	if (rc) {
		__sync_fetch_and_add(&h->cands, -1);
		/* -EEXIST: another CPU entered it meanwhile */
		return NF_REASON_NF(rc == -17 ? SK_REASON_HEAVY : SK_REASON_CAND_FULL);
	}
	return NF_REASON_NF(SK_REASON_HEAVY);
}

/* An unsampled packet (NitroSketch with an action): the reason to act on it, or 0. */
static __always_inline __u32 unsampled_heavy(struct sketch_bank *b, __u32 *kw, __u32 len,
					     __u32 flags)
{
	__u32 bid = b->id & 1, fp = sk_fp(b, kw), est;
	struct sketch_heavy *h = bpf_map_lookup_elem(&sk_heavy, &bid);
	struct sketch_cand_key ck;
	struct sketch_cand *c;

	if (!h || !(*heavy_word(h, fp) & 1ull << (fp & 63)))
		return 0;
	cand_key(&ck, b, kw, len);
	c = bpf_map_lookup_elem(&sk_cand, &ck);
	if (c) {
		__sync_fetch_and_add(&c->hits, 1);
		return NF_REASON_NF(SK_REASON_HEAVY);
	}
	est = cm_update(b, kw, len, 0, flags);	/* the estimate: an update by 0 */
	if (over_threshold(b, est, flags))
		return NF_REASON_NF(SK_REASON_CAND_FULL);
	return 0;
}

static __always_inline int act(struct xdp_md *ctx, __u32 reason)
{
	__u32 a = XDP_PASS;

	if (reason == NF_REASON_NF(SK_REASON_HEAVY) || reason == NF_REASON_NF(SK_REASON_CAND_FULL)) {
		if (sk_cfg.action == SK_ACT_DROP)
			a = XDP_DROP;
		else if (sk_cfg.action == SK_ACT_REDIRECT)
			a = bpf_redirect(sk_cfg.redirect_ifindex, 0);
	}
	return xdp_exit_why(ctx, &sk_stats, a, reason);
}

SEC("xdp")
int xdp_sketch(struct xdp_md *ctx)
{
	__u32 kw[SKETCH_KEY_MAX / 4] __attribute__((aligned(8))) = {};
	struct sketch_bank *b;
	struct pkt_meta m;
	__u32 len, inc, zero = 0, est, why;
	__u32 flags = sk_cfg.flags;
	void *inner;
	int rc;

	SK_STOP_AFTER(0);
	len = fast_key(ctx, kw);
	if (!len) {
		rc = parse_pkt(ctx, &m);
		if (rc != PARSE_OK)
			return xdp_exit_why(ctx, &sk_stats, XDP_PASS, rc);
		len = build_key(ctx, &m, kw);
		if (!len)
			return xdp_exit_why(ctx, &sk_stats, XDP_PASS,
					    NF_REASON_NF(SK_REASON_NO_KEY));
	}
	SK_STOP_AFTER(1);
	inner = bpf_map_lookup_elem(&sk_active, &zero);
	if (!inner)
		return xdp_exit_why(ctx, &sk_stats, XDP_PASS, NF_REASON_NF(SK_REASON_NO_BANK));
	b = bpf_map_lookup_elem(inner, &zero);
	if (!b)
		return xdp_exit_why(ctx, &sk_stats, XDP_PASS, NF_REASON_NF(SK_REASON_NO_BANK));
	SK_STOP_AFTER(2);

	inc = (flags & SK_F_BYTES) ? (__u16)(ctx->data_end - ctx->data) : 1;
	add64(&b->packets, 1, flags);
	if (flags & SK_F_NITRO) {
		if (!nitro_take()) {
			/* No estimate without an update: a flagged flow is known by its bit. */
			if (sk_cfg.action != SK_ACT_MONITOR) {
				why = unsampled_heavy(b, kw, len, flags);
				if (why)
					return act(ctx, why);
			}
			return xdp_exit_why(ctx, &sk_stats, XDP_PASS,
					    NF_REASON_NF(SK_REASON_SAMPLED_OUT));
		}
		/* Scaled increment 1/p (Q16): unbiased for 1/p an integer, else rounded down. */
		inc = (__u32)(((__u64)inc * sk_cfg.nitro_scale_q16) >> 16);
		add64(&b->sampled, 1, flags);
	}
	add64(&b->total, inc, flags);
	SK_STOP_AFTER(3);
	est = cm_update(b, kw, len, inc, flags);
	SK_STOP_AFTER(4);
	top_track(b, kw, len, est, inc, flags);
	if (over_threshold(b, est, flags))
		return act(ctx, flag(b, kw, len, est, flags));
	return xdp_exit(ctx, &sk_stats, XDP_PASS);
}

/* Run once through test_run by the controller (eNetSTL NitroSketch): creates the module random
 * pool for p and keeps its owning reference in sk_pool (the module's dtor drops it with the map).
 * Returns XDP_PASS on success, XDP_ABORTED when the module is absent, XDP_DROP on failure. */
SEC("xdp")
int xdp_sketch_pool(struct xdp_md *ctx)
{
	struct sketch_pool *slot;
	struct enetstl_rp *rp;
	__u32 zero = 0, h;

	if (!bpf_ksym_exists(enetstl_rp_new))
		return XDP_ABORTED;
	slot = bpf_map_lookup_elem(&sk_pool, &zero);
	if (!slot)
		return XDP_DROP;
	rp = enetstl_rp_new(sk_cfg.nitro_p_q32);
	if (!rp)
		return XDP_DROP;
	h = enetstl_rp_handle(rp);
	rp = bpf_kptr_xchg(&slot->rp, rp);
	if (rp)
		enetstl_rp_release(rp);
	sk_pool_handle = h + 1;
	return XDP_PASS;
}

/* VM tier: the module's multi-hash against the BPF xxh32 rows for one struct sketch_hashcheck.
 * The row loop is a real loop here (not unrolled): 16 inlined hashes would exceed the stack. */
static __noinline __u32 hc_hash(const __u32 *kw, __u32 len, __u32 seed)
{
	switch (len) {
	case 4:
		return algo_xxh32(kw, 4, seed);
	case 8:
		return algo_xxh32(kw, 8, seed);
	case 16:
		return algo_xxh32(kw, 16, seed);
	case 32:
		return algo_xxh32(kw, 32, seed);
	default:
		return algo_xxh32(kw, 40, seed);
	}
}

SEC("xdp")
int xdp_sketch_hashcheck(struct xdp_md *ctx)
{
	struct sketch_hashcheck *r = xdp_data(ctx);
	__u32 kw[SKETCH_KEY_MAX / 4];
	__u32 out[SKETCH_MAX_D] = {}, hb[SKETCH_MAX_D] = {};
	__u32 len, seed, i;

	if ((void *)(r + 1) > xdp_data_end(ctx))
		return XDP_ABORTED;
	__builtin_memcpy(kw, r->key, SKETCH_KEY_MAX);
	len = r->len;
	seed = r->seed;
	if (len != 4 && len != 8 && len != 16 && len != 32 && len != 40)
		return XDP_DROP;
#pragma nounroll
	for (i = 0; i < SKETCH_MAX_D; i++)
		hb[i] = hc_hash(kw, len, ALGO_ROW_SEED(seed, i));
	r = xdp_data(ctx);
	if ((void *)(r + 1) > xdp_data_end(ctx))
		return XDP_ABORTED;
	r->ret = -1;
	if (bpf_ksym_exists(enetstl_hash_multi)) {
		/* clang folds the length check above away; re-bound it for the verifier */
		barrier_var(len);
		if (len > SKETCH_KEY_MAX)
			return XDP_DROP;
		r->ret = enetstl_hash_multi(kw, len, out, sizeof(out), seed);
	}
	__builtin_memcpy(r->bpf, hb, sizeof(hb));
	__builtin_memcpy(r->mod, out, sizeof(out));
	return XDP_PASS;
}

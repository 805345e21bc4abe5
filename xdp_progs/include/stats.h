/* SPDX-License-Identifier: GPL-2.0 */
/* Per-CPU per-action statistics recorded at one exit point.
 *
 * Data-only part (struct nf_stats, enum nf_reason, the constants) is mirrored in Python by
 * nf/datapath.py (NfStats, Reason) and checked against the BTF of the built objects by
 * tests/nf/bpf/test_layout.py. The inline helpers below are compiled only for BPF.
 *
 * Every NF declares one stats map with NF_STATS_MAP(name) and returns through
 * xdp_exit()/xdp_exit_why(): the action, the frame's bytes and (optionally) a reason are counted
 * in this CPU's record, so user space sums packets/bytes per action over CPUs without locks. */
#ifndef XDP_NF_STATS_H
#define XDP_NF_STATS_H

#include <linux/types.h>

/* XDP verdicts counted: XDP_ABORTED..XDP_REDIRECT (uapi enum xdp_action, values 0..4). */
#define NF_STATS_ACTIONS 5
/* Reason counters: slots below NF_REASON_NF_BASE are shared by every NF; slots from there up are
 * free for one NF's own reasons (NF_REASON_NF(0) .. NF_REASON_NF(7)). */
#define NF_STATS_REASONS 16
#define NF_REASON_NF_BASE 8
#define NF_REASON_NF(n) (NF_REASON_NF_BASE + (n))

/* Why a verdict was taken. The parse error codes of parse.h use the same values, so an NF can
 * pass a parse result straight to xdp_exit_why(). */
enum nf_reason {
	NF_REASON_NONE = 0,      /* ordinary verdict: not counted in reasons[] */
	NF_REASON_TRUNCATED = 1, /* a header runs past the end of the frame / the IP length */
	NF_REASON_MALFORMED = 2, /* a header field is invalid: IHL < 5, bad lengths, TCP doff < 5 */
	NF_REASON_TOO_DEEP = 3,  /* > 2 VLAN tags, or more IPv6 extension headers than parse walks */
	NF_REASON_CONFIG = 4,    /* dropped by a configured rule (base: l4 proto / dst port / frags) */
	NF_REASON_INVALID_ACTION = 5, /* the NF returned a value outside 0..4: turned into ABORTED */
};

/* One record per CPU (a PERCPU_ARRAY with one entry, key 0). */
struct nf_stats {
	__u64 packets[NF_STATS_ACTIONS]; /* frames per XDP action */
	__u64 bytes[NF_STATS_ACTIONS];   /* frame bytes (data_end - data at exit) per XDP action */
	__u64 reasons[NF_STATS_REASONS]; /* frames per enum nf_reason (slot 0 unused) */
};

#ifdef __BPF__
#include "common.h"

#ifdef NF_CHAINABLE
/* Chains (nf/chain.py, xdp_progs/chain/): an object compiled with NF_CHAINABLE hands every frame
 * it would pass to the next NF of its chain with a tail call from the exit point, after counting
 * it here as PASS, so each NF of a chain keeps its own counters. The chain makes every member
 * reuse one PROG_ARRAY (slot i holds the NF at position i + 1); nf_chain_pos (rodata, written
 * before load) is this NF's position, 0 = not chained (the verifier then drops the tail call).
 * Without NF_CHAINABLE nothing below exists: objects built as before are unchanged. */
#define NF_CHAIN_SLOTS 8
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, NF_CHAIN_SLOTS);
	__type(key, __u32);
	__type(value, __u32);
} nf_chain SEC(".maps");
const volatile __u32 nf_chain_pos = 0;
#endif

/* Declares the per-CPU stats map of an NF; user space reads key 0 on every CPU. */
#define NF_STATS_MAP(name)                              \
	struct {                                        \
		__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); \
		__uint(max_entries, 1);                 \
		__type(key, __u32);                     \
		__type(value, struct nf_stats);         \
	} name SEC(".maps")

/* The one exit point: count `action` (and `reason` when not NF_REASON_NONE) for this frame and
 * return the verdict to the kernel. An action outside XDP_ABORTED..XDP_REDIRECT (a bug, or a
 * failed bpf_redirect_map fallback value) becomes XDP_ABORTED, counted with
 * NF_REASON_INVALID_ACTION, so the kernel never sees an undefined verdict. */
static __always_inline int xdp_exit_why(struct xdp_md *ctx, void *stats_map, __u32 action,
					__u32 reason)
{
	__u32 key = 0;
	struct nf_stats *st;
	__u64 len = ctx->data_end - ctx->data;

#ifdef NF_CHAINABLE
	/* Materialise len here: around the tail call below clang otherwise keeps ctx->data (a u32
	 * load the verifier turns into a packet pointer) and spills it as 32 bits, which the
	 * verifier refuses ("invalid size of register spill"). */
	asm volatile("" : "+r"(len));
#endif

	if (action >= NF_STATS_ACTIONS) {
		action = XDP_ABORTED;
		reason = NF_REASON_INVALID_ACTION;
	}
	st = bpf_map_lookup_elem(stats_map, &key);
	if (st) {
		/* Per-CPU value: no other writer, plain increments are exact. */
		st->packets[action] += 1;
		st->bytes[action] += len;
		if (reason != NF_REASON_NONE && reason < NF_STATS_REASONS)
			st->reasons[reason] += 1;
	}
#ifdef NF_CHAINABLE
	if (action == XDP_PASS && nf_chain_pos)
		bpf_tail_call(ctx, &nf_chain, nf_chain_pos); /* returns only when the slot is empty */
#endif
	return action;
}

static __always_inline int xdp_exit(struct xdp_md *ctx, void *stats_map, __u32 action)
{
	return xdp_exit_why(ctx, stats_map, action, NF_REASON_NONE);
}
#endif /* __BPF__ */

#endif /* XDP_NF_STATS_H */

// SPDX-License-Identifier: GPL-2.0
/* Dispatcher of a chain of NFs on one interface (nf/chain.py; design in its docstring).
 *
 * The interface's bpf_link holds this program; it tail-calls slot 0 of nf_chain, the PROG_ARRAY
 * every member of the chain reuses. Members are NF objects compiled with NF_CHAINABLE
 * (xdp_progs/include/stats.h): each one's exit point tail-calls the next slot when its verdict
 * is XDP_PASS, so XDP_PASS means "next NF" and any other verdict ends the chain; after the last
 * NF (its next slot is empty) the frame goes to the kernel. */
#define NF_CHAINABLE
#include "common.h"
#include "stats.h"
#include "chain.h"

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct chain_stats);
} chain_stats SEC(".maps");

SEC("xdp")
int xdp_chain(struct xdp_md *ctx)
{
	__u32 key = 0;
	struct chain_stats *st = bpf_map_lookup_elem(&chain_stats, &key);

	if (st)
		st->entered += 1;
	bpf_tail_call(ctx, &nf_chain, 0);
	if (st) /* slot 0 empty: nothing to run */
		st->empty += 1;
	return XDP_PASS;
}

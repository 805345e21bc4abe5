// SPDX-License-Identifier: GPL-2.0
/* rxcount: count every frame per CPU, then drop or pass it. See rxcount.h. */
#include "common.h"
#include "rxcount.h"

char LICENSE[] SEC("license") = "GPL";

const volatile struct rxcount_cfg rxcount_cfg = {
	.action = XDP_DROP,
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rxcount_stats);
} rxcount_stats SEC(".maps");

SEC("xdp")
int xdp_rxcount(struct xdp_md *ctx)
{
	__u32 zero = 0;
	struct rxcount_stats *st = bpf_map_lookup_elem(&rxcount_stats, &zero);

	if (st) {
		/* Per-CPU value: this CPU is the only writer. */
		st->packets++;
		st->bytes += ctx->data_end - ctx->data;
	}
	return rxcount_cfg.action;
}

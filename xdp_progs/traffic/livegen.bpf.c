// SPDX-License-Identifier: GPL-2.0
/* livegen: restore the frame head from a template, redirect into the lab. See gen.h. */
#include "common.h"
#include "gen_maps.h"

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} livegen_tx SEC(".maps");

SEC("xdp")
int xdp_livegen(struct xdp_md *ctx)
{
	void *data = xdp_data(ctx), *end = xdp_data_end(ctx);
	__u32 zero = 0, i, rl = gen_cfg.restore_len;
	struct gen_stats *st;
	struct gen_tmpl *t;
	long ret;

	st = bpf_map_lookup_elem(&gen_stats, &zero);
	if (!st)
		return XDP_ABORTED;
	st->runs++;
	t = gen_next_tmpl(st);
	if (rl) {
		if (!t)
			return XDP_ABORTED;
		/* Whole words first: restore_len is a rodata constant, so the verifier (and the
		 * dead-branch pruning) sees a fixed-length copy. */
#pragma unroll
		for (i = 0; i < GEN_TMPL_MAX / 8; i++) {
			__u64 *d = data + i * 8;

			if (i >= rl / 8 || (void *)(d + 1) > end)
				break;
			*d = t->w[i];
		}
#pragma unroll
		for (i = 0; i < 7; i++) {
			__u32 off = (rl & ~7U) + i;
			__u8 *d = data + (off & (GEN_TMPL_MAX - 1));

			if (i >= (rl & 7) || (void *)(d + 1) > end)
				break;
			*d = ((__u8 *)t->w)[off & (GEN_TMPL_MAX - 1)];
		}
	}
	ret = bpf_redirect_map(&livegen_tx, 0, XDP_DROP);
	if (ret == XDP_REDIRECT)
		st->sent++;
	return ret;
}

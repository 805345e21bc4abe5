// SPDX-License-Identifier: GPL-2.0
/* livegen: restore the frame head from a template, redirect into the lab. See livegen.h. */
#include "common.h"
#include "livegen.h"

char LICENSE[] SEC("license") = "GPL";

const volatile struct livegen_cfg livegen_cfg = {
	.restore_len = 0,
	.n_tmpl = 1,
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct livegen_tmpl);
} livegen_tmpl SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} livegen_tx SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct livegen_stats);
} livegen_stats SEC(".maps");

SEC("xdp")
int xdp_livegen(struct xdp_md *ctx)
{
	void *data = xdp_data(ctx), *end = xdp_data_end(ctx);
	__u32 zero = 0, idx, i, rl = livegen_cfg.restore_len;
	struct livegen_stats *st;
	struct livegen_tmpl *t;
	long ret;

	st = bpf_map_lookup_elem(&livegen_stats, &zero);
	if (!st)
		return XDP_ABORTED;
	st->runs++;
	idx = st->cursor;
	if (rl) {
		t = bpf_map_lookup_elem(&livegen_tmpl, &idx);
		if (!t)
			return XDP_ABORTED;
		/* Whole words first: restore_len is a rodata constant, so the verifier (and the
		 * dead-branch pruning) sees a fixed-length copy. */
#pragma unroll
		for (i = 0; i < LIVEGEN_TMPL_MAX / 8; i++) {
			__u64 *d = data + i * 8;

			if (i >= rl / 8 || (void *)(d + 1) > end)
				break;
			*d = t->w[i];
		}
#pragma unroll
		for (i = 0; i < 7; i++) {
			__u32 off = (rl & ~7U) + i;
			__u8 *d = data + (off & (LIVEGEN_TMPL_MAX - 1));

			if (i >= (rl & 7) || (void *)(d + 1) > end)
				break;
			*d = ((__u8 *)t->w)[off & (LIVEGEN_TMPL_MAX - 1)];
		}
	}
	idx++;
	st->cursor = idx >= livegen_cfg.n_tmpl ? 0 : idx;
	ret = bpf_redirect_map(&livegen_tx, 0, XDP_DROP);
	if (ret == XDP_REDIRECT)
		st->redirected++;
	return ret;
}

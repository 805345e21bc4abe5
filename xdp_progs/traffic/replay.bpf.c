// SPDX-License-Identifier: GPL-2.0
/* replay: rewrite the test frame's flow from a table, then tail-call the NF (see replay.h). */
#include "common.h"
#include "replay.h"

char LICENSE[] SEC("license") = "GPL";

const volatile struct replay_cfg replay_cfg = {
	.off = 26,
	.len = 12,
	.n_recs = 1,
	.n_seq = 0,
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);		/* set by the controller: n_recs */
	__type(key, __u32);
	__type(value, struct replay_rec);
} rp_recs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);		/* set by the controller: n_seq (at least 1) */
	__type(key, __u32);
	__type(value, __u32);
} rp_seq SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} rp_cursor SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} rp_next SEC(".maps");

SEC("xdp")
int xdp_replay(struct xdp_md *ctx)
{
	const __u32 len = replay_cfg.len, n_seq = replay_cfg.n_seq;
	__u32 zero = 0, idx, i, *s;
	struct replay_rec *r;
	__u64 *cur;
	__u32 *p;

	cur = bpf_map_lookup_elem(&rp_cursor, &zero);
	if (!cur)
		return XDP_ABORTED;
	idx = *cur;
	*cur = idx + 1 >= (n_seq ? n_seq : replay_cfg.n_recs) ? 0 : idx + 1;
	if (n_seq) {
		s = bpf_map_lookup_elem(&rp_seq, &idx);
		if (!s)
			return XDP_ABORTED;
		idx = *s;
	}
	r = bpf_map_lookup_elem(&rp_recs, &idx);
	p = xdp_ptr(ctx, replay_cfg.off, 4);
	if (!r || !p)
		return XDP_ABORTED;
	for (i = 0; i < REPLAY_REC_MAX / 4 && i * 4 < len; i++) {
		if ((void *)(p + i + 1) > xdp_data_end(ctx))
			return XDP_ABORTED;
		p[i] = r->w[i];
	}
	bpf_tail_call(ctx, &rp_next, 0);
	return XDP_ABORTED;	/* rp_next[0] empty */
}

/* The baseline target: what the replay costs alone (Replay(None, ...)). */
SEC("xdp")
int xdp_replay_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

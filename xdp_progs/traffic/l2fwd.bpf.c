// SPDX-License-Identifier: GPL-2.0
/* l2fwd: destination-MAC hash lookup + devmap redirect. See l2fwd.h. */
#include "common.h"
#include "stats.h"
#include "l2fwd.h"

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, __u32);
} l2fwd_fdb SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__uint(max_entries, L2FWD_PORTS);
	__type(key, __u32);
	__type(value, __u32);
} l2fwd_ports SEC(".maps");

NF_STATS_MAP(l2fwd_stats);

SEC("xdp")
int xdp_l2fwd(struct xdp_md *ctx)
{
	void *data = xdp_data(ctx), *end = xdp_data_end(ctx);
	__u64 key = 0;
	__u32 *slot;

	if (data + 14 > end)
		return xdp_exit_why(ctx, &l2fwd_stats, XDP_DROP, NF_REASON_TRUNCATED);
	__builtin_memcpy(&key, data, 6);
	slot = bpf_map_lookup_elem(&l2fwd_fdb, &key);
	if (!slot)
		return xdp_exit_why(ctx, &l2fwd_stats, XDP_DROP, L2FWD_REASON_MISS);
	/* a constant verdict per branch: with the helper's return value passed straight through,
	 * clang bounds-checks a copy of it and the verifier loses the bound on the original */
	if (bpf_redirect_map(&l2fwd_ports, *slot, XDP_DROP) != XDP_REDIRECT)
		return xdp_exit_why(ctx, &l2fwd_stats, XDP_DROP, L2FWD_REASON_MISS);
	return xdp_exit(ctx, &l2fwd_stats, XDP_REDIRECT);
}

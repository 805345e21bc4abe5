// SPDX-License-Identifier: GPL-2.0
/* fwd: MAC rewrite + TTL decrement + devmap redirect. See fwd.h. */
#include "common.h"
#include "stats.h"
#include "fwd.h"
#include <linux/ip.h>

char LICENSE[] SEC("license") = "GPL";

const volatile struct fwd_cfg fwd_cfg = {};

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} fwd_port SEC(".maps");

NF_STATS_MAP(fwd_stats);

SEC("xdp")
int xdp_fwd(struct xdp_md *ctx)
{
	void *data = xdp_data(ctx), *end = xdp_data_end(ctx);
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	__u32 csum;
	int i;

	if ((void *)(ip + 1) > end)
		return xdp_exit_why(ctx, &fwd_stats, XDP_DROP, NF_REASON_TRUNCATED);
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return xdp_exit_why(ctx, &fwd_stats, XDP_DROP, NF_REASON_CONFIG);
	if (ip->ttl <= 1)
		return xdp_exit_why(ctx, &fwd_stats, XDP_DROP, FWD_REASON_TTL);
#pragma unroll
	for (i = 0; i < 6; i++) {
		eth->h_dest[i] = fwd_cfg.dmac[i];
		eth->h_source[i] = fwd_cfg.smac[i];
	}
	/* TTL is the high byte of the 16-bit word holding (ttl, protocol): HC' = ~(~HC + ~m + m'),
	 * with m' = m - 0x0100. */
	csum = (__u16)~bpf_ntohs(ip->check) + (__u16)~0x0100;
	csum = (csum & 0xffff) + (csum >> 16);
	csum = (csum & 0xffff) + (csum >> 16);
	ip->check = bpf_htons(~csum & 0xffff);
	ip->ttl--;
	return xdp_exit(ctx, &fwd_stats, bpf_redirect_map(&fwd_port, 0, XDP_DROP));
}

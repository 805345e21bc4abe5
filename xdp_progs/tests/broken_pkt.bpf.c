// SPDX-License-Identifier: GPL-2.0
/* MUST FAIL: reads a packet byte without checking it against data_end.
 * Expected verifier text: "invalid access to packet". */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int xdp_unchecked(struct xdp_md *ctx)
{
	unsigned char *data = (void *)(long)ctx->data;

	return data[12] == 0x08 ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";

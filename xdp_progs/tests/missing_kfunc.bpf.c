// SPDX-License-Identifier: GPL-2.0
/* MUST FAIL (at libbpf relocation): calls a kfunc that no kernel or module provides, strongly
 * bound (no __weak), as a kfunc-dependent NF variant does when the module is absent. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

extern int nf_test_no_such_kfunc(__u32 x) __ksym;

SEC("xdp")
int xdp_kfunc(struct xdp_md *ctx)
{
	return nf_test_no_such_kfunc(ctx->ingress_ifindex) ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";

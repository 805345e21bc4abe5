// SPDX-License-Identifier: GPL-2.0
/* MUST FAIL: a reference released twice.
 * Expected verifier text: "release kernel function" ... "expects refcounted PTR_TO_BTF_ID" */
#include "common.h"
#include "enetstl.h"

SEC("xdp")
int release_twice(struct xdp_md *ctx)
{
	struct enetstl_rp *rp = enetstl_rp_new(1ull << 31);

	if (!rp)
		return XDP_DROP;
	enetstl_rp_release(rp);
	enetstl_rp_release(rp);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";

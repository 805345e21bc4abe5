// SPDX-License-Identifier: GPL-2.0
/* MUST FAIL: an acquired list-bucket reference leaks on the non-NULL path.
 * Expected verifier text: "Unreleased reference" */
#include "common.h"
#include "enetstl.h"

SEC("xdp")
int acquire_no_release(struct xdp_md *ctx)
{
	struct enetstl_lb *lb = enetstl_lb_new(1, 1, 8);

	if (lb)
		return XDP_PASS;	/* leaks lb */
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";

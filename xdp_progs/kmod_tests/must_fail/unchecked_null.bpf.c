// SPDX-License-Identifier: GPL-2.0
/* MUST FAIL: the KF_RET_NULL result of enetstl_lb_get is used without a NULL check.
 * Expected verifier text: "Possibly NULL pointer passed to trusted arg0" */
#include "common.h"
#include "enetstl.h"

SEC("xdp")
int unchecked_null(struct xdp_md *ctx)
{
	struct enetstl_lb *lb = enetstl_lb_get(1);
	int n = enetstl_lb_len(lb, 0);	/* lb may be NULL */

	if (lb)
		enetstl_lb_release(lb);
	return n > 0 ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";

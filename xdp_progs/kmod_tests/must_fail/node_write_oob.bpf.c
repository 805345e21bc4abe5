// SPDX-License-Identifier: GPL-2.0
/* MUST FAIL: a direct store into a memory-wrapper node (writes go through
 * enetstl_mw_node_write, which checks bounds).
 * Expected verifier text: "only read is supported" */
#include "common.h"
#include "enetstl.h"

SEC("xdp")
int node_write_oob(struct xdp_md *ctx)
{
	struct enetstl_mw *c = enetstl_mw_new(4);
	struct enetstl_mw_node *n;

	if (!c)
		return XDP_DROP;
	n = enetstl_mw_root(c);
	if (n) {
		n->data[0] = 1;
		enetstl_mw_node_release(n);
	}
	enetstl_mw_release(c);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";

// SPDX-License-Identifier: GPL-2.0
/* MUST FAIL: a 16-byte size declared for an 8-byte stack buffer.
 * Expected verifier text: "invalid read from stack" / "invalid indirect read from stack" */
#include "common.h"
#include "enetstl.h"

SEC("xdp")
int short_buffer(struct xdp_md *ctx)
{
	__u64 key = 42;

	return enetstl_xxh32(&key, 16, 0) & 1 ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";

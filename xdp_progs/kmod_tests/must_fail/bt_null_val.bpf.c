// SPDX-License-Identifier: GPL-2.0
/* MUST FAIL: NULL for enetstl_bt_find's value pointer (KF_TRUSTED_ARGS: no NULL, so the kfunc
 * need not check it). Expected verifier text: "Possibly NULL pointer passed to trusted arg3" */
#include "common.h"
#include "enetstl.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, struct enetstl_bt_bucket);
} table SEC(".maps");

SEC("xdp")
int bt_null_val(struct xdp_md *ctx)
{
	return enetstl_bt_find(&table, 42, 0, 0) >= 0 ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";

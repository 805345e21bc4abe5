// SPDX-License-Identifier: GPL-2.0
/* MUST FAIL: an 8-byte stack buffer where enetstl_bt_find writes a 16-byte struct
 * enetstl_bt_val (the verifier sizes the argument from the kfunc's BTF, no __sz needed).
 * Expected verifier text: "invalid indirect access to stack R4 off=-8 size=16" */
#include "common.h"
#include "enetstl.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, struct enetstl_bt_bucket);
} table SEC(".maps");

SEC("xdp")
int bt_short_val(struct xdp_md *ctx)
{
	__u64 v = 0;

	return enetstl_bt_find(&table, 42, 0, (struct enetstl_bt_val *)&v) >= 0 && v ?
		XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";

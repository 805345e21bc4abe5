// SPDX-License-Identifier: GPL-2.0
/* MUST FAIL: a cuckoo table's keyed hash passed from rodata. 6.12 checks a kfunc's memory
 * arguments for writing as well as reading, so a read-only map value is refused (the flow table
 * keeps its hash in a writable map value, ft_state, for this reason).
 * Expected verifier text: "write into map forbidden" */
#include "common.h"
#include "enetstl.h"

const volatile struct enetstl_ck_hash ck_hash_ro = { .kind = ENETSTL_CK_HASH_MUL64 };

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct enetstl_ck_bucket);
} ck_ro_table SEC(".maps");

SEC("xdp")
int rodata_hash(struct xdp_md *ctx)
{
	__u64 key[5] = {};

	return enetstl_cuckoo_cand(&ck_ro_table, key, sizeof(key), (const void *)&ck_hash_ro,
				   sizeof(ck_hash_ro)) & 1 ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";

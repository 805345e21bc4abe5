// SPDX-License-Identifier: GPL-2.0
/*
 * enetstl_cuckoo_cand driven by a struct kt_req packet: key = key[0..len), the keyed hash =
 * ck_hash[0] (written by the test), the table = one of three maps by op (0: ck_table, 8
 * buckets; 1: ck_six, 6 buckets, not a power of two; 2: ck_small, values too small for a
 * bucket; 3: ck_table with a hash argument shorter than struct enetstl_ck_hash); out[0] /
 * out[1] = the result's low / high 32 bits, ret = 0, or KT_ABSENT without the module.
 */
#include "common.h"
#include "enetstl.h"
#include "kmod_tests.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, struct enetstl_ck_bucket);
} ck_table SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 6);
	__type(key, __u32);
	__type(value, struct enetstl_ck_bucket);
} ck_six SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} ck_small SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct enetstl_ck_hash);
} ck_hash SEC(".maps");

SEC("xdp")
int cuckoo_cand(struct xdp_md *ctx)
{
	struct kt_req *r = xdp_data(ctx);
	struct enetstl_ck_hash *hk;
	__u32 len, zero = 0;
	__u64 res;

	if ((void *)(r + 1) > xdp_data_end(ctx))
		return XDP_ABORTED;
	len = r->len;
	if (len < 1 || len > 64)
		return XDP_DROP;
	barrier_var(len);
	len &= 127;
	r->ret = KT_ABSENT;
	if (!bpf_ksym_exists(enetstl_cuckoo_cand))
		return XDP_PASS;
	hk = bpf_map_lookup_elem(&ck_hash, &zero);
	if (!hk)
		return XDP_ABORTED;
	switch (r->op) {
	case 0:
		res = enetstl_cuckoo_cand(&ck_table, r->key, len, hk, sizeof(*hk));
		break;
	case 1:
		res = enetstl_cuckoo_cand(&ck_six, r->key, len, hk, sizeof(*hk));
		break;
	case 2:
		res = enetstl_cuckoo_cand(&ck_small, r->key, len, hk, sizeof(*hk));
		break;
	case 3:
		res = enetstl_cuckoo_cand(&ck_table, r->key, len, hk, sizeof(*hk) - 8);
		break;
	default:
		return XDP_DROP;
	}
	r->out[0] = (__u32)res;
	r->out[1] = res >> 32;
	r->ret = 0;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";

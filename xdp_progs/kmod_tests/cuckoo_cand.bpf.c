// SPDX-License-Identifier: GPL-2.0
/*
 * enetstl_cuckoo_cand driven by a struct kt_req packet: key = key[0..len), cfg = arg << 32 |
 * seed, the table = one of three maps by op (0: ck_table, 8 buckets; 1: ck_six, 6 buckets, not a
 * power of two; 2: ck_small, values too small for a bucket); out[0] / out[1] = the result's low
 * / high 32 bits, ret = 0, or KT_ABSENT without the module.
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

SEC("xdp")
int cuckoo_cand(struct xdp_md *ctx)
{
	struct kt_req *r = xdp_data(ctx);
	__u64 cfg, res;
	__u32 len;

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
	cfg = (__u64)r->arg << 32 | r->seed;
	switch (r->op) {
	case 0:
		res = enetstl_cuckoo_cand(&ck_table, r->key, len, cfg);
		break;
	case 1:
		res = enetstl_cuckoo_cand(&ck_six, r->key, len, cfg);
		break;
	case 2:
		res = enetstl_cuckoo_cand(&ck_small, r->key, len, cfg);
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

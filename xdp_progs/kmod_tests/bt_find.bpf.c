// SPDX-License-Identifier: GPL-2.0
/*
 * enetstl_bt_find driven by a struct kt_req packet: key = x, seed = seed | arg << 32, the table
 * one of four maps by op (0: bt_table, 8 buckets; 1: bt_six, 6 buckets, not a power of two;
 * 2: bt_small, values too small for a bucket; 3: bt_locked, values of a bucket's size that hold
 * a bpf_spin_lock). ret = the result, out[0..4) = the value copied (two u64, little-endian),
 * or ret = KT_ABSENT without the module.
 */
#include "common.h"
#include "enetstl.h"
#include "kmod_tests.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, struct enetstl_bt_bucket);
} bt_table SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 6);
	__type(key, __u32);
	__type(value, struct enetstl_bt_bucket);
} bt_six SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} bt_small SEC(".maps");

struct locked_bucket {
	struct bpf_spin_lock lock;
	__u8 rest[sizeof(struct enetstl_bt_bucket) - sizeof(struct bpf_spin_lock)];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, struct locked_bucket);
} bt_locked SEC(".maps");

SEC("xdp")
int bt_find(struct xdp_md *ctx)
{
	struct kt_req *r = xdp_data(ctx);
	struct enetstl_bt_val v = {};
	__u64 seed;

	if ((void *)(r + 1) > xdp_data_end(ctx))
		return XDP_ABORTED;
	r->ret = KT_ABSENT;
	if (!bpf_ksym_exists(enetstl_bt_find))
		return XDP_PASS;
	seed = r->seed | (__u64)r->arg << 32;
	switch (r->op) {
	case 0:
		r->ret = enetstl_bt_find(&bt_table, r->x, seed, &v);
		break;
	case 1:
		r->ret = enetstl_bt_find(&bt_six, r->x, seed, &v);
		break;
	case 2:
		r->ret = enetstl_bt_find(&bt_small, r->x, seed, &v);
		break;
	case 3:
		r->ret = enetstl_bt_find(&bt_locked, r->x, seed, &v);
		break;
	default:
		return XDP_DROP;
	}
	__builtin_memcpy(r->out, &v, sizeof(v));
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";

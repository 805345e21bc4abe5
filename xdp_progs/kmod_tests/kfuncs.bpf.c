// SPDX-License-Identifier: GPL-2.0
/*
 * Every stateless enetstl kfunc driven by a struct kt_req packet (see kmod_tests.h).
 * The kfuncs are __weak: without the module the object still loads and each op reports
 * KT_ABSENT through bpf_ksym_exists(), which is what the tier-1 test checks on the host.
 */
#include "common.h"
#include "enetstl.h"
#include "kmod_tests.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct kt_cm_table);
} cm_table SEC(".maps");

struct kt_long_buf {
	__u8 data[KT_LONG_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct kt_long_buf);
} kt_long SEC(".maps");

static __noinline int long_op(struct kt_req *r)
{
	struct kt_long_buf *b;
	__u32 zero = 0;
	__u64 n;

	if (!r)
		return -1;
	b = bpf_map_lookup_elem(&kt_long, &zero);
	if (!b)
		return -1;
	n = r->x;
	if (n > KT_LONG_MAX)
		return -1;
	switch (r->arg) {
	case 0:
		r->out[0] = enetstl_xxh32(b->data, n, r->seed);
		return 0;
	case 1:
		r->out[0] = enetstl_crc32c(b->data, n, r->seed);
		return 0;
	case 2:
		if (n > 256)
			return -1;
		return enetstl_hash_multi(b->data, n, r->out, sizeof(r->out), r->seed);
	}
	return -1;
}

SEC("xdp")
int kfuncs(struct xdp_md *ctx)
{
	struct kt_req *r = xdp_data(ctx);
	struct kt_cm_table *t;
	__u32 len, zero = 0;
	__u64 x;

	if ((void *)(r + 1) > xdp_data_end(ctx))
		return XDP_ABORTED;
	len = r->len;
	if (len > 64)
		return XDP_DROP;
	r->ret = KT_ABSENT;
	switch (r->op) {
	case KT_XXH32:
		if (bpf_ksym_exists(enetstl_xxh32)) {
			r->out[0] = enetstl_xxh32(r->key, len, r->seed);
			r->ret = 0;
		}
		break;
	case KT_CRC32C:
		if (bpf_ksym_exists(enetstl_crc32c)) {
			r->out[0] = enetstl_crc32c(r->key, len, r->seed);
			r->ret = 0;
		}
		break;
	case KT_MULTI: {
		__u32 d = r->arg;

		if (!bpf_ksym_exists(enetstl_hash_multi))
			break;
		/* out__sz = 4 * d, d in 1..16: the verifier checks r->out has that much room */
		if (d < 1 || d > 16)
			return XDP_DROP;
		r->ret = enetstl_hash_multi(r->key, len, r->out, d * 4, r->seed);
		break;
	}
	case KT_FIND16:
		if (!bpf_ksym_exists(enetstl_find_u16))
			break;
		if (len < 1 || len > 16)
			return XDP_DROP;
		r->out[0] = enetstl_find_u16((const __u16 *)r->key, len * 2, r->arg);
		r->out[1] = enetstl_match_u16((const __u16 *)r->key, len * 2, r->arg);
		r->ret = 0;
		break;
	case KT_FIND32:
		if (!bpf_ksym_exists(enetstl_find_u32))
			break;
		if (len < 1 || len > 8)
			return XDP_DROP;
		r->out[0] = enetstl_find_u32((const __u32 *)r->key, len * 4, r->arg);
		r->out[1] = enetstl_match_u32((const __u32 *)r->key, len * 4, r->arg);
		r->ret = 0;
		break;
	case KT_MIN:
		if (!bpf_ksym_exists(enetstl_min_idx_u32))
			break;
		if (len < 1 || len > 16)
			return XDP_DROP;
		r->ret = enetstl_min_idx_u32((const __u32 *)r->key, len * 4);
		break;
	case KT_BITS:
		if (!bpf_ksym_exists(enetstl_ctz64))
			break;
		x = r->x;
		r->out[0] = enetstl_ffs32(x);
		r->out[1] = enetstl_fls32(x);
		r->out[2] = enetstl_popcnt32(x);
		r->out[3] = enetstl_ctz32(x);
		r->out[4] = enetstl_ffs64(x);
		r->out[5] = enetstl_fls64(x);
		r->out[6] = enetstl_popcnt64(x);
		r->out[7] = enetstl_ctz64(x);
		r->ret = 0;
		break;
	case KT_KEYEQ: {
		__u32 blen = r->arg;

		if (!bpf_ksym_exists(enetstl_key_eq))
			break;
		if (len > 32 || blen > 32)
			return XDP_DROP;
		r->ret = enetstl_key_eq(r->key, len, r->key + 32, blen);
		break;
	}
	case KT_CM:
		if (!bpf_ksym_exists(enetstl_cm_add))
			break;
		t = bpf_map_lookup_elem(&cm_table, &zero);
		if (!t)
			return XDP_ABORTED;
		if (r->seed & 1)
			r->ret = enetstl_cm_add_atomic(r->key, len, t, sizeof(*t), r->arg);
		else
			r->ret = enetstl_cm_add(r->key, len, t, sizeof(*t), r->arg);
		break;
	case KT_LONG:
		if (!bpf_ksym_exists(enetstl_hash_multi))
			break;
		r->ret = long_op(r);
		break;
	default:
		return XDP_DROP;
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";

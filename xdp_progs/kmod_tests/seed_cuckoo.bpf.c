// SPDX-License-Identifier: GPL-2.0
/*
 * Seed check 2 (our own, after the Coolbpf eNetSTL example): a bucketised cuckoo hash with
 * 16-bit signatures (16 lanes per bucket) built on the module's CRC32-C, 16-lane signature
 * match and key-compare kfuncs.  The packet's flow is inserted if absent, then looked up;
 * XDP_PASS iff it is found and the module's CRC32-C equals the pure-eBPF one.
 */
#include "common.h"
#include "parse.h"
#include "enetstl.h"
#include "algo/crc32c.h"
#include "seed.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SEED_CK_BUCKETS);
	__type(key, __u32);
	__type(value, struct seed_ck_bucket);
} ck_buckets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SEED_CK_SLOTS);
	__type(key, __u32);
	__type(value, struct seed_flow);
} ck_keys SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} ck_next SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct seed_result);
} seed_res SEC(".maps");

static __always_inline int flow_of(struct xdp_md *ctx, struct seed_flow *f)
{
	struct ethhdr *eth = xdp_ptr(ctx, 0, sizeof(*eth));
	struct iphdr *ip;
	__u16 *ports;

	if (!eth || eth->h_proto != bpf_htons(ETH_P_IP))
		return -1;
	ip = xdp_ptr(ctx, sizeof(*eth), sizeof(*ip));
	if (!ip || ip->ihl != 5 || ip->protocol != IPPROTO_TCP)
		return -1;
	ports = xdp_ptr(ctx, sizeof(*eth) + sizeof(*ip), 4);
	if (!ports)
		return -1;
	f->saddr = ip->saddr;
	f->daddr = ip->daddr;
	f->sport = ports[0];
	f->dport = ports[1];
	f->proto = ip->protocol;
	return 0;
}

/* Slot of f in bucket b (matching signature and equal key), or -1. */
static __always_inline int bucket_find(__u32 b, __u16 sig, struct seed_flow *f)
{
	struct seed_ck_bucket *bk = bpf_map_lookup_elem(&ck_buckets, &b);
	__u32 m;
	int i;

	if (!bk)
		return -1;
	m = enetstl_match_u16(bk->sig, sizeof(bk->sig), sig);
	for (i = 0; i < 16 && m; i++, m >>= 1) {
		struct seed_flow *k;
		__u32 s;

		if (!(m & 1))
			continue;
		s = bk->slot[i];
		k = bpf_map_lookup_elem(&ck_keys, &s);
		if (k && enetstl_key_eq(k, sizeof(*k), f, sizeof(*f)) == 1)
			return s;
	}
	return -1;
}

static __always_inline int bucket_insert(__u32 b, __u16 sig, struct seed_flow *f)
{
	struct seed_ck_bucket *bk = bpf_map_lookup_elem(&ck_buckets, &b);
	__u32 zero = 0, s, *next;
	struct seed_flow *k;
	int lane;

	if (!bk)
		return -1;
	lane = enetstl_find_u16(bk->sig, sizeof(bk->sig), 0);	/* a free lane */
	if (lane < 0 || lane > 15)
		return -1;	/* full: a real table would kick an entry to its other bucket */
	next = bpf_map_lookup_elem(&ck_next, &zero);
	if (!next)
		return -1;
	s = __sync_fetch_and_add(next, 1);
	k = bpf_map_lookup_elem(&ck_keys, &s);
	if (!k)
		return -1;
	*k = *f;
	bk->slot[lane] = s;
	bk->sig[lane] = sig;
	return s;
}

SEC("xdp")
int seed_cuckoo(struct xdp_md *ctx)
{
	struct seed_flow f = {};
	struct seed_result *res;
	__u32 zero = 0, h, sig32, b1, b2;
	__u16 sig;
	int s;

	res = bpf_map_lookup_elem(&seed_res, &zero);
	if (!res)
		return XDP_ABORTED;
	res->mismatch_row = 0xffffffff;
	if (flow_of(ctx, &f))
		return XDP_DROP;
	res->stage = SEED_ST_PARSED;
	if (!bpf_ksym_exists(enetstl_crc32c) || !bpf_ksym_exists(enetstl_match_u16) ||
	    !bpf_ksym_exists(enetstl_find_u16) || !bpf_ksym_exists(enetstl_key_eq)) {
		res->stage = SEED_ST_NO_MODULE;
		return XDP_DROP;
	}
	h = enetstl_crc32c(&f, sizeof(f), 0);
	res->hashes_equal = h == algo_crc32c(&f, sizeof(f), 0);
	res->stage = SEED_ST_HASHED;
	sig = (h >> 16) | 1;	/* 0 marks a free lane */
	sig32 = sig;
	b1 = h & (SEED_CK_BUCKETS - 1);
	b2 = (b1 ^ enetstl_crc32c(&sig32, sizeof(sig32), 0)) & (SEED_CK_BUCKETS - 1);
	s = bucket_find(b1, sig, &f);
	if (s < 0)
		s = bucket_find(b2, sig, &f);
	if (s < 0) {
		s = bucket_insert(b1, sig, &f);
		if (s < 0)
			s = bucket_insert(b2, sig, &f);
		if (s < 0)
			return XDP_DROP;
		res->stage = SEED_ST_UPDATED;
		/* must now be found through the signature path */
		s = bucket_find(b1, sig, &f);
		if (s < 0)
			s = bucket_find(b2, sig, &f);
	}
	res->est = s;
	if (s < 0 || !res->hashes_equal)
		return XDP_DROP;
	res->stage = SEED_ST_DONE;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";

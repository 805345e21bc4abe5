// SPDX-License-Identifier: GPL-2.0
/*
 * Seed check 1 (our own, after the Coolbpf eNetSTL example): a count-min sketch updated with
 * the module's fused multi-hash + count kfunc on a TCP/IPv4 packet, and the module's SIMD
 * hashes compared with the same hashes computed by the pure-eBPF xxh32.  XDP_PASS iff the
 * hashes agree and the estimate equals the minimum of the counters read back by BPF.
 */
#include "common.h"
#include "parse.h"
#include "enetstl.h"
#include "algo/xxh32.h"
#include "seed.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct seed_cm_table);
} seed_cm SEC(".maps");

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

SEC("xdp")
int seed_countmin(struct xdp_md *ctx)
{
	struct seed_flow f = {};
	struct seed_result *res;
	struct seed_cm_table *t;
	__u32 h[SEED_CM_D], zero = 0, min = 0xffffffff;
	int i, bad = -1;
	__s64 est;

	res = bpf_map_lookup_elem(&seed_res, &zero);
	t = bpf_map_lookup_elem(&seed_cm, &zero);
	if (!res || !t)
		return XDP_ABORTED;
	res->mismatch_row = 0xffffffff;
	if (flow_of(ctx, &f))
		return XDP_DROP;
	res->stage = SEED_ST_PARSED;
	if (!bpf_ksym_exists(enetstl_cm_add) || !bpf_ksym_exists(enetstl_hash_multi)) {
		res->stage = SEED_ST_NO_MODULE;
		return XDP_DROP;
	}
	if (!t->d) {	/* first packet: describe the table to the kfunc */
		t->d = SEED_CM_D;
		t->w = SEED_CM_W;
		t->seed = SEED_CM_SEED;
	}
	if (enetstl_hash_multi(&f, sizeof(f), h, sizeof(h), SEED_CM_SEED) != SEED_CM_D)
		return XDP_DROP;
#pragma unroll
	for (i = 0; i < SEED_CM_D; i++)
		if (bad < 0 && h[i] != algo_xxh32(&f, sizeof(f), ALGO_ROW_SEED(SEED_CM_SEED, i)))
			bad = i;
	res->hashes_equal = bad < 0;
	res->mismatch_row = bad;
	res->stage = SEED_ST_HASHED;
	est = enetstl_cm_add(&f, sizeof(f), t, sizeof(*t), 1);
	res->est = est;
	if (est < 1)
		return XDP_DROP;
	res->stage = SEED_ST_UPDATED;
#pragma unroll
	for (i = 0; i < SEED_CM_D; i++) {
		__u32 c = t->cnt[i * SEED_CM_W + (h[i] & (SEED_CM_W - 1))];

		if (c < min)
			min = c;
	}
	if (bad >= 0 || min != est)
		return XDP_DROP;
	res->stage = SEED_ST_DONE;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";

// SPDX-License-Identifier: GPL-2.0
/*
 * Benchmark baseline for the cuckoo flow table: the same parse, key, per-flow counters and
 * verdict, with the flows in a BPF_MAP_TYPE_HASH (what a user would pick instead). Lookup only:
 * the benchmark fills the map from user space.
 *
 * xdp_ft_nolookup does everything the table programs do around the lookup (parse, key, stats
 * exit) and no lookup: subtracted from a program's count it leaves the cost of the lookup.
 * xdp_fth_batch looks up the keys of fth_batch (struct ft_req, op FT_OP_FIND; FT_OP_NONE reads
 * the request only) as xdp_ft_batch does in the table: the benchmark at scale.
 */
#include "common.h"
#include "parse.h"
#include "stats.h"
#include "flow_table.h"
#include "flow_table_key.h"

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct ft_key);
	__type(value, struct ft_value);
} fth_flows SEC(".maps");

NF_STATS_MAP(fth_stats);

/* Parse and key the frame as ft_main does (same exits): -1 = go on with *k, else the verdict
 * already counted by the stats exit. */
static __always_inline int fth_key(struct xdp_md *ctx, struct ft_key *k)
{
	struct pkt_meta m;
	int rc = parse_pkt(ctx, &m);

	if (rc != PARSE_OK)
		return xdp_exit_why(ctx, &fth_stats, XDP_DROP, rc);
	if (!(m.flags & (PKT_F_IPV4 | PKT_F_IPV6)))
		return xdp_exit(ctx, &fth_stats, XDP_PASS);
	if (ft_key_from_pkt(ctx, &m, k))
		return xdp_exit_why(ctx, &fth_stats, XDP_DROP, NF_REASON_TRUNCATED);
	return -1;
}

SEC("xdp")
int xdp_ft_nolookup(struct xdp_md *ctx)
{
	struct ft_key key __attribute__((aligned(8))) = {};
	int rc = fth_key(ctx, &key);

	if (rc >= 0)
		return rc;
	/* keep the key alive: the compiler must build it as the table programs do */
	barrier_var(key.saddr[0]);
	barrier_var(key.sport);
	barrier_var(key.family);
	return xdp_exit(ctx, &fth_stats, XDP_PASS);
}

SEC("xdp")
int xdp_ft_hash(struct xdp_md *ctx)
{
	struct ft_key key __attribute__((aligned(8))) = {};
	struct ft_value *v;
	__u64 len;
	int rc = fth_key(ctx, &key);

	if (rc >= 0)
		return rc;
	len = xdp_data_end(ctx) - xdp_data(ctx);
	v = bpf_map_lookup_elem(&fth_flows, &key);
	if (!v)
		return xdp_exit(ctx, &fth_stats, XDP_PASS);
	__sync_fetch_and_add(&v->packets, 1);
	__sync_fetch_and_add(&v->bytes, len);
	v->last_seen = bpf_ktime_get_coarse_ns();
	if (v->action == FT_ACT_DROP)
		return xdp_exit(ctx, &fth_stats, XDP_DROP);
	if (v->action == FT_ACT_REDIRECT)
		return xdp_exit(ctx, &fth_stats, bpf_redirect(v->port, 0));
	return xdp_exit(ctx, &fth_stats, XDP_PASS);
}

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, FT_BATCH);
	__type(key, __u32);
	__type(value, struct ft_req);
} fth_batch SEC(".maps");

static long fth_batch_cb(__u32 i, void *ctx)
{
	struct ft_req *r = bpf_map_lookup_elem(&fth_batch, &i);

	if (!r)
		return 1;
	if (r->op == FT_OP_FIND)
		r->ret = bpf_map_lookup_elem(&fth_flows, &r->key) ? FT_OK : FT_NOT_FOUND;
	return 0;
}

SEC("xdp")
int xdp_fth_batch(struct xdp_md *ctx)
{
	struct ft_batch_run *b = xdp_data(ctx);

	if ((void *)(b + 1) > xdp_data_end(ctx) || b->n > FT_BATCH)
		return XDP_ABORTED;
	bpf_loop(b->n, fth_batch_cb, NULL, 0);
	return XDP_PASS;
}

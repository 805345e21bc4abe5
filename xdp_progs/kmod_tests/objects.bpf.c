// SPDX-License-Identifier: GPL-2.0
/*
 * enetstl object kfuncs (list buckets, random pools, memory wrapper) driven by a struct
 * ko_req packet.  Creation stores the owning reference in kt_objs with bpf_kptr_xchg (the
 * module's dtor drops it when the map goes); every other op resolves the handle with
 * enetstl_*_get, works and releases: the cross-CPU usage documented in kmod/README.md.
 */
#include "common.h"
#include "enetstl.h"
#include "kmod_tests.h"

/* uapi since Linux 6.4; the build uses bookworm's 6.1 uapi headers, which lack it */
struct bpf_iter_num {
	__u64 __opaque[1];
} __attribute__((aligned(8)));

struct kt_obj {
	struct enetstl_lb __kptr *lb;
	struct enetstl_rp __kptr *rp;
	struct enetstl_mw __kptr *mw;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, KO_IDX_MAX);
	__type(key, __u32);
	__type(value, struct kt_obj);
} kt_objs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, KO_HIST);
	__type(key, __u32);
	__type(value, __u64);
} kt_hist SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} kt_seq SEC(".maps");

static __always_inline void hist_inc(__u32 k)
{
	__u64 *v;

	if (k >= KO_HIST)
		k = KO_HIST - 1;
	v = bpf_map_lookup_elem(&kt_hist, &k);
	if (v)
		*v += 1;
}

static __noinline int lb_ops(struct ko_req *r)
{
	struct enetstl_lb *lb;
	__u32 sz = r->b;
	int ret;

	if (!r)
		return -1;
	lb = enetstl_lb_get(r->handle);
	if (!lb)
		return -2;	/* -ENOENT */
	if (sz > 64)
		sz = 64;
	switch (r->op) {
	case KO_LB_PUSH:
		ret = enetstl_lb_push(lb, r->a, r->vals, sz);
		break;
	case KO_LB_POP:
		ret = enetstl_lb_pop(lb, r->a, r->vals, sz);
		break;
	case KO_LB_PEEK:
		ret = enetstl_lb_peek(lb, r->a, r->vals, sz);
		break;
	case KO_LB_LEN:
		ret = enetstl_lb_len(lb, r->a);
		break;
	case KO_LB_PUSH_SEQ: {
		__u32 zero = 0;
		__u64 *seq = bpf_map_lookup_elem(&kt_seq, &zero);

		if (!seq) {
			ret = -1;
			break;
		}
		r->vals[0] = (__u64)bpf_get_smp_processor_id() << 32 | *seq;
		ret = enetstl_lb_push(lb, r->a, r->vals, 8);
		if (!ret)
			*seq += 1;
		else
			hist_inc(1);	/* count failed pushes */
		break;
	}
	default:
		ret = -22;
	}
	enetstl_lb_release(lb);
	return ret;
}

static __noinline int rp_ops(struct ko_req *r)
{
	struct enetstl_rp *rp;
	int ret = 0;

	if (!r)
		return -1;
	rp = enetstl_rp_get(r->handle);
	if (!rp)
		return -2;
	switch (r->op) {
	case KO_RP_SKIP: {
		__u32 k = enetstl_rp_skip(rp);

		hist_inc(k);
		ret = k > 0x7fffffff ? 0x7fffffff : k;
		break;
	}
	case KO_RP_SAMPLE:
		hist_inc(enetstl_rp_sample(rp));
		break;
	case KO_RP_U32:
		r->vals[0] = enetstl_rp_u32(rp);
		break;
	default:
		ret = -22;
	}
	enetstl_rp_release(rp);
	return ret;
}

/* Last node of the chain along edge 0 (acquired), starting from the root. */
static __always_inline struct enetstl_mw_node *mw_last(struct enetstl_mw *c, __u32 slot,
						       __u64 *nodes, __u64 *sum)
{
	struct enetstl_mw_node *cur = enetstl_mw_root(c), *next;
	int i;

	if (!cur)
		return NULL;
	bpf_for(i, 0, KO_MW_WALK_MAX) {
		next = enetstl_mw_edge_get(c, cur, slot);
		if (!next)
			break;
		enetstl_mw_node_release(cur);
		cur = next;
		*nodes += 1;
		*sum += *(__u64 *)cur->data;
	}
	return cur;
}

static __noinline int mw_ops(struct ko_req *r)
{
	struct enetstl_mw_node *cur, *n;
	struct enetstl_mw *c;
	__u64 nodes = 0, sum = 0;
	int ret = 0, i;

	if (!r)
		return -1;
	c = enetstl_mw_get(r->handle);
	if (!c)
		return -2;
	switch (r->op) {
	case KO_MW_BUILD: {
		int made = 0;
		__u64 key;

		cur = mw_last(c, r->b, &nodes, &sum);
		if (!cur) {
			ret = -12;
			break;
		}
		key = *(__u64 *)cur->data;
		bpf_for(i, 0, 1024) {
			if (i >= r->a)
				break;
			n = enetstl_mw_node_new(c);
			if (!n)
				break;
			key++;
			enetstl_mw_node_write(n, 0, &key, sizeof(key));
			enetstl_mw_edge_set(c, cur, r->b, n);
			enetstl_mw_node_release(cur);
			cur = n;
			made++;
		}
		enetstl_mw_node_release(cur);
		ret = made;
		break;
	}
	case KO_MW_WALK:
		cur = mw_last(c, r->b, &nodes, &sum);
		if (cur) {
			r->vals[2] = *(__u64 *)cur->data;
			r->vals[3] = cur->id;
			enetstl_mw_node_release(cur);
		}
		r->vals[0] = nodes;
		r->vals[1] = sum;
		break;
	case KO_MW_REMOVE: {
		struct enetstl_mw_node *prev = enetstl_mw_root(c), *after;

		if (!prev) {
			ret = -12;
			break;
		}
		ret = -2;
		bpf_for(i, 0, KO_MW_WALK_MAX) {
			n = enetstl_mw_edge_get(c, prev, r->b);
			if (!n)
				break;
			if (i + 1 == r->a) {
				ret = enetstl_mw_node_remove(c, n);
				/* removal must have nulled prev -> n */
				after = enetstl_mw_edge_get(c, prev, r->b);
				if (after) {
					enetstl_mw_node_release(after);
					ret = ret ?: 0;
				} else {
					ret = ret ?: 1;
				}
				r->vals[0] = *(__u64 *)n->data;
				enetstl_mw_node_release(n);
				break;
			}
			enetstl_mw_node_release(prev);
			prev = n;
		}
		enetstl_mw_node_release(prev);
		break;
	}
	case KO_MW_COUNT:
		ret = enetstl_mw_count(c);
		break;
	default:
		ret = -22;
	}
	enetstl_mw_release(c);
	return ret;
}

SEC("xdp")
int objects(struct xdp_md *ctx)
{
	struct ko_req *r = xdp_data(ctx);
	struct kt_obj *slot;
	__u32 idx;

	if ((void *)(r + 1) > xdp_data_end(ctx))
		return XDP_ABORTED;
	if (!bpf_ksym_exists(enetstl_lb_new) || !bpf_ksym_exists(enetstl_mw_new) ||
	    !bpf_ksym_exists(enetstl_rp_new)) {
		r->ret = KT_ABSENT;
		return XDP_PASS;
	}
	idx = r->idx;
	slot = bpf_map_lookup_elem(&kt_objs, &idx);
	if (!slot)
		return XDP_DROP;
	switch (r->op) {
	case KO_LB_NEW: {
		struct enetstl_lb *lb = enetstl_lb_new(r->a, r->b, r->x);

		if (!lb) {
			r->ret = -12;
			break;
		}
		r->ret = enetstl_lb_handle(lb);
		lb = bpf_kptr_xchg(&slot->lb, lb);
		if (lb)	/* replaced an older one */
			enetstl_lb_release(lb);
		break;
	}
	case KO_LB_FREE: {
		struct enetstl_lb *lb = bpf_kptr_xchg(&slot->lb, NULL);

		r->ret = lb ? 0 : -2;
		if (lb)
			enetstl_lb_release(lb);
		break;
	}
	case KO_RP_NEW: {
		struct enetstl_rp *rp = enetstl_rp_new(r->x);

		if (!rp) {
			r->ret = -12;
			break;
		}
		r->ret = enetstl_rp_handle(rp);
		rp = bpf_kptr_xchg(&slot->rp, rp);
		if (rp)
			enetstl_rp_release(rp);
		break;
	}
	case KO_RP_FREE: {
		struct enetstl_rp *rp = bpf_kptr_xchg(&slot->rp, NULL);

		r->ret = rp ? 0 : -2;
		if (rp)
			enetstl_rp_release(rp);
		break;
	}
	case KO_MW_NEW: {
		struct enetstl_mw *mw = enetstl_mw_new(r->a);

		if (!mw) {
			r->ret = -12;
			break;
		}
		r->ret = enetstl_mw_handle(mw);
		mw = bpf_kptr_xchg(&slot->mw, mw);
		if (mw)
			enetstl_mw_release(mw);
		break;
	}
	case KO_MW_FREE: {
		struct enetstl_mw *mw = bpf_kptr_xchg(&slot->mw, NULL);

		r->ret = mw ? 0 : -2;
		if (mw)
			enetstl_mw_release(mw);
		break;
	}
	case KO_LB_PUSH ... KO_LB_PUSH_SEQ:
		r->ret = lb_ops(r);
		break;
	case KO_RP_SKIP ... KO_RP_U32:
		r->ret = rp_ops(r);
		break;
	case KO_MW_BUILD ... KO_MW_COUNT:
		r->ret = mw_ops(r);
		break;
	default:
		return XDP_DROP;
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";

// SPDX-License-Identifier: GPL-2.0
/*
 * A skip-list key-value store built in BPF on the memory wrapper (u64 key -> u64 value).
 *
 * Nodes: data[0..8) key, data[8..16) value, data[16..20) level; edge slot l is the level-l
 * "next" pointer; the container's root node is the head (all SL_LEVELS levels).  Node levels
 * are geometric with p = 1/4.  Each operation is one descent from the top level that holds at
 * most three node references at a time (current, next, and the new / deleted node); every
 * reference comes from an acquire kfunc and is released on every path, which the verifier
 * checks.  Insert is a lookup pass (which rewrites an existing key's value in place) and, for
 * a new key, a second pass that splices it in on the way down; delete relinks each
 * level's predecessor to the successor and then removes the node.
 */
#include "common.h"
#include "enetstl.h"
#include "kmod_tests.h"

/* uapi since Linux 6.4; the build uses bookworm's 6.1 uapi headers, which lack it */
struct bpf_iter_num {
	__u64 __opaque[1];
} __attribute__((aligned(8)));

struct sl_owner {
	struct enetstl_mw __kptr *mw;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sl_owner);
} sl_owner SEC(".maps");

#define KEY(n) (*(__u64 *)(n)->data)
#define VAL(n) (*(__u64 *)((n)->data + 8))

/* 1 if found (write: its value set to *val; else *val = its value), 0 if absent, < 0 on error. */
static __noinline int sl_find(struct enetstl_mw *c, __u64 key, __u64 *val, int write)
{
	struct enetstl_mw_node *cur, *next;
	__u32 lvl = SL_LEVELS - 1;
	int i, found = 0;

	if (!c || !val)
		return -22;
	cur = enetstl_mw_root(c);
	if (!cur)
		return -12;
	bpf_for(i, 0, SL_MAX_STEPS) {
		next = enetstl_mw_edge_get(c, cur, lvl);
		if (next) {
			__u64 k = KEY(next);

			if (k < key) {
				enetstl_mw_node_release(cur);
				cur = next;
				continue;
			}
			if (k == key) {
				found = 1;
				if (!write)
					*val = VAL(next);
				else if (enetstl_mw_node_write(next, 8, val, sizeof(*val)))
					found = -22;
				enetstl_mw_node_release(next);
				break;
			}
			enetstl_mw_node_release(next);
		}
		if (lvl == 0)
			break;
		lvl--;
	}
	enetstl_mw_node_release(cur);
	return found;
}

static __always_inline __u32 random_level(void)
{
	/* 1 + the number of trailing zero bit pairs: P(level > l) = 4^-l */
	__u32 r = bpf_get_prandom_u32() | (1u << (2 * (SL_LEVELS - 1))), lvl = 1;

	while (!(r & 3)) {	/* at most SL_LEVELS - 1 rounds: the bit set above stops it */
		r >>= 2;
		lvl++;
	}
	return lvl;
}

static __noinline int sl_insert(struct enetstl_mw *c, __u64 key, __u64 val)
{
	struct enetstl_mw_node *cur, *next, *n;
	__u32 lvl = SL_LEVELS - 1, nlvl;
	int i, ret;

	if (!c)
		return -22;
	/* an existing key: its value rewritten in place by the lookup pass, one node kept */
	ret = sl_find(c, key, &val, 1);
	if (ret)
		return ret < 0 ? ret : 0;

	nlvl = random_level();
	n = enetstl_mw_node_new(c);
	if (!n)
		return -28;	/* -ENOSPC: container full */
	enetstl_mw_node_write(n, 0, &key, sizeof(key));
	enetstl_mw_node_write(n, 8, &val, sizeof(val));
	enetstl_mw_node_write(n, 16, &nlvl, sizeof(nlvl));
	cur = enetstl_mw_root(c);
	if (!cur) {
		enetstl_mw_node_remove(c, n);
		enetstl_mw_node_release(n);
		return -12;
	}
	ret = -7;	/* -E2BIG: ran out of steps (never with SL_MAX_STEPS at 4096 keys) */
	bpf_for(i, 0, SL_MAX_STEPS) {
		next = enetstl_mw_edge_get(c, cur, lvl);
		if (next && KEY(next) < key) {
			enetstl_mw_node_release(cur);
			cur = next;
			continue;
		}
		if (lvl < nlvl) {	/* splice n between cur and next on this level */
			if (next)
				enetstl_mw_edge_set(c, n, lvl, next);
			enetstl_mw_edge_set(c, cur, lvl, n);
		}
		if (next)
			enetstl_mw_node_release(next);
		if (lvl == 0) {
			ret = 1;
			break;
		}
		lvl--;
	}
	enetstl_mw_node_release(cur);
	if (ret != 1)
		enetstl_mw_node_remove(c, n);
	enetstl_mw_node_release(n);
	return ret;
}

static __noinline int sl_delete(struct enetstl_mw *c, __u64 key)
{
	struct enetstl_mw_node *cur, *next, *succ, *victim = NULL;
	__u32 lvl = SL_LEVELS - 1;
	int i;

	if (!c)
		return -22;
	cur = enetstl_mw_root(c);
	if (!cur)
		return -12;
	bpf_for(i, 0, SL_MAX_STEPS) {
		next = enetstl_mw_edge_get(c, cur, lvl);
		if (next && KEY(next) < key) {
			enetstl_mw_node_release(cur);
			cur = next;
			continue;
		}
		if (next && KEY(next) == key) {
			/* unlink on this level: cur -> next's successor */
			succ = enetstl_mw_edge_get(c, next, lvl);
			if (succ) {
				enetstl_mw_edge_set(c, cur, lvl, succ);
				enetstl_mw_node_release(succ);
			} else {
				enetstl_mw_edge_clear(c, cur, lvl);
			}
			if (!victim) {
				victim = next;
				next = NULL;
			}
		}
		if (next)
			enetstl_mw_node_release(next);
		if (lvl == 0)
			break;
		lvl--;
	}
	enetstl_mw_node_release(cur);
	if (!victim)
		return 0;
	enetstl_mw_node_remove(c, victim);
	enetstl_mw_node_release(victim);
	return 1;
}

SEC("xdp")
int skiplist(struct xdp_md *ctx)
{
	struct ko_req *r = xdp_data(ctx);
	struct enetstl_mw *c;
	struct sl_owner *o;
	__u32 zero = 0;
	__u64 v = 0;

	if ((void *)(r + 1) > xdp_data_end(ctx))
		return XDP_ABORTED;
	if (!bpf_ksym_exists(enetstl_mw_new)) {
		r->ret = KT_ABSENT;
		return XDP_PASS;
	}
	o = bpf_map_lookup_elem(&sl_owner, &zero);
	if (!o)
		return XDP_ABORTED;
	if (r->op == SL_NEW) {
		c = enetstl_mw_new(r->a);
		if (!c) {
			r->ret = -12;
			return XDP_PASS;
		}
		r->ret = enetstl_mw_handle(c);
		c = bpf_kptr_xchg(&o->mw, c);
		if (c)
			enetstl_mw_release(c);
		return XDP_PASS;
	}
	if (r->op == SL_FREE) {
		c = bpf_kptr_xchg(&o->mw, NULL);
		r->ret = c ? 0 : -2;
		if (c)
			enetstl_mw_release(c);
		return XDP_PASS;
	}
	c = enetstl_mw_get(r->handle);
	if (!c) {
		r->ret = -2;
		return XDP_PASS;
	}
	switch (r->op) {
	case SL_INSERT:
		r->ret = sl_insert(c, r->x, r->vals[0]);
		break;
	case SL_LOOKUP:
		r->ret = sl_find(c, r->x, &v, 0);
		r->vals[0] = v;
		break;
	case SL_DELETE:
		r->ret = sl_delete(c, r->x);
		break;
	case SL_COUNT:
		r->ret = enetstl_mw_count(c);
		break;
	default:
		r->ret = -22;
	}
	enetstl_mw_release(c);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";

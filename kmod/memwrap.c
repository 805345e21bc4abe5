// SPDX-License-Identifier: GPL-2.0
/*
 * Memory wrapper: a container kptr that owns dynamically allocated nodes.
 *
 * A node has ENETSTL_MW_DATA bytes BPF reads directly (struct enetstl_mw_node.data, constant
 * offsets) and writes with enetstl_mw_node_write() (bounds-checked), and ENETSTL_MW_EDGES
 * outgoing edge slots.  Following an edge (enetstl_mw_edge_get) returns an acquired, possibly
 * NULL reference, so BPF walks a->b->c safely.  Every node keeps the list of edges pointing at
 * it: removing a node nulls them.  Each container has a root node (id 0, never removed) to
 * anchor structures between program runs.  Releasing the container's last reference detaches
 * and frees every node (a node a program still holds lives until that program releases it).
 *
 * Locking: one raw spinlock per container guards membership, edges and node counts; node data
 * is not locked (concurrent readers may see a torn multi-word value, never freed memory).
 * Reference counts: a node attached to a container holds one reference for the container, plus
 * one per acquired BPF reference; it is freed when the count reaches zero (never under RCU:
 * nodes are reached only through their container's lock or an acquired reference).
 */
#include <linux/kernel.h>
#include <linux/slab.h>
#include <linux/list.h>
#include <linux/spinlock.h>
#include <linux/unaligned.h>
#include "internal.h"

struct mw_edge {
	struct enetstl_mw_node *to;	/* NULL = no edge */
	struct enetstl_mw_node *from;
	struct hlist_node in;		/* on to->incoming */
};

struct enetstl_mw_node {
	u8 data[ENETSTL_MW_DATA] __aligned(8);	/* BPF-visible prefix: as in include/enetstl.h */
	u32 id;
	refcount_t ref;
	struct enetstl_mw *owner;	/* NULL once removed / container gone */
	struct list_head all;		/* on owner->nodes */
	struct hlist_head incoming;
	struct mw_edge out[ENETSTL_MW_EDGES];
};
static_assert(offsetof(struct enetstl_mw_node, data) == 0);
static_assert(offsetof(struct enetstl_mw_node, id) == ENETSTL_MW_DATA);

struct enetstl_mw {
	struct enetstl_obj obj;
	raw_spinlock_t lock;
	u32 count;		/* nodes excluding the root */
	u32 max_nodes;
	u32 next_id;
	struct list_head nodes;	/* every attached node, root included */
	struct enetstl_mw_node *root;
};

static struct kmem_cache *mw_node_cache;

static void node_put(struct enetstl_mw_node *n)
{
	if (refcount_dec_and_test(&n->ref)) {
		kmem_cache_free(mw_node_cache, n);
		atomic_long_dec(&enetstl_live_mw_nodes);
	}
}

static struct enetstl_mw_node *node_alloc(struct enetstl_mw *c, u32 id)
{
	struct enetstl_mw_node *n = kmem_cache_zalloc(mw_node_cache, GFP_ATOMIC | __GFP_NOWARN);
	int i;

	if (!n)
		return NULL;
	n->id = id;
	refcount_set(&n->ref, 1);	/* the container's reference */
	n->owner = c;
	INIT_HLIST_HEAD(&n->incoming);
	for (i = 0; i < ENETSTL_MW_EDGES; i++)
		n->out[i].from = n;
	list_add_tail(&n->all, &c->nodes);
	atomic_long_inc(&enetstl_live_mw_nodes);
	return n;
}

static void edge_unlink(struct mw_edge *e)
{
	if (e->to) {
		hlist_del(&e->in);
		e->to = NULL;
	}
}

/* Detach n from its container (lock held): null incoming and outgoing edges. */
static void node_detach(struct enetstl_mw_node *n)
{
	struct hlist_node *tmp;
	struct mw_edge *e;
	int i;

	for (i = 0; i < ENETSTL_MW_EDGES; i++)
		edge_unlink(&n->out[i]);
	hlist_for_each_entry_safe(e, tmp, &n->incoming, in)
		edge_unlink(e);
	list_del(&n->all);
	n->owner = NULL;
}

/* Last container reference gone: detach everything, drop the container's node references. */
static void mw_release(struct enetstl_obj *o)
{
	struct enetstl_mw *c = container_of(o, struct enetstl_mw, obj);
	struct enetstl_mw_node *n, *tmp;
	unsigned long flags;
	LIST_HEAD(dead);

	raw_spin_lock_irqsave(&c->lock, flags);
	list_for_each_entry_safe(n, tmp, &c->nodes, all) {
		node_detach(n);
		list_add(&n->all, &dead);
	}
	c->count = 0;
	raw_spin_unlock_irqrestore(&c->lock, flags);
	list_for_each_entry_safe(n, tmp, &dead, all) {
		list_del(&n->all);
		node_put(n);
	}
}

static void mw_free(struct enetstl_obj *o)
{
	kfree(container_of(o, struct enetstl_mw, obj));
	atomic_long_dec(&enetstl_live_mw);
}

__bpf_kfunc_start_defs();

/* New container for up to max_nodes nodes (plus its root); NULL on a bad size / no memory. */
__bpf_kfunc struct enetstl_mw *enetstl_mw_new(u32 max_nodes)
{
	struct enetstl_mw *c;

	if (!max_nodes || max_nodes > ENETSTL_MW_MAX_NODES)
		return NULL;
	c = kzalloc(sizeof(*c), GFP_ATOMIC | __GFP_NOWARN);
	if (!c)
		return NULL;
	raw_spin_lock_init(&c->lock);
	INIT_LIST_HEAD(&c->nodes);
	c->max_nodes = max_nodes;
	c->root = node_alloc(c, 0);
	if (!c->root) {
		kfree(c);
		return NULL;
	}
	if (enetstl_obj_init(&c->obj, ENETSTL_OBJ_MW, mw_release, mw_free)) {
		list_del(&c->root->all);
		node_put(c->root);
		kfree(c);
		return NULL;
	}
	atomic_long_inc(&enetstl_live_mw);
	return c;
}

__bpf_kfunc struct enetstl_mw *enetstl_mw_get(u32 handle)
{
	struct enetstl_obj *o = enetstl_obj_get(handle, ENETSTL_OBJ_MW);

	return o ? container_of(o, struct enetstl_mw, obj) : NULL;
}

__bpf_kfunc void enetstl_mw_release(struct enetstl_mw *c)
{
	enetstl_obj_put(&c->obj);
}

__bpf_kfunc void enetstl_mw_release_dtor(void *c)
{
	enetstl_mw_release(c);
}

__bpf_kfunc u32 enetstl_mw_handle(struct enetstl_mw *c)
{
	return c->obj.handle;
}

/* Nodes in the container, root excluded. */
__bpf_kfunc u32 enetstl_mw_count(struct enetstl_mw *c)
{
	return READ_ONCE(c->count);
}

/* Acquired reference to the container's root node. */
__bpf_kfunc struct enetstl_mw_node *enetstl_mw_root(struct enetstl_mw *c)
{
	refcount_inc(&c->root->ref);	/* the container's reference keeps it >= 1 */
	return c->root;
}

/* New node (zeroed data, no edges), or NULL when full / no memory.  Acquired. */
__bpf_kfunc struct enetstl_mw_node *enetstl_mw_node_new(struct enetstl_mw *c)
{
	struct enetstl_mw_node *n = NULL;
	unsigned long flags;

	raw_spin_lock_irqsave(&c->lock, flags);
	if (c->count < c->max_nodes) {
		n = node_alloc(c, ++c->next_id ? c->next_id : ++c->next_id);
		if (n) {
			c->count++;
			refcount_inc(&n->ref);	/* the caller's */
		}
	}
	raw_spin_unlock_irqrestore(&c->lock, flags);
	return n;
}

__bpf_kfunc void enetstl_mw_node_release(struct enetstl_mw_node *n)
{
	node_put(n);
}

/* Write src__sz bytes at data[off].  0, or -EINVAL when off + src__sz > ENETSTL_MW_DATA. */
__bpf_kfunc int enetstl_mw_node_write(struct enetstl_mw_node *n, u32 off, const void *src,
				      u32 src__sz)
{
	const u8 *s = src;
	u8 *d;

	if (!src || off > ENETSTL_MW_DATA || src__sz > ENETSTL_MW_DATA - off)
		return -EINVAL;
	d = n->data + off;
	for (; src__sz >= 8; src__sz -= 8, d += 8, s += 8)
		put_unaligned(get_unaligned((const u64 *)s), (u64 *)d);
	for (; src__sz; src__sz--)
		*d++ = *s++;
	return 0;
}

/* Remove n from c: edges into and out of it become NULL; freed when its last reference goes.
 * 0, or -EINVAL (not in c, or the root). */
__bpf_kfunc int enetstl_mw_node_remove(struct enetstl_mw *c, struct enetstl_mw_node *n)
{
	unsigned long flags;

	raw_spin_lock_irqsave(&c->lock, flags);
	if (n->owner != c || n == c->root) {
		raw_spin_unlock_irqrestore(&c->lock, flags);
		return -EINVAL;
	}
	node_detach(n);
	c->count--;
	raw_spin_unlock_irqrestore(&c->lock, flags);
	node_put(n);	/* the container's reference; the caller still holds its own */
	return 0;
}

/* from.out[slot] = to (both in c).  0 or -EINVAL. */
__bpf_kfunc int enetstl_mw_edge_set(struct enetstl_mw *c, struct enetstl_mw_node *from,
				    u32 slot, struct enetstl_mw_node *to)
{
	unsigned long flags;
	struct mw_edge *e;
	int ret = 0;

	if (slot >= ENETSTL_MW_EDGES)
		return -EINVAL;
	raw_spin_lock_irqsave(&c->lock, flags);
	if (from->owner != c || to->owner != c) {
		ret = -EINVAL;
	} else {
		e = &from->out[slot];
		edge_unlink(e);
		e->to = to;
		hlist_add_head(&e->in, &to->incoming);
	}
	raw_spin_unlock_irqrestore(&c->lock, flags);
	return ret;
}

/* from.out[slot] = NULL.  0 or -EINVAL. */
__bpf_kfunc int enetstl_mw_edge_clear(struct enetstl_mw *c, struct enetstl_mw_node *from, u32 slot)
{
	unsigned long flags;
	int ret = 0;

	if (slot >= ENETSTL_MW_EDGES)
		return -EINVAL;
	raw_spin_lock_irqsave(&c->lock, flags);
	if (from->owner != c)
		ret = -EINVAL;
	else
		edge_unlink(&from->out[slot]);
	raw_spin_unlock_irqrestore(&c->lock, flags);
	return ret;
}

/* Acquired reference to from.out[slot]'s target, NULL if no edge (or from not in c). */
__bpf_kfunc struct enetstl_mw_node *enetstl_mw_edge_get(struct enetstl_mw *c,
						      struct enetstl_mw_node *from, u32 slot)
{
	struct enetstl_mw_node *to = NULL;
	unsigned long flags;

	if (slot >= ENETSTL_MW_EDGES)
		return NULL;
	raw_spin_lock_irqsave(&c->lock, flags);
	if (from->owner == c) {
		to = from->out[slot].to;
		if (to)
			refcount_inc(&to->ref);
	}
	raw_spin_unlock_irqrestore(&c->lock, flags);
	return to;
}

__bpf_kfunc_end_defs();

int enetstl_mw_init(void)
{
	mw_node_cache = KMEM_CACHE(enetstl_mw_node, 0);
	return mw_node_cache ? 0 : -ENOMEM;
}

void enetstl_mw_exit(void)
{
	kmem_cache_destroy(mw_node_cache);
}

// SPDX-License-Identifier: GPL-2.0
/*
 * List buckets: a kptr object holding `slots` bounded FIFOs of fixed-size values.
 *
 * All storage (slot rings) is allocated by enetstl_lb_new() in one GFP_ATOMIC allocation,
 * so push/pop never allocate and are legal in XDP.  Each ring holds up to `capacity` values
 * of `value_size` bytes.  A raw spinlock (irqsave: callers run in softirq and in test_run's
 * process context on the same CPU) makes every operation safe from any number of CPUs.
 *
 * Sharing: enetstl_lb_new() returns an acquired reference; the owner keeps it in a map with
 * bpf_kptr_xchg() (the registered dtor drops it when the map goes) and publishes
 * enetstl_lb_handle().  Programs on any CPU then call enetstl_lb_get(handle) ->
 * operate -> enetstl_lb_release(): the handle is resolved under RCU and a reference taken only
 * while the object is alive.  See kmod/README.md.
 */
#include <linux/kernel.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/unaligned.h>
#include "internal.h"

struct lb_slot {
	u32 head;	/* index of the oldest value */
	u32 len;
};

struct enetstl_lb {
	struct enetstl_obj obj;
	raw_spinlock_t lock;
	u32 slots, cap, vsize;
	struct lb_slot *meta;	/* [slots] */
	u8 *data;		/* [slots][cap][vsize] */
};

/* Small copies without memcpy (which is rep movs on these CPUs). */
static __always_inline void copy_small(u8 *dst, const u8 *src, u32 n)
{
	for (; n >= 8; n -= 8, dst += 8, src += 8)
		put_unaligned(get_unaligned((const u64 *)src), (u64 *)dst);
	for (; n; n--)
		*dst++ = *src++;
}

static void lb_free(struct enetstl_obj *o)
{
	kfree(container_of(o, struct enetstl_lb, obj));
	atomic_long_dec(&enetstl_live_lb);
}

static inline u8 *lb_at(struct enetstl_lb *lb, u32 slot, u32 idx)
{
	return lb->data + ((size_t)slot * lb->cap + idx) * lb->vsize;
}

__bpf_kfunc_start_defs();

/* New list-bucket set, or NULL on bad sizes / no memory.  Acquired: release or kptr_xchg it. */
__bpf_kfunc struct enetstl_lb *enetstl_lb_new(u32 slots, u32 capacity, u32 value_size)
{
	struct enetstl_lb *lb;
	size_t meta, bytes;

	if (!slots || slots > ENETSTL_LB_MAX_SLOTS || !capacity || capacity > ENETSTL_LB_MAX_CAP ||
	    !value_size || value_size > ENETSTL_LB_MAX_VALUE)
		return NULL;
	bytes = (size_t)slots * capacity * value_size;
	if (bytes > ENETSTL_LB_MAX_BYTES)
		return NULL;
	meta = ALIGN(sizeof(*lb), 8) + (size_t)slots * sizeof(struct lb_slot);
	lb = kzalloc(meta + bytes, GFP_ATOMIC | __GFP_NOWARN);
	if (!lb)
		return NULL;
	raw_spin_lock_init(&lb->lock);
	lb->slots = slots;
	lb->cap = capacity;
	lb->vsize = value_size;
	lb->meta = (struct lb_slot *)((u8 *)lb + ALIGN(sizeof(*lb), 8));
	lb->data = (u8 *)lb + meta;
	if (enetstl_obj_init(&lb->obj, ENETSTL_OBJ_LB, NULL, lb_free)) {
		kfree(lb);
		return NULL;
	}
	atomic_long_inc(&enetstl_live_lb);
	return lb;
}

/* Reference to the set with this handle, NULL if there is none (any longer). */
__bpf_kfunc struct enetstl_lb *enetstl_lb_get(u32 handle)
{
	struct enetstl_obj *o = enetstl_obj_get(handle, ENETSTL_OBJ_LB);

	return o ? container_of(o, struct enetstl_lb, obj) : NULL;
}

__bpf_kfunc void enetstl_lb_release(struct enetstl_lb *lb)
{
	enetstl_obj_put(&lb->obj);
}

/* Destructor for a kptr left in a map (registered with register_btf_id_dtor_kfuncs). */
__bpf_kfunc void enetstl_lb_release_dtor(void *lb)
{
	enetstl_lb_release(lb);
}

__bpf_kfunc u32 enetstl_lb_handle(struct enetstl_lb *lb)
{
	return lb->obj.handle;
}

/* Append a value (val__sz must equal value_size).  0, -ENOSPC (slot full), -EINVAL. */
__bpf_kfunc int enetstl_lb_push(struct enetstl_lb *lb, u32 slot, const void *val, u32 val__sz)
{
	unsigned long flags;
	struct lb_slot *s;
	int ret = 0;

	if (!val || slot >= lb->slots || val__sz != lb->vsize)
		return -EINVAL;
	s = &lb->meta[slot];
	raw_spin_lock_irqsave(&lb->lock, flags);
	if (s->len >= lb->cap) {
		ret = -ENOSPC;
	} else {
		u32 idx = s->head + s->len;

		if (idx >= lb->cap)
			idx -= lb->cap;
		copy_small(lb_at(lb, slot, idx), val, lb->vsize);
		s->len++;
	}
	raw_spin_unlock_irqrestore(&lb->lock, flags);
	return ret;
}

static int lb_front(struct enetstl_lb *lb, u32 slot, void *out, u32 out__sz, bool pop)
{
	unsigned long flags;
	struct lb_slot *s;
	int ret = 0;

	if (!out || slot >= lb->slots || out__sz < lb->vsize)
		return -EINVAL;
	s = &lb->meta[slot];
	raw_spin_lock_irqsave(&lb->lock, flags);
	if (!s->len) {
		ret = -ENOENT;
	} else {
		copy_small(out, lb_at(lb, slot, s->head), lb->vsize);
		if (pop) {
			s->head = s->head + 1 == lb->cap ? 0 : s->head + 1;
			s->len--;
		}
	}
	raw_spin_unlock_irqrestore(&lb->lock, flags);
	return ret;
}

/* Remove the oldest value into out (out__sz >= value_size).  0, -ENOENT (empty), -EINVAL. */
__bpf_kfunc int enetstl_lb_pop(struct enetstl_lb *lb, u32 slot, void *out, u32 out__sz)
{
	return lb_front(lb, slot, out, out__sz, true);
}

/* Copy the oldest value without removing it.  0, -ENOENT, -EINVAL. */
__bpf_kfunc int enetstl_lb_peek(struct enetstl_lb *lb, u32 slot, void *out, u32 out__sz)
{
	return lb_front(lb, slot, out, out__sz, false);
}

/* Number of values in the slot, -EINVAL for a bad slot. */
__bpf_kfunc int enetstl_lb_len(struct enetstl_lb *lb, u32 slot)
{
	if (slot >= lb->slots)
		return -EINVAL;
	return READ_ONCE(lb->meta[slot].len);
}

__bpf_kfunc_end_defs();

// SPDX-License-Identifier: GPL-2.0
/*
 * enetstl: eNetSTL-style kfunc library for XDP (and TC / BPF_PROG_TYPE_SYSCALL) programs.
 *
 * Init: detect CPU features, register every kfunc for the program types, register the kptr
 * destructors, create /sys/kernel/enetstl/ with per-path call counters and live object counts.
 * Module parameter force_scalar (0644) makes every family take its scalar path at run time.
 */
#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/kobject.h>
#include <linux/sysfs.h>
#include <linux/bpf.h>
#include <linux/btf.h>
#include <linux/btf_ids.h>
#include <asm/cpufeature.h>
#include <linux/xarray.h>
#include <linux/rcupdate.h>
#include "internal.h"

bool enetstl_force_scalar;
module_param_named(force_scalar, enetstl_force_scalar, bool, 0644);
MODULE_PARM_DESC(force_scalar, "use the scalar paths even where AVX2 / SSE4.2 are available");

bool enetstl_has_avx2 __read_mostly;
bool enetstl_has_sse42 __read_mostly;

DEFINE_PER_CPU(u64, enetstl_ctrs[CTR_NR]);
atomic_long_t enetstl_live_lb, enetstl_live_rp, enetstl_live_mw, enetstl_live_mw_nodes;


/* ---- object handles ---- */
static DEFINE_XARRAY_ALLOC1(enetstl_handles);

int enetstl_obj_init(struct enetstl_obj *o, u8 type, void (*release)(struct enetstl_obj *),
		     void (*free)(struct enetstl_obj *))
{
	unsigned long flags;
	u32 id;
	int err;

	refcount_set(&o->ref, 1);
	o->type = type;
	o->release = release;
	o->free = free;
	xa_lock_irqsave(&enetstl_handles, flags);
	err = __xa_alloc(&enetstl_handles, &id, o, xa_limit_31b, GFP_ATOMIC);
	xa_unlock_irqrestore(&enetstl_handles, flags);
	if (err)
		return err;
	o->handle = id;
	return 0;
}

struct enetstl_obj *enetstl_obj_get(u32 handle, u8 type)
{
	struct enetstl_obj *o;

	rcu_read_lock();
	o = xa_load(&enetstl_handles, handle);
	if (o && (o->type != type || !refcount_inc_not_zero(&o->ref)))
		o = NULL;
	rcu_read_unlock();
	return o;
}

static void enetstl_obj_free_rcu(struct rcu_head *head)
{
	struct enetstl_obj *o = container_of(head, struct enetstl_obj, rcu);

	o->free(o);
}

void enetstl_obj_put(struct enetstl_obj *o)
{
	unsigned long flags;

	if (!refcount_dec_and_test(&o->ref))
		return;
	xa_lock_irqsave(&enetstl_handles, flags);
	__xa_erase(&enetstl_handles, o->handle);
	xa_unlock_irqrestore(&enetstl_handles, flags);
	if (o->release)
		o->release(o);
	/* enetstl_obj_get() may still be looking at it under RCU */
	call_rcu(&o->rcu, enetstl_obj_free_rcu);
}

BTF_KFUNCS_START(enetstl_kfunc_ids)
/* hash.c */
BTF_ID_FLAGS(func, enetstl_crc32c)
BTF_ID_FLAGS(func, enetstl_xxh32)
BTF_ID_FLAGS(func, enetstl_hash_multi)
BTF_ID_FLAGS(func, enetstl_cm_add)
BTF_ID_FLAGS(func, enetstl_cm_add_atomic)
/* compare.c */
BTF_ID_FLAGS(func, enetstl_find_u16)
BTF_ID_FLAGS(func, enetstl_match_u16)
BTF_ID_FLAGS(func, enetstl_match2_u16)
BTF_ID_FLAGS(func, enetstl_find_u32)
BTF_ID_FLAGS(func, enetstl_match_u32)
BTF_ID_FLAGS(func, enetstl_key_eq)
BTF_ID_FLAGS(func, enetstl_cuckoo_cand)
BTF_ID_FLAGS(func, enetstl_bt_find, KF_TRUSTED_ARGS)
BTF_ID_FLAGS(func, enetstl_min_idx_u32)
/* bits.c */
BTF_ID_FLAGS(func, enetstl_ffs32)
BTF_ID_FLAGS(func, enetstl_fls32)
BTF_ID_FLAGS(func, enetstl_popcnt32)
BTF_ID_FLAGS(func, enetstl_ctz32)
BTF_ID_FLAGS(func, enetstl_ffs64)
BTF_ID_FLAGS(func, enetstl_fls64)
BTF_ID_FLAGS(func, enetstl_popcnt64)
BTF_ID_FLAGS(func, enetstl_ctz64)
/* listbucket.c */
BTF_ID_FLAGS(func, enetstl_lb_new, KF_ACQUIRE | KF_RET_NULL)
BTF_ID_FLAGS(func, enetstl_lb_get, KF_ACQUIRE | KF_RET_NULL)
BTF_ID_FLAGS(func, enetstl_lb_release, KF_RELEASE)
BTF_ID_FLAGS(func, enetstl_lb_handle, KF_TRUSTED_ARGS)
BTF_ID_FLAGS(func, enetstl_lb_push, KF_TRUSTED_ARGS)
BTF_ID_FLAGS(func, enetstl_lb_pop, KF_TRUSTED_ARGS)
BTF_ID_FLAGS(func, enetstl_lb_peek, KF_TRUSTED_ARGS)
BTF_ID_FLAGS(func, enetstl_lb_len, KF_TRUSTED_ARGS)
/* randpool.c */
BTF_ID_FLAGS(func, enetstl_rp_new, KF_ACQUIRE | KF_RET_NULL)
BTF_ID_FLAGS(func, enetstl_rp_get, KF_ACQUIRE | KF_RET_NULL)
BTF_ID_FLAGS(func, enetstl_rp_release, KF_RELEASE)
BTF_ID_FLAGS(func, enetstl_rp_handle, KF_TRUSTED_ARGS)
BTF_ID_FLAGS(func, enetstl_rp_skip, KF_TRUSTED_ARGS)
BTF_ID_FLAGS(func, enetstl_rp_u32, KF_TRUSTED_ARGS)
BTF_ID_FLAGS(func, enetstl_rp_sample, KF_TRUSTED_ARGS)
/* memwrap.c */
BTF_ID_FLAGS(func, enetstl_mw_new, KF_ACQUIRE | KF_RET_NULL)
BTF_ID_FLAGS(func, enetstl_mw_get, KF_ACQUIRE | KF_RET_NULL)
BTF_ID_FLAGS(func, enetstl_mw_release, KF_RELEASE)
BTF_ID_FLAGS(func, enetstl_mw_handle, KF_TRUSTED_ARGS)
BTF_ID_FLAGS(func, enetstl_mw_count, KF_TRUSTED_ARGS)
BTF_ID_FLAGS(func, enetstl_mw_root, KF_ACQUIRE | KF_RET_NULL | KF_TRUSTED_ARGS)
BTF_ID_FLAGS(func, enetstl_mw_node_new, KF_ACQUIRE | KF_RET_NULL | KF_TRUSTED_ARGS)
BTF_ID_FLAGS(func, enetstl_mw_node_release, KF_RELEASE)
BTF_ID_FLAGS(func, enetstl_mw_node_write, KF_TRUSTED_ARGS)
BTF_ID_FLAGS(func, enetstl_mw_node_remove, KF_TRUSTED_ARGS)
BTF_ID_FLAGS(func, enetstl_mw_edge_set, KF_TRUSTED_ARGS)
BTF_ID_FLAGS(func, enetstl_mw_edge_clear, KF_TRUSTED_ARGS)
BTF_ID_FLAGS(func, enetstl_mw_edge_get, KF_ACQUIRE | KF_RET_NULL | KF_TRUSTED_ARGS)
BTF_KFUNCS_END(enetstl_kfunc_ids)

/* kptr type -> destructor, for references left in map values when a map is freed. */
BTF_ID_LIST(enetstl_dtor_ids)
BTF_ID(struct, enetstl_lb)
BTF_ID(func, enetstl_lb_release_dtor)
BTF_ID(struct, enetstl_rp)
BTF_ID(func, enetstl_rp_release_dtor)
BTF_ID(struct, enetstl_mw)
BTF_ID(func, enetstl_mw_release_dtor)

static const struct btf_kfunc_id_set enetstl_kfunc_set = {
	.owner = THIS_MODULE,
	.set = &enetstl_kfunc_ids,
};

/* ---- sysfs: /sys/kernel/enetstl/ ---- */
static struct kobject *enetstl_kobj;

static u64 ctr_sum(enum enetstl_ctr c)
{
	u64 s = 0;
	int cpu;

	for_each_possible_cpu(cpu)
		s += per_cpu(enetstl_ctrs[c], cpu);
	return s;
}

#define CTR_ATTR(name, ctr)							\
static ssize_t name##_show(struct kobject *k, struct kobj_attribute *a, char *buf)	\
{										\
	return sysfs_emit(buf, "%llu\n", ctr_sum(ctr));				\
}										\
static struct kobj_attribute name##_attr = __ATTR_RO(name)

#define LIVE_ATTR(name, var)							\
static ssize_t name##_show(struct kobject *k, struct kobj_attribute *a, char *buf)	\
{										\
	return sysfs_emit(buf, "%ld\n", atomic_long_read(&var));		\
}										\
static struct kobj_attribute name##_attr = __ATTR_RO(name)

CTR_ATTR(hash_simd_calls, CTR_HASH_SIMD);
CTR_ATTR(hash_scalar_calls, CTR_HASH_SCALAR);
CTR_ATTR(crc32c_hw_calls, CTR_CRC_HW);
CTR_ATTR(crc32c_sw_calls, CTR_CRC_SW);
CTR_ATTR(fpu_busy, CTR_FPU_BUSY);
CTR_ATTR(cuckoo_cand_calls, CTR_CUCKOO);
CTR_ATTR(bt_find_calls, CTR_BT);
LIVE_ATTR(live_lb, enetstl_live_lb);
LIVE_ATTR(live_rp, enetstl_live_rp);
LIVE_ATTR(live_mw, enetstl_live_mw);
LIVE_ATTR(live_mw_nodes, enetstl_live_mw_nodes);

static ssize_t features_show(struct kobject *k, struct kobj_attribute *a, char *buf)
{
	return sysfs_emit(buf, "avx2=%d sse4_2=%d force_scalar=%d\n", enetstl_has_avx2,
			  enetstl_has_sse42, READ_ONCE(enetstl_force_scalar));
}
static struct kobj_attribute features_attr = __ATTR_RO(features);

static struct attribute *enetstl_attrs[] = {
	&features_attr.attr,
	&hash_simd_calls_attr.attr,
	&hash_scalar_calls_attr.attr,
	&crc32c_hw_calls_attr.attr,
	&crc32c_sw_calls_attr.attr,
	&fpu_busy_attr.attr,
	&cuckoo_cand_calls_attr.attr,
	&bt_find_calls_attr.attr,
	&live_lb_attr.attr,
	&live_rp_attr.attr,
	&live_mw_attr.attr,
	&live_mw_nodes_attr.attr,
	NULL,
};

static const struct attribute_group enetstl_group = {
	.attrs = enetstl_attrs,
};

static int __init enetstl_init(void)
{
	static const enum bpf_prog_type types[] = {
		BPF_PROG_TYPE_XDP, BPF_PROG_TYPE_SCHED_CLS, BPF_PROG_TYPE_SYSCALL,
	};
	const struct btf_id_dtor_kfunc dtors[] = {
		{ .btf_id = enetstl_dtor_ids[0], .kfunc_btf_id = enetstl_dtor_ids[1] },
		{ .btf_id = enetstl_dtor_ids[2], .kfunc_btf_id = enetstl_dtor_ids[3] },
		{ .btf_id = enetstl_dtor_ids[4], .kfunc_btf_id = enetstl_dtor_ids[5] },
	};
	int err, i;

	enetstl_has_avx2 = boot_cpu_has(X86_FEATURE_AVX2) && boot_cpu_has(X86_FEATURE_OSXSAVE);
	enetstl_has_sse42 = boot_cpu_has(X86_FEATURE_XMM4_2);
	enetstl_hash_init();

	err = enetstl_mw_init();
	if (err)
		return err;
	err = register_btf_id_dtor_kfuncs(dtors, ARRAY_SIZE(dtors), THIS_MODULE);
	if (err)
		goto out_mw;
	for (i = 0; i < ARRAY_SIZE(types); i++) {
		err = register_btf_kfunc_id_set(types[i], &enetstl_kfunc_set);
		if (err) {
			pr_err("enetstl: kfunc registration for prog type %d failed: %d\n",
			       types[i], err);
			goto out_mw;
		}
	}

	enetstl_kobj = kobject_create_and_add("enetstl", kernel_kobj);
	if (!enetstl_kobj) {
		err = -ENOMEM;
		goto out_mw;
	}
	err = sysfs_create_group(enetstl_kobj, &enetstl_group);
	if (err) {
		kobject_put(enetstl_kobj);
		goto out_mw;
	}
	pr_info("enetstl: loaded (avx2=%d sse4_2=%d)\n", enetstl_has_avx2, enetstl_has_sse42);
	return 0;
out_mw:
	enetstl_mw_exit();
	return err;
}

static void __exit enetstl_exit(void)
{
	sysfs_remove_group(enetstl_kobj, &enetstl_group);
	kobject_put(enetstl_kobj);
	/* Every object is gone (maps and programs pin the module); wait for their RCU frees. */
	rcu_barrier();
	WARN_ON(!xa_empty(&enetstl_handles));
	xa_destroy(&enetstl_handles);
	enetstl_mw_exit();
}

module_init(enetstl_init);
module_exit(enetstl_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("eNetSTL-style kfunc library for XDP network functions");
MODULE_VERSION(ENETSTL_VERSION);	/* the xdp-nf version: /sys/module/enetstl/version */

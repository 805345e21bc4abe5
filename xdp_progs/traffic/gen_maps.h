/* SPDX-License-Identifier: GPL-2.0 */
/* What both lab generators (livegen.bpf.c, tcgen.bpf.c) define: their rodata config, template
 * and stats maps (layouts in gen.h), and the template choice. BPF side only. */
#ifndef XDP_NF_GEN_MAPS_H
#define XDP_NF_GEN_MAPS_H

#include "gen.h"

const volatile struct gen_cfg gen_cfg = {
	.restore_len = 0,
	.n_tmpl = 1,
	.n_slots = 1,
	.ifindex = 0,
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gen_tmpl);
} gen_tmpl SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gen_stats);
} gen_stats SEC(".maps");

/* The template for this frame (this CPU's slot, its cursor), then the cursor moves on. */
static __always_inline struct gen_tmpl *gen_next_tmpl(struct gen_stats *st)
{
	__u32 idx = bpf_get_smp_processor_id() % gen_cfg.n_slots * gen_cfg.n_tmpl + st->cursor;

	st->cursor = st->cursor + 1 >= gen_cfg.n_tmpl ? 0 : st->cursor + 1;
	return bpf_map_lookup_elem(&gen_tmpl, &idx);
}

#endif /* XDP_NF_GEN_MAPS_H */

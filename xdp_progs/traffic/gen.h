/* SPDX-License-Identifier: GPL-2.0 */
/* The lab traffic generators. Data-only: mirrored by traffic/labgen.py (GenCfg, GenTmpl,
 * GenStats), layout checked against BTF by tests/traffic/test_labgen.py.
 *
 * Two generators, one layout (traffic/labgen.py picks one per run):
 *   livegen.bpf.c  XDP, BPF_PROG_TEST_RUN + BPF_F_TEST_XDP_LIVE_FRAMES: frames leave through a
 *                  DEVMAP redirect (livegen_tx[0]). Cheapest, but some kernels refuse the flag.
 *   tcgen.bpf.c    SCHED_CLS, plain BPF_PROG_TEST_RUN: each run bpf_clone_redirect()s the test
 *                  skb out of gen_cfg.ifindex (the clone is transmitted inside the helper).
 *
 * Templates: gen_tmpl holds n_slots * n_tmpl entries; a frame sent on CPU c takes template
 * (c % n_slots) * n_tmpl + cursor, cursor cycling 0..n_tmpl-1 per CPU, so each CPU of a
 * multi-CPU run can carry its own flows. The first restore_len bytes of the template are
 * written over the frame start. Live frames need this because their pages are recycled without
 * re-copying the packet (an NF's rewrites would persist into the next round); tcgen needs it
 * only to change flows between frames, each clone being copied by the receiving veth. */
#ifndef XDP_NF_GEN_H
#define XDP_NF_GEN_H

#include <linux/types.h>

#define GEN_TMPL_MAX 128 /* bytes of a template, i.e. the most restore_len can be */

struct gen_cfg {
	__u32 restore_len; /* bytes rewritten from the template per frame, 0..GEN_TMPL_MAX */
	__u32 n_tmpl;      /* templates per slot, >= 1 */
	__u32 n_slots;     /* template sets, one per CPU of a multi-CPU run, >= 1 */
	__u32 ifindex;     /* tcgen: interface the clones go out of (the caller's netns) */
};

struct gen_tmpl {
	__u64 w[GEN_TMPL_MAX / 8]; /* frame head bytes; u64 words so the copy is 8 at a time */
};

struct gen_stats {
	__u64 runs;   /* frames the program ran on */
	__u64 sent;   /* of which the redirect / clone succeeded */
	__u64 cursor; /* next template index in this CPU's slot */
	__s64 error;  /* tcgen: last nonzero bpf_clone_redirect() result (a -errno) */
};

#endif /* XDP_NF_GEN_H */

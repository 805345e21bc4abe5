/* SPDX-License-Identifier: GPL-2.0 */
/* livegen: the live-frames traffic generator (BPF_PROG_TEST_RUN + BPF_F_TEST_XDP_LIVE_FRAMES).
 * Data-only: mirrored by traffic/livegen.py (LivegenCfg, LivegenTmpl, LivegenStats), layout
 * checked against BTF by tests/traffic/test_livegen.py.
 *
 * Objects of build/bpf/traffic/livegen.o:
 *   program  xdp_livegen     (SEC "xdp")
 *   map      livegen_tmpl    ARRAY, max_entries = number of templates (set before load)
 *   map      livegen_tx      DEVMAP, 1 entry (key 0): the interface frames are sent out of
 *   map      livegen_stats   PERCPU_ARRAY, 1 entry, struct livegen_stats
 *   rodata   livegen_cfg     const volatile struct livegen_cfg
 *
 * Per frame: take template `cursor` (cursor cycles 0..n_tmpl-1 per CPU), write its first
 * restore_len bytes over the frame start, redirect through livegen_tx[0].
 * Why: live-frames mode recycles its pages without re-copying the packet, so whatever an NF
 * rewrote (MACs, TTL, checksum) would otherwise persist into the next round. Several templates
 * also let one run carry several flows (e.g. a Zipf flow set in a fixed sequence). */
#ifndef XDP_NF_LIVEGEN_H
#define XDP_NF_LIVEGEN_H

#include <linux/types.h>

#define LIVEGEN_TMPL_MAX 128 /* bytes of a template, i.e. the most restore_len can be */

struct livegen_cfg {
	__u32 restore_len; /* bytes rewritten from the template per frame, 0..LIVEGEN_TMPL_MAX */
	__u32 n_tmpl;      /* templates in livegen_tmpl, >= 1 */
};

struct livegen_tmpl {
	__u64 w[LIVEGEN_TMPL_MAX / 8]; /* frame head bytes; u64 words so the copy is 8 at a time */
};

struct livegen_stats {
	__u64 runs;       /* frames the program ran on */
	__u64 redirected; /* of which bpf_redirect_map returned XDP_REDIRECT */
	__u64 cursor;     /* next template index */
};

#endif /* XDP_NF_LIVEGEN_H */

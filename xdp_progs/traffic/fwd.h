/* SPDX-License-Identifier: GPL-2.0 */
/* fwd: a minimal rewriting forwarder used to test and calibrate the live-frames generator (it
 * rewrites bytes like a real NF does, so it shows whether the generator restores them).
 * Data-only: mirrored by traffic/livegen.py (FwdCfg), layout checked against BTF.
 *
 * Objects of build/bpf/traffic/fwd.o:
 *   program  xdp_fwd        (SEC "xdp")
 *   map      fwd_port       DEVMAP, 1 entry (key 0): egress interface
 *   map      fwd_stats      PERCPU_ARRAY, struct nf_stats (stats.h), one exit point
 *   rodata   fwd_cfg        const volatile struct fwd_cfg
 *
 * Per frame: non-IPv4 or truncated -> XDP_DROP (reason TRUNCATED/CONFIG); IPv4 TTL <= 1 ->
 * XDP_DROP (reason NF(0)); else set dst/src MAC, TTL - 1 with incremental checksum update
 * (RFC 1624), redirect through fwd_port[0]. */
#ifndef XDP_NF_FWD_H
#define XDP_NF_FWD_H

#include <linux/types.h>

#define FWD_REASON_TTL 8 /* NF_REASON_NF(0) */

struct fwd_cfg {
	__u8 dmac[6];
	__u8 smac[6];
};

#endif /* XDP_NF_FWD_H */

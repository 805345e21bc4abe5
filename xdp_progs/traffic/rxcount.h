/* SPDX-License-Identifier: GPL-2.0 */
/* rxcount: the receiver-side counter of live-frames runs (a native XDP program on the receiving
 * veth, which also satisfies the veth rule). Data-only: mirrored by traffic/livegen.py
 * (RxcountCfg, RxcountStats), layout checked against BTF.
 *
 * Objects of build/bpf/traffic/rxcount.o:
 *   program  xdp_rxcount     (SEC "xdp")
 *   map      rxcount_stats   PERCPU_ARRAY, 1 entry, struct rxcount_stats
 *   rodata   rxcount_cfg     const volatile struct rxcount_cfg */
#ifndef XDP_NF_RXCOUNT_H
#define XDP_NF_RXCOUNT_H

#include <linux/types.h>

struct rxcount_cfg {
	__u32 action; /* verdict after counting: XDP_DROP (default) or XDP_PASS */
	__u32 pad;    /* must be 0 */
};

struct rxcount_stats {
	__u64 packets;
	__u64 bytes;
};

#endif /* XDP_NF_RXCOUNT_H */

/* SPDX-License-Identifier: GPL-2.0 */
/* Chain dispatcher (chain.bpf.c): data-only part, mirrored by nf/chain.py. */
#ifndef XDP_NF_CHAIN_H
#define XDP_NF_CHAIN_H

#include <linux/types.h>

/* Per CPU: frames the dispatcher handed to the chain, and frames it passed itself because slot 0
 * was empty (a chain being built or torn down). */
struct chain_stats {
	__u64 entered;
	__u64 empty;
};

#endif

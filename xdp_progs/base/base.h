/* SPDX-License-Identifier: GPL-2.0 */
/* base: the small program of the shared pieces (parse + count + pass/drop by configuration).
 * Data-only: shared with Python (nf/datapath.py: BaseCfg), layout checked against BTF.
 *
 * Objects of build/bpf/base/base.o:
 *   program  xdp_base      (SEC "xdp")
 *   map      base_stats    PERCPU_ARRAY, 1 entry (key 0), value struct nf_stats (stats.h)
 *   rodata   base_cfg      const volatile struct base_cfg, set before load
 *
 * Decision order for one frame:
 *   1. parse_pkt() fails (truncated / malformed / too deep) -> cfg.malformed_action, counted with
 *      the parse error as reason (NF_REASON_TRUNCATED / _MALFORMED / _TOO_DEEP).
 *   2. a rule matches -> XDP_DROP, counted with NF_REASON_CONFIG. Rules:
 *        drop_fragments != 0 and the frame is an IP fragment (first or later);
 *        the frame's IP protocol (after IPv6 extension headers) is in drop_l4_protos[];
 *        a TCP/UDP destination port (with an L4 header) is in drop_dports[].
 *   3. otherwise -> cfg.action.
 * Actions are XDP verdicts (0 ABORTED, 1 DROP, 2 PASS, 3 TX); REDIRECT (4) is not meaningful
 * here (no target) and any value >= 4 is counted and returned as ABORTED by xdp_exit.
 * Defaults (C initializer = Python BaseCfg()): action PASS, malformed_action DROP, no rules. */
#ifndef XDP_NF_BASE_H
#define XDP_NF_BASE_H

#include <linux/types.h>

#define BASE_MAX_PROTOS 4 /* drop_l4_protos slots; 0 = unused (IPPROTO_HOPOPT is never final) */
#define BASE_MAX_PORTS 4  /* drop_dports slots; 0 = unused */

struct base_cfg {
	__u32 action;           /* verdict for well-formed frames no rule drops (default PASS) */
	__u32 malformed_action; /* verdict for frames parse_pkt rejects (default DROP) */
	__u8 drop_fragments;    /* 1: drop every IPv4/IPv6 fragment */
	__u8 drop_l4_protos[BASE_MAX_PROTOS]; /* IPPROTO_* values to drop */
	__u8 pad;               /* explicit, keeps the layout obvious; must be 0 */
	__u16 drop_dports[BASE_MAX_PORTS];    /* TCP/UDP destination ports to drop, host order */
};

#endif /* XDP_NF_BASE_H */

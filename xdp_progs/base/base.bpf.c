// SPDX-License-Identifier: GPL-2.0
/* base: parse + count + pass/drop by a rodata setting. See base.h for the behaviour. */
#include "common.h"
#include "parse.h"
#include "stats.h"
#include "base.h"

char LICENSE[] SEC("license") = "GPL";

/* Written by user space before load (BpfObject.set_rodata("base_cfg", BaseCfg(...))); the
 * verifier then sees constants and prunes the rules that are off. */
const volatile struct base_cfg base_cfg = {
	.action = XDP_PASS,
	.malformed_action = XDP_DROP,
};

NF_STATS_MAP(base_stats);

static __always_inline int base_rule_drop(const struct pkt_meta *m)
{
	int i;

	if (!(m->flags & (PKT_F_IPV4 | PKT_F_IPV6)))
		return 0;
	if (base_cfg.drop_fragments && (m->flags & PKT_F_FRAG))
		return 1;
#pragma unroll
	for (i = 0; i < BASE_MAX_PROTOS; i++)
		if (base_cfg.drop_l4_protos[i] && base_cfg.drop_l4_protos[i] == m->l4_proto)
			return 1;
	if ((m->flags & PKT_F_L4) &&
	    (m->l4_proto == IPPROTO_TCP || m->l4_proto == IPPROTO_UDP)) {
#pragma unroll
		for (i = 0; i < BASE_MAX_PORTS; i++)
			if (base_cfg.drop_dports[i] && base_cfg.drop_dports[i] == m->dport)
				return 1;
	}
	return 0;
}

SEC("xdp")
int xdp_base(struct xdp_md *ctx)
{
	struct pkt_meta m;
	int rc;

	rc = parse_pkt(ctx, &m);
	if (rc != PARSE_OK)
		return xdp_exit_why(ctx, &base_stats, base_cfg.malformed_action, rc);
	if (base_rule_drop(&m))
		return xdp_exit_why(ctx, &base_stats, XDP_DROP, NF_REASON_CONFIG);
	return xdp_exit(ctx, &base_stats, base_cfg.action);
}

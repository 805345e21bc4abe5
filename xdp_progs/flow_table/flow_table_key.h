/* SPDX-License-Identifier: GPL-2.0 */
/* The flow key of a parsed frame: one definition for the table (flow_table.bpf.c) and its
 * benchmark baselines (flow_table_hash.bpf.c), so the baselines build exactly the table's key. */
#ifndef FLOW_TABLE_KEY_H
#define FLOW_TABLE_KEY_H

#include "common.h"
#include "parse.h"
#include "flow_table.h"

/* k zeroed by the caller; m from parse_pkt (PARSE_OK, IPv4 or IPv6). 0, or -1 when the IP
 * header is out of bounds. Ports only for TCP and UDP. */
static __always_inline int ft_key_from_pkt(struct xdp_md *ctx, struct pkt_meta *m,
					   struct ft_key *k)
{
	if (m->flags & PKT_F_IPV4) {
		struct iphdr *iph = xdp_ptr(ctx, m->l3_off, sizeof(*iph));

		if (!iph)
			return -1;
		k->saddr[0] = iph->saddr;
		k->daddr[0] = iph->daddr;
		k->family = 4;
	} else {
		struct ipv6hdr *ip6 = xdp_ptr(ctx, m->l3_off, sizeof(*ip6));

		if (!ip6)
			return -1;
		__builtin_memcpy(k->saddr, &ip6->saddr, 16);
		__builtin_memcpy(k->daddr, &ip6->daddr, 16);
		k->family = 6;
	}
	k->proto = m->l4_proto;
	if (m->flags & PKT_F_L4 && (m->l4_proto == IPPROTO_TCP || m->l4_proto == IPPROTO_UDP)) {
		k->sport = m->sport;
		k->dport = m->dport;
	}
	return 0;
}

#endif

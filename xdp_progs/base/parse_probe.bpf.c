// SPDX-License-Identifier: GPL-2.0
/* parse_probe: parse_pkt() result -> probe_out map (see parse_probe.h). Test-only program. */
#include "common.h"
#include "parse.h"
#include "stats.h"
#include "parse_probe.h"

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct probe_out);
} probe_out SEC(".maps");

NF_STATS_MAP(probe_stats);

SEC("xdp")
int xdp_parse_probe(struct xdp_md *ctx)
{
	struct probe_out *o;
	struct pkt_meta m;
	__u32 key = 0;
	__u8 *p;
	int rc;

	rc = parse_pkt(ctx, &m);
	o = bpf_map_lookup_elem(&probe_out, &key);
	if (!o)
		return xdp_exit(ctx, &probe_stats, XDP_ABORTED);
	o->meta = m;
	o->rc = rc;
	__builtin_memset(o->l4_head, 0, sizeof(o->l4_head));
	o->payload_head = 0;
	o->has_payload = 0;
	o->seq += 1;
	if (rc == PARSE_OK && (m.flags & PKT_F_L4)) {
		/* Re-derive pointers from the stored offsets, as NFs do. */
		p = xdp_ptr(ctx, m.l4_off, 4);
		if (p)
			__builtin_memcpy(o->l4_head, p, 4);
		p = xdp_ptr(ctx, m.payload_off, 1);
		if (p) {
			o->payload_head = *p;
			o->has_payload = 1;
		}
	}
	return xdp_exit_why(ctx, &probe_stats, rc == PARSE_OK ? XDP_PASS : XDP_DROP, rc);
}

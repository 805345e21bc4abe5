/* SPDX-License-Identifier: GPL-2.0 */
/* parse_probe: a test program exposing parse_pkt()'s full result to user space, so tests can
 * assert offsets, VLAN ids, ports and flags, not only verdicts. Data-only; mirrored by
 * nf/datapath.py (PktMeta, ProbeOut) and checked against BTF.
 *
 *   program  xdp_parse_probe  parse, record into probe_out[0], PASS if PARSE_OK else DROP
 *   map      probe_out        ARRAY, 1 entry, struct probe_out (overwritten by every frame)
 *   map      probe_stats      PERCPU_ARRAY, struct nf_stats */
#ifndef XDP_NF_PARSE_PROBE_H
#define XDP_NF_PARSE_PROBE_H

#include <linux/types.h>
#include "parse.h"

struct probe_out {
	struct pkt_meta meta;
	__s32 rc;          /* enum parse_rc */
	__u8 l4_head[4];   /* first 4 bytes at meta.l4_off read through xdp_ptr() (PKT_F_L4) */
	__u8 payload_head; /* first byte at meta.payload_off through xdp_ptr(), if any */
	__u8 has_payload;  /* 1 when payload_head is valid */
	__u16 seq;         /* frames seen, so a test knows the record is fresh */
};

#endif /* XDP_NF_PARSE_PROBE_H */

/* SPDX-License-Identifier: GPL-2.0 */
/* l2fwd: the "bare hash-lookup redirect" baseline of the switch benchmark (issue #4): what a
 * user gets from the least an XDP L2 forwarder can do — one BPF hash lookup of the destination
 * MAC and a devmap redirect — with no learning, VLANs, aging or flooding. Driven by
 * traffic/livegen.py (L2Fwd); measured by nf/bench/l2_switch.py.
 *
 * Objects of build/bpf/traffic/l2fwd.o:
 *   program  xdp_l2fwd      (SEC "xdp")
 *   map      l2fwd_fdb      HASH, key __u64 (destination MAC in the low 6 bytes, in frame
 *                           order, upper 2 bytes zero), value __u32 (slot in l2fwd_ports)
 *   map      l2fwd_ports    DEVMAP, L2FWD_PORTS entries: egress interfaces
 *   map      l2fwd_stats    PERCPU_ARRAY, struct nf_stats (stats.h), one exit point
 *
 * Per frame: shorter than an Ethernet header -> XDP_DROP (TRUNCATED); unknown destination ->
 * XDP_DROP (reason L2FWD_REASON_MISS); else redirect through l2fwd_ports[slot]. */
#ifndef XDP_NF_L2FWD_H
#define XDP_NF_L2FWD_H

#define L2FWD_PORTS 8
#define L2FWD_REASON_MISS 8 /* NF_REASON_NF(0) */

#endif /* XDP_NF_L2FWD_H */

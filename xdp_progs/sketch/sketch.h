/* SPDX-License-Identifier: GPL-2.0 */
/* Heavy-hitter sketch NF: data-only header shared by sketch.bpf.c and nf/nfs/sketch.py
 * (ctypes mirrors checked against this object's BTF by tests/nf/bpf/test_layout.py).
 *
 * Maps:
 *   sk_active   ARRAY_OF_MAPS[1]: the bank the datapath writes. Inner maps are created by the
 *               controller: PERCPU_ARRAY (per-CPU counters) or ARRAY (shared, atomic adds),
 *               one entry, value = struct sketch_bank + d * w __u32 counters (row-major).
 *   sk_cand     HASH: heavy-hitter candidates, key (bank id, flow key): at most cfg.candidates
 *               per bank (counted in sk_heavy), max_entries 2 x candidates.
 *   sk_top      PERCPU_ARRAY[2] (index = bank id): each CPU's SKETCH_TOP largest flows of the
 *               epoch by estimate, whatever the threshold (what `topk` reports).
 *   sk_heavy    ARRAY[2] (index = bank id): the bank's candidate count and a bitmap of flagged
 *               flows (by fingerprint) that unsampled NitroSketch packets test.
 *   sk_nitro    PERCPU_ARRAY[1]: NitroSketch per-CPU sampling state.
 *   sk_pool     ARRAY[1]: owning reference of the module's random pool (eNetSTL variant).
 *   sk_stats    per-CPU struct nf_stats (one exit point).
 */
#ifndef XDP_NF_SKETCH_H
#define XDP_NF_SKETCH_H

#include <linux/types.h>
#include "enetstl.h"

#define SKETCH_MAX_D 16
#define SKETCH_KEY_MAX 40	/* IPv6 5-tuple; every key length is a multiple of 4 */
#define SKETCH_LOG2_TAB 1024	/* pure-eBPF geometric sampling: log2 mantissa table */
#define SKETCH_TOP 16		/* flows of the top table per CPU and bank */
#define SKETCH_TOP_POS 256	/* position index of the top table (fingerprint >> 24) */
#define SKETCH_HEAVY_BITS 65536	/* bits of the flagged-flow bitmap per bank */

/* Flow key kinds and the bytes hashed (addresses and ports in network order):
 *   5TUPLE  v4: src4 dst4 sport2 dport2 proto1 pad3 = 16   v6: src16 dst16 ... = 40
 *   SRC_IP  v4: src4 = 4                                   v6: src16 = 16
 *   DST_IP  v4: dst4 = 4                                   v6: dst16 = 16
 *   SRC_DST v4: src4 dst4 = 8                              v6: src16 dst16 = 32
 *   SRC_MAC mac6 pad2 = 8 (every frame, IP or not) */
enum sketch_key_kind {
	SK_KEY_5TUPLE = 0,
	SK_KEY_SRC_IP = 1,
	SK_KEY_DST_IP = 2,
	SK_KEY_SRC_DST = 3,
	SK_KEY_SRC_MAC = 4,
};

enum sketch_variant {
	SK_VAR_PURE = 0,	/* d seeded xxh32 in BPF (algo/xxh32.h) + increments */
	SK_VAR_ENETSTL = 1,	/* enetstl_cm_add[_atomic]: hash x d + add + min in one call */
};

enum sketch_action {
	SK_ACT_MONITOR = 0,	/* pass everything */
	SK_ACT_DROP = 1,	/* drop packets of flows flagged heavy */
	SK_ACT_REDIRECT = 2,	/* bpf_redirect() them to cfg.redirect_ifindex */
};

/* struct sketch_cfg.flags */
#define SK_F_BYTES (1U << 0)	/* count frame bytes, not packets */
#define SK_F_SHARED (1U << 1)	/* one bank for all CPUs, atomic adds (else per-CPU banks) */
#define SK_F_NITRO (1U << 2)	/* NitroSketch: geometric sampling, scaled increments */
#define SK_F_FRACTION (1U << 3)	/* threshold is a Q16 fraction of the bank's total */

/* NF-specific reason slots of sk_stats (NF_REASON_NF(n)). */
#define SK_REASON_NO_KEY 0	/* frame has no key of the configured kind (not counted) */
#define SK_REASON_HEAVY 1	/* packet of a flagged flow (action applied) */
#define SK_REASON_CAND_FULL 2	/* a flow over the threshold acted on without a candidate entry
				 * (the bank's candidates are all taken) */
#define SK_REASON_SAMPLED_OUT 3	/* NitroSketch skipped the update */
#define SK_REASON_NO_BANK 4	/* sk_active empty (controller not up): passed uncounted */

/* Load-time configuration (rodata). */
struct sketch_cfg {
	__u32 variant;		/* enum sketch_variant */
	__u32 key_kind;		/* enum sketch_key_kind */
	__u32 flags;		/* SK_F_* */
	__u32 d;		/* rows, 1..SKETCH_MAX_D */
	__u32 w;		/* counters per row, power of two */
	__u32 action;		/* enum sketch_action */
	__u32 redirect_ifindex;
	__u64 threshold;	/* absolute estimate, or Q16 fraction with SK_F_FRACTION */
	__u64 min_total;	/* fraction: no flag before the bank total reaches this */
	__u32 nitro_scale_q16;	/* increment multiplier 1/p in Q16 */
	__u32 candidates;	/* sk_cand entries per bank */
	__u64 nitro_neglog_q32;	/* -log2(1 - p) in Q32 (pure-eBPF skip draws); 0 = p == 1 */
	__u64 nitro_p_q32;	/* p in Q32 (module random pool) */
};

/* Header of a bank's map value; d * w __u32 counters follow it directly. */
struct sketch_bank {
	__u32 id;		/* bank number, written by the controller */
	__u32 epoch;		/* epoch number, written by the controller */
	__u64 total;		/* sum of the increments added to each row */
	__u64 packets;		/* frames that reached the sketch (sampled or not) */
	__u64 sampled;		/* frames whose increments were applied */
	__u32 top_bar;		/* per-CPU banks: this CPU's top-table bar (sketch_top.bar), so a
				 * packet below it needs no sk_top lookup; 0 in shared banks */
	__u32 keyed;		/* enum sketch_keyed: where cm.seed came from */
	/* d, w, seed, flags=0: the kfunc's table starts here. cm.seed is the sketch's secret: row i
	 * hashes with cm.seed + i * 0x9E3779B1 in both variants (the pure rows read it here too)
	 * and the flagged-flow fingerprint mixes it in, so nobody who does not know it can craft
	 * flows that collide with another in every row. Chosen once by the controller when the
	 * banks are made, carried into every bank it clears; the banks are pinned, so a new program
	 * on them reads the same key. */
	struct enetstl_cm_hdr cm;
};

enum sketch_keyed {
	SK_KEYED_NOT_YET = 0,	/* a bank not yet written by the controller */
	SK_KEYED_DRAWN = 1,	/* cm.seed drawn from the kernel's random source (config seed unset) */
	SK_KEYED_CONFIG = 2,	/* cm.seed given by the config */
};

struct sketch_cand_key {
	__u32 bank;
	__u8 len;		/* bytes of key used */
	__u8 kind;		/* enum sketch_key_kind */
	__u16 pad;
	__u8 key[SKETCH_KEY_MAX];
};

struct sketch_cand {
	__u64 estimate;		/* largest estimate seen by the datapath (CPU-local if per-CPU) */
	__u64 first_seen_ns;	/* bpf_ktime_get_ns() when the flow crossed the threshold */
	__u64 hits;		/* packets of the flow seen while flagged */
	__u32 first_cpu;
	__u32 pad;
};

/* A CPU's top table of one bank: the SKETCH_TOP flows with the largest estimates it has seen
 * this epoch. A flow enters when its estimate (after its update) exceeds the smallest held,
 * replacing that flow; a held flow's estimate is raised by its own packets. `bar` is the
 * smallest held estimate once every slot is taken (0 before): a packet whose estimate is below
 * it cannot change the table and costs one compare. Flows are found by position, then key. */
struct sketch_top {
	__u32 n;		/* slots taken */
	__u32 min;		/* slot of the smallest estimate (when n == SKETCH_TOP) */
	__u32 bar;		/* est[min] when n == SKETCH_TOP, else 0 */
	__u32 pad;
	__u32 est[SKETCH_TOP];	/* largest estimate seen for the flow */
	__u8 len[SKETCH_TOP];	/* key bytes; 0 = free slot */
	__u8 pos[SKETCH_TOP_POS];	/* slot + 1 of the flow last found or entered with this
					 * position (the key folded to a byte; 0: none): one probe
					 * finds a held flow, a stale or shared entry falls back to
					 * the scan */
	__u64 key[SKETCH_TOP][SKETCH_KEY_MAX / 8];	/* zero-padded */
};

/* A bank's flagged flows: how many candidate entries it holds (at most cfg.candidates), and
 * one bit per fingerprint (bit fp % SKETCH_HEAVY_BITS) of every flow flagged heavy this epoch,
 * set before its candidate entry is tried (NitroSketch with an action: an unsampled packet of a
 * flagged flow without an entry is still recognised, by a bit, then its estimate). */
struct sketch_heavy {
	__u32 cands;
	__u32 pad;
	__u64 bits[SKETCH_HEAVY_BITS / 64];
};

struct sketch_nitro {
	__u32 left;		/* packets still to skip */
	__u32 primed;		/* left holds a draw */
};

/* Request/answer frame of xdp_sketch_hashcheck (VM tier: module multi-hash vs BPF xxh32). */
struct sketch_hashcheck {
	__u32 len;		/* 4, 8, 16, 32 or 40 */
	__u32 seed;
	__u8 key[SKETCH_KEY_MAX];
	__u32 bpf[SKETCH_MAX_D];	/* algo_xxh32(key, len, seed + i * step) */
	__u32 mod[SKETCH_MAX_D];	/* enetstl_hash_multi(key, len, ..., seed) */
	__s32 ret;		/* enetstl_hash_multi's return, or -1 when the module is absent */
	__u32 pad;
};

#endif /* XDP_NF_SKETCH_H */

/* SPDX-License-Identifier: GPL-2.0 */
/* replay.bpf.c: many flows through one BPF_PROG_TEST_RUN. Data-only: mirrored by
 * traffic/replay.py, layout checked against BTF by tests/traffic/test_replay.py.
 *
 * Each run writes record seq[cursor] (or record cursor when there is no sequence) over bytes
 * [off, off + len) of the test frame, advances the per-CPU cursor (wrapping) and tail-calls the
 * program in rp_next[0]: with `repeat` = n, one syscall feeds n packets of n chosen flows to an
 * NF, at the NF's own speed (the 5-tuple fields of the template frame are rewritten in place;
 * checksums are not, XDP parsing ignores them). */
#ifndef XDP_NF_REPLAY_H
#define XDP_NF_REPLAY_H

#include <linux/types.h>

#define REPLAY_REC_MAX 48 /* bytes of a record: an IPv6 address pair and the ports fit (36) */

struct replay_cfg {
	__u32 off;    /* frame offset the record is written at */
	__u32 len;    /* bytes written: a multiple of 4, 4..REPLAY_REC_MAX */
	__u32 n_recs; /* records in rp_recs, >= 1 */
	__u32 n_seq;  /* entries of rp_seq (record indices); 0: records in order */
};

struct replay_rec {
	__u32 w[REPLAY_REC_MAX / 4];
};

#endif /* XDP_NF_REPLAY_H */

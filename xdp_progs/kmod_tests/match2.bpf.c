// SPDX-License-Identifier: GPL-2.0
/*
 * enetstl_match2_u16 driven by a struct kt_req packet: a = key[0..len) bytes, b = key[32..32+arg)
 * bytes (each at most 34 bytes, so oversized arrays reach the kfunc's own size check),
 * sigs = seed; out[0] = the kfunc's result, out[1] = enetstl_match_u16 of a | of b << 16 (the
 * two-call equivalent), ret = 0, or KT_ABSENT without the module.
 */
#include "common.h"
#include "enetstl.h"
#include "kmod_tests.h"

SEC("xdp")
int match2(struct xdp_md *ctx)
{
	struct kt_req *r = xdp_data(ctx);
	__u32 la, lb, sigs;

	if ((void *)(r + 1) > xdp_data_end(ctx))
		return XDP_ABORTED;
	la = r->len;
	lb = r->arg;
	sigs = r->seed;
	if (la < 1 || la > 34 || lb < 1 || lb > 34)
		return XDP_DROP;
	r->ret = KT_ABSENT;
	if (!bpf_ksym_exists(enetstl_match2_u16) || !bpf_ksym_exists(enetstl_match_u16))
		return XDP_PASS;
	/* the range checks above are lost to the verifier after spills: re-bound in registers */
	barrier_var(la);
	barrier_var(lb);
	la &= 63;
	lb &= 63;
	r->out[0] = enetstl_match2_u16((const __u16 *)r->key, la, (const __u16 *)(r->key + 32), lb,
				       sigs);
	r->out[1] = enetstl_match_u16((const __u16 *)r->key, la, sigs & 0xffff) |
		    enetstl_match_u16((const __u16 *)(r->key + 32), lb, sigs >> 16) << 16;
	r->ret = 0;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";

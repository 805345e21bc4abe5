/* SPDX-License-Identifier: GPL-2.0 */
/* Includes and small helpers every XDP program of the project uses.
 * Kernel types come from the uapi headers (see nf/bpf/build.py), not vmlinux.h. */
#ifndef XDP_NF_COMMON_H
#define XDP_NF_COMMON_H

#include <linux/types.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#ifndef likely
#define likely(x) __builtin_expect(!!(x), 1)
#endif
#ifndef unlikely
#define unlikely(x) __builtin_expect(!!(x), 0)
#endif

/* Mask for variable packet offsets. The verifier only grants access through `data + off` when
 * umax(off) + access size stays <= MAX_PACKET_OFF (0xffff): masking with 0xffff would make every
 * access fail. The linear part of an XDP frame is at most a page, so the mask never changes a
 * real offset. */
#define XDP_OFF_MASK 0x3fff

/* Frame bounds as pointers; every packet access goes through a check against data_end. */
static __always_inline void *xdp_data(const struct xdp_md *ctx)
{
	return (void *)(long)ctx->data;
}

static __always_inline void *xdp_data_end(const struct xdp_md *ctx)
{
	return (void *)(long)ctx->data_end;
}

/* Pointer to `size` bytes at `off` from the frame start, or NULL when they are not all inside
 * the frame. `off` may be a variable offset (e.g. struct pkt_meta.l4_off): the compare against
 * data_end is what the verifier needs. */
static __always_inline void *xdp_ptr(const struct xdp_md *ctx, __u32 off, __u32 size)
{
	void *data = xdp_data(ctx), *end = xdp_data_end(ctx);
	void *p;

	off &= XDP_OFF_MASK;
	p = data + off;
	if (p + size > end)
		return NULL;
	return p;
}

#endif /* XDP_NF_COMMON_H */

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Lane find / min in pure eBPF: the baselines for enetstl_find_u16 / _u32 / min_idx_u32.
 *
 * u16 lanes are compared four at a time in a u64 (SWAR).  The zero-lane test is exact (the
 * +0x7fff per lane never carries into the next lane), so the mask is the true match set; one
 * multiply gathers the four lane bits.  Same results as nf.algo.find_u16 / match_u16.
 * `arr` must be 8-byte aligned for the u16 forms when it lives on the stack.
 */
#ifndef ALGO_FIND_H
#define ALGO_FIND_H

#include <linux/types.h>

static __always_inline __u32 algo_eq4x16(__u64 w, __u64 pat)
{
	__u64 x = w ^ pat;
	__u64 nz = ((x & 0x7fff7fff7fff7fffull) + 0x7fff7fff7fff7fffull) | x;
	__u64 z = ~nz & 0x8000800080008000ull;

	return ((z >> 15) * 0x0001000200040008ull) >> 48 & 0xf;
}

/* High bit of each u16 lane set iff the lane of x is non-zero (exact: the +0x7fff never
 * carries into the next lane). */
static __always_inline __u64 algo_nz4x16(__u64 x)
{
	return (((x & 0x7fff7fff7fff7fffull) + 0x7fff7fff7fff7fffull) | x) & 0x8000800080008000ull;
}

/* Bit i set iff arr[i] == v, for the 16 u16 at arr: word j's lane-k "differs" bit goes to bit
 * 16k + 4j, the four words are ORed and inverted once, and one multiply moves bit 16k + 4j to
 * bit 48 + 4j + k (every partial product on its own bit, nothing carries into 48..63): one
 * gather for all 16 lanes instead of one per word. */
static __always_inline __u32 algo_match16_u16(const __u16 *arr, __u16 v)
{
	const __u64 *w = (const __u64 *)arr;
	__u64 pat = (__u64)v * 0x0001000100010001ull;
	__u64 ne = algo_nz4x16(w[0] ^ pat) >> 15 | algo_nz4x16(w[1] ^ pat) >> 11 |
		   algo_nz4x16(w[2] ^ pat) >> 7 | algo_nz4x16(w[3] ^ pat) >> 3;

	return ((~ne & 0x1111111111111111ull) * 0x0001000200040008ull) >> 48;
}

/* de Bruijn sequence 0x077CB531: the top 5 bits of (lowest set bit * it) name the bit */
static const __u8 algo_debruijn32[32] = {
	0, 1, 28, 2, 29, 14, 24, 3, 30, 22, 20, 15, 25, 17, 4, 8,
	31, 27, 13, 23, 21, 19, 16, 7, 26, 12, 18, 6, 11, 5, 10, 9,
};

/* Index of the lowest set bit of a non-zero m (BPF has no ctz instruction): no branch, one
 * multiply and one table read. */
static __always_inline __u32 algo_ctz32(__u32 m)
{
	return algo_debruijn32[((m & -m) * 0x077CB531u) >> 27];
}

/* Lowest set bit index of a non-zero mask (BPF has no ctz instruction): 4 steps. */
static __always_inline int algo_ctz16(__u32 m)
{
	int i = 0;

	if (!(m & 0xff)) { m >>= 8; i += 8; }
	if (!(m & 0xf)) { m >>= 4; i += 4; }
	if (!(m & 0x3)) { m >>= 2; i += 2; }
	if (!(m & 0x1)) i += 1;
	return i;
}

/* Index of the first arr[i] == v among 16, -1 if none. */
static __always_inline int algo_find16_u16(const __u16 *arr, __u16 v)
{
	__u32 m = algo_match16_u16(arr, v);

	return m ? algo_ctz16(m) : -1;
}

/* Bit i set iff arr[i] == v, for the 8 u32 at arr. */
static __always_inline __u32 algo_match8_u32(const __u32 *arr, __u32 v)
{
	__u32 m = 0;

#pragma unroll
	for (int i = 0; i < 8; i++)
		m |= (__u32)(arr[i] == v) << i;
	return m;
}

static __always_inline int algo_find8_u32(const __u32 *arr, __u32 v)
{
#pragma unroll
	for (int i = 0; i < 8; i++)
		if (arr[i] == v)
			return i;
	return -1;
}

/* Index of the first minimum among n (constant, 1..16) u32. */
static __always_inline int algo_min_idx_u32(const __u32 *vals, const int n)
{
	__u32 min = vals[0];
	int best = 0;

#pragma unroll
	for (int i = 1; i < n; i++) {
		if (vals[i] < min) {
			min = vals[i];
			best = i;
		}
	}
	return best;
}

#endif /* ALGO_FIND_H */

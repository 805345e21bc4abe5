/* SPDX-License-Identifier: GPL-2.0 */
/*
 * XXH32 in pure eBPF: the baseline the enetstl hash kfuncs are measured against.
 *
 * Call with a compile-time constant `len` (flow keys are fixed-size): clang then unrolls
 * every loop and no bound checks remain.  `key` must be 4-byte aligned (stack reads must be
 * aligned for the verifier; map values and packet data are fine).  Bit-identical to
 * nf.algo.xxh32 and to the module's enetstl_xxh32.
 */
#ifndef ALGO_XXH32_H
#define ALGO_XXH32_H

#include <linux/types.h>

#define ALGO_XXH_P1 0x9E3779B1u
#define ALGO_XXH_P2 0x85EBCA77u
#define ALGO_XXH_P3 0xC2B2AE3Du
#define ALGO_XXH_P4 0x27D4EB2Fu
#define ALGO_XXH_P5 0x165667B1u

/* Seed of row i of a multi-hash (same rule as the module: seed + i * 0x9E3779B1). */
#define ALGO_SEED_STEP 0x9E3779B1u
#define ALGO_ROW_SEED(seed, i) ((__u32)(seed) + (__u32)(i) * ALGO_SEED_STEP)

static __always_inline __u32 algo_rotl32(__u32 x, unsigned int r)
{
	return (x << r) | (x >> (32 - r));
}

static __always_inline __u32 algo_xxh_round(__u32 acc, __u32 w)
{
	acc += w * ALGO_XXH_P2;
	return algo_rotl32(acc, 13) * ALGO_XXH_P1;
}

static __always_inline __u32 algo_xxh32(const void *key, const __u32 len, __u32 seed)
{
	const __u32 *w = key;
	const __u8 *b = key;
	__u32 h, i = 0;

	if (len >= 16) {
		__u32 v1 = seed + ALGO_XXH_P1 + ALGO_XXH_P2, v2 = seed + ALGO_XXH_P2;
		__u32 v3 = seed, v4 = seed - ALGO_XXH_P1;

#pragma unroll
		for (i = 0; i + 16 <= len; i += 16) {
			v1 = algo_xxh_round(v1, w[i / 4]);
			v2 = algo_xxh_round(v2, w[i / 4 + 1]);
			v3 = algo_xxh_round(v3, w[i / 4 + 2]);
			v4 = algo_xxh_round(v4, w[i / 4 + 3]);
		}
		h = algo_rotl32(v1, 1) + algo_rotl32(v2, 7) + algo_rotl32(v3, 12) +
		    algo_rotl32(v4, 18);
	} else {
		h = seed + ALGO_XXH_P5;
	}
	h += len;
#pragma unroll
	for (; i + 4 <= len; i += 4) {
		h += w[i / 4] * ALGO_XXH_P3;
		h = algo_rotl32(h, 17) * ALGO_XXH_P4;
	}
#pragma unroll
	for (; i < len; i++) {
		h += b[i] * ALGO_XXH_P5;
		h = algo_rotl32(h, 11) * ALGO_XXH_P1;
	}
	h ^= h >> 15;
	h *= ALGO_XXH_P2;
	h ^= h >> 13;
	h *= ALGO_XXH_P3;
	h ^= h >> 16;
	return h;
}

/*
 * The d rows of the multi-hash (row i = algo_xxh32(key, len, ALGO_ROW_SEED(seed, i))) in one
 * pass: the key is read once and every word's product with P2 / P3 (and byte * P5) is computed
 * once for all rows, so a row costs only its adds, rotates and P1 multiplies.  `len` must be
 * a compile-time constant (<= 64), d <= 16; out[0..d) receives the hashes.
 */
static __always_inline void algo_xxh32_multi(const void *key, const __u32 len, __u32 seed,
					     const __u32 d, __u32 *out)
{
	const __u32 *w = key;
	const __u8 *b = key;
	__u32 m[16], t[16], mb[4];	/* word * P2 (stripes), word * P3 (tail), byte * P5 */
	const __u32 stripes = len / 16 * 4, words = len / 4;
	__u32 i, r;

#pragma unroll
	for (i = 0; i < 16; i++) {
		if (i < stripes)
			m[i] = w[i] * ALGO_XXH_P2;
		else if (i < words)
			t[i] = w[i] * ALGO_XXH_P3;
	}
#pragma unroll
	for (i = 0; i < 4; i++)
		if (words * 4 + i < len)
			mb[i] = b[words * 4 + i] * ALGO_XXH_P5;

	/* Rows stay a loop: unrolled, the independent rows get interleaved and spill past the
	 * 512-byte BPF stack; rolled, the shared products stay in registers. */
#pragma clang loop unroll(disable)
	for (r = 0; r < d; r++) {
		__u32 s = ALGO_ROW_SEED(seed, r), h;

		if (len >= 16) {
			__u32 v1 = s + ALGO_XXH_P1 + ALGO_XXH_P2, v2 = s + ALGO_XXH_P2;
			__u32 v3 = s, v4 = s - ALGO_XXH_P1;

#pragma unroll
			for (i = 0; i < stripes; i += 4) {
				v1 = algo_rotl32(v1 + m[i], 13) * ALGO_XXH_P1;
				v2 = algo_rotl32(v2 + m[i + 1], 13) * ALGO_XXH_P1;
				v3 = algo_rotl32(v3 + m[i + 2], 13) * ALGO_XXH_P1;
				v4 = algo_rotl32(v4 + m[i + 3], 13) * ALGO_XXH_P1;
			}
			h = algo_rotl32(v1, 1) + algo_rotl32(v2, 7) + algo_rotl32(v3, 12) +
			    algo_rotl32(v4, 18);
		} else {
			h = s + ALGO_XXH_P5;
		}
		h += len;
#pragma unroll
		for (i = stripes; i < words; i++)
			h = algo_rotl32(h + t[i], 17) * ALGO_XXH_P4;
#pragma unroll
		for (i = 0; i < 4; i++)
			if (words * 4 + i < len)
				h = algo_rotl32(h + mb[i], 11) * ALGO_XXH_P1;
		h ^= h >> 15;
		h *= ALGO_XXH_P2;
		h ^= h >> 13;
		h *= ALGO_XXH_P3;
		h ^= h >> 16;
		out[r] = h;
	}
}

#endif /* ALGO_XXH32_H */

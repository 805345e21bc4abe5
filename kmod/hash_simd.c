// SPDX-License-Identifier: GPL-2.0
/*
 * AVX2 xxh32 over 8 seeds at once: lane i computes xxh32(key, len, seeds[i]).
 *
 * The only translation unit built with -mavx2 (see Kbuild).  It holds nothing but the
 * vector routine, so the compiler cannot put vector instructions anywhere else in the
 * module; its only caller (hash.c) runs it between kernel_fpu_begin_mask(0) and
 * kernel_fpu_end().  GCC vector extensions, no <immintrin.h>: + * ^ << >> on u32x8 become
 * vpaddd / vpmulld / vpxor / vpslld / vpsrld.  Key words are broadcast, never gathered.
 */
#include <linux/types.h>
#include <linux/compiler_attributes.h>
#include <linux/minmax.h>
#include <linux/limits.h>
#include <linux/atomic.h>
#include <linux/unaligned.h>
#include "internal.h"

typedef u32 v8u32 __attribute__((vector_size(32)));
typedef u32 v8u32_una __attribute__((vector_size(32), aligned(4)));

#define P1 0x9E3779B1u
#define P2 0x85EBCA77u
#define P3 0xC2B2AE3Du
#define P4 0x27D4EB2Fu
#define P5 0x165667B1u

#define ROTL(x, r) (((x) << (r)) | ((x) >> (32 - (r))))

static __always_inline v8u32 bcast(u32 x)
{
	return (v8u32){ x, x, x, x, x, x, x, x };
}

/* The key word is the same in every lane: multiply once in a general register, then
 * broadcast (imul + vpbroadcastd instead of vpbroadcastd + vpmulld). */
static __always_inline v8u32 round32(v8u32 acc, u32 word)
{
	acc += bcast(word * P2);
	acc = ROTL(acc, 13);
	return acc * P1;
}

/* Lane i of a call starting at row `first` hashes with seed + (first + i) * ENETSTL_SEED_STEP. */
static __always_inline v8u32 xxh32x8(const u8 *p, u32 len, u32 seed0, u32 first)
{
	static const v8u32 lane_step = {
		0 * ENETSTL_SEED_STEP, 1 * ENETSTL_SEED_STEP, 2 * ENETSTL_SEED_STEP,
		3 * ENETSTL_SEED_STEP, 4 * ENETSTL_SEED_STEP, 5 * ENETSTL_SEED_STEP,
		6 * ENETSTL_SEED_STEP, 7 * ENETSTL_SEED_STEP,
	};
	const u8 *end = p + len;
	v8u32 seed = bcast(seed0 + first * ENETSTL_SEED_STEP) + lane_step;
	v8u32 h;

	if (len >= 16) {
		const u8 *limit = end - 16;
		v8u32 v1 = seed + (P1 + P2);
		v8u32 v2 = seed + P2;
		v8u32 v3 = seed;
		v8u32 v4 = seed - P1;

		do {
			v1 = round32(v1, get_unaligned_le32(p));
			v2 = round32(v2, get_unaligned_le32(p + 4));
			v3 = round32(v3, get_unaligned_le32(p + 8));
			v4 = round32(v4, get_unaligned_le32(p + 12));
			p += 16;
		} while (p <= limit);
		h = ROTL(v1, 1) + ROTL(v2, 7) + ROTL(v3, 12) + ROTL(v4, 18);
	} else {
		h = seed + P5;
	}
	h += len;
	while (p + 4 <= end) {
		h += bcast(get_unaligned_le32(p) * P3);
		h = ROTL(h, 17) * P4;
		p += 4;
	}
	while (p < end) {
		h += bcast(*p * P5);
		h = ROTL(h, 11) * P1;
		p++;
	}
	h ^= h >> 15;
	h *= P2;
	h ^= h >> 13;
	h *= P3;
	h ^= h >> 16;
	return h;
}

void enetstl_xxh32x8_avx2(const u8 *p, u32 len, u32 seed0, u32 first, u32 *out)
{
	*(v8u32_una *)out = xxh32x8(p, len, seed0, first);
}

static __always_inline u32 cm_bump(u32 *c, u32 inc, bool atomic)
{
	u32 v;

	if (atomic)
		return atomic_add_return(inc, (atomic_t *)c);
	v = *c + inc;
	*c = v;
	return v;
}

/*
 * Rows first..first+n-1 (n <= 8) of a count-min with power-of-two width w: the 8 lanes hash,
 * mask and add the row offsets in the vector unit; then one scalar load-add-store-min per row
 * (AVX2 has no scatter; lanes >= n are computed and dropped, never touched in memory).
 */
static __always_inline u32 cm_rows8(const u8 *p, const u32 len, u32 seed, u32 first, u32 n,
				    u32 *cnt, u32 w, u32 inc, bool atomic, u32 min)
{
	static const v8u32 lane = { 0, 1, 2, 3, 4, 5, 6, 7 };
	v8u32 ix = (xxh32x8(p, len, seed, first) & bcast(w - 1)) + (lane + first) * w;

	/* Rows n-1 down to 0, entered once by n (rows are disjoint, the min is order-free):
	 * no per-row test of n. */
#define BUMP(i) min = min(min, cm_bump(&cnt[ix[i]], inc, atomic))
	switch (n) {
	default:
	case 8: BUMP(7); fallthrough;
	case 7: BUMP(6); fallthrough;
	case 6: BUMP(5); fallthrough;
	case 5: BUMP(4); fallthrough;
	case 4: BUMP(3); fallthrough;
	case 3: BUMP(2); fallthrough;
	case 2: BUMP(1); fallthrough;
	case 1: BUMP(0);
	}
#undef BUMP
	return min;
}

static __always_inline u32 cm_avx2(const u8 *p, const u32 len, u32 seed, u32 *cnt, u32 d, u32 w,
				   u32 inc, bool atomic)
{
	u32 min = cm_rows8(p, len, seed, 0, d, cnt, w, inc, atomic, U32_MAX);

	if (d > 8)
		min = cm_rows8(p, len, seed, 8, d - 8, cnt, w, inc, atomic, min);
	return min;
}

/* Constant key lengths for the usual flow keys: no loop control left in the lanes. */
#define CM_AVX2_BY_LEN(atomic) \
	ENETSTL_RETURN_BY_KEY_LEN(cm_avx2, p, len, seed, cnt, d, w, inc, atomic)

/*
 * Whole count-min update (d in 1..16, w a power of two): hash x d, add, min; si = seed |
 * inc << 32 (six register arguments).  The caller brackets it with kernel_fpu_begin_mask(0) /
 * kernel_fpu_end().
 */
u32 enetstl_cm_avx2(const u8 *p, u32 len, u32 *cnt, u32 d, u32 w, u64 si)
{
	u32 seed = (u32)si, inc = si >> 32;

	CM_AVX2_BY_LEN(false)
}

u32 enetstl_cm_avx2_atomic(const u8 *p, u32 len, u32 *cnt, u32 d, u32 w, u64 si)
{
	u32 seed = (u32)si, inc = si >> 32;

	CM_AVX2_BY_LEN(true)
}

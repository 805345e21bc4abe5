// SPDX-License-Identifier: GPL-2.0
/*
 * Hash kfuncs: CRC32-C, xxh32, and the fused multi-hash (d seeds, 8 lanes per AVX2 step)
 * with count-min update.
 *
 * Definitions (bit-identical to nf/algo.py and xdp_progs/include/algo/):
 *  - enetstl_crc32c(data, len, seed): standard CRC-32C (Castagnoli, reflected 0x82F63B78)
 *    with `seed` as the initial value: ~crc32c_update(~seed, data); seed 0 gives the usual
 *    check value 0xE3069283 for "123456789".
 *  - enetstl_xxh32(data, len, seed): XXH32.
 *  - multi-hash: h_i = xxh32(key, len, seed + i * ENETSTL_SEED_STEP), i < d.
 *  - count-min: counter[i][h_i mod w] += inc for every row; returns the minimum updated value.
 *
 * The crc32 instruction works on general registers: no FPU bracket.  Only the xxh32x8 lanes
 * use vector registers, inside kernel_fpu_begin_mask(0) (integer SIMD needs neither x87 init
 * nor MXCSR) and only when irq_fpu_usable(); otherwise the scalar path runs.
 */
#include <linux/kernel.h>
#include <linux/moduleparam.h>
#include <linux/errno.h>
#include <linux/unaligned.h>
#include <linux/bitops.h>
#include <asm/fpu/api.h>
#include "internal.h"

#define P1 0x9E3779B1u
#define P2 0x85EBCA77u
#define P3 0xC2B2AE3Du
#define P4 0x27D4EB2Fu
#define P5 0x165667B1u

static __always_inline u32 xxh_round(u32 acc, u32 w)
{
	acc += w * P2;
	acc = rol32(acc, 13);
	return acc * P1;
}

u32 enetstl_xxh32_scalar(const u8 *p, u32 len, u32 seed)
{
	const u8 *end = p + len;
	u32 h;

	if (len >= 16) {
		const u8 *limit = end - 16;
		u32 v1 = seed + P1 + P2, v2 = seed + P2, v3 = seed, v4 = seed - P1;

		do {
			v1 = xxh_round(v1, get_unaligned_le32(p));
			v2 = xxh_round(v2, get_unaligned_le32(p + 4));
			v3 = xxh_round(v3, get_unaligned_le32(p + 8));
			v4 = xxh_round(v4, get_unaligned_le32(p + 12));
			p += 16;
		} while (p <= limit);
		h = rol32(v1, 1) + rol32(v2, 7) + rol32(v3, 12) + rol32(v4, 18);
	} else {
		h = seed + P5;
	}
	h += len;
	while (p + 4 <= end) {
		h += get_unaligned_le32(p) * P3;
		h = rol32(h, 17) * P4;
		p += 4;
	}
	while (p < end) {
		h += *p * P5;
		h = rol32(h, 11) * P1;
		p++;
	}
	h ^= h >> 15;
	h *= P2;
	h ^= h >> 13;
	h *= P3;
	h ^= h >> 16;
	return h;
}

/* Slice-by-8 tables for the CPUs without SSE4.2 (and for force_scalar). */
static u32 crc_tab[8][256] __read_mostly;

void enetstl_hash_init(void)
{
	u32 i, j, c;

	for (i = 0; i < 256; i++) {
		c = i;
		for (j = 0; j < 8; j++)
			c = (c >> 1) ^ (0x82F63B78u & -(c & 1));
		crc_tab[0][i] = c;
	}
	for (i = 0; i < 256; i++)
		for (j = 1; j < 8; j++)
			crc_tab[j][i] = (crc_tab[j - 1][i] >> 8) ^ crc_tab[0][crc_tab[j - 1][i] & 0xff];
}

static u32 crc32c_sw(u32 crc, const u8 *p, u32 len)
{
	while (len >= 8) {
		u32 lo = get_unaligned_le32(p) ^ crc, hi = get_unaligned_le32(p + 4);

		crc = crc_tab[7][lo & 0xff] ^ crc_tab[6][(lo >> 8) & 0xff] ^
		      crc_tab[5][(lo >> 16) & 0xff] ^ crc_tab[4][lo >> 24] ^
		      crc_tab[3][hi & 0xff] ^ crc_tab[2][(hi >> 8) & 0xff] ^
		      crc_tab[1][(hi >> 16) & 0xff] ^ crc_tab[0][hi >> 24];
		p += 8;
		len -= 8;
	}
	while (len--)
		crc = (crc >> 8) ^ crc_tab[0][(crc ^ *p++) & 0xff];
	return crc;
}

static u32 crc32c_hw(u32 crc, const u8 *p, u32 len)
{
	u64 c = crc;

	while (len >= 8) {
		asm("crc32q %1, %0" : "+r"(c) : "rm"(get_unaligned((const u64 *)p)));
		p += 8;
		len -= 8;
	}
	crc = c;
	if (len >= 4) {
		asm("crc32l %1, %0" : "+r"(crc) : "rm"(get_unaligned((const u32 *)p)));
		p += 4;
		len -= 4;
	}
	while (len--)
		asm("crc32b %1, %0" : "+r"(crc) : "rm"(*p++));
	return crc;
}

/*
 * Scalar multi-hash for keys of at most ROWS_MAX_LEN bytes: the key words are loaded and
 * multiplied by their prime once, then each row runs only its seed-dependent part (3 ops per
 * stripe word, merge, tail, finalise), straight-line for the common lengths.  About half the
 * instructions of d separate enetstl_xxh32_scalar calls.
 */
#define ROWS_MAX_LEN	64

static void xxh32_rows_scalar(const u8 *p, u32 len, u32 seed, u32 d, u32 *out)
{
	u32 m[ROWS_MAX_LEN / 4] __uninitialized, tb[3] __uninitialized;
	u32 ns = len / 16, nw = len / 4, nt = len & 3, i, r;

	for (i = 0; i < ns * 4; i++)
		m[i] = get_unaligned_le32(p + 4 * i) * P2;
	for (; i < nw; i++)
		m[i] = get_unaligned_le32(p + 4 * i) * P3;
	for (i = 0; i < nt; i++)
		tb[i] = p[nw * 4 + i] * P5;
	for (r = 0; r < d; r++, seed += ENETSTL_SEED_STEP) {
		u32 h;

		if (ns) {
			u32 v1 = seed + P1 + P2, v2 = seed + P2, v3 = seed, v4 = seed - P1;

			for (i = 0; i < ns * 4; i += 4) {
				v1 = rol32(v1 + m[i], 13) * P1;
				v2 = rol32(v2 + m[i + 1], 13) * P1;
				v3 = rol32(v3 + m[i + 2], 13) * P1;
				v4 = rol32(v4 + m[i + 3], 13) * P1;
			}
			h = rol32(v1, 1) + rol32(v2, 7) + rol32(v3, 12) + rol32(v4, 18);
		} else {
			h = seed + P5;
		}
		h += len;
		for (i = ns * 4; i < nw; i++)
			h = rol32(h + m[i], 17) * P4;
		for (i = 0; i < nt; i++)
			h = rol32(h + tb[i], 11) * P1;
		h ^= h >> 15;
		h *= P2;
		h ^= h >> 13;
		h *= P3;
		h ^= h >> 16;
		out[r] = h;
	}
}

/*
 * Below these many rows the scalar rows beat the AVX2 lanes, whose fixed cost (irq_fpu_usable,
 * kernel_fpu_begin_mask/end, 8 lanes computed whatever d is) is several scalar rows:
 * measured with tests/kmod/test_kfunc_bench.py (kmod/BENCH.md) and, for the count-min, in the
 * sketch with `python -m nf.bench.sketch profile` (16-byte key, whole kfunc call: fused scalar
 * ~80 + 42/row, AVX2 ~261 + 8/row up to 8 rows; crossover between d = 5 and 6).  Longer keys
 * keep AVX2.
 */
#define SIMD_MIN_D	ENETSTL_SIMD_MIN_D
#define CM_SIMD_MIN_D	ENETSTL_CM_SIMD_MIN_D

/* Multi-hash core: d in 1..16, out has room for 16 (SIMD lanes past d are discarded). */
static void hash_d(const u8 *key, u32 len, u32 seed, u32 d, u32 *out)
{
	u32 i;

	if (d < SIMD_MIN_D && len <= ROWS_MAX_LEN) {
		xxh32_rows_scalar(key, len, seed, d, out);
		enetstl_count(CTR_HASH_SCALAR);
		return;
	}
	if (enetstl_has_avx2 && !READ_ONCE(enetstl_force_scalar)) {
		if (irq_fpu_usable()) {
			kernel_fpu_begin_mask(0);
			enetstl_xxh32x8_avx2(key, len, seed, 0, out);
			if (d > 8)
				enetstl_xxh32x8_avx2(key, len, seed, 8, out + 8);
			kernel_fpu_end();
			enetstl_count(CTR_HASH_SIMD);
			return;
		}
		enetstl_count(CTR_FPU_BUSY);
	}
	if (len <= ROWS_MAX_LEN)
		xxh32_rows_scalar(key, len, seed, d, out);
	else
		for (i = 0; i < d; i++)
			out[i] = enetstl_xxh32_scalar(key, len, seed + i * ENETSTL_SEED_STEP);
	enetstl_count(CTR_HASH_SCALAR);
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
 * Fused scalar count-min for small d: each row's hash goes straight into its counter bump, no
 * hash array, no FPU bracket.  Instantiated with a constant `len` for the usual flow-key
 * lengths, so the key words sit in registers (loaded and multiplied once) and every row is
 * straight-line code.  Power-of-two w only.  Bit-identical to xxh32 (see enetstl_xxh32_scalar).
 */
static __always_inline u32 cm_fused_rows(const u8 *p, const u32 len, u32 *cnt, u32 d, u32 w,
					 u32 seed, u32 inc, bool atomic)
{
	u32 m[ROWS_MAX_LEN / 4] __uninitialized, tb[3] __uninitialized;
	const u32 ns = len / 16, nw = len / 4, nt = len & 3;
	u32 i, r, min = U32_MAX, mask = w - 1;

#pragma GCC unroll 16
	for (i = 0; i < ns * 4; i++)
		m[i] = get_unaligned_le32(p + 4 * i) * P2;
#pragma GCC unroll 16
	for (i = ns * 4; i < nw; i++)
		m[i] = get_unaligned_le32(p + 4 * i) * P3;
#pragma GCC unroll 3
	for (i = 0; i < nt; i++)
		tb[i] = p[nw * 4 + i] * P5;
	for (r = 0; r < d; r++, seed += ENETSTL_SEED_STEP, cnt += w) {
		u32 h;

		if (ns) {
			u32 v1 = seed + P1 + P2, v2 = seed + P2, v3 = seed, v4 = seed - P1;

#pragma GCC unroll 4
			for (i = 0; i < ns * 4; i += 4) {
				v1 = rol32(v1 + m[i], 13) * P1;
				v2 = rol32(v2 + m[i + 1], 13) * P1;
				v3 = rol32(v3 + m[i + 2], 13) * P1;
				v4 = rol32(v4 + m[i + 3], 13) * P1;
			}
			h = rol32(v1, 1) + rol32(v2, 7) + rol32(v3, 12) + rol32(v4, 18);
		} else {
			h = seed + P5;
		}
		h += len;
#pragma GCC unroll 4
		for (i = ns * 4; i < nw; i++)
			h = rol32(h + m[i], 17) * P4;
#pragma GCC unroll 3
		for (i = 0; i < nt; i++)
			h = rol32(h + tb[i], 11) * P1;
		h ^= h >> 15;
		h *= P2;
		h ^= h >> 13;
		h *= P3;
		h ^= h >> 16;
		min = min(min, cm_bump(&cnt[h & mask], inc, atomic));
	}
	return min;
}

#define CM_FUSED_BY_LEN(atomic) \
	ENETSTL_RETURN_BY_KEY_LEN(cm_fused_rows, p, len, cnt, d, w, seed, inc, atomic)

/*
 * The fast paths take six register arguments (seed and inc packed in `si`: seed | inc << 32)
 * and return the kfunc's own type, so the kfunc reaches them with a jump, not a call, and
 * keeps no frame of its own.  One instance per mode, so no row tests `atomic`.
 */
/* No stack protector: the only stack arrays are the key products, indexed below
 * ROWS_MAX_LEN / 4 by construction (the canary costs ~8 instructions a call). */
static noinline __no_stack_protector s64 cm_fused(const u8 *p, u32 len, u32 *cnt, u32 d, u32 w, u64 si)
{
	u32 seed = (u32)si, inc = si >> 32;

	CM_FUSED_BY_LEN(false)
}

static noinline __no_stack_protector s64 cm_fused_atomic(const u8 *p, u32 len, u32 *cnt, u32 d, u32 w, u64 si)
{
	u32 seed = (u32)si, inc = si >> 32;

	CM_FUSED_BY_LEN(true)
}

/*
 * Rows from which enetstl_cm_add* takes the AVX2 path (keys <= ROWS_MAX_LEN bytes, power-of-two
 * w); below it the fused scalar rows are cheaper than the FPU bracket.  A parameter so the
 * crossover can be re-measured in one boot (tests/kmod/test_kfunc_bench.py); default
 * ENETSTL_CM_SIMD_MIN_D.
 */
static unsigned int cm_simd_min_d = CM_SIMD_MIN_D;
module_param(cm_simd_min_d, uint, 0644);
MODULE_PARM_DESC(cm_simd_min_d, "enetstl_cm_add*: AVX2 from this many rows (keys <= 64 B)");

/* Long keys or a width that is not a power of two: the hash array, then the bumps. */
static noinline u32 cm_slow(const u8 *key, u32 len, u32 *cnt, u32 d, u32 w, u32 seed, u32 inc,
			    bool atomic)
{
	u32 h[ENETSTL_MAX_D] __uninitialized, i, min = U32_MAX;

	hash_d(key, len, seed, d, h);
	if (!(w & (w - 1))) {
		u32 mask = w - 1;

		for (i = 0; i < d; i++, cnt += w)
			min = min(min, cm_bump(&cnt[h[i] & mask], inc, atomic));
		return min;
	}
	for (i = 0; i < d; i++, cnt += w)
		min = min(min, cm_bump(&cnt[h[i] % w], inc, atomic));
	return min;
}

/*
 * The count-min kfuncs.  The header lives in memory BPF and user space can write, so d, w and
 * seed are read once and checked against the table size the verifier proved (table__sz), and
 * only the checked copies are used.  The verifier already guarantees key and table are valid
 * for their sizes; it lets a NULL buffer through only with size 0, and then nothing is read
 * (a table under sizeof(hdr) is refused before any access, a 0-byte key is never loaded).
 *  - key <= 64 B, power-of-two w, d >= cm_simd_min_d, AVX2: one FPU bracket around
 *    hash x 8 lanes + index + bumps (hash_simd.c); the scalar rows if the FPU is busy;
 *  - key <= 64 B, power-of-two w, fewer rows: the fused scalar rows (no FPU), inline;
 *  - longer keys / other widths: cm_slow.
 * The kfunc itself only picks the path (from an unchecked read of d: either path is correct
 * for any d, and each checks the header itself) and jumps to it, so each path runs in one
 * frame: a frame shared by both costs the AVX2 path the scalar rows' register saves, a
 * separate function for the rows costs the scalar path ~20 instructions.
 */
static __always_inline s64 cm_checked(const void *key, u32 key__sz, void *table, u32 table__sz,
				      u32 inc, bool atomic, bool simd)
{
	struct enetstl_cm_hdr *hdr = table;
	const u8 *p = key;
	u32 d, w, seed, len = key__sz;
	u32 *cnt;

	if (unlikely(len > ENETSTL_MAX_KEY || table__sz < sizeof(*hdr)))
		return -EINVAL;
	d = READ_ONCE(hdr->d);
	w = READ_ONCE(hdr->w);
	seed = READ_ONCE(hdr->seed);
	/* Rows are bounded by the table the caller passed, not by what the header claims. */
	if (unlikely(d - 1 >= ENETSTL_MAX_D || !w || READ_ONCE(hdr->flags) ||
		     (u64)d * w * sizeof(u32) > table__sz - sizeof(*hdr) ||
		     !IS_ALIGNED((unsigned long)table, 4)))
		return -EINVAL;
	cnt = (u32 *)(hdr + 1);
	if (unlikely(len > ROWS_MAX_LEN || (w & (w - 1))))
		return cm_slow(p, len, cnt, d, w, seed, inc, atomic);
	if (simd) {
		u64 si = seed | (u64)inc << 32;
		u32 min;

		if (likely(irq_fpu_usable())) {
			kernel_fpu_begin_mask(0);
			if (atomic)
				min = enetstl_cm_avx2_atomic(p, len, cnt, d, w, si);
			else
				min = enetstl_cm_avx2(p, len, cnt, d, w, si);
			kernel_fpu_end();
			enetstl_count(CTR_HASH_SIMD);
			return min;
		}
		enetstl_count(CTR_FPU_BUSY);
		enetstl_count(CTR_HASH_SCALAR);
		return atomic ? cm_fused_atomic(p, len, cnt, d, w, si) :
				cm_fused(p, len, cnt, d, w, si);
	}
	enetstl_count(CTR_HASH_SCALAR);
	CM_FUSED_BY_LEN(atomic)
}

/* No stack protector: the only stack arrays are the inline rows' key products (see cm_fused). */
#define CM_PATH(name, atomic, simd)							\
static noinline __no_stack_protector s64 name(const void *key, u32 key__sz, void *table,	\
					      u32 table__sz, u32 inc)			\
{											\
	return cm_checked(key, key__sz, table, table__sz, inc, atomic, simd);		\
}
CM_PATH(cm_add_small, false, false)
CM_PATH(cm_add_small_atomic, true, false)
CM_PATH(cm_add_simd, false, true)
CM_PATH(cm_add_simd_atomic, true, true)

static __always_inline bool cm_want_simd(void *table, u32 table__sz)
{
	return table__sz >= sizeof(struct enetstl_cm_hdr) &&
	       READ_ONCE(((struct enetstl_cm_hdr *)table)->d) >= READ_ONCE(cm_simd_min_d) &&
	       enetstl_has_avx2 && !READ_ONCE(enetstl_force_scalar);
}

__bpf_kfunc_start_defs();

__bpf_kfunc u32 enetstl_crc32c(const void *data, u32 data__sz, u32 seed)
{
	if (!data || data__sz > ENETSTL_MAX_DATA)
		return 0;
	if (enetstl_has_sse42 && !READ_ONCE(enetstl_force_scalar)) {
		enetstl_count(CTR_CRC_HW);
		return ~crc32c_hw(~seed, data, data__sz);
	}
	enetstl_count(CTR_CRC_SW);
	return ~crc32c_sw(~seed, data, data__sz);
}

__bpf_kfunc u32 enetstl_xxh32(const void *data, u32 data__sz, u32 seed)
{
	if (!data || data__sz > ENETSTL_MAX_DATA)
		return 0;
	return enetstl_xxh32_scalar(data, data__sz, seed);
}

__bpf_kfunc int enetstl_hash_multi(const void *key, u32 key__sz, u32 *out, u32 out__sz, u32 seed)
{
	u32 h[ENETSTL_MAX_D] __uninitialized, d = out__sz / sizeof(u32), i;

	if (!key || !out || key__sz > ENETSTL_MAX_KEY || out__sz % sizeof(u32) || !d ||
	    d > ENETSTL_MAX_D)
		return -EINVAL;
	hash_d(key, key__sz, seed, d, h);
	for (i = 0; i < d; i++)
		WRITE_ONCE(out[i], h[i]);	/* one store each, not a rep movs memcpy */
	return d;
}

__bpf_kfunc s64 enetstl_cm_add(const void *key, u32 key__sz, void *table, u32 table__sz, u32 inc)
{
	if (cm_want_simd(table, table__sz))
		return cm_add_simd(key, key__sz, table, table__sz, inc);
	return cm_add_small(key, key__sz, table, table__sz, inc);
}

__bpf_kfunc s64 enetstl_cm_add_atomic(const void *key, u32 key__sz, void *table, u32 table__sz,
				      u32 inc)
{
	if (cm_want_simd(table, table__sz))
		return cm_add_simd_atomic(key, key__sz, table, table__sz, inc);
	return cm_add_small_atomic(key, key__sz, table, table__sz, inc);
}

__bpf_kfunc_end_defs();

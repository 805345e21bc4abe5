// SPDX-License-Identifier: GPL-2.0
/*
 * Compare kfuncs: find/match a u16 among up to 16 (or in two such arrays at once), a cuckoo
 * table's first candidate (hash and both buckets' signature compares in one call), a bucket
 * table's whole lookup (hash, seqcount, signatures, key, value copy in one call), a u32 among
 * up to 8, key equality of any length, index of the minimum of up to 16 u32.
 *
 * These run on general registers (SWAR: 4 u16 lanes per u64), not AVX2: a 16-lane compare is
 * ~20 instructions this way, while the FPU bracket alone (irq_fpu_usable + begin + end) costs
 * more than the vector compare it would protect (design notes §6).  The lane test is exact
 * (no borrow between lanes), so the mask is the true match set, not a "maybe" set.
 */
#include <linux/kernel.h>
#include <linux/errno.h>
#include <linux/unaligned.h>
#include <linux/bitops.h>
#include <linux/bpf.h>
#include <linux/log2.h>
#include "internal.h"

#define LANES16_LO	0x0001000100010001ull
#define LANES16_7FFF	0x7fff7fff7fff7fffull
#define LANES16_HI	0x8000800080008000ull

/* Bits 0..3 set for the u16 lanes of `w` equal to the lanes of `pat`. */
static __always_inline u32 eq4x16(u64 w, u64 pat)
{
	u64 x = w ^ pat;
	/* high bit of a lane set iff the lane is non-zero; the +0x7fff never carries out */
	u64 nz = ((x & LANES16_7FFF) + LANES16_7FFF) | x;
	u64 z = ~nz & LANES16_HI;

	/* gather bits 15/31/47/63 into 48..51: the four products land on distinct bits */
	return ((z >> 15) * 0x0001000200040008ull) >> 48 & 0xf;
}

/* High bit of each u16 lane of the result set iff that lane of `w` differs from `pat`. */
static __always_inline u64 ne4x16_hi(u64 w, u64 pat)
{
	u64 x = w ^ pat;

	return (((x & LANES16_7FFF) + LANES16_7FFF) | x) & LANES16_HI;
}

/*
 * All 16 lanes: word j's lane k "differs" bit is moved to bit 16k + 4j (shift by 15 - 4j), the
 * four words ORed, inverted once; one multiply then transposes bit 16k + 4j to bit 48 + 4j + k
 * (every partial product lands on a distinct bit, so nothing carries into 48..63).
 */
static __always_inline u32 match16x16(const u16 *arr, u64 pat)
{
	u64 ne = ne4x16_hi(get_unaligned((const u64 *)arr), pat) >> 15 |
		 ne4x16_hi(get_unaligned((const u64 *)(arr + 4)), pat) >> 11 |
		 ne4x16_hi(get_unaligned((const u64 *)(arr + 8)), pat) >> 7 |
		 ne4x16_hi(get_unaligned((const u64 *)(arr + 12)), pat) >> 3;

	return ((~ne & 0x1111111111111111ull) * 0x0001000200040008ull) >> 48;
}

static __always_inline u32 match16(const u16 *arr, u32 n, u32 v)
{
	u64 pat = (u64)(u16)v * LANES16_LO;
	u32 mask = 0, i = 0;

	/* The common case (a full 16-slot bucket): four straight-line SWAR words, no loop. */
	if (n == 16)
		return match16x16(arr, pat);

	for (; i + 4 <= n; i += 4)
		mask |= eq4x16(get_unaligned((const u64 *)(arr + i)), pat) << i;
	for (; i < n; i++)
		mask |= (u32)(get_unaligned(arr + i) == (u16)v) << i;
	return mask;
}

static __always_inline u32 match32(const u32 *arr, u32 n, u32 v)
{
	u32 mask = 0, i;

	for (i = 0; i < n; i++)
		mask |= (u32)(get_unaligned(arr + i) == v) << i;
	return mask;
}

__bpf_kfunc_start_defs();

/* Index of the first u16 == v among arr__sz / 2 (at most 16), -1 if none, -EINVAL on bad size. */
__bpf_kfunc int enetstl_find_u16(const u16 *arr, u32 arr__sz, u32 v)
{
	u32 m;

	if (!arr || !arr__sz || arr__sz > 32 || arr__sz & 1)
		return -EINVAL;
	m = match16(arr, arr__sz / 2, v);
	return m ? __ffs(m) : -1;
}

/* Bit i set iff arr[i] == v; 0 on bad size. */
__bpf_kfunc u32 enetstl_match_u16(const u16 *arr, u32 arr__sz, u32 v)
{
	if (!arr || !arr__sz || arr__sz > 32 || arr__sz & 1)
		return 0;
	return match16(arr, arr__sz / 2, v);
}

/*
 * Two buckets in one call (a cuckoo lookup's primary and alternate): bits 0..15 = lanes of `a`
 * equal to the low 16 bits of `sigs`, bits 16..31 = lanes of `b` equal to its high 16 bits.
 * Each array holds 1..16 u16 (its __sz even, 2..32); 0 if either size is bad.  One call
 * instead of two halves the entry / argument-check overhead, which is most of a 16-lane match.
 */
__bpf_kfunc u32 enetstl_match2_u16(const u16 *a, u32 a__sz, const u16 *b, u32 b__sz, u32 sigs)
{
	if (!a || !b || !a__sz || a__sz > 32 || a__sz & 1 || !b__sz || b__sz > 32 || b__sz & 1)
		return 0;
	/* full 16-slot buckets take match16's straight-line match16x16 */
	return match16(a, a__sz / 2, sigs & 0xffff) | match16(b, b__sz / 2, sigs >> 16) << 16;
}

__bpf_kfunc int enetstl_find_u32(const u32 *arr, u32 arr__sz, u32 v)
{
	u32 m;

	if (!arr || !arr__sz || arr__sz > 32 || arr__sz & 3)
		return -EINVAL;
	m = match32(arr, arr__sz / 4, v);
	return m ? __ffs(m) : -1;
}

__bpf_kfunc u32 enetstl_match_u32(const u32 *arr, u32 arr__sz, u32 v)
{
	if (!arr || !arr__sz || arr__sz > 32 || arr__sz & 3)
		return 0;
	return match32(arr, arr__sz / 4, v);
}

/* 1 if the n bytes at a and b are equal. */
static __always_inline int bytes_eq(const void *a, const void *b, u32 n)
{
	const u8 *pa = a, *pb = b;
	u64 diff = 0;

	/* Flow keys are short: up to 64 bytes in straight-line u64 words, the rest in the loops. */
	if (n <= 64 && n >= 8) {
		u32 t = n & ~7u;

		switch (t) {
		case 64: diff |= get_unaligned((const u64 *)(pa + 56)) ^ get_unaligned((const u64 *)(pb + 56));
			fallthrough;
		case 56: diff |= get_unaligned((const u64 *)(pa + 48)) ^ get_unaligned((const u64 *)(pb + 48));
			fallthrough;
		case 48: diff |= get_unaligned((const u64 *)(pa + 40)) ^ get_unaligned((const u64 *)(pb + 40));
			fallthrough;
		case 40: diff |= get_unaligned((const u64 *)(pa + 32)) ^ get_unaligned((const u64 *)(pb + 32));
			fallthrough;
		case 32: diff |= get_unaligned((const u64 *)(pa + 24)) ^ get_unaligned((const u64 *)(pb + 24));
			fallthrough;
		case 24: diff |= get_unaligned((const u64 *)(pa + 16)) ^ get_unaligned((const u64 *)(pb + 16));
			fallthrough;
		case 16: diff |= get_unaligned((const u64 *)(pa + 8)) ^ get_unaligned((const u64 *)(pb + 8));
			fallthrough;
		default: diff |= get_unaligned((const u64 *)pa) ^ get_unaligned((const u64 *)pb);
		}
		n -= t;
		pa += t;
		pb += t;
		if (n >= 4) {
			diff |= get_unaligned((const u32 *)pa) ^ get_unaligned((const u32 *)pb);
			n -= 4;
			pa += 4;
			pb += 4;
		}
	}
	for (; n >= 8; n -= 8, pa += 8, pb += 8)
		diff |= get_unaligned((const u64 *)pa) ^ get_unaligned((const u64 *)pb);
	for (; n; n--)
		diff |= *pa++ ^ *pb++;
	return diff == 0;
}

/* 1 if the two buffers have the same length and bytes, 0 if not, -EINVAL if > 4096 bytes. */
__bpf_kfunc int enetstl_key_eq(const void *a, u32 a__sz, const void *b, u32 b__sz)
{
	if (!a || !b || a__sz > 4096 || b__sz > 4096)
		return -EINVAL;
	if (a__sz != b__sz)
		return 0;
	return bytes_eq(a, b, a__sz);
}

/* Word i of the key times the table's secret multiplier k[i] (the keyed words of both hashes). */
#define CK_W(p, hk, i) (get_unaligned((const u64 *)(p) + (i)) * (hk)->k[i])

/* CRC-32C (initial value 0) of the keyed words; the SSE4.2 instruction inline (no call). */
static __always_inline u32 ck_crc32c(const u8 *p, u32 words, const struct enetstl_ck_hash *hk)
{
	u64 c = ~0u, buf[ENETSTL_CK_WORDS];
	u32 i;

	if (unlikely(!enetstl_has_sse42 || READ_ONCE(enetstl_force_scalar))) {
		for (i = 0; i < words; i++)
			buf[i] = cpu_to_le64(CK_W(p, hk, i));
		return enetstl_crc32c(buf, words * 8, 0);
	}
	if (words == ENETSTL_CK_WORDS) {	/* the 5-tuple key: five instructions, no loop */
		asm("crc32q %1, %0" : "+r"(c) : "r"(CK_W(p, hk, 0)));
		asm("crc32q %1, %0" : "+r"(c) : "r"(CK_W(p, hk, 1)));
		asm("crc32q %1, %0" : "+r"(c) : "r"(CK_W(p, hk, 2)));
		asm("crc32q %1, %0" : "+r"(c) : "r"(CK_W(p, hk, 3)));
		asm("crc32q %1, %0" : "+r"(c) : "r"(CK_W(p, hk, 4)));
		return ~(u32)c;
	}
	for (i = 0; i < words; i++)
		asm("crc32q %1, %0" : "+r"(c) : "r"(CK_W(p, hk, i)));
	return ~(u32)c;
}

static __always_inline u32 ck_mul64(const u8 *p, u32 words, const struct enetstl_ck_hash *hk)
{
	u64 a = 0;
	u32 i;

	if (words == ENETSTL_CK_WORDS)	/* the 5-tuple key: five independent multiplies */
		a = CK_W(p, hk, 0) + CK_W(p, hk, 1) + CK_W(p, hk, 2) + CK_W(p, hk, 3) +
		    CK_W(p, hk, 4);
	else
		for (i = 0; i < words; i++)
			a += CK_W(p, hk, i);
	a ^= a >> 32;
	a *= ENETSTL_MUL64_FIN;
	a ^= a >> 32;
	return (u32)a;
}

/*
 * The first key-index candidate of `key` in a cuckoo table (layout, placement and the keyed
 * hash in enetstl.h) and its hash: hash, the 16-lane signature compare of the primary bucket,
 * and of the alternate only when the primary has no match; the key index of the first matching
 * slot.  The caller compares that entry's key; bit 30 of the result says a mismatch is not yet
 * a miss (the alternate bucket was not read, or other slots matched too).
 * Readers take no lock; the caller's writer protocol decides what a concurrent move means.
 *
 * The key store is not an argument: on 6.12 a second `__map` argument whose map has no BTF
 * record crashes the verifier (check_kfunc_args reads record->wq_off of a NULL record).  The
 * hash's secret comes as memory, not rodata: 6.12 checks a kfunc's memory arguments for
 * writing too, so a pointer into a read-only map is refused.
 */
__bpf_kfunc u64 enetstl_cuckoo_cand(void *buckets__map, const void *key, u32 key__sz,
				    const void *hash, u32 hash__sz)
{
	const struct enetstl_ck_hash *hk = hash;
	const struct bpf_array *ba = buckets__map;
	const struct enetstl_ck_bucket *b1, *b2;
	u32 h, sig, mask, x, b, m1, m2, words = key__sz / 8;
	u64 pat;

	enetstl_count(CTR_CUCKOO);
	/* the verifier passes a map, key__sz readable bytes at key and hash__sz at hash: no NULL
	 * checks (an empty key hashes like any other) */
	if (key__sz & 7 || words > ENETSTL_CK_WORDS || hash__sz < sizeof(*hk) ||
	    ba->map.map_type != BPF_MAP_TYPE_ARRAY ||
	    ba->map.value_size < sizeof(struct enetstl_ck_bucket) ||
	    /* plain data only: no spin locks, timers or kptrs inside the values we read */
	    !IS_ERR_OR_NULL(ba->map.record) ||
	    ba->map.max_entries < 2 || !is_power_of_2(ba->map.max_entries))
		return ENETSTL_CK_ERR;
	if (hk->kind == ENETSTL_CK_HASH_MUL64)
		h = ck_mul64(key, words, hk);
	else if (hk->kind == ENETSTL_CK_HASH_CRC32C)
		h = ck_crc32c(key, words, hk);
	else
		return ENETSTL_CK_ERR;
	sig = h >> 16 ? h >> 16 : 1;
	mask = ba->map.max_entries - 1;
	b = h & mask;
	x = sig * ENETSTL_CK_SIG_MIX;
	x ^= x >> 16;
	pat = (u64)sig * LANES16_LO;
	b1 = (const void *)(ba->value + (u64)ba->elem_size * b);
	m1 = match16x16(b1->sig, pat);
	/* a candidate in the primary bucket: the alternate is not read (MORE: a mismatch here
	 * is not yet a miss) */
	if (m1)
		return (u64)h << 32 | ENETSTL_CK_MORE |
		       (READ_ONCE(b1->idx[__ffs(m1)]) & ENETSTL_CK_IDX);
	b2 = (const void *)(ba->value + (u64)ba->elem_size * ((b ^ ((x & mask) | 1)) & mask));
	m2 = match16x16(b2->sig, pat);
	if (m2)
		return (u64)h << 32 | (m2 & (m2 - 1) ? ENETSTL_CK_MORE : 0) |
		       (READ_ONCE(b2->idx[__ffs(m2)]) & ENETSTL_CK_IDX);
	return (u64)h << 32;
}

/* The bucket table's placement hash of key ^ seed: murmur3's fmix64 (enetstl.h). */
static __always_inline u64 bt_hash(u64 h)
{
	h ^= h >> 33;
	h *= ENETSTL_BT_MIX1;
	h ^= h >> 33;
	h *= ENETSTL_BT_MIX2;
	return h ^ (h >> 33);
}

/*
 * One reader's try at `key` in bucket b: the way (its value copied to out), -ENOENT, or
 * -EAGAIN when a writer held the bucket or wrote it meanwhile.  One compare and branch per
 * way, unrolled: a way whose signature differs costs two instructions, what a 64-bit SWAR word
 * costs per lane without its 64-bit constants, and a key in the first ways (inserts take the
 * lowest free way) is found after a few; each way has its own copy at constant offsets.
 * Plain loads between the seqcount reads, as in any seqcount reader.
 */
static __always_inline int bt_try(const struct enetstl_bt_bucket *b, u64 key, u16 sig,
				  struct enetstl_bt_val *out)
{
	u32 s = READ_ONCE(b->seq);

	if (s & 1)
		return -EAGAIN;
	smp_rmb();
#define BT_WAY(i)							\
	if (b->sig[i] == sig && b->e[i].key == key) {			\
		put_unaligned(b->e[i].val.w[0], &out->w[0]);		\
		put_unaligned(b->e[i].val.w[1], &out->w[1]);		\
		smp_rmb();						\
		return b->seq == s ? i : -EAGAIN;			\
	}
	BT_WAY(0) BT_WAY(1) BT_WAY(2) BT_WAY(3) BT_WAY(4) BT_WAY(5) BT_WAY(6) BT_WAY(7)
	BT_WAY(8) BT_WAY(9) BT_WAY(10) BT_WAY(11) BT_WAY(12) BT_WAY(13) BT_WAY(14) BT_WAY(15)
#undef BT_WAY
	smp_rmb();
	return b->seq == s ? -ENOENT : -EAGAIN;
}

/* Placement of key in table ba (enetstl.h): its bucket, and its signature in *sig. */
static __always_inline const struct enetstl_bt_bucket *bt_bucket(const struct bpf_array *ba,
								 u64 key, u64 seed, u16 *sig)
{
	u64 h = bt_hash(key ^ seed);
	/* values of exactly a bucket (checked): elem_size is sizeof(bucket), a constant stride */
	const void *b = ba->value + sizeof(struct enetstl_bt_bucket) * (h & ba->index_mask);

	h >>= 48;
	*sig = h + (h < 1);	/* 0 marks a free way: signature 0 is 1 */
	return b;
}

/*
 * Look `key` up in a bucket table (layout, placement and the writers' protocol in enetstl.h)
 * as its readers do: seqcount read (odd: retry), the lowest way whose signature and key match,
 * a copy of its value into *val, seqcount re-read (changed: retry), ENETSTL_BT_TRIES tries.
 * Returns the way (*val filled), -ENOENT if the key is absent, -EBUSY if writers held or changed
 * the bucket on every try (*val may hold a torn copy), -EINVAL on a bad table.  The table is read
 * in place after checking the map's type, value size, a power-of-two bucket count and that its
 * values hold no special fields; only *val is written (its size is the verifier's check, from
 * BTF; KF_TRUSTED_ARGS refuses NULL).  Scalar code on general registers: no FPU bracket.
 */
__bpf_kfunc int enetstl_bt_find(void *buckets__map, u64 key, u64 seed, struct enetstl_bt_val *val)
{
	const struct bpf_array *ba = buckets__map;
	const struct enetstl_bt_bucket *b;
	u16 sig;
	int r, t;

	enetstl_count(CTR_BT);
	if (unlikely(ba->map.map_type != BPF_MAP_TYPE_ARRAY ||
		     ba->map.value_size != sizeof(struct enetstl_bt_bucket) || ba->map.record ||
		     ba->index_mask + 1 != ba->map.max_entries))
		return -EINVAL;
	BUILD_BUG_ON(sizeof(struct enetstl_bt_bucket) % 8);
	b = bt_bucket(ba, key, seed, &sig);
	for (t = 1; ; t++) {
		r = bt_try(b, key, sig, val);
		if (likely(r != -EAGAIN))
			return r;
		if (t == ENETSTL_BT_TRIES)
			return -EBUSY;
	}
}

/* Index of the first minimum among vals__sz / 4 (1..16) u32, -EINVAL on bad size. */
__bpf_kfunc int enetstl_min_idx_u32(const u32 *vals, u32 vals__sz)
{
	u32 n = vals__sz / 4, i, best = 0, min;

	if (!vals || !n || n > 16 || vals__sz & 3)
		return -EINVAL;
	min = get_unaligned(vals);
	for (i = 1; i < n; i++) {
		u32 x = get_unaligned(vals + i);

		if (x < min) {
			min = x;
			best = i;
		}
	}
	return best;
}

__bpf_kfunc_end_defs();

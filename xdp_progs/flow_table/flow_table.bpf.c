// SPDX-License-Identifier: GPL-2.0
/*
 * Cuckoo flow table (DPDK rte_hash layout, see flow_table.h): per-flow counters and actions
 * keyed by 5-tuple, with lookups by 16-lane signature compare and in-datapath insertion with a
 * bounded breadth-first displacement search.
 *
 * Programs (all share the maps):
 *   xdp_ft_pure     datapath, pure eBPF: algo_crc32c or MUL64 (cfg.hash), 16-lane SWAR match,
 *                   de Bruijn ctz, u64 key compare
 *   xdp_ft_enetstl  datapath, module kfuncs: enetstl_cuckoo_cand (hash + both buckets' signature
 *                   match in one call) + u64 key compare; several candidates, control requests
 *                   and the insert use enetstl_crc32c, enetstl_match_u16 + enetstl_ctz32 and
 *                   enetstl_key_eq; falls back to the pure code per call when a kfunc is absent
 *   xdp_ft_ctl      control requests (struct ft_req as the frame) for insert/delete/lookup,
 *   xdp_ft_ctl_kf   so the controller mutates the table with the same code and the same lock
 *   xdp_ft_batch    the same requests, up to FT_BATCH from the ft_batch array in one run (bulk
 *   xdp_ft_batch_kf inserts; FT_OP_FIND runs the datapath's lookup: the benchmark at scale)
 *
 * Concurrency protocol:
 * - Writers (datapath inserts on any CPU, control requests) serialise on ft_state.lock, taken
 *   with cmpxchg 0 -> 1 and a bounded spin (bpf_loop, FT_LOCK_SPINS); not a bpf_spin_lock,
 *   because kfuncs, map lookups and bpf_loop must run while it is held. A writer that does not
 *   get it within the bound fails the insert with FT_BUSY (counted; the packet gets the default
 *   action; the flow's next packet tries again). Nothing sleeps or loops unboundedly.
 * - Readers take no lock. A key is published by writing its entry, then the slot's index, then
 *   its signature; a reader that matches a signature always reads a complete entry. A
 *   displacement copies an entry into its alternate slot first (briefly present twice) and only
 *   then overwrites the old slot, bumping ft_state.chg (atomic, a full barrier) before every
 *   overwrite. A lookup that misses re-reads chg and repeats (at most FT_LOOKUP_RETRIES) when it
 *   moved, so a concurrent displacement never makes a present key miss.
 * - Per-flow counters are atomic adds: any number of CPUs may hit one flow.
 * - Deletes come only from the controller (under the lock); freed key indices go through a FIFO
 *   ring and are reused only after every never-used index is handed out, which keeps a reader
 *   that still compares an old key far from seeing its index rewritten.
 */
#include "common.h"
#include "parse.h"
#include "stats.h"
#include "enetstl.h"
#include "algo/crc32c.h"
#include "algo/find.h"
#include "flow_table.h"
#include "flow_table_key.h"

char LICENSE[] SEC("license") = "GPL";

const volatile struct ft_cfg ft_cfg = {
	.bucket_mask = 255,
	.capacity = 256 * FT_SLOTS,
	.search_budget = 256,
	.max_search = 256,
	.learn = 1,
	.default_action = FT_ACT_PASS,
	.default_port = 0,
	.non_ip_action = FT_ACT_PASS,
	.hash = FT_HASH_MUL64,
};

/* Never read: puts struct ft_req (only used through packet pointers) into the BTF, where the
 * layout test compares it with its ctypes mirror. */
const volatile struct ft_req ft_req_layout = {};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, struct ft_bucket);
} ft_buckets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 256 * FT_SLOTS + 1);
	__type(key, __u32);
	__type(value, struct ft_entry);
} ft_entries SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 256 * FT_SLOTS);
	__type(key, __u32);
	__type(value, __u32);
} ft_free SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ft_state);
} ft_state SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ft_metrics);
} ft_metrics SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ft_bfs);
} ft_bfs SEC(".maps");

NF_STATS_MAP(ft_stats);

#define FT_BARRIER() asm volatile("" ::: "memory")

/* ---- hashing and signatures (identical in both variants and in nf/models/flow_table.py) ---- */

_Static_assert(FT_HASH_CRC32C == ENETSTL_CK_HASH_CRC32C && FT_HASH_MUL64 == ENETSTL_CK_HASH_MUL64 &&
	       FT_SIG_MIX == ENETSTL_CK_SIG_MIX && FT_SLOTS == ENETSTL_CK_SLOTS &&
	       sizeof(struct ft_bucket) == sizeof(struct enetstl_ck_bucket),
	       "flow_table.h and enetstl_cuckoo_find must agree on the table");

_Static_assert(FT_KEY_SIZE == 8 * ENETSTL_CK_WORDS && __builtin_offsetof(struct ft_state, hash) == 0,
	       "the keyed hash takes the key in u64 words, from the start of ft_state");

/* The keyed hash (enetstl.h): each u64 word of the key times the table's secret multiplier,
 * then MUL64 (sum, fold-multiply-fold) or CRC-32C of the five products. */
static __always_inline __u32 ft_hash(const struct ft_key *k, const struct enetstl_ck_hash *hk,
				     const int kf)
{
	const __u64 *w = (const __u64 *)k;
	__u64 p[ENETSTL_CK_WORDS] __attribute__((aligned(8)));

	if (ft_cfg.hash == FT_HASH_MUL64) {
		__u64 a = w[0] * hk->k[0] + w[1] * hk->k[1] + w[2] * hk->k[2] + w[3] * hk->k[3] +
			  w[4] * hk->k[4];

		a ^= a >> 32;
		a *= ENETSTL_MUL64_FIN;
		a ^= a >> 32;
		return (__u32)a;
	}
	p[0] = w[0] * hk->k[0];
	p[1] = w[1] * hk->k[1];
	p[2] = w[2] * hk->k[2];
	p[3] = w[3] * hk->k[3];
	p[4] = w[4] * hk->k[4];
	if (kf && bpf_ksym_exists(enetstl_crc32c))
		return enetstl_crc32c(p, sizeof(p), 0);
	return algo_crc32c(p, sizeof(p), 0);
}

static __always_inline __u32 ft_sig(__u32 h)
{
	__u32 s = h >> 16;

	return s ? s : 1; /* 0 marks an empty slot */
}

static __always_inline __u32 ft_alt(__u32 bkt, __u32 sig)
{
	__u32 x = sig * FT_SIG_MIX;

	x ^= x >> 16;
	return (bkt ^ ((x & ft_cfg.bucket_mask) | 1)) & ft_cfg.bucket_mask;
}

/* Bit i set iff slot i holds `sig` (sig 0: the empty slots). */
static __always_inline __u32 ft_match(struct ft_bucket *b, __u32 sig, const int kf)
{
	if (kf && bpf_ksym_exists(enetstl_match_u16))
		return enetstl_match_u16(b->sig, sizeof(b->sig), sig);
	return algo_match16_u16(b->sig, sig);
}

/* Index of the lowest set bit of a non-zero m. */
static __always_inline __u32 ft_ctz(__u32 m, const int kf)
{
	if (kf && bpf_ksym_exists(enetstl_ctz32))
		return enetstl_ctz32(m);
	return algo_ctz32(m);
}

/* First empty slot of b, or -1. */
static __always_inline int ft_empty_slot(struct ft_bucket *b, const int kf)
{
	__u32 m = ft_match(b, 0, kf);

	return m ? (int)(ft_ctz(m, kf) & (FT_SLOTS - 1)) : -1;
}

static __always_inline int ft_key_eq(const struct ft_key *a, const struct ft_key *b, const int kf)
{
	const __u64 *x = (const __u64 *)a, *y = (const __u64 *)b;

	if (kf && bpf_ksym_exists(enetstl_key_eq))
		return enetstl_key_eq(a, FT_KEY_SIZE, b, FT_KEY_SIZE) == 1;
	__u64 d = (x[0] ^ y[0]) | (x[1] ^ y[1]) | (x[2] ^ y[2]) | (x[3] ^ y[3]) | (x[4] ^ y[4]);

	barrier_var(d); /* one branch on the OR, not one per word */
	return d == 0;
}

static __always_inline struct ft_state *ft_get_state(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&ft_state, &zero);
}

static __always_inline struct ft_metrics *ft_get_metrics(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&ft_metrics, &zero);
}

/* ---- lookup ---- */

/* The entry of `key` in bucket b (slot in *slot), or NULL: signature match mask, then a
 * trailing-zero walk over the candidates with a full key compare each. */
static __always_inline struct ft_entry *ft_find_in(struct ft_bucket *b, __u32 sig,
						   const struct ft_key *key, __u32 *slot,
						   const int kf)
{
	__u32 m = ft_match(b, sig, kf);
	int k;

	for (k = 0; k < FT_SLOTS; k++) {
		struct ft_entry *e;
		__u32 i, idx;

		if (!m)
			break;
		i = ft_ctz(m, kf) & (FT_SLOTS - 1);
		idx = b->idx[i];
		e = bpf_map_lookup_elem(&ft_entries, &idx);
		if (e && idx && ft_key_eq(&e->key, key, kf)) {
			*slot = i;
			return e;
		}
		m &= m - 1;
	}
	return NULL;
}

struct ft_where {
	__u32 b1, b2, sig;
	__u32 bkt, slot;
};

static __always_inline void ft_place(struct ft_where *w, __u32 h)
{
	w->sig = ft_sig(h);
	w->b1 = h & ft_cfg.bucket_mask;
	/* b2 is computed by ft_lookup when the primary bucket misses (every insert looks up
	 * first): a hit in the primary bucket never needs it */
}

/* Lock-free lookup; retried while writers moved entries meanwhile (see the protocol above). */
static __always_inline struct ft_entry *ft_lookup(struct ft_state *st, struct ft_metrics *mt,
						  const struct ft_key *key, struct ft_where *w,
						  const int kf)
{
	struct ft_bucket *b1, *b2;
	struct ft_entry *e;
	int r;

	b1 = bpf_map_lookup_elem(&ft_buckets, &w->b1);
	if (!b1)
		return NULL;
	for (r = 0; r < FT_LOOKUP_RETRIES; r++) {
		__u64 c0 = *(volatile __u64 *)&st->chg;

		FT_BARRIER();
		e = ft_find_in(b1, w->sig, key, &w->slot, kf);
		if (e) {
			w->bkt = w->b1;
			return e;
		}
		w->b2 = ft_alt(w->b1, w->sig);
		b2 = bpf_map_lookup_elem(&ft_buckets, &w->b2);
		if (!b2)
			return NULL;
		e = ft_find_in(b2, w->sig, key, &w->slot, kf);
		if (e) {
			w->bkt = w->b2;
			return e;
		}
		FT_BARRIER();
		if (*(volatile __u64 *)&st->chg == c0)
			return NULL;
		if (mt)
			mt->retries++;
	}
	return NULL;
}

/* The eNetSTL lookup: one enetstl_cuckoo_cand call hashes the key and compares the signature
 * in both buckets' 16 slots, returning the key index of the first matching slot; the key
 * compare (five u64 words) stays here, where it is cheaper than a call. Same change-counter
 * retry as ft_lookup. On a miss w gets the placement (from the hash the call returns) for an
 * insert. *fallback = 1 sends the caller to ft_lookup: when the first candidate was a
 * signature collision and other slots may hold the key (rare: 16-bit signatures), or when the
 * module refused the table (never with the maps of this file). */
static __always_inline struct ft_entry *ft_lookup_kf(struct ft_state *st, struct ft_metrics *mt,
						     const struct ft_key *key,
						     struct ft_where *w, int *fallback)
{
	struct ft_entry *e;
	__u64 res = 0;
	__u32 idx;
	int r;

	for (r = 0; r < FT_LOOKUP_RETRIES; r++) {
		__u64 c0 = *(volatile __u64 *)&st->chg;

		FT_BARRIER();
		res = enetstl_cuckoo_cand(&ft_buckets, key, FT_KEY_SIZE, &st->hash,
					  sizeof(st->hash));
		if (res & ENETSTL_CK_ERR) {
			*fallback = 1;
			return NULL;
		}
		idx = res & ENETSTL_CK_IDX;
		if (idx) {
			e = bpf_map_lookup_elem(&ft_entries, &idx);
			if (e && ft_key_eq(&e->key, key, 0))
				return e;
		}
		if (res & ENETSTL_CK_MORE) {
			/* a signature collision with other slots left (or a colliding entry deleted
			 * under us: index 0), so not yet a miss: the full walk */
			*fallback = 1;
			return NULL;
		}
		FT_BARRIER();
		if (*(volatile __u64 *)&st->chg == c0)
			break;
		if (mt)
			mt->retries++;
	}
	if (ft_cfg.learn)	/* the placement is for an insert (rodata: folded at load) */
		ft_place(w, res >> 32);
	return NULL;
}

/* ---- writer lock ---- */

static long ft_lock_cb(__u32 i, void *ctx)
{
	struct ft_state *st = ft_get_state();

	if (!st)
		return 1;
	if (__sync_val_compare_and_swap(&st->lock, 0, 1) == 0) {
		*(int *)ctx = 1;
		return 1;
	}
	return 0;
}

static __always_inline int ft_lock(struct ft_state *st)
{
	int got = 0;

	if (__sync_val_compare_and_swap(&st->lock, 0, 1) == 0)
		return 1;
	bpf_loop(FT_LOCK_SPINS, ft_lock_cb, &got, 0);
	return got;
}

static __always_inline void ft_unlock(struct ft_state *st)
{
	__sync_lock_test_and_set(&st->lock, 0); /* BPF_XCHG: a full barrier, then free */
}

/* ---- key index allocator (lock held) ---- */

static __always_inline __u32 ft_alloc(struct ft_state *st)
{
	__u32 pos, *v;

	if (st->fresh < ft_cfg.capacity) {
		pos = ((st->fresh * FT_ALLOC_STRIDE) & (ft_cfg.capacity - 1)) + 1;
		st->fresh++;
		return pos;
	}
	if (st->free_head == st->free_tail)
		return 0;
	pos = st->free_head % ft_cfg.capacity;
	v = bpf_map_lookup_elem(&ft_free, &pos);
	if (!v)
		return 0;
	st->free_head++;
	return *v;
}

static __always_inline void ft_release(struct ft_state *st, __u32 idx)
{
	__u32 pos = st->free_tail % ft_cfg.capacity, *v;

	v = bpf_map_lookup_elem(&ft_free, &pos);
	if (!v)
		return;
	*v = idx;
	st->free_tail++;
}

/* ---- displacement search (lock held) ---- */

struct ft_search {
	__u32 head, tail;
	__u32 node;    /* node whose bucket holds the entry to move last */
	__u32 slot;    /* its slot */
	__u32 dst;     /* the alternate bucket with room */
	__u32 dst_slot;
	__u32 steps;
	int found;
	int kf;
};

/* Expand one queued bucket: for each of its 16 entries, does the entry's alternate bucket have
 * an empty slot? If so the search ends; else that bucket is queued (while room is left). */
static long ft_search_cb(__u32 i, void *ctx)
{
	struct ft_search *c = ctx;
	struct ft_bucket *b, *a;
	struct ft_bfs *q;
	__u32 zero = 0, n, bkt, s;

	q = bpf_map_lookup_elem(&ft_bfs, &zero);
	if (!q || c->head >= c->tail)
		return 1;
	n = c->head & (FT_BFS_QUEUE - 1);
	bkt = q->bkt[n];
	b = bpf_map_lookup_elem(&ft_buckets, &bkt);
	if (!b)
		return 1;
	c->steps++;
	for (s = 0; s < FT_SLOTS; s++) {
		__u32 alt = ft_alt(bkt, b->sig[s]);
		int e;

		a = bpf_map_lookup_elem(&ft_buckets, &alt);
		if (!a)
			return 1;
		if (c->kf)
			e = ft_empty_slot(a, 1);
		else
			e = ft_empty_slot(a, 0);
		if (e >= 0) {
			c->found = 1;
			c->node = n;
			c->slot = s;
			c->dst = alt;
			c->dst_slot = e;
			return 1;
		}
		if (c->tail < FT_BFS_QUEUE) {
			__u32 t = c->tail & (FT_BFS_QUEUE - 1);

			q->bkt[t] = alt;
			q->parent[t] = n;
			q->slot[t] = s;
			c->tail++;
		}
	}
	c->head++;
	return 0;
}

/* Publish (idx, sig) in slot s of b: index first, so a reader matching the signature never
 * reads a stale index. */
static __always_inline void ft_slot_write(struct ft_bucket *b, __u32 s, __u32 sig, __u32 idx)
{
	s &= FT_SLOTS - 1;
	b->idx[s] = idx;
	FT_BARRIER();
	b->sig[s] = sig;
}

/* Moves along the found path, last first; returns the number of moves, or -1 when the path is
 * unusable (a slot twice on it), leaving the table unchanged. */
static __always_inline int ft_displace(struct ft_state *st, struct ft_search *c, __u32 *root,
				       __u32 *root_slot)
{
	__u32 pb[FT_PATH_SLOTS], ps[FT_PATH_SLOTS]; /* indexed & (FT_PATH_SLOTS - 1) for the verifier */
	struct ft_bucket *src, *dst;
	__u32 zero = 0, n = c->node, len = 0, k, j;
	struct ft_bfs *q;

	q = bpf_map_lookup_elem(&ft_bfs, &zero);
	if (!q)
		return -1;
	/* path from the found node up to its root: (bucket, slot to vacate) */
	pb[0] = q->bkt[n & (FT_BFS_QUEUE - 1)];
	ps[0] = c->slot;
	len = 1;
	for (k = 0; k < FT_PATH_MAX; k++) {
		__u32 m = n & (FT_BFS_QUEUE - 1);

		if (m < 2) /* nodes 0 and 1 are the roots (primary, alternate bucket) */
			break;
		if (len > FT_PATH_MAX)
			return -1;
		ps[len & (FT_PATH_SLOTS - 1)] = q->slot[m];
		n = q->parent[m];
		pb[len & (FT_PATH_SLOTS - 1)] = q->bkt[n & (FT_BFS_QUEUE - 1)];
		len++;
	}
	if ((n & (FT_BFS_QUEUE - 1)) >= 2 || len > FT_PATH_MAX)
		return -1;
	/* a (bucket, slot) twice on the path would be vacated twice */
	for (k = 0; k < FT_PATH_MAX; k++) {
		if (k + 1 >= len)
			break;
		for (j = k + 1; j < FT_PATH_MAX; j++) {
			if (j >= len)
				break;
			if (pb[k & (FT_PATH_SLOTS - 1)] == pb[j & (FT_PATH_SLOTS - 1)] &&
			    ps[k & (FT_PATH_SLOTS - 1)] == ps[j & (FT_PATH_SLOTS - 1)])
				return -1;
		}
	}
	/* last move: pb[0] slot ps[0] -> dst slot dst_slot (the entry is briefly in both) */
	src = bpf_map_lookup_elem(&ft_buckets, &pb[0]);
	dst = bpf_map_lookup_elem(&ft_buckets, &c->dst);
	if (!src || !dst)
		return -1;
	ft_slot_write(dst, c->dst_slot, src->sig[ps[0] & (FT_SLOTS - 1)],
		      src->idx[ps[0] & (FT_SLOTS - 1)]);
	/* then each slot on the path takes the entry of the slot below it (its parent) */
	for (k = 1; k < FT_PATH_MAX + 1; k++) {
		struct ft_bucket *from;
		__u32 fs;

		if (k >= len)
			break;
		dst = bpf_map_lookup_elem(&ft_buckets, &pb[(k - 1) & (FT_PATH_SLOTS - 1)]);
		from = bpf_map_lookup_elem(&ft_buckets, &pb[k & (FT_PATH_SLOTS - 1)]);
		if (!dst || !from)
			return -1;
		fs = ps[k & (FT_PATH_SLOTS - 1)] & (FT_SLOTS - 1);
		__sync_fetch_and_add(&st->chg, 1);
		ft_slot_write(dst, ps[(k - 1) & (FT_PATH_SLOTS - 1)], from->sig[fs], from->idx[fs]);
	}
	*root = pb[(len - 1) & (FT_PATH_SLOTS - 1)];
	*root_slot = ps[(len - 1) & (FT_PATH_SLOTS - 1)];
	/* the root slot is overwritten by the new key: readers of its old entry must retry */
	__sync_fetch_and_add(&st->chg, 1);
	return len;
}

/* Insert `e` (key and value) at its place (lock held). w holds b1/b2/sig; on success w->bkt and
 * w->slot say where, *moves how many displacements, *idx_out the key index. The search expands
 * at most `bound` buckets (<= max_search: a datapath insert's budget), *steps says how many;
 * cut short by its budget it is DEFERRED, not FULL. */
static __always_inline int ft_insert_locked(struct ft_state *st, struct ft_metrics *mt,
					    const struct ft_entry *ne, struct ft_where *w,
					    __u32 *moves, __u32 *idx_out, __u32 bound, __u32 *steps,
					    const int kf)
{
	struct ft_search c = {};
	struct ft_bucket *b;
	struct ft_entry *e;
	struct ft_bfs *q;
	__u32 zero = 0, idx, bkt, slot;
	int s, len = 0;

	b = bpf_map_lookup_elem(&ft_buckets, &w->b1);
	if (!b)
		return FT_BAD_REQ;
	s = ft_empty_slot(b, kf);
	if (s >= 0) {
		bkt = w->b1;
		slot = s;
		goto place;
	}
	b = bpf_map_lookup_elem(&ft_buckets, &w->b2);
	if (!b)
		return FT_BAD_REQ;
	s = ft_empty_slot(b, kf);
	if (s >= 0) {
		bkt = w->b2;
		slot = s;
		goto place;
	}
	q = bpf_map_lookup_elem(&ft_bfs, &zero);
	if (!q)
		return FT_BAD_REQ;
	q->bkt[0] = w->b1;
	q->bkt[1] = w->b2;
	c.tail = 2;
	c.kf = kf;
	bpf_loop(bound, ft_search_cb, &c, 0);
	*steps = c.steps;
	if (mt)
		mt->search_steps += c.steps;
	if (!c.found) {
		if (c.steps >= bound && bound < ft_cfg.max_search) {
			if (mt)
				mt->fail_budget++;
			return FT_DEFERRED;
		}
		if (mt)
			mt->fail_full++;
		return FT_FULL;
	}
	/* allocate before moving anything: a failure here leaves the table untouched */
	if (st->fresh >= ft_cfg.capacity && st->free_head == st->free_tail) {
		if (mt)
			mt->fail_index++;
		return FT_NO_INDEX;
	}
	len = ft_displace(st, &c, &bkt, &slot);
	if (len < 0) {
		if (mt)
			mt->fail_full++;
		return FT_FULL;
	}
place:
	idx = ft_alloc(st);
	e = bpf_map_lookup_elem(&ft_entries, &idx);
	if (!idx || !e) {
		if (mt)
			mt->fail_index++;
		/* a displacement already done is harmless: every moved key is still findable */
		return FT_NO_INDEX;
	}
	__builtin_memcpy(e, ne, sizeof(*e));
	FT_BARRIER();
	b = bpf_map_lookup_elem(&ft_buckets, &bkt);
	if (!b)
		return FT_BAD_REQ;
	ft_slot_write(b, slot, w->sig, idx);
	st->entries++;
	w->bkt = bkt;
	w->slot = slot;
	*moves = len;
	*idx_out = idx;
	if (mt) {
		mt->inserts++;
		mt->hist[len < FT_HIST_BINS ? len : FT_HIST_BINS - 1]++;
	}
	return FT_OK;
}

/* Insert with the lock; an existing key is reported (its index in *idx, and updated when
 * `update`). */
static __always_inline int ft_insert(struct ft_state *st, struct ft_metrics *mt,
				     const struct ft_entry *ne, struct ft_where *w, __u32 *moves,
				     __u32 *idx, int update, __u32 bound, __u32 *steps, const int kf)
{
	struct ft_bucket *b;
	struct ft_entry *e;
	int rc;

	if (!ft_lock(st)) {
		if (mt)
			mt->fail_busy++;
		return FT_BUSY;
	}
	/* another CPU may have inserted the key since our lock-free miss */
	e = ft_lookup(st, NULL, &ne->key, w, kf);
	if (e) {
		b = bpf_map_lookup_elem(&ft_buckets, &w->bkt);
		if (b)
			*idx = b->idx[w->slot & (FT_SLOTS - 1)];
		if (update) {
			e->val.action = ne->val.action;
			e->val.port = ne->val.port;
			e->val.flags = ne->val.flags;
		}
		rc = FT_EXISTS;
	} else {
		rc = ft_insert_locked(st, mt, ne, w, moves, idx, bound, steps, kf);
	}
	ft_unlock(st);
	return rc;
}

static __always_inline int ft_delete(struct ft_state *st, struct ft_metrics *mt,
				     const struct ft_key *key, struct ft_where *w, const int kf)
{
	struct ft_bucket *b;
	struct ft_entry *e;
	__u32 s, idx;

	if (!ft_lock(st)) {
		if (mt)
			mt->fail_busy++;
		return FT_BUSY;
	}
	e = ft_lookup(st, NULL, key, w, kf);
	b = bpf_map_lookup_elem(&ft_buckets, &w->bkt);
	if (!e || !b) {
		ft_unlock(st);
		return FT_NOT_FOUND;
	}
	s = w->slot & (FT_SLOTS - 1);
	idx = b->idx[s];
	b->sig[s] = 0; /* signature first: readers stop matching before the index goes */
	FT_BARRIER();
	b->idx[s] = 0;
	ft_release(st, idx);
	st->entries--;
	st->frees++;   /* room again: pairs refused since may be searched again */
	if (mt)
		mt->deletes++;
	ft_unlock(st);
	return FT_OK;
}

/* ---- datapath inserts: bounded cost per packet ---- */

/* Search steps back into this CPU's bucket: search_budget per elapsed tick, at most
 * FT_BURST_TICKS ticks' worth (the coarse clock moves a jiffy at a time). */
static __always_inline void ft_refill(struct ft_bfs *q, __u64 now)
{
	const __u64 budget = ft_cfg.search_budget, cap = budget * FT_BURST_TICKS;
	__u64 el = now - q->tick, t;

	if (el < FT_TICK_NS)
		return;
	if (el >= FT_BURST_TICKS * FT_TICK_NS) {
		q->tokens = cap;
		q->tick = now;
		return;
	}
	t = el / FT_TICK_NS;
	q->tokens = q->tokens + t * budget < cap ? q->tokens + t * budget : cap;
	q->tick += t * FT_TICK_NS;
}

/* Insert a flow the lookup missed (w: b1 and sig). What a packet can cost is bounded: a full
 * key store is refused before anything else; when both buckets are full (a search would be
 * needed), a bucket pair whose full search failed since the last delete is refused at once
 * (FT_REFUSED-entry per-CPU cache: the same pair means the same search), and the search spends
 * steps from this CPU's budget (search_budget per tick), refused when none is left. So a
 * refused flow's later packets, and a flood of new flows against a full table, cost a lookup
 * and these checks, not a search under the writer lock each. */
static __always_inline int ft_learn(struct ft_state *st, struct ft_metrics *mt,
				    const struct ft_key *key, struct ft_where *w, __u64 len,
				    __u64 *now, const int kf)
{
	__u32 zero = 0, bound = ft_cfg.max_search, steps = 0, moves = 0, idx = 0, gen, c;
	struct ft_entry ne __attribute__((aligned(8))) = {};
	struct ft_bucket *b1, *b2;
	struct ft_bfs *q;
	__u64 pair;
	int rc;

	if (st->entries >= ft_cfg.capacity) {
		mt->fail_index++;
		return FT_NO_INDEX;
	}
	*now = bpf_ktime_get_coarse_ns();
	w->b2 = ft_alt(w->b1, w->sig);
	b1 = bpf_map_lookup_elem(&ft_buckets, &w->b1);
	b2 = bpf_map_lookup_elem(&ft_buckets, &w->b2);
	q = bpf_map_lookup_elem(&ft_bfs, &zero);
	if (!b1 || !b2 || !q)
		return FT_BAD_REQ;
	pair = (__u64)w->b1 << 32 | w->sig | 1ull << 63;
	c = w->sig & (FT_REFUSED - 1);
	gen = *(volatile __u32 *)&st->frees;
	if (ft_empty_slot(b1, kf) < 0 && ft_empty_slot(b2, kf) < 0) {
		if (q->refused[c] == pair && q->refused_gen[c] == gen) {
			mt->fail_cached++;
			return FT_DEFERRED;
		}
		ft_refill(q, *now);
		if (!q->tokens) {
			mt->fail_budget++;
			return FT_DEFERRED;
		}
		if (q->tokens < bound)
			bound = q->tokens;
	}
	/* the entry is built only for an insert that is tried */
	__builtin_memcpy(&ne.key, key, sizeof(*key));
	ne.val.packets = 1;
	ne.val.bytes = len;
	ne.val.first_seen = *now;
	ne.val.last_seen = *now;
	ne.val.action = ft_cfg.default_action;
	ne.val.port = ft_cfg.default_port;
	ne.val.flags = FT_F_LEARNED;
	rc = ft_insert(st, mt, &ne, w, &moves, &idx, 0, bound, &steps, kf);
	q->tokens = steps < q->tokens ? q->tokens - steps : 0;
	if (rc == FT_FULL) {
		q->refused[c] = pair;
		q->refused_gen[c] = gen;
	}
	return rc;
}

/* ---- datapath ---- */

/* The lookup: the eNetSTL call first when kf, the pure walk otherwise or on its fallback. On a
 * miss `w` holds where an insert of the key goes. The batch FIND runs it too. */
static __always_inline struct ft_entry *ft_find(struct ft_state *st, struct ft_metrics *mt,
						const struct ft_key *key, struct ft_where *w,
						const int kf)
{
	struct ft_entry *e = NULL;
	int fallback = 1;

	if (kf && bpf_ksym_exists(enetstl_cuckoo_cand)) {
		fallback = 0;
		e = ft_lookup_kf(st, mt, key, w, &fallback);
	}
	if (fallback) {
		ft_place(w, ft_hash(key, &st->hash, kf));
		e = ft_lookup(st, mt, key, w, kf);
	}
	return e;
}

static __always_inline int ft_verdict(struct xdp_md *ctx, __u32 action, __u32 port)
{
	if (action == FT_ACT_DROP)
		return xdp_exit(ctx, &ft_stats, XDP_DROP);
	if (action == FT_ACT_REDIRECT)
		return xdp_exit(ctx, &ft_stats, bpf_redirect(port, 0));
	return xdp_exit(ctx, &ft_stats, XDP_PASS);
}

static __always_inline int ft_main(struct xdp_md *ctx, const int kf)
{
	struct ft_key key __attribute__((aligned(8))) = {};
	struct ft_where w = {};
	struct ft_metrics *mt;
	struct ft_state *st;
	struct ft_entry *e;
	struct pkt_meta m;
	__u64 len, now;
	int rc;

	rc = parse_pkt(ctx, &m);
	if (rc != PARSE_OK)
		return xdp_exit_why(ctx, &ft_stats, XDP_DROP, rc);
	if (!(m.flags & (PKT_F_IPV4 | PKT_F_IPV6)))
		return ft_verdict(ctx, ft_cfg.non_ip_action, ft_cfg.default_port);
	if (ft_key_from_pkt(ctx, &m, &key))
		return xdp_exit_why(ctx, &ft_stats, XDP_DROP, NF_REASON_TRUNCATED);
	st = ft_get_state();
	mt = ft_get_metrics();
	if (!st || !mt)
		return xdp_exit(ctx, &ft_stats, XDP_ABORTED);
	len = xdp_data_end(ctx) - xdp_data(ctx);
	e = ft_find(st, mt, &key, &w, kf);
	if (e) {
		mt->hits++;
		__sync_fetch_and_add(&e->val.packets, 1);
		__sync_fetch_and_add(&e->val.bytes, len);
		e->val.last_seen = bpf_ktime_get_coarse_ns();
		return ft_verdict(ctx, e->val.action, e->val.port);
	}
	mt->misses++;
	if (ft_cfg.learn) {
		now = 0;
		rc = ft_learn(st, mt, &key, &w, len, &now, kf);
		if (rc == FT_EXISTS) {
			/* inserted by another CPU since our miss: count the packet there */
			e = ft_lookup(st, NULL, &key, &w, kf);
			if (e) {
				__sync_fetch_and_add(&e->val.packets, 1);
				__sync_fetch_and_add(&e->val.bytes, len);
				e->val.last_seen = now;
				return ft_verdict(ctx, e->val.action, e->val.port);
			}
		}
	}
	return ft_verdict(ctx, ft_cfg.default_action, ft_cfg.default_port);
}

SEC("xdp")
int xdp_ft_pure(struct xdp_md *ctx)
{
	return ft_main(ctx, 0);
}

SEC("xdp")
int xdp_ft_enetstl(struct xdp_md *ctx)
{
	return ft_main(ctx, 1);
}

/* ---- control ---- */

_Static_assert(__builtin_offsetof(struct ft_req, val) - __builtin_offsetof(struct ft_req, key) ==
	       __builtin_offsetof(struct ft_entry, val), "a request's key and val are an ft_entry");

/* One control request r (in the frame, or an element of ft_batch). The entry to insert is built
 * in *ne: a stack copy, or (ne == &r->key, a batch: the stack of its call chain is tight) the
 * request itself. */
static __always_inline void ft_ctl_req(struct ft_req *r, struct ft_entry *ne, struct ft_state *st,
				       struct ft_metrics *mt, const int in_place, const int kf)
{
	struct ft_where w = {};
	struct ft_entry *e;
	__u32 moves = 0, idx = 0, steps = 0;
	__u64 now;

	if (!in_place)
		__builtin_memcpy(&ne->key, &r->key, sizeof(ne->key));
	ft_place(&w, ft_hash(&ne->key, &st->hash, kf));
	r->moves = 0;
	switch (r->op) {
	case FT_OP_INSERT:
		if (r->val.action > FT_ACT_REDIRECT) {
			r->ret = FT_BAD_REQ;
			break;
		}
		now = bpf_ktime_get_coarse_ns();
		if (!in_place) {
			ne->val.action = r->val.action;
			ne->val.port = r->val.port;
			ne->val.flags = r->val.flags;
			ne->val.packets = r->val.packets;
			ne->val.bytes = r->val.bytes;
			ne->val.first_seen = r->val.first_seen;
			ne->val.last_seen = r->val.last_seen;
		}
		if (!ne->val.first_seen)
			ne->val.first_seen = now;
		if (!ne->val.last_seen)
			ne->val.last_seen = now;
		r->ret = ft_insert(st, mt, ne, &w, &moves, &idx, r->update, ft_cfg.max_search,
				   &steps, kf);
		if (r->ret == FT_OK || r->ret == FT_EXISTS) {
			r->moves = moves;
			r->idx = idx;
		}
		r->bucket = w.bkt;
		r->slot = w.slot;
		break;
	case FT_OP_DELETE:
		r->ret = ft_delete(st, mt, &ne->key, &w, kf);
		break;
	case FT_OP_LOOKUP:
		e = ft_lookup(st, NULL, &ne->key, &w, kf);
		if (!e) {
			r->ret = FT_NOT_FOUND;
			break;
		}
		__builtin_memcpy(&r->val, &e->val, sizeof(r->val));
		r->bucket = w.bkt;
		r->slot = w.slot;
		r->ret = FT_OK;
		break;
	default:
		r->ret = FT_BAD_REQ;
	}
}

static __always_inline int ft_ctl(struct xdp_md *ctx, const int kf)
{
	struct ft_entry ne __attribute__((aligned(8))) = {};
	struct ft_req *r = xdp_data(ctx);
	struct ft_state *st;

	if ((void *)(r + 1) > xdp_data_end(ctx))
		return XDP_ABORTED;
	st = ft_get_state();
	if (!st)
		return XDP_ABORTED;
	ft_ctl_req(r, &ne, st, ft_get_metrics(), 0, kf);
	return XDP_PASS;
}

SEC("xdp")
int xdp_ft_ctl(struct xdp_md *ctx)
{
	return ft_ctl(ctx, 0);
}

SEC("xdp")
int xdp_ft_ctl_kf(struct xdp_md *ctx)
{
	return ft_ctl(ctx, 1);
}

/* ---- batches: bulk control requests, and the datapath's lookup over many keys ---- */

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, FT_BATCH);
	__type(key, __u32);
	__type(value, struct ft_req);
} ft_batch SEC(".maps");

/* FT_OP_FIND: the datapath's lookup (ft_find) without the packet around it. */
static __always_inline void ft_find_req(struct ft_req *r, struct ft_state *st, const int kf)
{
	struct ft_where w = {};

	r->ret = ft_find(st, NULL, &r->key, &w, kf) ? FT_OK : FT_NOT_FOUND;
}

/* A control request of a batch: global functions, verified once (inlined into the bpf_loop
 * callback, the insert's own bpf_loops made the verifier walk past its 1M-instruction limit). */
__noinline int ft_batch_ctl(struct ft_req *r)
{
	struct ft_state *st = ft_get_state();

	if (!r || !st)
		return 0;
	ft_ctl_req(r, (struct ft_entry *)&r->key, st, ft_get_metrics(), 1, 0);
	return 0;
}

__noinline int ft_batch_ctl_kf(struct ft_req *r)
{
	struct ft_state *st = ft_get_state();

	if (!r || !st)
		return 0;
	ft_ctl_req(r, (struct ft_entry *)&r->key, st, ft_get_metrics(), 1, 1);
	return 0;
}

static __always_inline long ft_batch_one(__u32 i, const int kf)
{
	struct ft_req *r = bpf_map_lookup_elem(&ft_batch, &i);
	struct ft_state *st = ft_get_state();

	if (!r || !st)
		return 1;
	if (r->op == FT_OP_FIND)
		ft_find_req(r, st, kf);
	else if (r->op != FT_OP_NONE)
		kf ? ft_batch_ctl_kf(r) : ft_batch_ctl(r);
	return 0;
}

static long ft_batch_cb(__u32 i, void *ctx)
{
	return ft_batch_one(i, 0);
}

static long ft_batch_cb_kf(__u32 i, void *ctx)
{
	return ft_batch_one(i, 1);
}

static __always_inline int ft_batch_run(struct xdp_md *ctx, const int kf)
{
	struct ft_batch_run *b = xdp_data(ctx);

	if ((void *)(b + 1) > xdp_data_end(ctx) || b->n > FT_BATCH)
		return XDP_ABORTED;
	bpf_loop(b->n, kf ? ft_batch_cb_kf : ft_batch_cb, NULL, 0);
	return XDP_PASS;
}

SEC("xdp")
int xdp_ft_batch(struct xdp_md *ctx)
{
	return ft_batch_run(ctx, 0);
}

SEC("xdp")
int xdp_ft_batch_kf(struct xdp_md *ctx)
{
	return ft_batch_run(ctx, 1);
}

// SPDX-License-Identifier: GPL-2.0
/* L2 learning switch, eNetSTL FDB variant: the same datapath (l2_switch_dp.h) over a
 * bucketised table instead of a BPF hash map.
 *
 * Table (efdb): ARRAY of buckets of 16 ways. A 64-bit mix of the key word (mac|vid, efdb_hash):
 * its low bits pick the bucket, its top 16 bits are the way's signature (never 0; 0 = free), so
 * one 16-lane compare finds the candidate ways; the 8-byte key confirms. It is the module's
 * bucket table (enetstl.h): with the module a reader's whole lookup is one enetstl_bt_find call
 * (hash, seqcount, signatures, key, copy in native code), without it the same probe runs in BPF
 * (the SWAR compare of xdp_progs/include/algo/find.h), answer for answer. Writers are BPF code
 * either way; the module's list buckets run the aging wheel.
 *
 * Concurrency, without spin locks around kfuncs: every bucket has a seqcount. A writer takes the
 * bucket by cmpxchg(seq, even, even+1) - try-lock, never spins (XDP cannot wait): on failure the
 * learn is skipped and counted (fdb_busy), the next frame learns it - writes, and releases with
 * an atomic add (seq even again). Readers never write: read seq (retry if odd), find the way and
 * copy the entry, re-read seq; a change means a writer overlapped and the read is retried (3
 * times, then the frame is flooded: an unknown destination, never a misforward). kfuncs run in
 * readers and between try-lock and release alike: nothing is a bpf_spin_lock. x86 keeps loads
 * in order and cmpxchg/xadd are full barriers, which is what the seqcount needs.
 *
 * Aging in the kernel: a timing wheel of the module's list buckets (256 slots of FIFO filings
 * {key, tick}) driven by a bpf_timer in the pinned `wheel` map, so a switch with no controller
 * process still forgets stale MACs. A new entry is filed under the tick it expires at; a timer
 * run pops the filings of the ticks that passed: an entry older than the aging time is removed,
 * a refreshed one is re-filed at its new expiry (moves and refreshes never touch the wheel).
 * An entry remembers the tick of its live filing, so duplicates and filings of deleted or
 * re-added entries are recognised as stale. Without the module there is no wheel; the lazy check
 * on lookup and the controller's expire() still apply, as in the pure variant.
 */
#include "l2_switch_common.h"
#include "enetstl.h"
#include "algo/find.h"

char LICENSE[] SEC("license") = "GPL";

#define EBUSY 16
#define ENOENT 2
#define ENOSPC 28
#define EINVAL 22
#define DEFAULT_TICK_NS 100000000ULL /* 100 ms */
#define RETRY_NS 1000000ULL          /* timer re-run while a slot still has filings */
#define READ_ONCE_U32(x) (*(volatile __u32 *)&(x))
#define barrier() asm volatile("" ::: "memory")

const volatile struct l2sw_efdb_cfg efdb_cfg = {
	.bucket_mask = L2SW_FDB_DEFAULT / L2SW_WAYS - 1,
	.max_entries = L2SW_FDB_DEFAULT,
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, L2SW_FDB_DEFAULT / L2SW_WAYS);
	__type(key, __u32);
	__type(value, struct l2sw_efdb_bucket);
} efdb SEC(".maps");

struct wheel {
	struct bpf_timer timer;
	struct enetstl_lb __kptr *lb; /* owning reference; programs use the handle */
};

/* Pinned by the controller: a bpf_timer is cancelled when its map loses its last user reference. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct wheel);
} wheel SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct l2sw_wheel_stats);
} wheel_stats SEC(".maps");

/* Never used: puts the request and filing layouts into the object's BTF for the layout test
 * (types used only inside functions get no BTF). */
struct btf_anchor {
	struct l2sw_fdb_req req;
	struct l2sw_wheel_item item;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct btf_anchor);
} btf_anchor SEC(".maps");

/* ---- table ------------------------------------------------------------------------------- */
/* murmur3's fmix64 of the key word and the table's secret (config.seed, see l2_switch.h):
 * every bit of the result depends on every key bit (MACs of one vendor differ in their last
 * bytes only: a single multiply would leave them in one bucket). A CRC32-C of the 8 bytes (the
 * module's kfunc: ~45 guest instructions with the call; in BPF a table walk: ~60) costs more
 * than these ~10. */
static __always_inline __u64 efdb_hash(__u64 kw, __u64 seed)
{
	__u64 h = kw ^ seed;

	h ^= h >> 33;
	h *= L2SW_EFDB_MIX1;
	h ^= h >> 33;
	h *= L2SW_EFDB_MIX2;
	return h ^ (h >> 33);
}

static __always_inline __u64 key_word(const struct l2sw_fdb_key *k)
{
	__u64 kw;

	__builtin_memcpy(&kw, k, sizeof(kw));
	return kw;
}

/* The bucket index of key word kw, and its signature (never 0: 0 marks a free way). */
static __always_inline __u32 efdb_index(__u64 kw, __u64 seed, __u16 *sig)
{
	__u64 h = efdb_hash(kw, seed);

	*sig = h >> 48;
	if (!*sig)
		*sig = 1;
	return (__u32)h & efdb_cfg.bucket_mask;
}

static __always_inline struct l2sw_efdb_bucket *efdb_bucket(__u64 kw, __u64 seed, __u16 *sig)
{
	__u32 i = efdb_index(kw, seed, sig);

	return bpf_map_lookup_elem(&efdb, &i);
}

/* Way holding kw in b, or -1. Unsynchronised: readers validate with the seqcount. The mask's
 * lowest way first (ctz without a branch); a plain scan only when that way's key differs and
 * more ways matched (a 16-bit signature collision: rare). Walking the whole mask with ctz and
 * m &= m - 1 makes the mask's exact value matter to the verifier, and its paths explode. */
static __always_inline int efdb_way(struct l2sw_efdb_bucket *b, __u64 kw, __u16 sig)
{
	__u32 m = algo_match16_u16(b->sig, sig), i;

	if (!m)
		return -1;
	i = algo_ctz32(m) & (L2SW_WAYS - 1);
	if (*(__u64 *)&b->e[i].key == kw)
		return i;
	if (!(m & (m - 1)))
		return -1;
#pragma clang loop unroll(disable)
	for (int j = 0; j < L2SW_WAYS; j++) {
		if ((m >> j) & 1 && *(__u64 *)&b->e[j].key == kw)
			return j;
	}
	return -1;
}

static __always_inline int bucket_trylock(struct l2sw_efdb_bucket *b)
{
	__u32 s = READ_ONCE_U32(b->seq);

	if (s & 1)
		return -1;
	return __sync_val_compare_and_swap(&b->seq, s, s + 1) == s ? 0 : -1;
}

static __always_inline void bucket_unlock(struct l2sw_efdb_bucket *b)
{
	__sync_fetch_and_add(&b->seq, 1);
}

static __always_inline struct l2sw_fdb_room *room(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&fdb_room, &zero);
}

/* Reserve a place for one more entry: at most efdb_cfg.max_entries (fdb_size) in the table,
 * static ones included, as in the pure variant's hash map. 0: the table is full. */
static __always_inline int room_take(void)
{
	struct l2sw_fdb_room *r = room();

	if (!r)
		return 0;
	if (__sync_fetch_and_add(&r->used, 1) < efdb_cfg.max_entries)
		return 1;
	__sync_fetch_and_add(&r->used, -1);
	return 0;
}

static __always_inline int room_full(void)
{
	struct l2sw_fdb_room *r = room();

	return !r || *(volatile __u64 *)&r->used >= efdb_cfg.max_entries;
}

/* Remove the entry in way i of b (held by the caller). */
static __always_inline void way_clear(struct l2sw_efdb_bucket *b, int i)
{
	struct l2sw_fdb_room *r = room();

	i &= L2SW_WAYS - 1;
	b->sig[i] = 0;
	__builtin_memset(&b->e[i], 0, sizeof(b->e[i]));
	if (r)
		__sync_fetch_and_add(&r->used, -1);
	fdb_gen_bump(); /* learn memos of the removed entry are stale */
}

/* The table is the module's bucket table (enetstl.h): enetstl_bt_find reads it as this file's
 * readers do. */
_Static_assert(sizeof(struct l2sw_efdb_bucket) == sizeof(struct enetstl_bt_bucket) &&
	       __builtin_offsetof(struct l2sw_efdb_bucket, sig) ==
	       __builtin_offsetof(struct enetstl_bt_bucket, sig) &&
	       __builtin_offsetof(struct l2sw_efdb_bucket, e) ==
	       __builtin_offsetof(struct enetstl_bt_bucket, e) &&
	       sizeof(struct l2sw_efdb_entry) == sizeof(struct enetstl_bt_entry) &&
	       __builtin_offsetof(struct l2sw_efdb_entry, ifindex) ==
	       __builtin_offsetof(struct enetstl_bt_entry, val) &&
	       sizeof(struct l2sw_fdb_val) == sizeof(struct enetstl_bt_val) &&
	       L2SW_WAYS == ENETSTL_BT_WAYS &&
	       L2SW_EFDB_MIX1 == ENETSTL_BT_MIX1 && L2SW_EFDB_MIX2 == ENETSTL_BT_MIX2,
	       "the eNetSTL FDB is an enetstl_bt_find table");

_Static_assert(__builtin_offsetof(struct l2sw_efdb_entry, ts_ns) -
	       __builtin_offsetof(struct l2sw_efdb_entry, ifindex) ==
	       __builtin_offsetof(struct l2sw_fdb_val, ts_ns) &&
	       __builtin_offsetof(struct l2sw_efdb_entry, idx) - __builtin_offsetof(struct l2sw_efdb_entry, ifindex) ==
	       __builtin_offsetof(struct l2sw_fdb_val, idx), "an entry's value part is a struct l2sw_fdb_val");

/* A reader's lookup of kw (enetstl_bt_find's, answer for answer, in BPF): seqcount (odd:
 * retry), way, copy, seqcount again (changed: retry), ENETSTL_BT_TRIES tries. The way (its value
 * copied to *out), -ENOENT, or -EBUSY: writers kept the bucket busy, and the frame floods rather
 * than trust a torn read. Out of line: inlined beside the kfunc call, its registers made clang
 * spill around that call (5 more guest instructions per packet with the module); the call costs
 * this fallback ~18 per lookup (2-3 ns natively, NOTES.md). */
static __noinline int fdb_find_bpf(__u64 kw, __u64 seed, struct l2sw_fdb_val *out)
{
	struct l2sw_efdb_bucket *b;
	__u16 sig;

	b = efdb_bucket(kw, seed, &sig);
	if (!b)
		return -EINVAL;
	for (int t = 0; t < ENETSTL_BT_TRIES; t++) {
		__u32 s1 = READ_ONCE_U32(b->seq);
		int i;

		if (s1 & 1)
			continue;
		barrier();
		i = efdb_way(b, kw, sig);
		if (i >= 0)   /* the entry's ifindex..ts_ns are a struct l2sw_fdb_val: two words */
			*out = *(struct l2sw_fdb_val *)&b->e[i & (L2SW_WAYS - 1)].ifindex;
		barrier();
		if (READ_ONCE_U32(b->seq) == s1)
			return i >= 0 ? i : -ENOENT;
	}
	return -EBUSY;
}

/* The datapath's lookup: one kfunc call with the module, the same probe in BPF without. */
static __always_inline int fdb_find(__u64 kw, __u64 seed, struct l2sw_fdb_val *out)
{
	if (bpf_ksym_exists(enetstl_bt_find))
		return enetstl_bt_find(&efdb, kw, seed, (struct enetstl_bt_val *)out);
	return fdb_find_bpf(kw, seed, out);
}

/* ---- timing wheel -------------------------------------------------------------------------- */
static __always_inline __u64 tick_ns(void)
{
	__u32 zero = 0;
	struct l2sw_config *cfg = bpf_map_lookup_elem(&config, &zero);

	return cfg && cfg->wheel_tick_ns ? cfg->wheel_tick_ns : DEFAULT_TICK_NS;
}

/* Tick to file an entry last seen at ts under: the first tick after it expires, within one lap. */
static __always_inline __u64 file_tick(__u64 ts, __u64 now, __u64 aging, __u64 tick)
{
	__u64 cur = now / tick, t;

	if (!aging)
		return cur + L2SW_WHEEL_SLOTS - 1; /* never ages: just cycle, so a later aging applies */
	t = (ts + aging) / tick + 1;
	if (t <= cur)
		t = cur + 1;
	if (t > cur + L2SW_WHEEL_SLOTS - 1)
		t = cur + L2SW_WHEEL_SLOTS - 1;
	return t;
}

static __always_inline void wheel_count(__u64 *ctr)
{
	__sync_fetch_and_add(ctr, 1);
}

/* File kw under tick t (caller holds no bucket). */
static __always_inline void wheel_file(__u64 kw, __u64 t)
{
	__u32 zero = 0;
	struct l2sw_wheel_stats *ws = bpf_map_lookup_elem(&wheel_stats, &zero);
	struct l2sw_wheel_item it = { .tick = (__u32)t };
	struct enetstl_lb *lb;

	if (!ws || !ws->handle || !bpf_ksym_exists(enetstl_lb_get))
		return;
	lb = enetstl_lb_get(ws->handle);
	if (!lb)
		return;
	__builtin_memcpy(&it.key, &kw, sizeof(kw));
	if (enetstl_lb_push(lb, t & (L2SW_WHEEL_SLOTS - 1), &it, sizeof(it)))
		wheel_count(&ws->push_fail);
	else
		wheel_count(&ws->filed);
	enetstl_lb_release(lb);
}

/* ---- walks over the whole table: controller flush/expire, and the datapath's reclaim ---------- */
struct scan_ctx {
	__u64 now;
	__u64 aging;
	__u64 count;
	__u64 busy;
	__u64 oldest;   /* the oldest dynamic entry left (reclaim: for room_to_reclaim) */
	__u32 op;
	__u32 all;
};

static long scan_bucket(__u64 n, void *arg)
{
	struct scan_ctx *c = arg;
	__u32 idx = (__u32)n;
	struct l2sw_efdb_bucket *b = bpf_map_lookup_elem(&efdb, &idx);

	if (!b)
		return 1;
	if (bucket_trylock(b)) {
		c->busy++;
		return 0;
	}
	/* one way per iteration, not unrolled: 16 unrolled ways are 2^16 paths for the verifier */
#pragma clang loop unroll(disable)
	for (int i = 0; i < L2SW_WAYS; i++) {
		struct l2sw_efdb_entry *e = &b->e[i];
		int go;

		if (!b->sig[i])
			continue;
		if (e->flags & L2SW_FDB_STATIC)
			go = c->op == L2SW_OP_FLUSH && c->all;
		else if (c->op == L2SW_OP_FLUSH)
			go = 1;
		else
			go = aged_out(e->ts_ns, c->now, c->aging);
		if (go) {
			way_clear(b, i);
			c->count++;
		} else if (!(e->flags & L2SW_FDB_STATIC) && e->ts_ns < c->oldest) {
			c->oldest = e->ts_ns;
		}
	}
	bucket_unlock(b);
	return 0;
}

/* The table is full: remove every aged-out entry, one walk over all buckets (made only when
 * one can have aged out: room_to_reclaim). A bucket another writer held is skipped, and then
 * the walk cannot vouch for the oldest entry: the next full table walks again. A global
 * function: the verifier checks it once, not once for every path into the learn. */
__noinline int efdb_reclaim(__u64 now, __u64 aging)
{
	struct l2sw_fdb_room *r = room_to_reclaim(now, aging);
	struct scan_ctx c = { .now = now, .aging = aging, .oldest = now, .op = L2SW_OP_EXPIRE };
	__u64 base;

	if (!r)
		return 0;
	/* counters start from a value the verifier cannot know (see xdp_l2sw_fdb_ctl) */
	base = *(volatile __u64 *)&r->walks;
	c.count = base;
	c.busy = base;
	bpf_loop(efdb_cfg.bucket_mask + 1, scan_bucket, &c, 0);
	room_walked(r, c.busy != base ? 0 : c.oldest, c.count - base);
	return 0;
}

/* Bucket idx (held by the caller) has no free way: remove its aged-out entries; returns the
 * free-way mask after. Global, so the verifier checks it once (see efdb_reclaim). */
__noinline int bucket_reclaim(__u32 idx, __u64 now, __u64 aging)
{
	struct l2sw_efdb_bucket *b = bpf_map_lookup_elem(&efdb, &idx);
	struct l2sw_fdb_room *r = room();
	__u64 n = 0;

	if (!b)
		return 0;
#pragma clang loop unroll(disable)
	for (int i = 0; i < L2SW_WAYS; i++) {
		struct l2sw_efdb_entry *e = &b->e[i];

		if (b->sig[i] && !(e->flags & L2SW_FDB_STATIC) && aged_out(e->ts_ns, now, aging)) {
			way_clear(b, i);
			n++;
		}
	}
	if (n && r)
		__sync_fetch_and_add(&r->reclaimed, n);
	return algo_match16_u16(b->sig, 0);
}

/* Out of line: the datapath reaches it only when its learn memo misses (l2_switch_dp.h). */
static __noinline int fdb_learn(__u64 kw, const struct l2sw_port *p, struct l2sw_stats *st,
				__u64 now, __u64 aging)
{
	struct l2sw_efdb_bucket *b;
	struct l2sw_efdb_entry *e;
	struct l2sw_fdb_val v;
	__u64 t, seed = fdb_seed();
	__u32 free, bi;
	__u16 sig;
	int i;

	/* Fast path, read only (the datapath's lookup): the same MAC again on the same port within
	 * this clock tick, or a static entry. The locked path below looks again. */
	i = fdb_find(kw, seed, &v);
	if (i >= 0) {
		if (v.flags & L2SW_FDB_STATIC)
			return 0;
		if (v.ifindex == p->ifindex && v.ts_ns == now)
			return 1;
	} else if (i == -ENOENT && room_full()) {
		efdb_reclaim(now, aging); /* before taking the bucket: the walk takes every bucket */
	}
	bi = efdb_index(kw, seed, &sig);
	b = bpf_map_lookup_elem(&efdb, &bi);
	if (!b)
		return 0;
	if (bucket_trylock(b)) {
		st->fdb_busy++;
		return 0;
	}
	i = efdb_way(b, kw, sig);
	if (i >= 0) {
		e = &b->e[i & (L2SW_WAYS - 1)];
		if (e->flags & L2SW_FDB_STATIC) {
			bucket_unlock(b);
			return 0;
		}
		if (e->ifindex == p->ifindex) {
			if (aged_out(e->ts_ns, now, aging))
				st->learn++; /* it had aged out: a learn */
			e->ts_ns = now;
			bucket_unlock(b);
			return 1;
		}
		/* a move (or a fresh learn over an expired entry); its filing re-checks ts */
		if (aged_out(e->ts_ns, now, aging))
			st->learn++;
		else
			st->move++;
		e->ifindex = p->ifindex;
		e->idx = p->idx;
		e->ts_ns = now;
		bucket_unlock(b);
		fdb_gen_bump(); /* other CPUs' memos of this MAC on its old port are stale */
		return 1;
	}
	free = algo_match16_u16(b->sig, 0);
	if (!free && aging)
		free = bucket_reclaim(bi, now, aging);
	if (!free || !room_take()) {
		bucket_unlock(b);
		st->fdb_full++;
		return 0;
	}
	i = algo_ctz16(free) & (L2SW_WAYS - 1);
	e = &b->e[i];
	t = file_tick(now, now, aging, tick_ns());
	*(__u64 *)&e->key = kw;
	e->ifindex = p->ifindex;
	e->idx = p->idx;
	e->flags = 0;
	e->ts_ns = now;
	e->filed = (__u32)t;
	b->sig[i] = sig; /* last: the way becomes findable (readers re-check seq anyway) */
	bucket_unlock(b);
	st->learn++;
	wheel_file(kw, t);
	return 1;
}

static __always_inline int ctl_add(struct l2sw_fdb_req *r);
#define L2SW_BATCH_CTL(r) ctl_add(r)
#define L2SW_BATCH_FIND_BPF(kw, seed, v) fdb_find_bpf(kw, seed, v)
#include "l2_switch_dp.h"

/* ---- the wheel's timer ---------------------------------------------------------------------- */
struct wheel_ctx {
	__u64 now;
	__u64 aging;
	__u64 tick_ns;
	__u64 seed;   /* the table's key */
	__u32 tick;   /* the tick being processed */
	__u32 handle;
	struct l2sw_wheel_stats *ws;
	int empty;
};

/* One filing popped from the processed slot: expire, re-file, or drop it as stale. */
static __always_inline void wheel_item(struct enetstl_lb *lb, struct l2sw_wheel_item *it,
				       struct wheel_ctx *c)
{
	struct l2sw_efdb_bucket *b;
	struct l2sw_efdb_entry *e;
	__u64 kw = key_word(&it->key), t;
	__u16 sig;
	int i;

	b = efdb_bucket(kw, c->seed, &sig);
	if (!b)
		return;
	if (bucket_trylock(b)) { /* a writer is in: look again next tick */
		it->tick = c->tick + 1;
		enetstl_lb_push(lb, it->tick & (L2SW_WHEEL_SLOTS - 1), it, sizeof(*it));
		wheel_count(&c->ws->busy);
		return;
	}
	i = efdb_way(b, kw, sig);
	if (i < 0) {
		bucket_unlock(b);
		wheel_count(&c->ws->stale);
		return;
	}
	e = &b->e[i & (L2SW_WAYS - 1)];
	if (e->flags & L2SW_FDB_STATIC || e->filed != it->tick) {
		bucket_unlock(b);
		wheel_count(&c->ws->stale);
		return;
	}
	if (aged_out(e->ts_ns, c->now, c->aging)) {
		way_clear(b, i);
		bucket_unlock(b);
		wheel_count(&c->ws->expired);
		return;
	}
	t = file_tick(e->ts_ns, c->now, c->aging, c->tick_ns);
	e->filed = (__u32)t;
	bucket_unlock(b);
	it->tick = (__u32)t;
	if (enetstl_lb_push(lb, t & (L2SW_WHEEL_SLOTS - 1), it, sizeof(*it)))
		wheel_count(&c->ws->push_fail);
	else
		wheel_count(&c->ws->refiled);
}

static long wheel_step(__u64 n, void *arg)
{
	struct wheel_ctx *c = arg;
	struct l2sw_wheel_item it = {};
	struct enetstl_lb *lb;

	/* the handle is resolved per step: a referenced pointer cannot cross bpf_loop calls */
	lb = enetstl_lb_get(c->handle);
	if (!lb) {
		c->empty = 1;
		return 1;
	}
	if (enetstl_lb_pop(lb, c->tick & (L2SW_WHEEL_SLOTS - 1), &it, sizeof(it))) {
		enetstl_lb_release(lb);
		c->empty = 1;
		return 1;
	}
	wheel_item(lb, &it, c);
	enetstl_lb_release(lb);
	return 0;
}

static int wheel_cb(void *map, int *key, void *value)
{
	struct wheel *w = value;
	__u32 zero = 0;
	struct l2sw_wheel_stats *ws = bpf_map_lookup_elem(&wheel_stats, &zero);
	struct l2sw_config *cfg = bpf_map_lookup_elem(&config, &zero);
	struct wheel_ctx c = {};
	__u64 cur, next, again;

	if (!ws || !cfg)
		return 0;
	c.now = bpf_ktime_get_coarse_ns();
	c.aging = cfg->aging_ns;
	c.tick_ns = cfg->wheel_tick_ns ? cfg->wheel_tick_ns : DEFAULT_TICK_NS;
	c.seed = cfg->seed;
	c.handle = ws->handle;
	c.ws = ws;
	cur = c.now / c.tick_ns;
	next = ws->next_tick;
	if (!next || next > cur)
		next = cur;
	else if (next + L2SW_WHEEL_SLOTS <= cur) /* more than a lap behind: each slot once */
		next = cur - L2SW_WHEEL_SLOTS + 1;
	ws->runs++;
	again = c.tick_ns;
	for (int k = 0; k < 4 && next <= cur; k++) {
		c.tick = (__u32)next;
		c.empty = 0;
		bpf_loop(L2SW_WHEEL_BATCH, wheel_step, &c, 0);
		if (!c.empty)
			break; /* batch used up: this slot goes on in RETRY_NS */
		next++;
	}
	if (next <= cur)
		again = RETRY_NS;
	ws->next_tick = next;
	bpf_timer_start(&w->timer, again, 0);
	return 0;
}

/* ---- control: FDB operations with the writers' protocol, run by the controller (test_run) ---- */
/* The bucket of r's key, taken for writing (the caller unlocks it), and the key's way in it
 * (-1: absent). NULL with *err set when there is no bucket or another writer holds it. */
static __always_inline struct l2sw_efdb_bucket *ctl_take(struct l2sw_fdb_req *r, __u64 *kw,
							 __u16 *sig, int *way, int *err)
{
	struct l2sw_efdb_bucket *b;

	*kw = key_word(&r->key);
	b = efdb_bucket(*kw, fdb_seed(), sig);
	if (!b) {
		*err = -EINVAL;
		return 0;
	}
	if (bucket_trylock(b)) {
		*err = -EBUSY;
		return 0;
	}
	*way = efdb_way(b, *kw, *sig);
	return b;
}

static __always_inline int ctl_add(struct l2sw_fdb_req *r)
{
	struct l2sw_efdb_bucket *b;
	struct l2sw_efdb_entry *e;
	__u32 free;
	__u64 kw;
	__u16 sig;
	int i, err;

	b = ctl_take(r, &kw, &sig, &i, &err);
	if (!b)
		return err;
	if (i < 0) {
		free = algo_match16_u16(b->sig, 0);
		if (!free || !room_take()) {
			bucket_unlock(b);
			return -ENOSPC;
		}
		i = algo_ctz16(free);
	}
	i &= L2SW_WAYS - 1;
	e = &b->e[i];
	*(__u64 *)&e->key = kw;
	e->ifindex = r->ifindex;
	e->idx = r->idx;
	e->flags = r->flags;
	e->ts_ns = r->now_ns;
	e->filed = 0; /* static entries are never filed; a dynamic add is aged lazily */
	b->sig[i] = sig;
	bucket_unlock(b);
	fdb_gen_bump(); /* a static entry over a learned one: learn memos of it are stale */
	return 0;
}

static __always_inline int ctl_del(struct l2sw_fdb_req *r)
{
	struct l2sw_efdb_bucket *b;
	__u64 kw;
	__u16 sig;
	int i, err;

	b = ctl_take(r, &kw, &sig, &i, &err);
	if (!b)
		return err;
	if (i >= 0) {
		way_clear(b, i);
		r->count = 1;
	}
	bucket_unlock(b);
	return i >= 0 ? 0 : -ENOENT;
}

static __always_inline int ctl_wheel_start(void)
{
	__u32 zero = 0;
	struct l2sw_wheel_stats *ws = bpf_map_lookup_elem(&wheel_stats, &zero);
	struct wheel *w = bpf_map_lookup_elem(&wheel, &zero);
	struct enetstl_lb *lb, *old;
	int err;

	if (!ws || !w)
		return -EINVAL;
	if (!bpf_ksym_exists(enetstl_lb_new))
		return -ENOENT; /* no module: lazy aging + the controller's expire() */
	if (ws->handle)
		return 0;
	lb = enetstl_lb_new(L2SW_WHEEL_SLOTS, L2SW_WHEEL_CAP, sizeof(struct l2sw_wheel_item));
	if (!lb)
		return -ENOSPC;
	ws->handle = enetstl_lb_handle(lb);
	old = bpf_kptr_xchg(&w->lb, lb);
	if (old)
		enetstl_lb_release(old);
	err = bpf_timer_init(&w->timer, &wheel, 1 /* CLOCK_MONOTONIC */);
	if (err && err != -EBUSY)
		return err;
	err = bpf_timer_set_callback(&w->timer, wheel_cb);
	if (err)
		return err;
	return bpf_timer_start(&w->timer, tick_ns(), 0);
}

SEC("xdp")
int xdp_l2sw_fdb_ctl(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct l2sw_fdb_req *r = data;
	struct scan_ctx c = {};
	__u32 zero = 0;
	struct l2sw_config *cfg;

	if ((void *)(r + 1) > data_end)
		return XDP_ABORTED;
	switch (r->op) {
	case L2SW_OP_ADD:
		r->ret = ctl_add(r);
		break;
	case L2SW_OP_DEL:
		r->ret = ctl_del(r);
		break;
	case L2SW_OP_FLUSH:
	case L2SW_OP_EXPIRE:
		cfg = bpf_map_lookup_elem(&config, &zero);
		c.op = r->op;
		c.all = !!(r->flags & L2SW_FDB_STATIC);
		c.now = r->now_ns;
		c.aging = cfg ? cfg->aging_ns : 0;
		/* Counters start from the request (0): values the verifier cannot know, so the
		 * callback's iterations converge instead of being told apart by count = 1, 2, ... */
		c.count = r->count;
		c.busy = r->busy;
		bpf_loop(efdb_cfg.bucket_mask + 1, scan_bucket, &c, 0);
		r->count = c.count - r->count;
		r->busy = c.busy - r->busy;
		r->ret = c.busy ? -EBUSY : 0;
		break;
	case L2SW_OP_WHEEL_START:
		r->ret = ctl_wheel_start();
		break;
	default:
		r->ret = -EINVAL;
	}
	return XDP_PASS;
}

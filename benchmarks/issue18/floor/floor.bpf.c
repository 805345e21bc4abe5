/* What a dependent read costs a BPF program, by region size: the floor under the IPv6 table
 * (xdp_progs/router/NOTES.md "The floor"). Each probe walks 4 dependent reads, next = t[next],
 * every target a random cache line of the region; bpf_loop runs the probes back to back, so
 * independent probes overlap as far as the CPU lets them. Modes (frame word 1):
 *   0  the loop alone (subtracted)
 *   1  one BPF_F_MMAPABLE array value read by offset (vmalloc'd, 4 KiB pages): the router's way
 *   2  the same reads with a branch on each value read (BPF has no select: a ?: is a jump)
 *   3  the region as 32 KiB inner arrays of an ARRAY_OF_MAPS (kmalloc'd: the 1 GiB-page direct
 *      map), two inlined lookups per read
 * Built by floor.py with -DWORDS=<region words> (the verifier needs a constant bound). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define CW 8064u   /* words per inner value: 32,256 bytes, <= 32 KiB with the map's header */

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__uint(key_size, 4);
	__uint(value_size, 8);          /* set at load */
} flat SEC(".maps");

struct inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(key_size, 4);
	__uint(value_size, CW * 4);
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__array(values, struct inner);
} outer SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u32);
} probes SEC(".maps");

__u64 sink;

struct walk { __u32 mode; __u64 acc; };

static long probe(__u64 i, void *data)
{
	struct walk *c = data;
	__u32 k = 0, pi = i, idx, *p, *t;
	int s;

	p = bpf_map_lookup_elem(&probes, &pi);
	if (!p)
		return 1;
	idx = *p;
	if (c->mode == 1) {
		t = bpf_map_lookup_elem(&flat, &k);
		if (!t)
			return 1;
		for (s = 0; s < 4; s++) {
			if (idx >= WORDS)
				return 1;
			idx = t[idx];
		}
	} else if (c->mode == 2) {
		__u32 x = 0;

		t = bpf_map_lookup_elem(&flat, &k);
		if (!t)
			return 1;
		for (s = 0; s < 4; s++) {
			__u32 v;

			if (idx >= WORDS)
				return 1;
			v = t[idx];
			if (v & 16) {           /* bit 4 of a line's word index: random */
				idx = v ^ 16;
				x += 3;
			} else {
				idx = v;
				x ^= 5;
			}
		}
		c->acc += x;
	} else if (c->mode == 3) {
		for (s = 0; s < 4; s++) {
			__u32 ch = idx >> 13, off = idx & 8191;
			void *in = bpf_map_lookup_elem(&outer, &ch);

			if (!in)
				return 1;
			t = bpf_map_lookup_elem(in, &k);
			if (!t || off >= CW)
				return 1;
			idx = t[off];
		}
	}
	c->acc += idx;
	return 0;
}

SEC("xdp")
int floor_walk(struct xdp_md *x)
{
	__u32 *h = (void *)(long)x->data;
	struct walk c = {};

	if ((void *)(h + 2) > (void *)(long)x->data_end)
		return XDP_ABORTED;
	c.mode = h[1];
	bpf_loop(h[0], probe, &c, 0);
	sink += c.acc;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";

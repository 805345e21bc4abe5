// SPDX-License-Identifier: GPL-2.0
/* The verdict is read from an inner array map found through an array-of-maps at index 0,
 * key 0 (XDP_ABORTED when the slot is empty). Exercises inner-map fd updates from Python. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct inner);
} outer SEC(".maps");

SEC("xdp")
int xdp_outer(struct xdp_md *ctx)
{
	__u32 zero = 0, *v;
	void *in = bpf_map_lookup_elem(&outer, &zero);

	if (!in)
		return XDP_ABORTED;
	v = bpf_map_lookup_elem(in, &zero);
	return v ? *v : XDP_ABORTED;
}

char LICENSE[] SEC("license") = "GPL";

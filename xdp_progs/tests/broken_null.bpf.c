// SPDX-License-Identifier: GPL-2.0
/* MUST FAIL: dereferences a map lookup result without the NULL check.
 * Expected verifier text: "invalid mem access 'map_value_or_null'". A hash map: since 6.13
 * the verifier knows an array lookup with a constant in-range key cannot be NULL. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} verdict SEC(".maps");

SEC("xdp")
int xdp_null_deref(struct xdp_md *ctx)
{
	__u32 zero = 0;
	__u32 *v = bpf_map_lookup_elem(&verdict, &zero);

	return *v;
}

char LICENSE[] SEC("license") = "GPL";

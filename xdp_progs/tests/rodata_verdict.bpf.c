// SPDX-License-Identifier: GPL-2.0
/* Test program for nf.bpf: the verdict and an optional rewrite come from a const volatile
 * config (rodata); every packet is counted per CPU per action; a hash and an array map give the
 * Python side something to exercise (sizes are set from Python before load). */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>

struct cfg {
	__u32 verdict;      /* XDP action returned for every packet */
	__u8 swap_macs;     /* 1: swap Ethernet src/dst before returning */
	__u8 mark;          /* != 0: overwrite the last byte of the frame with this value */
	__u16 pad;
};

struct counters {
	__u64 packets;
	__u64 bytes;
};

struct flow_key {
	__u32 addr;
	__u16 port;
	__u8 proto;
	__u8 pad;
};

const volatile struct cfg cfg = { .verdict = XDP_PASS };
const volatile __u32 generation = 7;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 5);             /* one slot per XDP action */
	__type(key, __u32);
	__type(value, struct counters);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);            /* resized from Python in tests */
	__type(key, struct flow_key);
	__type(value, __u64);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} info SEC(".maps");

SEC("xdp")
int xdp_main(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 action = cfg.verdict;
	__u32 zero = 0, *slot;
	struct counters *c;

	if (action > XDP_REDIRECT)
		action = XDP_ABORTED;
	if (cfg.swap_macs) {
		struct ethhdr *eth = data;
		unsigned char tmp[ETH_ALEN];

		if ((void *)(eth + 1) > data_end)
			return XDP_DROP;
		__builtin_memcpy(tmp, eth->h_dest, ETH_ALEN);
		__builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
		__builtin_memcpy(eth->h_source, tmp, ETH_ALEN);
	}
	if (cfg.mark) {
		__u32 len = data_end - data;
		__u8 *last;

		/* bounded so the verifier can check the access */
		if (len < 1 || len > 4096)
			return XDP_DROP;
		last = data + (len - 1);
		if ((void *)(last + 1) > data_end)
			return XDP_DROP;
		*last = cfg.mark;
	}
	slot = bpf_map_lookup_elem(&info, &zero);
	if (slot)
		*slot = generation;
	c = bpf_map_lookup_elem(&stats, &action);
	if (c) {
		c->packets++;
		c->bytes += data_end - data;
	}
	return action;
}

char LICENSE[] SEC("license") = "GPL";

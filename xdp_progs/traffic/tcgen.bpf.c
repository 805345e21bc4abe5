// SPDX-License-Identifier: GPL-2.0
/* tcgen: the generator for kernels that refuse live frames. See gen.h.
 *
 * Run through plain BPF_PROG_TEST_RUN with `repeat`: each run bpf_clone_redirect()s the test
 * skb out of gen_cfg.ifindex. The helper transmits the clone itself (dev_queue_xmit), and
 * test_run enables bottom halves after every run, so the far end's NAPI, the NF on it and the
 * receiver all run on the calling CPU, as with live frames. */
#include <linux/pkt_cls.h>
#include "common.h"
#include "gen_maps.h"

char LICENSE[] SEC("license") = "GPL";

SEC("tc")
int tcgen_clone(struct __sk_buff *skb)
{
	__u32 zero = 0, cpu = bpf_get_smp_processor_id();
	struct gen_stats *st;
	struct gen_tmpl *t;
	long ret;

	st = bpf_map_lookup_elem(&gen_stats, &zero);
	if (!st)
		return TC_ACT_SHOT;
	st->runs++;
	/* One template per CPU needs no copy: the caller passes that template as the test data. */
	t = gen_next_tmpl(st);
	if (gen_cfg.restore_len && gen_cfg.n_tmpl > 1) {
		if (!t)
			return TC_ACT_SHOT;
		ret = bpf_skb_store_bytes(skb, 0, t, gen_cfg.restore_len, 0);
		if (ret) {
			st->error = ret;
			return TC_ACT_SHOT;
		}
	}
	/* The clone inherits this: the sending veth picks tx queue cpu % queues (a recorded rx
	 * queue overrides the flow hash), so each CPU feeds its own queue of the far end and that
	 * queue's NAPI runs here, not on the other CPU. */
	skb->queue_mapping = cpu + 1;
	ret = bpf_clone_redirect(skb, gen_cfg.ifindex, 0);
	if (ret)
		st->error = ret;
	else
		st->sent++;
	return TC_ACT_SHOT;
}

// SPDX-License-Identifier: GPL-2.0
/*
 * insncount: a QEMU TCG plugin (API v1, QEMU 7.2) that counts the guest instructions one vCPU
 * executes between two marker instructions, with a histogram by translation-block address.
 *
 * Markers are 7-byte NOPs with a distinctive displacement, executed by the measuring process:
 *   start: 0f 1f 80 01 43 4e 49   nopl 0x494e4301(%rax)
 *   stop:  0f 1f 80 02 43 4e 49   nopl 0x494e4302(%rax)
 * The vCPU that executes "start" becomes the counted one; every translation block (TB) it then
 * runs adds its instruction count to the total and to the histogram entry of the TB's first
 * address (a TB never spans a call or a return, so the address names one function). "stop" ends
 * the region and writes the result file named by the plugin argument out=PATH (atomically:
 * PATH.tmp, then rename), before the guest executes its next instruction:
 *     seq <n>\nvcpu <i>\ninsns <total>\ntbs <executed TBs>\n<pc hex> <insns>\n...
 * The TBs that hold the markers are counted whole (the stop TB) or not at all (the start TB);
 * that constant cancels when two region lengths are subtracted, which is how it is meant to be
 * used (nf/vm/insncount.py).
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <qemu/qemu-plugin.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

#define MARK_LEN 7
static const uint8_t mark_start[MARK_LEN] = { 0x0f, 0x1f, 0x80, 0x01, 0x43, 0x4e, 0x49 };
static const uint8_t mark_stop[MARK_LEN] = { 0x0f, 0x1f, 0x80, 0x02, 0x43, 0x4e, 0x49 };

/* One per translation; TBs are retranslated rarely, so leaking them is bounded. */
struct tb_info {
	uint64_t vaddr;
	uint64_t n_insns;
};

/* Open-addressing histogram: TB address -> instructions. Written only by the counted vCPU. */
#define HIST_BITS 17
#define HIST_SIZE (1u << HIST_BITS)
struct hist_ent {
	uint64_t pc;	/* 0 = empty */
	uint64_t insns;
};
static struct hist_ent *hist;
static uint64_t hist_overflow;	/* insns of TBs that found the table full */

static _Atomic int active_vcpu = -1;
static uint64_t total_insns, total_tbs, seq;
static const char *out_path;

static void hist_add(uint64_t pc, uint64_t n)
{
	uint64_t h = (pc * 0x9E3779B97F4A7C15ull) >> (64 - HIST_BITS);
	for (uint32_t probe = 0; probe < HIST_SIZE; probe++) {
		struct hist_ent *e = &hist[(h + probe) & (HIST_SIZE - 1)];
		if (e->pc == pc) {
			e->insns += n;
			return;
		}
		if (e->pc == 0) {
			e->pc = pc;
			e->insns = n;
			return;
		}
		if (probe > 64)	/* keep the per-TB cost bounded */
			break;
	}
	hist_overflow += n;
}

static void tb_exec(unsigned int vcpu, void *udata)
{
	const struct tb_info *tb = udata;

	if ((int)vcpu != atomic_load_explicit(&active_vcpu, memory_order_relaxed))
		return;
	total_insns += tb->n_insns;
	total_tbs++;
	hist_add(tb->vaddr, tb->n_insns);
}

static void write_result(unsigned int vcpu)
{
	char tmp[4096];
	FILE *f;

	if (!out_path)
		return;
	snprintf(tmp, sizeof(tmp), "%s.tmp", out_path);
	f = fopen(tmp, "w");
	if (!f) {
		qemu_plugin_outs("insncount: cannot write the result file\n");
		return;
	}
	fprintf(f, "seq %" PRIu64 "\nvcpu %u\ninsns %" PRIu64 "\ntbs %" PRIu64 "\n",
		seq, vcpu, total_insns, total_tbs);
	if (hist_overflow)
		fprintf(f, "0 %" PRIu64 "\n", hist_overflow);
	for (uint32_t i = 0; i < HIST_SIZE; i++)
		if (hist[i].pc)
			fprintf(f, "%" PRIx64 " %" PRIu64 "\n", hist[i].pc, hist[i].insns);
	fclose(f);
	rename(tmp, out_path);
}

static void marker_exec(unsigned int vcpu, void *udata)
{
	int expected = -1;

	if (udata == mark_start) {
		/* A second start on another vCPU while one is counted is ignored. */
		if (!atomic_compare_exchange_strong(&active_vcpu, &expected, (int)vcpu) &&
		    expected != (int)vcpu)
			return;
		total_insns = total_tbs = hist_overflow = 0;
		memset(hist, 0, HIST_SIZE * sizeof(*hist));
	} else {
		if (atomic_load(&active_vcpu) != (int)vcpu)
			return;
		atomic_store(&active_vcpu, -1);
		seq++;
		write_result(vcpu);
	}
}

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
	size_t n = qemu_plugin_tb_n_insns(tb);
	struct tb_info *info = malloc(sizeof(*info));

	(void)id;
	if (!info)
		return;
	info->vaddr = qemu_plugin_tb_vaddr(tb);
	info->n_insns = n;
	qemu_plugin_register_vcpu_tb_exec_cb(tb, tb_exec, QEMU_PLUGIN_CB_NO_REGS, info);

	for (size_t i = 0; i < n; i++) {
		struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
		const uint8_t *data;

		if (qemu_plugin_insn_size(insn) != MARK_LEN)
			continue;
		data = qemu_plugin_insn_data(insn);
		if (!memcmp(data, mark_start, MARK_LEN))
			qemu_plugin_register_vcpu_insn_exec_cb(insn, marker_exec,
							       QEMU_PLUGIN_CB_NO_REGS,
							       (void *)mark_start);
		else if (!memcmp(data, mark_stop, MARK_LEN))
			qemu_plugin_register_vcpu_insn_exec_cb(insn, marker_exec,
							       QEMU_PLUGIN_CB_NO_REGS,
							       (void *)mark_stop);
	}
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
					   int argc, char **argv)
{
	if (!info->system_emulation) {
		qemu_plugin_outs("insncount: system emulation only\n");
		return -1;
	}
	for (int i = 0; i < argc; i++) {
		if (!strncmp(argv[i], "out=", 4)) {
			out_path = argv[i] + 4;
		} else {
			fprintf(stderr, "insncount: unknown argument %s\n", argv[i]);
			return -1;
		}
	}
	hist = calloc(HIST_SIZE, sizeof(*hist));
	if (!hist)
		return -1;
	qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
	return 0;
}

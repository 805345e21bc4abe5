// SPDX-License-Identifier: GPL-2.0
/* The eNetSTL L2 switch (xdp_progs/l2_switch/) built as a chain member: same source,
 * NF_CHAINABLE on (frames it passes to the kernel go to the next NF of the chain instead). */
#define NF_CHAINABLE
#include "../l2_switch/l2_switch_enetstl.bpf.c"

// SPDX-License-Identifier: GPL-2.0
/* The base NF (xdp_progs/base/) built as a chain member: same source, NF_CHAINABLE on. */
#define NF_CHAINABLE
#include "../base/base.bpf.c"

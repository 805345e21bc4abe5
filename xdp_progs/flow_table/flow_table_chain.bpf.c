// SPDX-License-Identifier: GPL-2.0
/* The flow table (flow_table.bpf.c) built as a chain member (nf/chain.py): same source,
 * NF_CHAINABLE on. */
#define NF_CHAINABLE
#include "flow_table.bpf.c"

// SPDX-License-Identifier: GPL-2.0
/* The sketch (sketch.bpf.c) built as a chain member (nf/chain.py): same source, NF_CHAINABLE on. */
#define NF_CHAINABLE
#include "sketch.bpf.c"

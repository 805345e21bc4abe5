// SPDX-License-Identifier: GPL-2.0
/* The router (router.bpf.c) built as a chain member (nf/chain.py): same source, NF_CHAINABLE on. */
#define NF_CHAINABLE
#include "router.bpf.c"

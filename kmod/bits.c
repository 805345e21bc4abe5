// SPDX-License-Identifier: GPL-2.0
/*
 * Bit kfuncs with defined results for 0 (unlike __ffs / __builtin_ctz):
 *   ffs  = 1 + index of the lowest set bit, 0 for 0
 *   fls  = 1 + index of the highest set bit, 0 for 0
 *   ctz  = number of trailing zeros, 32 / 64 for 0
 *   popcnt = number of set bits
 * General-register instructions only (the kernel's hweight uses popcnt where the CPU has it).
 */
#include <linux/kernel.h>
#include <linux/bitops.h>
#include "internal.h"

__bpf_kfunc_start_defs();

__bpf_kfunc u32 enetstl_ffs32(u32 x)
{
	return x ? __ffs(x) + 1 : 0;
}

__bpf_kfunc u32 enetstl_fls32(u32 x)
{
	return fls(x);
}

__bpf_kfunc u32 enetstl_popcnt32(u32 x)
{
	return hweight32(x);
}

__bpf_kfunc u32 enetstl_ctz32(u32 x)
{
	return x ? __ffs(x) : 32;
}

__bpf_kfunc u32 enetstl_ffs64(u64 x)
{
	return x ? __ffs64(x) + 1 : 0;
}

__bpf_kfunc u32 enetstl_fls64(u64 x)
{
	return fls64(x);
}

__bpf_kfunc u32 enetstl_popcnt64(u64 x)
{
	return hweight64(x);
}

__bpf_kfunc u32 enetstl_ctz64(u64 x)
{
	return x ? __ffs64(x) : 64;
}

__bpf_kfunc_end_defs();

// SPDX-License-Identifier: MIT
/* Copies 1 KiB a word at a time, then reads one word back. */
#include "bench.h"

BENCH_FN
{
	const uint64_t *src = (const uint64_t *)ctx->a;
	uint64_t *dst = (uint64_t *)ctx->b;

	for (uint32_t i = 0; i < BENCH_BUF / 8; i++)
		dst[i] = src[i];
	return dst[ctx->seed % (BENCH_BUF / 8)];
}

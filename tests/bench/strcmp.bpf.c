// SPDX-License-Identifier: MIT
/* strcmp of two 1 KiB strings that differ in their last character. */
#include "bench.h"

BENCH_FN
{
	const uint8_t *a = ctx->a, *b = ctx->b;
	uint32_t i = 0;

	while (i < BENCH_BUF - 1 && a[i] && a[i] == b[i])
		i++;
	return (uint64_t)((int)a[i] - (int)b[i]) + i;
}

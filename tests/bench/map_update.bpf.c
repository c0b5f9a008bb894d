// SPDX-License-Identifier: MIT
/* 64 map updates through the helper, against a stub array map. */
#include "bench.h"

BENCH_FN
{
	uint64_t sum = 0;

	for (uint32_t i = 0; i < 64; i++) {
		uint32_t key = i & 15;
		uint64_t value = ctx->seed + i;

		sum += (uint64_t)map_update(ctx->map, &key, &value, 0);
	}
	return sum;
}

// SPDX-License-Identifier: MIT
/* log2 of 1024 integers by binary search on the bits. */
#include "bench.h"

BENCH_INLINE uint32_t log2_u64(uint64_t v)
{
	uint32_t r = 0;

	if (v >> 32) {
		v >>= 32;
		r += 32;
	}
	if (v >> 16) {
		v >>= 16;
		r += 16;
	}
	if (v >> 8) {
		v >>= 8;
		r += 8;
	}
	if (v >> 4) {
		v >>= 4;
		r += 4;
	}
	if (v >> 2) {
		v >>= 2;
		r += 2;
	}
	if (v >> 1)
		r += 1;
	return r;
}

BENCH_FN
{
	uint64_t sum = 0, x = ctx->seed;

	for (uint32_t i = 0; i < 1024; i++) {
		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		sum += log2_u64(x >> (i & 63));
	}
	return sum;
}

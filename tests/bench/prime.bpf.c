// SPDX-License-Identifier: MIT
/* Counts the primes below 3000 by trial division. */
#include "bench.h"

BENCH_FN
{
	uint64_t count = 0;

	for (uint64_t n = 2; n < 3000 + (ctx->seed & 1); n++) {
		uint64_t d = 2;

		while (d * d <= n && n % d)
			d++;
		count += d * d > n;
	}
	return count;
}

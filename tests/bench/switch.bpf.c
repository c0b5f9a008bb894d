// SPDX-License-Identifier: MIT
/* A 16-way switch over 256 values, each case a different operation. */
#include "bench.h"

BENCH_FN
{
	uint64_t s = ctx->seed;

	for (uint32_t i = 0; i < BENCH_VALS; i++) {
		uint32_t v = ctx->vals[i];

		switch (v & 15) {
		case 0:
			s += v;
			break;
		case 1:
			s ^= (uint64_t)v << 7;
			break;
		case 2:
			s = s * 3 + i;
			break;
		case 3:
			s -= v >> 2;
			break;
		case 4:
			s |= v & 0x70;
			break;
		case 5:
			s &= ~(uint64_t)v;
			break;
		case 6:
			s = (s << 3) | (s >> 61);
			break;
		case 7:
			s += i * v;
			break;
		case 8:
			s ^= s >> 11;
			break;
		case 9:
			s = s + (v ^ i);
			break;
		case 10:
			s = s * 5 - v;
			break;
		case 11:
			s ^= (uint64_t)i << 13;
			break;
		case 12:
			s += s >> 5;
			break;
		case 13:
			s = ~s + v;
			break;
		case 14:
			s -= (uint64_t)i * i;
			break;
		default:
			s = (s >> 1) ^ v;
			break;
		}
	}
	return s;
}

/* SPDX-License-Identifier: MIT */
/*
 * The benchmark programs' common ground: built once with clang -target bpf for
 * the VM and once natively, from the same C. Each program is one function
 * "uint64_t BENCH_ENTRY(struct bench_ctx *ctx)"; helpers are inlined, and the
 * only helper call is the stub map update, so the BPF build needs no
 * relocations.
 */
#ifndef BPFTIME_BENCH_H
#define BPFTIME_BENCH_H

#include <stdint.h>

#define BENCH_BUF 1024
#define BENCH_VALS 256

struct bench_ctx {
	void *map;
	uint64_t seed;
	uint8_t a[BENCH_BUF];
	uint8_t b[BENCH_BUF];
	uint32_t vals[BENCH_VALS];
};

#define BENCH_INLINE static inline __attribute__((always_inline))

#ifdef __bpf__
/* The kernel's BPF_FUNC_map_update_elem. */
static long (*const map_update)(void *map, const void *key, const void *value,
				uint64_t flags) = (void *)2;
#define BENCH_FN uint64_t __attribute__((section(".text"))) BENCH_ENTRY(struct bench_ctx *ctx)
#else
long bench_map_update(void *map, const void *key, const void *value, uint64_t flags);
#define map_update bench_map_update
#define BENCH_FN uint64_t BENCH_ENTRY(struct bench_ctx *ctx)
#endif

BENCH_FN;

#endif

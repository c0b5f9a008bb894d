// SPDX-License-Identifier: MIT
/*
 * bpftime-vm bench: each benchmark program (tests/bench) on the interpreter,
 * the JIT and natively, side by side in one run. Figures are medians of
 * several timed batches; each batch runs long enough to dwarf the clock,
 * and the engines take turns batch by batch, so a noisy moment on a shared
 * machine slows one batch of each rather than all of one.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench-programs.h"
#include "vm-bench.h"
#include "vm.h"

#define BATCHES 7
#define BATCH_NS 20000000ULL
#define STUB_MAP_ENTRIES 16

/* The stub map: 16 u64 slots indexed by a u32 key, as an ARRAY map would be. */
long bench_map_update(void *map, const void *key, const void *value, uint64_t flags)
{
	uint64_t *slots = map;
	uint32_t k;

	memcpy(&k, key, sizeof(k));
	if (k >= STUB_MAP_ENTRIES)
		return -E2BIG;
	memcpy(&slots[k], value, sizeof(uint64_t));
	return 0;
}

static uint64_t map_update_helper(uint64_t map, uint64_t key, uint64_t value, uint64_t flags,
				  uint64_t unused)
{
	return (uint64_t)bench_map_update((void *)(uintptr_t)map, (void *)(uintptr_t)key,
					  (void *)(uintptr_t)value, flags);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void fill_ctx(struct bench_ctx *ctx, uint64_t *map)
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->map = map;
	ctx->seed = 12345;
	for (int i = 0; i < BENCH_BUF - 1; i++)
		ctx->a[i] = ctx->b[i] = (uint8_t)('a' + i % 26);
	ctx->b[BENCH_BUF - 2] = 'Z';
	for (int i = 0; i < BENCH_VALS; i++)
		ctx->vals[i] = (uint32_t)(i * 2654435761U);
}

struct engine {
	const struct vm *vm;
	const struct bench_program *prog;
	struct bench_ctx *ctx;
	uint64_t iters; /* runs per batch */
	double per_run[BATCHES];
	uint64_t result;
};

static uint64_t run_once(const struct engine *e)
{
	uint64_t r0 = 0;

	if (!e->vm)
		return e->prog->native(e->ctx);
	vm__exec(e->vm, e->ctx, sizeof(*e->ctx), &r0, NULL);
	return r0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* How many runs make a batch of about BATCH_NS. */
static void size_batch(struct engine *e)
{
	uint64_t iters = 1, t0, t;

	for (;;) {
		t0 = now_ns();
		for (uint64_t i = 0; i < iters; i++)
			e->result = run_once(e);
		t = now_ns() - t0;
		if (t >= BATCH_NS / 4 || iters > (1ULL << 30))
			break;
		iters *= 2;
	}
	e->iters = iters * BATCH_NS / (t ? t : 1) + 1;
}

static void time_batch(struct engine *e, int b)
{
	uint64_t t0 = now_ns();

	for (uint64_t i = 0; i < e->iters; i++)
		e->result = run_once(e);
	e->per_run[b] = (double)(now_ns() - t0) / (double)e->iters;
}

/* Median ns per run of each engine over BATCHES batches, taken in turns. */
static void time_engines(struct engine *engines, int n)
{
	for (int k = 0; k < n; k++)
		size_batch(&engines[k]);
	for (int b = 0; b < BATCHES; b++)
		for (int k = 0; k < n; k++)
			time_batch(&engines[k], b);
	for (int k = 0; k < n; k++)
		qsort(engines[k].per_run, BATCHES, sizeof(double), cmp_double);
}

static double median(const struct engine *e)
{
	return e->per_run[BATCHES / 2];
}

/* A VM with the program loaded (kernel-verified code: memory unchecked). */
static struct vm *load(const struct bench_program *p, bool jit)
{
	struct vm *vm = vm__new();

	if (!vm)
		return NULL;
	if (vm__set_jit(vm, jit) < 0 ||
	    vm__register_helper(vm, 2, "map_update_elem", map_update_helper) < 0 ||
	    vm__set_mem_check(vm, vm_mem_allow_all, NULL) < 0 ||
	    vm__load(vm, (const struct ebpf_insn *)p->insns, p->insn_cnt) < 0) {
		fprintf(stderr, "Error: %s: %s\n", p->name, vm__strerror(vm));
		vm__free(vm);
		return NULL;
	}
	return vm;
}

/* Mean ns of one load: what the JIT adds is the JIT load minus the interpreter's. */
static double time_load(const struct bench_program *p, bool jit)
{
	const int loads = 200;
	uint64_t t0 = now_ns();

	for (int i = 0; i < loads; i++)
		vm__free(load(p, jit));
	return (double)(now_ns() - t0) / loads;
}

int bench__run(FILE *out)
{
	static uint64_t map[STUB_MAP_ENTRIES];
	struct bench_ctx *ctx = malloc(sizeof(*ctx));
	int failed = 0;

	if (!ctx)
		return -ENOMEM;
	fprintf(out, "%-11s %6s %11s %9s %9s %10s %11s %14s\n", "program", "insns", "interp ns",
		"jit ns", "native ns", "jit/native", "interp/jit", "JIT ns/1k insns");
	for (unsigned int i = 0; i < bench_program_count; i++) {
		const struct bench_program *p = &bench_programs[i];
		/* native, JIT, interpreter */
		struct engine e[3] = { { .prog = p, .ctx = ctx }, { .prog = p, .ctx = ctx },
				       { .prog = p, .ctx = ctx } };
		uint64_t r_interp, r_jit, r_native;
		double t_interp, t_jit, t_native, compile;
		struct vm *vi = load(p, false), *vj = load(p, true);

		if (!vi || !vj) {
			vm__free(vi);
			vm__free(vj);
			failed++;
			continue;
		}
		e[1].vm = vj;
		e[2].vm = vi;
		compile = time_load(p, true) - time_load(p, false);
		/* The programs only read the context; map_update writes the stub map. */
		fill_ctx(ctx, map);
		time_engines(e, 3);
		t_native = median(&e[0]);
		t_jit = median(&e[1]);
		t_interp = median(&e[2]);
		r_native = e[0].result;
		r_jit = e[1].result;
		r_interp = e[2].result;
		fprintf(out, "%-11s %6u %11.1f %9.1f %9.1f %9.2fx %10.1fx %14.0f\n", p->name,
			p->insn_cnt, t_interp, t_jit, t_native, t_jit / t_native, t_interp / t_jit,
			compile * 1000.0 / p->insn_cnt);
		if (r_interp != r_jit || r_jit != r_native) {
			fprintf(out, "  results differ: interp 0x%" PRIx64 ", jit 0x%" PRIx64
				     ", native 0x%" PRIx64 "\n",
				r_interp, r_jit, r_native);
			failed++;
		}
		vm__free(vi);
		vm__free(vj);
	}
	free(ctx);
	return failed;
}

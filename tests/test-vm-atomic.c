// SPDX-License-Identifier: MIT
/*
 * Atomic read-modify-write instructions: add/or/and/xor with and without
 * fetch, xchg and cmpxchg, 32 and 64 bit. The 32-bit forms must touch only
 * four bytes and zero-extend what they return. Also one loaded VM run from
 * many threads at once, sharing a counter through atomics.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "vm-test-util.h"

/* The upper half of a 64-bit word that a 32-bit atomic must leave alone. */
#define GUARD 0xa5a5a5a500000000ull

struct rmw_case {
	const char *op;
	uint64_t mem, src;
	uint64_t want_mem, want_src;
};

/* mem[0] is the target, mem[1] must stay untouched; r0 returns the source register. */
static void check_rmw_cases(const struct rmw_case *cases, size_t n)
{
	char text[160];
	uint64_t mem[2], r0;

	for (size_t i = 0; i < n; i++) {
		const struct rmw_case *c = &cases[i];

		mem[0] = c->mem;
		mem[1] = 0x0123456789abcdef;
		snprintf(text, sizeof(text),
			 "lddw %%r2, 0x%llx\nlock %s [%%r1], %%r2\nmov %%r0, %%r2\nexit\n",
			 (unsigned long long)c->src, c->op);
		r0 = vt_run_mem(text, mem, sizeof(mem));
		cr_expect_eq(mem[0], c->want_mem,
			     "lock %s 0x%llx, 0x%llx: memory 0x%llx, want 0x%llx", c->op,
			     (unsigned long long)c->mem, (unsigned long long)c->src,
			     (unsigned long long)mem[0], (unsigned long long)c->want_mem);
		cr_expect_eq(r0, c->want_src, "lock %s 0x%llx, 0x%llx: src 0x%llx, want 0x%llx",
			     c->op, (unsigned long long)c->mem, (unsigned long long)c->src,
			     (unsigned long long)r0, (unsigned long long)c->want_src);
		cr_expect_eq(mem[1], 0x0123456789abcdef, "lock %s wrote past its operand", c->op);
	}
}

#define CHECK_RMW(...)                                                   \
	do {                                                             \
		static const struct rmw_case cases_[] = { __VA_ARGS__ }; \
		check_rmw_cases(cases_, ARRAY_SIZE(cases_));             \
	} while (0)

Test(vm_atomic, rmw64, .timeout = 10)
{
	CHECK_RMW({ "add", 5, 3, 8, 3 }, { "add", UINT64_MAX, 2, 1, 2 },
		  { "fetch add", 5, 3, 8, 5 },
		  { "fetch add", 0x8000000000000000, 0x8000000000000001, 1, 0x8000000000000000 },
		  { "or", 0xf0, 0x0f, 0xff, 0x0f }, { "fetch or", 0xf0, 0x0f, 0xff, 0xf0 },
		  { "or", 0x100000000, 1, 0x100000001, 1 }, { "and", 0xff0, 0x0ff, 0x0f0, 0x0ff },
		  { "fetch and", 0xff0, 0x0ff, 0x0f0, 0xff0 },
		  { "and", UINT64_MAX, 0xffffffff00000000, 0xffffffff00000000, 0xffffffff00000000 },
		  { "xor", 0xff, 0x0f, 0xf0, 0x0f }, { "fetch xor", 0xff, 0x0f, 0xf0, 0xff },
		  { "xchg", 0x1111, 0x2222, 0x2222, 0x1111 },
		  { "xchg", UINT64_MAX, 0x8000000000000000, 0x8000000000000000, UINT64_MAX });
}

Test(vm_atomic, rmw32, .timeout = 10)
{
	/* No carry into the upper half; the fetched value is zero-extended. */
	CHECK_RMW(
		{ "add32", GUARD | 0xffffffff, 0xdead000000000002, GUARD | 1, 0xdead000000000002 },
		{ "fetch add32", GUARD | 0xffffffff, 0xdead000000000002, GUARD | 1, 0xffffffff },
		{ "or32", GUARD | 0xf0, 0xffffffff0000000f, GUARD | 0xff, 0xffffffff0000000f },
		{ "fetch or32", GUARD | 0xf0, 0xffffffff0000000f, GUARD | 0xff, 0xf0 },
		{ "and32", GUARD | 0xff00, 0xffffffff00000f00, GUARD | 0xf00, 0xffffffff00000f00 },
		{ "fetch and32", GUARD | 0xff00, 0xffffffff00000f00, GUARD | 0xf00, 0xff00 },
		{ "xor32", GUARD | 0x80000000, 0x1234567880000001, GUARD | 1, 0x1234567880000001 },
		{ "fetch xor32", GUARD | 0x80000000, 0x1234567880000001, GUARD | 1, 0x80000000 },
		{ "xchg32", GUARD | 0x87654321, 0xdeadbeef12345678, GUARD | 0x12345678,
		  0x87654321 });
}

struct cmpxchg_case {
	const char *op;
	uint64_t mem, r0, src;
	uint64_t want_mem, want_r0;
};

Test(vm_atomic, cmpxchg, .timeout = 10)
{
	static const struct cmpxchg_case cases[] = {
		{ "cmpxchg", 10, 10, 20, 20, 10 },
		{ "cmpxchg", 10, 11, 20, 10, 10 },
		/* 64 bits compare the whole register. */
		{ "cmpxchg", 0x100000010, 0x10, 20, 0x100000010, 0x100000010 },
		{ "cmpxchg", UINT64_MAX, UINT64_MAX, 0, 0, UINT64_MAX },
		/* 32 bits compare the low half of r0 and zero-extend the old value into it. */
		{ "cmpxchg32", GUARD | 5, 0xffffffff00000005, 0xdead000000000006, GUARD | 6, 5 },
		{ "cmpxchg32", GUARD | 5, 0xdead000000000006, 7, GUARD | 5, 5 },
		{ "cmpxchg32", GUARD | 0x80000000, 0, 7, GUARD | 0x80000000, 0x80000000 },
		{ "cmpxchg32", GUARD | 0x80000000, 0x80000000, 0xffffffff, GUARD | 0xffffffff,
		  0x80000000 },
	};
	char text[192];
	uint64_t mem[2], r0;

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const struct cmpxchg_case *c = &cases[i];

		mem[0] = c->mem;
		mem[1] = 0x0123456789abcdef;
		snprintf(text, sizeof(text),
			 "lddw %%r0, 0x%llx\nlddw %%r2, 0x%llx\nlock %s [%%r1], %%r2\nexit\n",
			 (unsigned long long)c->r0, (unsigned long long)c->src, c->op);
		r0 = vt_run_mem(text, mem, sizeof(mem));
		cr_expect_eq(mem[0], c->want_mem, "case %zu: memory 0x%llx, want 0x%llx", i,
			     (unsigned long long)mem[0], (unsigned long long)c->want_mem);
		cr_expect_eq(r0, c->want_r0, "case %zu: r0 0x%llx, want 0x%llx", i,
			     (unsigned long long)r0, (unsigned long long)c->want_r0);
		cr_expect_eq(mem[1], 0x0123456789abcdef);
	}
	/* The source register is never written. */
	cr_expect_eq(vt_run("stdw [%r10-8], 1\nmov %r0, 1\nmov %r2, 2\nlock cmpxchg [%r10-8], %r2\n"
			    "mov %r0, %r2\nexit\n"),
		     2);
}

Test(vm_atomic, stack_and_offsets, .timeout = 10)
{
	uint64_t mem[3] = { 0, 0, 40 };

	cr_expect_eq(vt_run("stdw [%r10-16], 40\nmov %r1, 2\nlock add [%r10-16], %r1\n"
			    "ldxdw %r0, [%r10-16]\nexit\n"),
		     42);
	cr_expect_eq(vt_run("stw [%r10-4], 40\nmov %r1, 2\nlock fetch add32 [%r10-4], %r1\n"
			    "ldxw %r0, [%r10-4]\nadd %r0, %r1\nexit\n"),
		     82);
	cr_expect_eq(vt_run_mem("mov %r2, 2\nlock fetch add [%r1+16], %r2\nmov %r0, %r2\nexit\n",
				mem, sizeof(mem)),
		     40);
	cr_expect_eq(mem[2], 42);
	/* r0 may be both the comparand and the source. */
	cr_expect_eq(vt_run("stdw [%r10-8], 9\nmov %r0, 9\nlock cmpxchg [%r10-8], %r0\n"
			    "ldxdw %r0, [%r10-8]\nexit\n"),
		     9);
}

Test(vm_atomic, faults, .timeout = 10)
{
	uint64_t mem[2] = { 0 };
	struct vm_fault fault;

	/* An atomic through a wild pointer is refused like any other access. */
	cr_expect_eq(vt_exec_fault("lddw %r1, 0xdead0000\nmov %r2, 1\nlock add [%r1], %r2\nexit\n",
				   NULL, NULL, 0, &fault),
		     -EFAULT);
	cr_expect(strstr(fault.msg, "insn 3:"), "message: %s", fault.msg);
	/* So is one just past the end of the context. */
	cr_expect_eq(vt_exec_fault("mov %r2, 1\nlock add [%r1+16], %r2\nexit\n", NULL, mem,
				   sizeof(mem), &fault),
		     -EFAULT);
	/* A misaligned atomic faults rather than tearing. */
	cr_expect_eq(vt_exec_fault("mov %r2, 1\nlock xchg [%r1+4], %r2\nexit\n", NULL, mem,
				   sizeof(mem), &fault),
		     -EFAULT);
	cr_expect(strstr(fault.msg, "insn 1:"), "message: %s", fault.msg);
	cr_expect_eq(vt_exec_fault("mov %r2, 1\nlock add32 [%r1+2], %r2\nexit\n", NULL, mem,
				   sizeof(mem), &fault),
		     -EFAULT);
}

/* Builds ".insn" lines: the assembler has no mnemonic for these forms. */
static void insn_line(char *buf, size_t size, uint8_t code, uint8_t dst, uint8_t src, int16_t off,
		      int32_t imm)
{
	struct ebpf_insn in = vt_insn(code, dst, src, off, imm);

	snprintf(buf, size, ".insn 0x%016llx\n", (unsigned long long)vt_insn_word(&in));
}

/* Load-acquire reads [src+off] into dst; store-release writes src to [dst+off]. */
Test(vm_atomic, load_acquire_store_release, .timeout = 10)
{
	static const struct {
		uint8_t size;
		uint64_t want;
	} loads[] = {
		{ EBPF_B, 0x88 },
		{ EBPF_H, 0x7788 },
		{ EBPF_W, 0x55667788 },
		{ EBPF_DW, 0x1122334455667788 },
	};
	uint64_t mem[2] = { 0x1122334455667788, 0 };
	char text[256], line[64];

	for (size_t i = 0; i < ARRAY_SIZE(loads); i++) {
		/* r0 starts as all ones: narrow loads zero-extend. */
		insn_line(line, sizeof(line), EBPF_CLS_STX | EBPF_ATOMIC | loads[i].size, 0, 1, 0,
			  EBPF_LOAD_ACQ);
		snprintf(text, sizeof(text), "mov %%r0, -1\n%sexit\n", line);
		cr_expect_eq(vt_run_mem(text, mem, sizeof(mem)), loads[i].want, "size 0x%x",
			     loads[i].size);
	}

	/* A copy of the loaded register made before the load is no copy after it. */
	insn_line(line, sizeof(line), EBPF_CLS_STX | EBPF_ATOMIC | EBPF_DW, 2, 1, 0, EBPF_LOAD_ACQ);
	snprintf(text, sizeof(text), "mov %%r2, 5\nmov %%r3, %%r2\n%smov %%r3, %%r2\nmov %%r0, %%r3\n"
		 "exit\n", line);
	cr_expect_eq(vt_run_mem(text, mem, sizeof(mem)), 0x1122334455667788);

	insn_line(line, sizeof(line), EBPF_CLS_STX | EBPF_ATOMIC | EBPF_W, 1, 2, 8, EBPF_STORE_REL);
	snprintf(text, sizeof(text), "lddw %%r2, 0xdeadbeefcafef00d\n%sexit\n", line);
	mem[1] = UINT64_MAX;
	vt_run_mem(text, mem, sizeof(mem));
	cr_expect_eq(mem[1], 0xffffffffcafef00d);

	insn_line(line, sizeof(line), EBPF_CLS_STX | EBPF_ATOMIC | EBPF_DW, 10, 2, -8,
		  EBPF_STORE_REL);
	snprintf(text, sizeof(text), "mov %%r2, 99\n%sldxdw %%r0, [%%r10-8]\nexit\n", line);
	cr_expect_eq(vt_run(text), 99);
}

/*
 * Concurrency: r0 = 2 * (1 + ... + n) through a bpf-to-bpf call, a stack
 * slot and a helper, plus one atomic increment of a counter all threads share.
 */
#define THREADS 8
#define ROUNDS 2000

static uint64_t shared_counter;

static uint64_t twice(uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4, uint64_t r5)
{
	return r1 * 2;
}

static bool allow_counter(void *user, uint64_t addr, uint64_t len, bool write)
{
	return addr == (uintptr_t)&shared_counter && len == sizeof(shared_counter);
}

static void setup_concurrent(struct vm *vm)
{
	cr_assert_eq(vm__register_helper(vm, 1, "twice", twice), 0);
	cr_assert_eq(vm__set_mem_check(vm, allow_counter, NULL), 0);
}

static const char concurrent_prog[] = "ldxdw %r6, [%r1]\n"
				      "ldxdw %r7, [%r1+8]\n"
				      "mov %r1, %r6\n"
				      "call local sum\n"
				      "mov %r1, %r0\n"
				      "call 1\n"
				      "mov %r2, 1\n"
				      "lock add [%r7], %r2\n"
				      "exit\n"
				      "sum:\n"
				      "stxdw [%r10-8], %r1\n"
				      "mov %r0, 0\n"
				      "loop:\n"
				      "ldxdw %r2, [%r10-8]\n"
				      "add %r0, %r2\n"
				      "sub %r2, 1\n"
				      "stxdw [%r10-8], %r2\n"
				      "jne %r2, 0, loop\n"
				      "exit\n";

struct worker {
	const struct vm *vm;
	unsigned int id;
	unsigned int bad;
	int err;
};

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	struct vm_fault fault;
	uint64_t ctx[2], r0, n;
	int r;

	for (unsigned int i = 0; i < ROUNDS; i++) {
		n = w->id * 100 + i % 50 + 1;
		ctx[0] = n;
		ctx[1] = (uintptr_t)&shared_counter;
		r = vm__exec(w->vm, ctx, sizeof(ctx), &r0, &fault);
		if (r < 0) {
			w->err = r;
			return NULL;
		}
		if (r0 != n * (n + 1))
			w->bad++;
	}
	return NULL;
}

Test(vm_atomic, concurrent_exec, .timeout = 30)
{
	struct vm *vm = vt_load(concurrent_prog, setup_concurrent);
	struct worker workers[THREADS];
	pthread_t threads[THREADS];

	shared_counter = 0;
	for (unsigned int i = 0; i < THREADS; i++) {
		workers[i] = (struct worker){ .vm = vm, .id = i };
		cr_assert_eq(pthread_create(&threads[i], NULL, worker_run, &workers[i]), 0);
	}
	for (unsigned int i = 0; i < THREADS; i++) {
		pthread_join(threads[i], NULL);
		cr_expect_eq(workers[i].err, 0, "thread %u faulted: %d", i, workers[i].err);
		cr_expect_eq(workers[i].bad, 0, "thread %u got %u wrong results", i,
			     workers[i].bad);
	}
	cr_expect_eq(shared_counter, THREADS * ROUNDS);
	vm__free(vm);
}

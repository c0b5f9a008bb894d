// SPDX-License-Identifier: MIT
/*
 * Arithmetic and logic instructions, 32 and 64 bit, immediate and register
 * forms. Expected values are written out by hand from RFC 9669 and the
 * kernel's interpreter rather than computed by a model, so a shared mistake
 * cannot make both sides agree.
 */
#include <stdio.h>

#include <criterion/criterion.h>

#include "vm-test-util.h"

#define NOISE 0xdeadbeef00000000ull

struct alu_case {
	const char *op;
	uint64_t a;
	/* The source operand: in r1 for the register form, or the immediate. */
	int64_t b;
	uint64_t want;
};

static bool is_alu32(const char *op)
{
	size_t len = strlen(op);

	return len > 2 && !strcmp(op + len - 2, "32");
}

/*
 * Runs "op r0, r1" and, when b is an immediate the encoding can carry,
 * "op r0, b". A 32-bit operation gets noise in the upper half of its source
 * register: only the low 32 bits may count.
 */
static void check_alu_cases(const struct alu_case *cases, size_t n)
{
	char text[256], msg[VM_ERRMSG_SIZE];
	uint64_t r0, src;
	int r;

	for (size_t i = 0; i < n; i++) {
		const struct alu_case *c = &cases[i];
		bool alu32 = is_alu32(c->op);

		src = alu32 ? ((uint64_t)c->b & 0xffffffff) | 0xabcd123400000000ull :
			      (uint64_t)c->b;
		snprintf(text, sizeof(text),
			 "lddw %%r0, 0x%llx\nlddw %%r1, 0x%llx\n%s %%r0, %%r1\nexit\n",
			 (unsigned long long)c->a, (unsigned long long)src, c->op);
		r = vt_try_run(text, NULL, NULL, 0, &r0, msg);
		cr_expect_eq(r, 0, "%s 0x%llx, r1=0x%llx: %s", c->op, (unsigned long long)c->a,
			     (unsigned long long)src, msg);
		if (r == 0)
			cr_expect_eq(r0, c->want, "%s 0x%llx, reg 0x%llx: got 0x%llx, want 0x%llx",
				     c->op, (unsigned long long)c->a, (unsigned long long)src,
				     (unsigned long long)r0, (unsigned long long)c->want);

		if (!alu32 && c->b != (int32_t)c->b)
			continue;
		snprintf(text, sizeof(text), "lddw %%r0, 0x%llx\n%s %%r0, %d\nexit\n",
			 (unsigned long long)c->a, c->op, (int32_t)c->b);
		r = vt_try_run(text, NULL, NULL, 0, &r0, msg);
		cr_expect_eq(r, 0, "%s 0x%llx, imm %d: %s", c->op, (unsigned long long)c->a,
			     (int32_t)c->b, msg);
		if (r == 0)
			cr_expect_eq(r0, c->want, "%s 0x%llx, imm %d: got 0x%llx, want 0x%llx",
				     c->op, (unsigned long long)c->a, (int32_t)c->b,
				     (unsigned long long)r0, (unsigned long long)c->want);
	}
}

#define CHECK_ALU(...)                                                   \
	do {                                                             \
		static const struct alu_case cases_[] = { __VA_ARGS__ }; \
		check_alu_cases(cases_, ARRAY_SIZE(cases_));             \
	} while (0)

Test(vm_alu, add, .timeout = 10)
{
	CHECK_ALU({ "add", 1, 2, 3 }, { "add", UINT64_MAX, 1, 0 },
		  { "add", INT64_MAX, 1, 0x8000000000000000 }, { "add", 5, -3, 2 },
		  /* The immediate is sign-extended to 64 bits. */
		  { "add", 0, INT32_MIN, 0xffffffff80000000 },
		  { "add", 0x100000000, 0x100000000, 0x200000000 }, { "add32", NOISE | 1, 2, 3 },
		  { "add32", 0xffffffff, 1, 0 }, { "add32", 0x100000005, -1, 4 },
		  { "add32", 0, INT32_MIN, 0x80000000 });
}

Test(vm_alu, sub, .timeout = 10)
{
	CHECK_ALU({ "sub", 3, 5, 0xfffffffffffffffe }, { "sub", 0, -1, 1 },
		  { "sub", 0x8000000000000000, 1, INT64_MAX },
		  { "sub", 0x300000000, 0x100000000, 0x200000000 },
		  { "sub32", 0xffffffff00000003, 5, 0xfffffffe },
		  { "sub32", 0x100000000, 1, 0xffffffff }, { "sub32", NOISE | 9, 4, 5 });
}

Test(vm_alu, mul, .timeout = 10)
{
	CHECK_ALU({ "mul", 3, -2, 0xfffffffffffffffa }, { "mul", 0x100000000, 0x100000000, 0 },
		  { "mul", 0xffffffff, 0xffffffff, 0xfffffffe00000001 },
		  { "mul", 0x123456789, 0x10, 0x1234567890 }, { "mul32", 0x10000, 0x10000, 0 },
		  { "mul32", 0xffffffff, -1, 1 }, { "mul32", NOISE | 3, 7, 21 },
		  { "mul32", 0x80000000, 2, 0 }, { "mul32", 0x7fffffff, 3, 0x7ffffffd });
}

Test(vm_alu, div, .timeout = 10)
{
	CHECK_ALU({ "div", 10, 3, 3 }, { "div", 7, 0, 0 }, { "div", UINT64_MAX, 2, INT64_MAX },
		  /* Unsigned: an immediate -1 is 2^64-1. */
		  { "div", 10, -1, 0 }, { "div", UINT64_MAX, -1, 1 },
		  { "div", 0x1000000000, 0x100000000, 0x10 },
		  /* x/0 = 0, and the 32-bit form zero-extends like any other. */
		  { "div32", 0xffffffff00000007, 0, 0 }, { "div32", 0x100000010, 3, 5 },
		  { "div32", 0xffffffff, -1, 1 }, { "div32", 0x80000000, 2, 0x40000000 },
		  { "div32", 10, -1, 0 });
}

Test(vm_alu, mod, .timeout = 10)
{
	CHECK_ALU({ "mod", 10, 3, 1 }, { "mod", 7, 0, 7 }, { "mod", UINT64_MAX, 0x10, 0xf },
		  { "mod", 10, -1, 10 }, { "mod", 0xffffffffffffff00, 0, 0xffffffffffffff00 },
		  /* x%0 = x, but for 32 bits only the low half survives. */
		  { "mod32", 0x100000005, 0, 5 }, { "mod32", 0xffffffff00000007, 0, 7 },
		  { "mod32", 0x10000000a, 3, 1 }, { "mod32", 0xffffffff, 0x10, 0xf },
		  { "mod32", 10, -1, 10 });
}

Test(vm_alu, sdiv, .timeout = 10)
{
	CHECK_ALU({ "sdiv", -7, 2, (uint64_t)-3 }, { "sdiv", 7, -2, (uint64_t)-3 },
		  { "sdiv", -7, -2, 3 }, { "sdiv", 7, 2, 3 }, { "sdiv", -7, 0, 0 },
		  /* INT_MIN / -1 overflows in C; eBPF defines it as INT_MIN. */
		  { "sdiv", 0x8000000000000000, -1, 0x8000000000000000 },
		  { "sdiv", 0x8000000000000000, 1, 0x8000000000000000 },
		  { "sdiv", 0x8000000000000000, 2, 0xc000000000000000 },
		  { "sdiv32", 0x80000000, -1, 0x80000000 },
		  { "sdiv32", NOISE | 0xfffffff9, 2, 0xfffffffd }, { "sdiv32", 7, -2, 0xfffffffd },
		  { "sdiv32", 0xfffffff9, -2, 3 }, { "sdiv32", NOISE | 5, 0, 0 },
		  { "sdiv32", 0x80000000, 2, 0xc0000000 });
}

Test(vm_alu, smod, .timeout = 10)
{
	/* The result takes the sign of the dividend, as in C. */
	CHECK_ALU({ "smod", -7, 2, (uint64_t)-1 }, { "smod", 7, -2, 1 },
		  { "smod", -7, -2, (uint64_t)-1 }, { "smod", 7, 3, 1 },
		  { "smod", -7, 0, (uint64_t)-7 }, { "smod", 0x8000000000000000, -1, 0 },
		  { "smod", 0x8000000000000000, 3, (uint64_t)-2 }, { "smod32", 0x80000000, -1, 0 },
		  { "smod32", 0xfffffff9, 2, 0xffffffff }, { "smod32", 7, -2, 1 },
		  { "smod32", 0xabcd0000fffffff9, 0, 0xfffffff9 },
		  { "smod32", NOISE | 0xfffffff9, -2, 0xffffffff });
}

Test(vm_alu, bitwise, .timeout = 10)
{
	CHECK_ALU({ "or", 0xf0, 0x0f, 0xff }, { "or", 0, -1, UINT64_MAX },
		  { "or", 0x100000000, 1, 0x100000001 }, { "or32", 0xffffffff00000000, 1, 1 },
		  { "or32", 0, -1, 0xffffffff }, { "and", 0xff00ff, 0xf0f0, 0xf0 },
		  { "and", UINT64_MAX, INT32_MIN, 0xffffffff80000000 },
		  { "and", UINT64_MAX, 0x7fffffff, 0x7fffffff },
		  { "and32", UINT64_MAX, -1, 0xffffffff }, { "and32", 0x12345678, 0xff, 0x78 },
		  { "xor", 0xff, 0x0f, 0xf0 }, { "xor", 0, -1, UINT64_MAX },
		  { "xor", 0x1234, 0x1234, 0 }, { "xor32", 0xffffffff00000000, -1, 0xffffffff },
		  { "xor32", NOISE | 5, 5, 0 });
}

Test(vm_alu, shifts_mask_their_count, .timeout = 10)
{
	CHECK_ALU({ "lsh", 1, 63, 0x8000000000000000 }, { "lsh", 1, 64, 1 }, { "lsh", 1, 65, 2 },
		  { "lsh", 3, -1, 0x8000000000000000 }, { "lsh", 1, 127, 0x8000000000000000 },
		  { "lsh", 0xff, 0, 0xff }, { "lsh", 0xffffffff, 32, 0xffffffff00000000 },
		  { "lsh32", 1, 31, 0x80000000 }, { "lsh32", 1, 32, 1 }, { "lsh32", 1, 33, 2 },
		  { "lsh32", 0xffffffff, 4, 0xfffffff0 }, { "lsh32", NOISE | 1, 0, 1 },
		  { "lsh32", 1, -1, 0x80000000 }, { "lsh32", 0x80000001, 1, 2 },
		  { "rsh", 0x8000000000000000, 63, 1 },
		  { "rsh", 0x8000000000000000, 64, 0x8000000000000000 },
		  { "rsh", 0x8000000000000000, 65, 0x4000000000000000 }, { "rsh", -1, -1, 1 },
		  { "rsh32", 0xffffffff80000000, 31, 1 }, { "rsh32", 0x80000000, 32, 0x80000000 },
		  { "rsh32", 0x80000000, 33, 0x40000000 }, { "rsh32", UINT64_MAX, 0, 0xffffffff },
		  { "rsh32", 0x80000000, -1, 1 }, { "arsh", 0x8000000000000000, 63, UINT64_MAX },
		  { "arsh", 0x8000000000000000, 64, 0x8000000000000000 },
		  { "arsh", 0x8000000000000000, 65, 0xc000000000000000 },
		  { "arsh", 0x4000000000000000, 1, 0x2000000000000000 },
		  { "arsh", -16, -1, UINT64_MAX }, { "arsh", -16, 2, (uint64_t)-4 },
		  /* Sign bit 31, not 63, and the result zero-extended. */
		  { "arsh32", 0x80000000, 4, 0xf8000000 },
		  { "arsh32", 0xffffffff80000000, 31, 0xffffffff },
		  { "arsh32", 0x80000000, 32, 0x80000000 },
		  { "arsh32", 0x80000000, 33, 0xc0000000 }, { "arsh32", 0x40000000, 1, 0x20000000 },
		  { "arsh32", 0x1234000080000000, 0, 0x80000000 },
		  { "arsh32", 0x80000000, -1, 0xffffffff });
}

Test(vm_alu, mov, .timeout = 10)
{
	CHECK_ALU({ "mov", NOISE, 5, 5 }, { "mov", NOISE, -1, UINT64_MAX },
		  { "mov", 0, 0x123456789abcdef0, 0x123456789abcdef0 },
		  { "mov", 0, INT32_MIN, 0xffffffff80000000 },
		  /* mov32 zero-extends both the immediate and the register. */
		  { "mov32", NOISE, -1, 0xffffffff }, { "mov32", UINT64_MAX, 0, 0 },
		  { "mov32", 0, INT32_MIN, 0x80000000 });
}

Test(vm_alu, neg, .timeout = 10)
{
	static const struct {
		const char *op;
		uint64_t a, want;
	} cases[] = {
		{ "neg", 5, (uint64_t)-5 },
		{ "neg", 0, 0 },
		{ "neg", 0x8000000000000000, 0x8000000000000000 },
		{ "neg", UINT64_MAX, 1 },
		{ "neg32", NOISE | 5, 0xfffffffb },
		{ "neg32", 0x80000000, 0x80000000 },
		{ "neg32", 0xffffffff00000000, 0 },
		{ "neg32", 1, 0xffffffff },
	};
	char text[128];

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		snprintf(text, sizeof(text), "lddw %%r0, 0x%llx\n%s %%r0\nexit\n",
			 (unsigned long long)cases[i].a, cases[i].op);
		cr_expect_eq(vt_run(text), cases[i].want, "%s 0x%llx", cases[i].op,
			     (unsigned long long)cases[i].a);
	}
}

struct unary_case {
	const char *op;
	uint64_t a, want;
};

/* r0 starts as noise so that a 32-bit result must clear the upper half. */
static void check_movsx(const struct unary_case *cases, size_t n)
{
	char text[160];

	uint64_t r0;

	for (size_t i = 0; i < n; i++) {
		snprintf(text, sizeof(text),
			 "lddw %%r0, 0x%llx\nlddw %%r1, 0x%llx\n%s %%r0, %%r1\nexit\n",
			 NOISE | 0x1234, (unsigned long long)cases[i].a, cases[i].op);
		r0 = vt_run(text);
		cr_expect_eq(r0, cases[i].want, "%s 0x%llx: got 0x%llx", cases[i].op,
			     (unsigned long long)cases[i].a, (unsigned long long)r0);
	}
}

Test(vm_alu, movsx, .timeout = 10)
{
	static const struct unary_case cases[] = {
		{ "movsx864", 0x80, 0xffffffffffffff80 },
		{ "movsx864", 0x7f, 0x7f },
		{ "movsx864", 0x1234567890abcd7f, 0x7f },
		{ "movsx864", 0xff, UINT64_MAX },
		{ "movsx1664", 0x8000, 0xffffffffffff8000 },
		{ "movsx1664", 0xffff000000007fff, 0x7fff },
		{ "movsx3264", 0x80000000, 0xffffffff80000000 },
		{ "movsx3264", 0x17fffffff, 0x7fffffff },
		{ "movsx3264", 0xffffffff, UINT64_MAX },
		{ "movsx832", 0x80, 0xffffff80 },
		{ "movsx832", NOISE | 0x7f, 0x7f },
		{ "movsx1632", 0x8000, 0xffff8000 },
		{ "movsx1632", 0xffffffffffff7fff, 0x7fff },
	};

	check_movsx(cases, ARRAY_SIZE(cases));
}

Test(vm_alu, byte_swaps, .timeout = 10)
{
	static const struct unary_case cases[] = {
		/* le on a little-endian VM only truncates; le64 is a no-op. */
		{ "le16", 0x1122334455667788, 0x7788 },
		{ "le32", 0x1122334455667788, 0x55667788 },
		{ "le64", 0x1122334455667788, 0x1122334455667788 },
		{ "be16", 0x1122334455667788, 0x8877 },
		{ "be32", 0x1122334455667788, 0x88776655 },
		{ "be64", 0x1122334455667788, 0x8877665544332211 },
		{ "bswap16", 0x1122334455667788, 0x8877 },
		{ "bswap32", 0x1122334455667788, 0x88776655 },
		{ "bswap64", 0x1122334455667788, 0x8877665544332211 },
		{ "be16", 0xff00, 0x00ff },
		{ "bswap64", 0x80, 0x8000000000000000 },
	};
	char text[128];

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		snprintf(text, sizeof(text), "lddw %%r3, 0x%llx\n%s %%r3\nmov %%r0, %%r3\nexit\n",
			 (unsigned long long)cases[i].a, cases[i].op);
		cr_expect_eq(vt_run(text), cases[i].want, "%s 0x%llx", cases[i].op,
			     (unsigned long long)cases[i].a);
	}
}

Test(vm_alu, lddw_values, .timeout = 10)
{
	static const uint64_t values[] = {
		0,
		1,
		0xffffffff,
		0x100000000,
		0x80000000,
		0xffffffff80000000,
		UINT64_MAX,
		0x8000000000000000,
		0x0123456789abcdef,
		0xfedcba9876543210,
	};
	char text[128];

	for (size_t i = 0; i < ARRAY_SIZE(values); i++) {
		snprintf(text, sizeof(text), "mov %%r0, -1\nlddw %%r0, 0x%llx\nexit\n",
			 (unsigned long long)values[i]);
		cr_expect_eq(vt_run(text), values[i], "lddw 0x%llx", (unsigned long long)values[i]);
	}
}

/* Every register r0-r9 is independent storage and works as dst and src. */
Test(vm_alu, registers_are_independent, .timeout = 10)
{
	uint64_t r0 = vt_run("mov %r0, 1\nmov %r1, 2\nmov %r2, 4\nmov %r3, 8\nmov %r4, 16\n"
			     "mov %r5, 32\nmov %r6, 64\nmov %r7, 128\nmov %r8, 256\nmov %r9, 512\n"
			     "add %r9, %r8\nadd %r9, %r7\nadd %r9, %r6\nadd %r9, %r5\n"
			     "add %r9, %r4\nadd %r9, %r3\nadd %r9, %r2\nadd %r9, %r1\n"
			     "add %r9, %r0\nmov %r0, %r9\nexit\n");

	cr_expect_eq(r0, 1023);
	/* r10 is readable, and 8-byte aligned so that stack slots are too. */
	cr_expect_eq(vt_run("mov %r0, %r10\nand %r0, 7\nexit\n"), 0);
}

/* r1 and r2 start as the context pointer and its length. */
Test(vm_alu, entry_registers, .timeout = 10)
{
	uint8_t mem[24];

	cr_expect_eq(vt_run_mem("mov %r0, %r2\nexit\n", mem, sizeof(mem)), sizeof(mem));
	cr_expect_eq(vt_run_mem("mov %r0, %r1\nexit\n", mem, sizeof(mem)), (uintptr_t)mem);
}

/*
 * A move that repeats one still in effect emits nothing in the JIT; each
 * case here breaks the copy first, so the second move must happen.
 */
Test(vm_alu, repeated_moves_after_a_change, .timeout = 10)
{
	uint64_t mem[1] = { 100 };

	/* the source changed */
	cr_expect_eq(vt_run("mov %r2, 5\nmov %r0, %r2\nadd %r2, 1\nmov %r0, %r2\nexit\n"), 6);
	/* the destination changed */
	cr_expect_eq(vt_run("mov %r2, 5\nmov %r0, %r2\nadd %r0, 1\nmov %r0, %r2\nexit\n"), 5);
	/* a 32-bit move is no 64-bit copy */
	cr_expect_eq(vt_run("lddw %r2, 0x100000005\nmov32 %r0, %r2\nmov %r0, %r2\nexit\n"),
		     0x100000005);
	/* the copy the other way round is one already */
	cr_expect_eq(vt_run("mov %r2, 5\nmov %r0, %r2\nmov %r2, %r0\nadd %r2, 1\nmov %r0, %r2\n"
			    "exit\n"),
		     6);
	/* a jump target: the path that jumps there did not copy */
	cr_expect_eq(vt_run("mov %r1, 0\nmov %r2, 7\nmov %r0, 0\njeq %r1, 0, over\n"
			    "mov %r0, %r2\nover:\nmov %r0, %r2\nexit\n"),
		     7);
	/* a load into the source */
	cr_expect_eq(vt_run_mem("mov %r2, 5\nmov %r0, %r2\nldxdw %r2, [%r1]\nmov %r0, %r2\nexit\n",
				mem, sizeof(mem)),
		     100);
	/* an atomic fetch into the source */
	cr_expect_eq(vt_run_mem("mov %r2, 5\nmov %r0, %r2\nlock fetch add [%r1], %r2\n"
				"mov %r0, %r2\nexit\n",
				mem, sizeof(mem)),
		     100);
	/* cmpxchg writes r0 */
	mem[0] = 9;
	cr_expect_eq(vt_run_mem("mov %r2, 9\nmov %r0, %r2\nmov %r3, 4\nlock cmpxchg [%r1], %r3\n"
				"mov %r0, %r2\nexit\n",
				mem, sizeof(mem)),
		     9);
}

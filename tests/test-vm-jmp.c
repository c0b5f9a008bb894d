// SPDX-License-Identifier: MIT
/*
 * Jump instructions: every condition at 64 and 32 bits, immediate and
 * register forms, on the values where signed and unsigned orders part and
 * where a sign-extended immediate differs from its 32-bit pattern; then ja
 * and ja32 forwards and backwards.
 */
#include <stdio.h>
#include <stdlib.h>

#include <criterion/criterion.h>

#include "vm-test-util.h"

struct jmp_case {
	const char *op;
	uint64_t a;
	/* r2 for the register form; the immediate when it fits. */
	int64_t b;
	bool taken;
};

static bool is_jmp32(const char *op)
{
	size_t len = strlen(op);

	return len > 2 && !strcmp(op + len - 2, "32");
}

static void expect_branch(const char *text, const struct jmp_case *c, const char *form)
{
	char msg[VM_ERRMSG_SIZE];
	uint64_t r0 = 0;
	int r;

	r = vt_try_run(text, NULL, NULL, 0, &r0, msg);
	cr_expect_eq(r, 0, "%s (%s) 0x%llx, 0x%llx: %s", c->op, form, (unsigned long long)c->a,
		     (unsigned long long)c->b, msg);
	if (r == 0)
		cr_expect_eq(r0, c->taken, "%s (%s) 0x%llx, 0x%llx: %s, expected %s", c->op, form,
			     (unsigned long long)c->a, (unsigned long long)c->b,
			     r0 ? "taken" : "not taken", c->taken ? "taken" : "not taken");
}

/*
 * r0 = 1 when the jump is taken. Targets are labels, so the jump lands past
 * an instruction that would otherwise overwrite r0.
 */
static void check_jmp_cases(const struct jmp_case *cases, size_t n)
{
	char text[256];

	for (size_t i = 0; i < n; i++) {
		const struct jmp_case *c = &cases[i];

		snprintf(text, sizeof(text),
			 "lddw %%r1, 0x%llx\nlddw %%r2, 0x%llx\nmov %%r0, 0\n"
			 "%s %%r1, %%r2, taken\nexit\ntaken:\nmov %%r0, 1\nexit\n",
			 (unsigned long long)c->a, (unsigned long long)c->b, c->op);
		expect_branch(text, c, "reg");

		/* A 32-bit jump sees the immediate's 32 bits; a 64-bit one sign-extends it. */
		if (!is_jmp32(c->op) && c->b != (int32_t)c->b)
			continue;
		snprintf(text, sizeof(text),
			 "lddw %%r1, 0x%llx\nmov %%r0, 0\n%s %%r1, %d, taken\nexit\n"
			 "taken:\nmov %%r0, 1\nexit\n",
			 (unsigned long long)c->a, c->op, (int32_t)c->b);
		expect_branch(text, c, "imm");
	}
}

#define CHECK_JMP(...)                                                   \
	do {                                                             \
		static const struct jmp_case cases_[] = { __VA_ARGS__ }; \
		check_jmp_cases(cases_, ARRAY_SIZE(cases_));             \
	} while (0)

#define T true
#define F false

Test(vm_jmp, jeq_jne, .timeout = 10)
{
	CHECK_JMP({ "jeq", 5, 5, T }, { "jeq", 5, 6, F }, { "jeq", UINT64_MAX, -1, T },
		  /* imm 0x80000000 is INT32_MIN sign-extended, not 2^31. */
		  { "jeq", 0xffffffff, -1, F }, { "jeq", 0x80000000, INT32_MIN, F },
		  { "jeq", 0xffffffff80000000, INT32_MIN, T }, { "jeq", 0x100000005, 5, F },
		  { "jne", 5, 5, F }, { "jne", 5, 6, T }, { "jne", 0x80000000, INT32_MIN, T },
		  { "jne", 0x100000000, 0, T }, { "jeq32", 0xffffffff00000005, 5, T },
		  { "jeq32", 0x100000000, 0, T }, { "jeq32", 0x80000000, INT32_MIN, T },
		  { "jeq32", 0xffffffff, -1, T }, { "jeq32", 5, 0x500000005, T },
		  { "jeq32", 5, 6, F }, { "jne32", 0xffffffff00000005, 5, F },
		  { "jne32", 1, 0x100000000, T });
}

Test(vm_jmp, unsigned_order, .timeout = 10)
{
	CHECK_JMP({ "jgt", UINT64_MAX, 1, T }, { "jgt", 1, -1, F }, { "jgt", 5, 5, F },
		  { "jgt", 6, 5, T }, { "jgt", 0x80000000, INT32_MIN, F },
		  { "jgt", 0x8000000000000000, 0x7fffffffffffffff, T }, { "jge", 5, 5, T },
		  { "jge", 4, 5, F }, { "jge", 0x8000000000000000, 0x7fffffff, T },
		  { "jge", 0xfffffffe, -1, F }, { "jlt", 1, -1, T }, { "jlt", -1, 1, F },
		  { "jlt", 5, 5, F }, { "jlt", 0x80000000, INT32_MIN, T }, { "jle", 5, 5, T },
		  { "jle", 6, 5, F }, { "jle", 0, 0, T }, { "jle", UINT64_MAX, -1, T },
		  { "jgt32", 0x80000000, 0x7fffffff, T }, { "jgt32", 0x100000000, 0, F },
		  { "jgt32", 0xffffffff, -2, T }, { "jgt32", 0x80000000, INT32_MIN, F },
		  { "jge32", 0x80000000, INT32_MIN, T }, { "jge32", 0xffffffff, -1, T },
		  { "jge32", 0x1fffffffe, -1, F }, { "jlt32", 0x7fffffff, INT32_MIN, T },
		  { "jlt32", 0xffffffff00000000, 1, T }, { "jlt32", 0x80000000, 0x7fffffff, F },
		  { "jle32", 0x80000000, INT32_MIN, T }, { "jle32", 0x80000001, INT32_MIN, F },
		  { "jle32", 0xffffffff00000000, 0, T });
}

Test(vm_jmp, signed_order, .timeout = 10)
{
	CHECK_JMP({ "jsgt", -1, -2, T }, { "jsgt", -2, -1, F }, { "jsgt", 1, -1, T },
		  { "jsgt", 0x8000000000000000, 0x7fffffff, F }, { "jsgt", INT64_MAX, -1, T },
		  /* 2^31 as a 64-bit value is positive; the immediate is -2^31. */
		  { "jsgt", 0x80000000, INT32_MIN, T }, { "jsgt", 5, 5, F }, { "jsge", -1, -1, T },
		  { "jsge", -2, -1, F }, { "jsge", 0, INT32_MIN, T },
		  { "jsge", 0x8000000000000000, INT64_MIN, T }, { "jslt", -1, 0, T },
		  { "jslt", 0, -1, F }, { "jslt", 0x8000000000000000, INT32_MIN, T },
		  { "jslt", 0x80000000, 0, F }, { "jslt", 5, 5, F }, { "jsle", -5, -5, T },
		  { "jsle", -4, -5, F }, { "jsle", INT64_MIN, INT32_MIN, T },
		  { "jsle", 0x7fffffff, INT32_MIN, F },
		  /* At 32 bits 0x80000000 is the most negative value. */
		  { "jsgt32", 0x80000000, 0x7fffffff, F }, { "jsgt32", 0x7fffffff, 0x80000000, T },
		  { "jsgt32", 0x100000001, 0, T }, { "jsgt32", 0xffffffff, -2, T },
		  { "jsge32", 0x80000000, INT32_MIN, T }, { "jsge32", 0xffffffff, 0, F },
		  { "jsge32", 0x00000000ffffffff, -1, T }, { "jslt32", 0x80000000, 0, T },
		  { "jslt32", 0x7fffffffffffffff, 0, T }, { "jslt32", 0, 0x80000000ffffffff, F },
		  { "jslt32", 1, 1, F }, { "jsle32", 0x80000000, INT32_MIN, T },
		  { "jsle32", 0xfffffffe, -2, T }, { "jsle32", 0, 0xffffffff, F },
		  { "jsle32", 0x100000000, 0, T });
}

Test(vm_jmp, jset, .timeout = 10)
{
	CHECK_JMP({ "jset", 0x10, 0x30, T }, { "jset", 0x10, 0x20, F }, { "jset", 0, -1, F },
		  /* A negative immediate sets the upper 32 bits too. */
		  { "jset", 0x8000000000000000, INT32_MIN, T }, { "jset", 0x100000000, -1, T },
		  { "jset", 0x100000000, 0x7fffffff, F }, { "jset", 0x100000000, 0x100000000, T },
		  { "jset32", 0x100000000, 0x100000000, F }, { "jset32", 0x100000000, -1, F },
		  { "jset32", 0x80000000, INT32_MIN, T }, { "jset32", 0xffffffff00000001, 3, T });
}

Test(vm_jmp, ja_forward_and_backward, .timeout = 10)
{
	cr_expect_eq(vt_run("mov %r0, 1\nja +1\nmov %r0, 2\nexit\n"), 1);
	cr_expect_eq(vt_run("mov %r0, 1\nja +0\nmov %r0, 2\nexit\n"), 2);
	/* A loop closed by a backward ja: five rounds of r0 += 2. */
	cr_expect_eq(vt_run("mov %r0, 0\nmov %r1, 5\nloop:\nadd %r0, 2\nsub %r1, 1\n"
			    "jeq %r1, 0, out\nja loop\nout:\nexit\n"),
		     10);
	/* The same loop closed by a backward conditional jump. */
	cr_expect_eq(vt_run("mov %r0, 0\nmov %r1, 5\nloop:\nadd %r0, 3\nsub %r1, 1\n"
			    "jne %r1, 0, loop\nexit\n"),
		     15);
	/* A backward jump by a raw offset: -3 from the next instruction. */
	cr_expect_eq(vt_run("mov %r0, 0\nmov %r1, 4\nadd %r0, %r1\nsub %r1, 1\njgt %r1, 0, -3\n"
			    "exit\n"),
		     10);
	/* A jump may land on the first half of an lddw. */
	cr_expect_eq(vt_run("mov %r0, 0\nja +2\nmov %r0, 1\nexit\nlddw %r0, 0x500000000\nexit\n"),
		     0x500000000);
	/* The program may end with a ja that jumps back to an exit. */
	cr_expect_eq(vt_run("mov %r0, 4\nja +1\nexit\nja -2\n"), 4);
}

Test(vm_jmp, ja32_forward_and_backward, .timeout = 10)
{
	cr_expect_eq(vt_run("mov %r0, 1\nja32 +1\nmov %r0, 2\nexit\n"), 1);
	cr_expect_eq(vt_run("mov %r0, 0\nmov %r1, 3\nloop:\nadd %r0, 5\nsub %r1, 1\n"
			    "jeq %r1, 0, out\nja32 loop\nout:\nexit\n"),
		     15);
	cr_expect_eq(vt_run("mov %r0, 7\nja32 end\nmov %r0, 9\nend:\nexit\n"), 7);
}

/*
 * ja32 exists for targets a 16-bit offset cannot reach: jump over 40000
 * instructions forward, then back again from the far end.
 */
Test(vm_jmp, ja32_far, .timeout = 10)
{
	const size_t filler = 40000;
	const char *head = "mov %r0, 1\nja32 far\nback:\nexit\n";
	const char *tail = "far:\nadd %r0, 1\nja32 back\n";
	size_t len = strlen(head) + filler * strlen("mov %r0, 9\n") + strlen(tail) + 1;
	char *text = malloc(len), *p;

	cr_assert_not_null(text);
	p = text + sprintf(text, "%s", head);
	for (size_t i = 0; i < filler; i++)
		p += sprintf(p, "mov %%r0, 9\n");
	sprintf(p, "%s", tail);
	cr_expect_eq(vt_run(text), 2);
	free(text);
}

/*
 * The JIT does a move after the conditional jump that follows it when the
 * register is dead where the jump goes; each case here must keep the value
 * the interpreter computes.
 */
Test(vm_jmp, moves_carried_over_a_jump, .timeout = 10)
{
	/* a loop's result set before its back edge, each time round */
	cr_expect_eq(vt_run("mov %r2, 0\nloop:\nmov %r0, 10\nadd %r2, 1\njne %r2, 5, loop\n"
			    "exit\n"),
		     10);
	/* read where the jump goes: stays before it */
	cr_expect_eq(vt_run("mov %r1, 0\nmov %r0, 7\njeq %r1, 0, out\nmov %r0, 3\nout:\nexit\n"),
		     7);
	/* read by the jump itself */
	cr_expect_eq(vt_run("mov %r1, 0\nmov %r1, 5\njeq %r1, 5, out\nmov %r0, 1\nexit\n"
			    "out:\nmov %r0, 2\nexit\n"),
		     2);
	/* its source written before the jump */
	cr_expect_eq(vt_run("mov %r3, 4\nmov %r0, %r3\nmov %r3, 9\njeq %r3, 0, out\nexit\n"
			    "out:\nmov %r0, 1\nexit\n"),
		     4);
	/* read on the way to the jump */
	cr_expect_eq(vt_run("mov %r0, 6\nmov %r2, %r0\njeq %r2, 0, out\nmov %r0, %r2\nexit\n"
			    "out:\nmov %r0, 1\nexit\n"),
		     6);
	/* something jumps in between: the path from there must not get the move */
	cr_expect_eq(vt_run("mov %r0, 1\nmov %r1, 1\njeq %r1, 1, mid\nmov %r0, 5\nmid:\n"
			    "add %r1, 1\njeq %r1, 0, out\nexit\nout:\nmov %r0, 9\nexit\n"),
		     1);
	/* a function finds the caller's registers as they are */
	cr_expect_eq(vt_run("mov %r6, 1\nmov %r1, 0\nmov %r6, 8\njeq %r1, 0, out\nmov %r0, 0\n"
			    "exit\nout:\ncall local f\nmov %r6, 0\nexit\nf:\nmov %r0, %r6\nexit\n"),
		     8);
}

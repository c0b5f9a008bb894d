// SPDX-License-Identifier: MIT
/*
 * Calls: helpers (by immediate and through callx), the unwind helper,
 * bpf-to-bpf calls with their register and stack-frame rules and the call
 * depth limit, and the lddw pseudo forms a loader resolves (map references
 * through the resolver callback, function addresses by the VM itself).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "vm-test-util.h"

static uint64_t seen_args[5];
static int helper_calls;

static uint64_t record(uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4, uint64_t r5)
{
	seen_args[0] = r1;
	seen_args[1] = r2;
	seen_args[2] = r3;
	seen_args[3] = r4;
	seen_args[4] = r5;
	helper_calls++;
	return 0xfeedface12345678;
}

static uint64_t add7(uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4, uint64_t r5)
{
	return r1 + 7;
}

/* Returns r1: the program decides whether the unwind helper stops it. */
static uint64_t identity(uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4, uint64_t r5)
{
	return r1;
}

static void setup_helpers(struct vm *vm)
{
	cr_assert_eq(vm__register_helper(vm, 1, "record", record), 0);
	cr_assert_eq(vm__register_helper(vm, 7, "add7", add7), 0);
	cr_assert_eq(vm__register_helper(vm, 9, "identity", identity), 0);
	cr_assert_eq(vm__register_helper(vm, VM_MAX_HELPER_ID, "last", add7), 0);
}

static void setup_unwind(struct vm *vm)
{
	setup_helpers(vm);
	cr_assert_eq(vm__set_unwind_helper(vm, 9), 0);
}

Test(vm_call, helper_args_and_return, .timeout = 10)
{
	uint64_t r0;

	r0 = vt_run_setup("lddw %r1, 0x1111111111111111\nlddw %r2, 0x2222222222222222\n"
			  "lddw %r3, 0x3333333333333333\nlddw %r4, 0x4444444444444444\n"
			  "lddw %r5, 0x5555555555555555\ncall 1\nexit\n",
			  setup_helpers, NULL, 0);
	cr_expect_eq(r0, 0xfeedface12345678);
	cr_expect_eq(helper_calls, 1);
	cr_expect_eq(seen_args[0], 0x1111111111111111);
	cr_expect_eq(seen_args[1], 0x2222222222222222);
	cr_expect_eq(seen_args[2], 0x3333333333333333);
	cr_expect_eq(seen_args[3], 0x4444444444444444);
	cr_expect_eq(seen_args[4], 0x5555555555555555);

	/* Callee-saved registers survive a helper call. */
	r0 = vt_run_setup("mov %r6, 6\nmov %r7, 7\nmov %r8, 8\nmov %r9, 9\ncall 1\n"
			  "mov %r0, %r9\nlsh %r0, 8\nor %r0, %r8\nlsh %r0, 8\nor %r0, %r7\n"
			  "lsh %r0, 8\nor %r0, %r6\nexit\n",
			  setup_helpers, NULL, 0);
	cr_expect_eq(r0, 0x09080706);

	/* The highest helper id works, and a result feeds the next call. */
	cr_expect_eq(vt_run_setup("mov %r1, 1\ncall 1023\nmov %r1, %r0\ncall 7\nexit\n",
				  setup_helpers, NULL, 0),
		     15);
}

Test(vm_call, helper_names, .timeout = 10)
{
	struct vm *vm = vt_new(setup_helpers);

	cr_expect_str_eq(vm__helper_name(vm, 7), "add7");
	cr_expect_null(vm__helper_name(vm, 2));
	cr_expect_null(vm__helper_name(vm, VM_MAX_HELPER_ID + 1));
	vm__free(vm);
}

Test(vm_call, callx, .timeout = 10)
{
	struct vm_fault fault;

	cr_expect_eq(vt_run_setup("mov %r8, 7\nmov %r1, 5\ncall %r8\nexit\n", setup_helpers, NULL,
				  0),
		     12);
	cr_expect_eq(vt_run_setup("mov %r0, 7\nmov %r1, 1\ncallx %r0\nexit\n", setup_helpers, NULL,
				  0),
		     8);
	/* The id is only known at run time, so an unknown one is a run-time fault. */
	cr_expect_eq(vt_exec_fault("mov %r1, 5\nmov %r8, 2\ncall %r8\nexit\n", setup_helpers, NULL,
				   0, &fault),
		     -ENOENT);
	cr_expect_eq(fault.pc, 2);
	cr_expect(strstr(fault.msg, "insn 2:"), "message: %s", fault.msg);
	cr_expect_eq(vt_exec_fault("lddw %r8, 0x100000001\ncall %r8\nexit\n", setup_helpers, NULL,
				   0, &fault),
		     -ENOENT);
	cr_expect_eq(vt_exec_fault("mov %r8, 1024\ncall %r8\nexit\n", setup_helpers, NULL, 0,
				   &fault),
		     -ENOENT);
}

Test(vm_call, unwind_helper, .timeout = 10)
{
	/* The unwind helper returning 0 ends the program with r0 = 0 ... */
	cr_expect_eq(vt_run_setup("mov %r0, 55\nmov %r1, 0\ncall 9\nmov %r0, 77\nexit\n",
				  setup_unwind, NULL, 0),
		     0);
	/* ... and returning anything else lets it go on. */
	cr_expect_eq(vt_run_setup("mov %r0, 55\nmov %r1, 1\ncall 9\nmov %r0, 77\nexit\n",
				  setup_unwind, NULL, 0),
		     77);
	/* Through callx too, and from a nested frame it ends the whole program. */
	cr_expect_eq(vt_run_setup("mov %r1, 0\nmov %r6, 9\ncall %r6\nmov %r0, 77\nexit\n",
				  setup_unwind, NULL, 0),
		     0);
	cr_expect_eq(vt_run_setup("call local f\nmov %r0, 88\nexit\nf:\nmov %r1, 0\ncall 9\n"
				  "mov %r0, 5\nexit\n",
				  setup_unwind, NULL, 0),
		     0);
	/* Without vm__set_unwind_helper() the same helper is an ordinary one. */
	cr_expect_eq(vt_run_setup("mov %r1, 0\ncall 9\nmov %r0, 77\nexit\n", setup_helpers, NULL,
				  0),
		     77);
}

Test(vm_call, local_args_and_return, .timeout = 10)
{
	cr_expect_eq(vt_run("mov %r1, 20\nmov %r2, 22\ncall local add\nexit\n"
			    "add:\nmov %r0, %r1\nadd %r0, %r2\nexit\n"),
		     42);
	/* A function placed before its caller: a backward call target. */
	cr_expect_eq(
		vt_run("ja main\nf:\nmov %r0, 3\nexit\nmain:\ncall local f\nadd %r0, 1\nexit\n"),
		4);
	/* Nested calls return to the right places. */
	cr_expect_eq(vt_run("mov %r0, 0\ncall local a\nadd %r0, 1000\nexit\n"
			    "a:\nadd %r0, 1\ncall local b\nadd %r0, 10\nexit\n"
			    "b:\nadd %r0, 100\nexit\n"),
		     1111);
}

Test(vm_call, local_preserves_r6_r9, .timeout = 10)
{
	cr_expect_eq(
		vt_run("mov %r6, 6\nmov %r7, 7\nmov %r8, 8\nmov %r9, 9\ncall local f\n"
		       "mov %r0, %r9\nlsh %r0, 8\nor %r0, %r8\nlsh %r0, 8\nor %r0, %r7\n"
		       "lsh %r0, 8\nor %r0, %r6\nexit\n"
		       "f:\nmov %r6, 0x60\nmov %r7, 0x70\nmov %r8, 0x80\nmov %r9, 0x90\nexit\n"),
		0x09080706);
}

/* A call sets r0: a copy into r0 made before it is gone after it. */
Test(vm_call, copies_do_not_survive_a_call, .timeout = 10)
{
	cr_expect_eq(vt_run("mov %r6, 3\nmov %r0, %r6\ncall local f\nmov %r0, %r6\nexit\n"
			    "f:\nmov %r0, 9\nexit\n"),
		     3);
}

Test(vm_call, local_frames, .timeout = 10)
{
	uint64_t r0;

	/* Same r10 offset, different bytes: the callee has its own frame. */
	cr_expect_eq(vt_run("stdw [%r10-8], 0x1111\ncall local f\nldxdw %r0, [%r10-8]\nexit\n"
			    "f:\nstdw [%r10-8], 0x2222\nexit\n"),
		     0x1111);
	cr_expect_eq(vt_run("stdw [%r10-8], 0x1111\ncall local f\nexit\n"
			    "f:\nstdw [%r10-8], 0x2222\nldxdw %r0, [%r10-8]\nexit\n"),
		     0x2222);
	/* Frames do not overlap: the callee's r10 is at least 512 bytes below. */
	r0 = vt_run("mov %r6, %r10\ncall local f\nsub %r6, %r0\nmov %r0, %r6\nexit\n"
		    "f:\nmov %r0, %r10\nexit\n");
	cr_expect_geq(r0, 512, "caller r10 - callee r10 = %llu", (unsigned long long)r0);
	/* r10 is restored on return. */
	cr_expect_eq(vt_run("mov %r6, %r10\ncall local f\nsub %r6, %r10\nmov %r0, %r6\nexit\n"
			    "f:\nexit\n"),
		     0);
	/* A callee may use a pointer into its caller's frame. */
	cr_expect_eq(vt_run("stdw [%r10-8], 5\nmov %r1, %r10\nadd %r1, -8\ncall local f\n"
			    "ldxdw %r0, [%r10-8]\nexit\n"
			    "f:\nldxdw %r2, [%r1]\nadd %r2, 10\nstxdw [%r1], %r2\nexit\n"),
		     15);
}

/*
 * The caller fills all 64 slots of its frame, the callee all 64 of its own
 * with other values; the caller then finds every slot of its frame intact.
 */
Test(vm_call, local_whole_frame_is_private, .timeout = 10)
{
	const char *text = "mov %r1, %r10\nmov %r2, 0\n"
			   "fill:\nsub %r1, 8\nadd %r2, 1\nstxdw [%r1], %r2\njne %r2, 64, fill\n"
			   "call local f\n"
			   "mov %r6, %r0\n"
			   "mov %r0, 0\nmov %r1, %r10\nmov %r2, 64\n"
			   "check:\nsub %r1, 8\nldxdw %r3, [%r1]\nadd %r0, %r3\nsub %r2, 1\n"
			   "jne %r2, 0, check\n"
			   "lsh %r0, 32\nor %r0, %r6\nexit\n"
			   /* The callee writes 1000 + k into its slot k and sums them. */
			   "f:\nmov %r1, %r10\nmov %r2, 0\nmov %r0, 0\n"
			   "ffill:\nsub %r1, 8\nadd %r2, 1\nmov %r3, %r2\nadd %r3, 1000\n"
			   "stxdw [%r1], %r3\nadd %r0, %r3\njne %r2, 64, ffill\nexit\n";

	/* Caller: 1 + ... + 64 = 2080; callee: 64 * 1000 + 2080 = 66080. */
	cr_expect_eq(vt_run(text), (2080ull << 32) | 66080);
}

/*
 * f recurses while r1 > 0, checking on the way back that its stack slots
 * (both ends of the frame) and r6 kept the values it stored before the
 * call. r0 counts the calls made, or is 0xbad after a failed check.
 */
static const char recursion_prog[] = "ldxdw %r1, [%r1]\n" /* 0: levels to descend */
				     "mov %r0, 0\n"
				     "call local f\n"
				     "exit\n"
				     "f:\n"
				     "add %r0, 1\n"
				     "sub %r1, 1\n"
				     "mov %r6, %r1\n"
				     "stxdw [%r10-8], %r1\n"
				     "stxdw [%r10-512], %r1\n"
				     "jeq %r1, 0, out\n"
				     "call local f\n" /* 10 */
				     "ldxdw %r2, [%r10-8]\n"
				     "jne %r2, %r6, bad\n"
				     "ldxdw %r2, [%r10-512]\n"
				     "jne %r2, %r6, bad\n"
				     "out:\n"
				     "exit\n"
				     "bad:\n"
				     "lddw %r0, 0xbad\n"
				     "exit\n";

Test(vm_call, recursion_depth, .timeout = 10)
{
	struct vm *vm = vt_load(recursion_prog, NULL);
	struct vm_fault fault = { 0 };
	uint64_t levels, r0 = 0;
	int r;

	/* Seven nested calls: eight frames, the most there are. */
	for (levels = 1; levels <= VM_MAX_FRAMES - 1; levels++)
		cr_expect_eq(vt_exec(vm, &levels, sizeof(levels)), levels);

	/* One more is a run-time fault at the call that goes too deep. */
	levels = VM_MAX_FRAMES;
	r = vm__exec(vm, &levels, sizeof(levels), &r0, &fault);
	cr_expect_lt(r, 0);
	cr_expect_eq(fault.err, -r);
	cr_expect_eq(fault.pc, 10);
	cr_expect(strstr(fault.msg, "insn 10:"), "message: %s", fault.msg);
	levels = 100;
	cr_expect_lt(vm__exec(vm, &levels, sizeof(levels), &r0, &fault), 0);

	/* The fault left nothing behind: the same VM still runs. */
	levels = VM_MAX_FRAMES - 1;
	cr_expect_eq(vt_exec(vm, &levels, sizeof(levels)), levels);
	vm__free(vm);
}

/* Encodes what the resolver was asked so that the program can return it. */
static int resolver_calls;

static int resolve(void *user, unsigned int src, int32_t imm, int32_t next_imm, uint64_t *value)
{
	cr_expect_eq(user, (void *)&resolver_calls);
	resolver_calls++;
	if (imm == 666)
		return -ENOENT;
	*value = (uint64_t)src << 56 | (uint64_t)(uint16_t)imm << 32 | (uint32_t)next_imm;
	return 0;
}

static void setup_resolver(struct vm *vm)
{
	cr_assert_eq(vm__set_lddw_resolver(vm, resolve, &resolver_calls), 0);
}

Test(vm_call, lddw_resolver, .timeout = 10)
{
	static const struct {
		const char *form;
		uint64_t want;
	} cases[] = {
		{ "map_fd(5)", 0x0100000500000000 },
		{ "map_value(3, 16)", 0x0200000300000010 },
		{ "btf_id(7)", 0x0300000700000000 },
		{ "map_idx(2)", 0x0500000200000000 },
		{ "map_idx_value(2, 8)", 0x0600000200000008 },
	};
	char text[128], msg[VM_ERRMSG_SIZE];
	struct vm *vm;
	int r;

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		snprintf(text, sizeof(text), "lddw %%r0, %s\nexit\n", cases[i].form);
		cr_expect_eq(vt_run_setup(text, setup_resolver, NULL, 0), cases[i].want, "%s",
			     cases[i].form);
	}

	/* Resolved once at load time, never on the run path; src 0 needs no resolver. */
	resolver_calls = 0;
	vm = vt_load("lddw %r0, map_fd(1)\nlddw %r1, 0x42\nexit\n", setup_resolver);
	cr_expect_eq(resolver_calls, 1);
	cr_expect_eq(vt_exec(vm, NULL, 0), 0x0100000100000000);
	cr_expect_eq(vt_exec(vm, NULL, 0), 0x0100000100000000);
	cr_expect_eq(resolver_calls, 1);
	vm__free(vm);

	/* A resolver error refuses the program with the resolver's errno. */
	r = vt_load_error("mov %r0, 0\nlddw %r0, map_fd(666)\nexit\n", setup_resolver, msg);
	cr_expect_eq(r, -ENOENT);
	cr_expect(strstr(msg, "insn 1:"), "message: %s", msg);
}

Test(vm_call, lddw_func_is_absolute_index, .timeout = 10)
{
	static const struct {
		const char *text;
		uint64_t want;
	} cases[] = {
		/* func(f) is encoded relative to the next instruction; r0 gets f's index. */
		{ "mov %r0, 0\nlddw %r0, func(f)\nexit\nmov %r0, 9\nf:\nmov %r0, 1\nexit\n", 5 },
		{ "ja main\ng:\nexit\nmain:\nlddw %r0, func(g)\nexit\n", 1 },
		{ "lddw %r0, func(h)\nh:\nexit\n", 2 },
	};
	uint64_t r0;

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		r0 = vt_run(cases[i].text);
		cr_expect_eq(r0, cases[i].want, "got %llu, want %llu\n%s", (unsigned long long)r0,
			     (unsigned long long)cases[i].want, cases[i].text);
	}
}

/*
 * vm__exec_func: a helper calling back into the program, as bpf_loop does.
 * The "loop" helper runs the callback at r2 with (i, r3) for i < r1 until it
 * returns non-zero, and returns how many times it ran it.
 */
static const struct vm *loop_vm;

static uint64_t loop_helper(uint64_t nr, uint64_t fn, uint64_t ctx, uint64_t flags, uint64_t r5)
{
	struct vm_fault fault;
	uint64_t i, r0;

	for (i = 0; i < nr; i++) {
		const uint64_t args[5] = { i, ctx, 0xdead, 0xbeef, 0xcafe };

		if (vm__exec_func(loop_vm, (uint32_t)fn, args, &r0, &fault) < 0)
			return (uint64_t)-fault.err;
		if (r0)
			return i + 1;
	}
	return i;
}

static void setup_loop(struct vm *vm)
{
	cr_assert_eq(vm__register_helper(vm, 181, "loop", loop_helper), 0);
	cr_assert_eq(vm__set_mem_check(vm, vm_mem_allow_all, NULL), 0);
}

Test(vm_call, exec_func_from_a_helper, .timeout = 10)
{
	/*
	 * The callback adds i to a counter on the caller's stack, sees r3-r5 as
	 * given, keeps its own stack frame, may make local calls, and stops the
	 * loop when i reaches 6.
	 */
	static const char *text = "stdw [%r10-8], 100\n"
				  "mov %r6, 77\n"
				  "mov %r1, 10\n"
				  "lddw %r2, func(cb)\n"
				  "mov %r3, %r10\n"
				  "add %r3, -8\n"
				  "mov %r4, 0\n"
				  "call 181\n"
				  "ldxdw %r1, [%r10-8]\n"
				  "lsh %r0, 32\n"
				  "add %r0, %r1\n"
				  "add %r0, %r6\n"
				  "exit\n"
				  "cb:\n"
				  "stdw [%r10-8], 5\n"
				  "ldxdw %r0, [%r2]\n"
				  "add %r0, %r1\n"
				  "stxdw [%r2], %r0\n"
				  "lddw %r6, 0xdead\n"
				  "jne %r3, %r6, bad\n"
				  "lddw %r6, 0xcafe\n"
				  "jne %r5, %r6, bad\n"
				  "call local six\n"
				  "jeq %r1, %r0, stop\n"
				  "ldxdw %r0, [%r10-8]\n"
				  "jne %r0, 5, bad\n"
				  "mov %r0, 0\n"
				  "exit\n"
				  "stop:\n"
				  "mov %r0, 1\n"
				  "exit\n"
				  "bad:\n"
				  "mov %r0, 2\n"
				  "exit\n"
				  "six:\n"
				  "mov %r0, 6\n"
				  "exit\n";
	struct vm *vm = vt_load(text, setup_loop);

	loop_vm = vm;
	/* 7 runs (i = 0..6), counter 100 + 0+1+...+6 = 121, r6 = 77 kept. */
	cr_expect_eq(vt_exec(vm, NULL, 0), (7ull << 32) + 121 + 77);
	vm__free(vm);
}

Test(vm_call, exec_func_refuses_non_functions, .timeout = 10)
{
	const uint64_t args[5] = { 0 };
	struct vm_fault fault;
	uint64_t r0 = 0;
	struct vm *vm =
		vt_load("mov %r0, 3\nlddw %r1, func(f)\nexit\nf:\nadd %r1, 4\nmov %r0, %r1\n"
			"exit\n",
			setup_loop);

	/* f is at 4: it runs on its own, with r1 from args. */
	cr_expect_eq(vm__exec_func(vm, 4, (const uint64_t[5]){ 38 }, &r0, &fault), 0);
	cr_expect_eq(r0, 42);
	/* 0 is the program itself; r3-r5 are what the caller gives. */
	cr_expect_eq(vm__exec_func(vm, 0, args, &r0, &fault), 0);
	cr_expect_eq(r0, 3);
	/* Not a function entry: the middle of the program, the lddw tail, past the end. */
	cr_expect_eq(vm__exec_func(vm, 1, args, &r0, &fault), -EINVAL);
	cr_expect_eq(vm__exec_func(vm, 2, args, &r0, &fault), -EINVAL);
	cr_expect_eq(vm__exec_func(vm, 5, args, &r0, &fault), -EINVAL);
	cr_expect_eq(vm__exec_func(vm, 99, args, &r0, &fault), -EINVAL);
	vm__free(vm);
}

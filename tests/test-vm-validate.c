// SPDX-License-Identifier: MIT
/*
 * vm__load() must refuse every malformed program, say which instruction is
 * wrong and why, and return the negative errno it also leaves in errno. Each
 * case below breaks exactly one rule; the instruction index and the reason
 * are checked as substrings of vm__strerror() so wording can evolve.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "vm-test-util.h"

#define INSN(c, d, s, o, i)                                                 \
	{                                                                   \
		.code = (c), .dst = (d), .src = (s), .off = (o), .imm = (i) \
	}
#define EXIT INSN(EBPF_OP_EXIT, 0, 0, 0, 0)
#define MOV0 INSN(EBPF_CLS_ALU64 | EBPF_MOV | EBPF_K, 0, 0, 0, 0)
#define LDDW(dst, src, imm) INSN(EBPF_OP_LDDW, dst, src, 0, imm)

struct bad_prog {
	const char *name;
	/* Assembly text, or when NULL the raw instructions. */
	const char *text;
	struct ebpf_insn insns[4];
	size_t cnt;
	vt_setup_fn setup;
	int err;
	const char *where;
	const char *why;
};

static uint64_t nop_helper(uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4, uint64_t r5)
{
	return 0;
}

static void setup_helper1(struct vm *vm)
{
	cr_assert_eq(vm__register_helper(vm, 1, "nop", nop_helper), 0);
}

static void check_bad_progs(const struct bad_prog *cases, size_t n)
{
	char msg[VM_ERRMSG_SIZE];
	int r;

	for (size_t i = 0; i < n; i++) {
		const struct bad_prog *c = &cases[i];

		if (c->text)
			r = vt_load_error(c->text, c->setup, msg);
		else
			r = vt_load_insns_error(c->insns, c->cnt, c->setup, msg);
		cr_expect_eq(r, -c->err, "%s: returned %d (%s), want -%d", c->name, r, strerror(-r),
			     c->err);
		if (c->where)
			cr_expect(strstr(msg, c->where), "%s: \"%s\" does not name \"%s\"", c->name,
				  msg, c->where);
		cr_expect(strstr(msg, c->why), "%s: \"%s\" does not say \"%s\"", c->name, msg,
			  c->why);
	}
}

/* One malformed program: assembly text, or raw instructions given as INSN()s. */
#define BAD_ASM(name, text, setup, err, where, why)              \
	{                                                        \
		name, text, { { 0 } }, 0, setup, err, where, why \
	}
#define BAD_RAW(name, setup, err, where, why, ...)                                              \
	{                                                                                       \
		name, NULL, { __VA_ARGS__ }, ARRAY_SIZE(((struct ebpf_insn[]){ __VA_ARGS__ })), \
			setup, err, where, why                                                  \
	}

#define CHECK_BAD(...)                                                   \
	do {                                                             \
		static const struct bad_prog cases_[] = { __VA_ARGS__ }; \
		check_bad_progs(cases_, ARRAY_SIZE(cases_));             \
	} while (0)

Test(vm_validate, unknown_opcodes, .timeout = 10)
{
	CHECK_BAD(BAD_RAW("alu64 op 0xe0", NULL, EINVAL, "insn 1:", "unknown opcode 0xe7", MOV0,
			  INSN(0xe7, 0, 0, 0, 0), EXIT),
		  BAD_RAW("alu op 0xf0 reg", NULL, EINVAL, "insn 2:", "unknown opcode 0xfc", MOV0,
			  MOV0, INSN(0xfc, 0, 1, 0, 0), EXIT),
		  BAD_RAW("jmp op 0xe0", NULL, EINVAL, "insn 2:", "unknown opcode 0xe5", MOV0, MOV0,
			  INSN(0xe5, 0, 0, 0, 0), EXIT),
		  BAD_RAW("jmp32 exit", NULL, EINVAL, "insn 1:", "unknown opcode 0x96", MOV0,
			  INSN(0x96, 0, 0, 0, 0), EXIT),
		  BAD_RAW("jmp32 call", setup_helper1, EINVAL, "insn 0:", "unknown opcode 0x86",
			  INSN(0x86, 0, 0, 0, 1), EXIT),
		  BAD_RAW("ldxsdw", NULL, EINVAL, "insn 0:", "unknown opcode 0x99",
			  INSN(0x99, 0, 1, 0, 0), EXIT),
		  BAD_RAW("bswap as reg", NULL, EINVAL, "insn 0:", "unknown opcode 0xdf",
			  INSN(0xdf, 0, 0, 0, 16), EXIT),
		  BAD_RAW("stx memsx", NULL, EINVAL, "insn 0:", "unknown opcode",
			  INSN(0x9b, 10, 1, -8, 0), EXIT),
		  BAD_RAW("st atomic", NULL, EINVAL, "insn 0:", "unknown opcode",
			  INSN(0xda, 10, 0, -8, 0), EXIT));
}

Test(vm_validate, bad_registers, .timeout = 10)
{
	CHECK_BAD(BAD_ASM("alu dst r11", "mov %r11, 1\nexit\n", NULL, EINVAL,
			  "insn 0:", "bad destination register r11"),
		  BAD_ASM("alu src r12", "mov %r0, 0\nmov %r0, %r12\nexit\n", NULL, EINVAL,
			  "insn 1:", "bad source register r12"),
		  BAD_ASM("jmp dst r15", "mov %r0, 0\njeq %r15, 0, +0\nexit\n", NULL, EINVAL,
			  "insn 1:", "bad destination register r15"),
		  BAD_ASM("jmp32 src r11", "jne32 %r0, %r11, +0\nexit\n", NULL, EINVAL,
			  "insn 0:", "bad source register r11"),
		  BAD_ASM("stx src r13", "stxdw [%r10-8], %r13\nexit\n", NULL, EINVAL,
			  "insn 0:", "bad source register r13"),
		  BAD_ASM("stx dst r12", "stxdw [%r12], %r1\nexit\n", NULL, EINVAL,
			  "insn 0:", "bad destination register r12"),
		  BAD_ASM("ldx src r14", "ldxdw %r0, [%r14]\nexit\n", NULL, EINVAL,
			  "insn 0:", "bad source register r14"),
		  BAD_ASM("st dst r11", "stb [%r11], 1\nexit\n", NULL, EINVAL,
			  "insn 0:", "bad destination register r11"),
		  BAD_ASM("lddw dst r11", "mov %r0, 0\nlddw %r11, 1\nexit\n", NULL, EINVAL,
			  "insn 1:", "bad destination register r11"),
		  BAD_ASM("atomic src r15", "lock add [%r10-8], %r15\nexit\n", NULL, EINVAL,
			  "insn 0:", "bad source register r15"),
		  BAD_RAW("callx r11", NULL, EINVAL, "insn 0:", "bad register r11",
			  INSN(EBPF_OP_CALLX, 11, 0, 0, 0), EXIT));
}

Test(vm_validate, r10_is_read_only, .timeout = 10)
{
	CHECK_BAD(
		BAD_ASM("mov r10", "mov %r10, 1\nexit\n", NULL, EINVAL, "insn 0:", "frame pointer"),
		BAD_ASM("add32 r10", "mov %r0, 0\nadd32 %r10, %r1\nexit\n", NULL, EINVAL,
			"insn 1:", "frame pointer"),
		BAD_ASM("neg r10", "neg %r10\nexit\n", NULL, EINVAL, "insn 0:", "frame pointer"),
		BAD_ASM("be16 r10", "be16 %r10\nexit\n", NULL, EINVAL, "insn 0:", "frame pointer"),
		BAD_ASM("ldx r10", "ldxdw %r10, [%r1]\nexit\n", NULL, EINVAL,
			"insn 0:", "frame pointer"),
		BAD_ASM("lddw r10", "mov %r0, 0\nmov %r0, 0\nlddw %r10, 0x1234\nexit\n", NULL,
			EINVAL, "insn 2:", "frame pointer"));
}

Test(vm_validate, jump_targets, .timeout = 10)
{
	CHECK_BAD(BAD_ASM("ja forward out", "mov %r0, 0\nja +5\nexit\n", NULL, EINVAL,
			  "insn 1:", "outside the program"),
		  BAD_ASM("ja backward out", "mov %r0, 0\nja -3\nexit\n", NULL, EINVAL,
			  "insn 1:", "outside the program"),
		  BAD_ASM("ja to the end", "ja +1\nexit\n", NULL, EINVAL,
			  "insn 0:", "outside the program"),
		  BAD_ASM("jeq forward out", "mov %r0, 0\nmov %r0, 0\njeq %r0, 0, +100\nexit\n",
			  NULL, EINVAL, "insn 2:", "outside the program"),
		  BAD_ASM("jslt32 backward out", "jslt32 %r0, 1, -2\nexit\n", NULL, EINVAL,
			  "insn 0:", "outside the program"),
		  BAD_ASM("ja32 forward out", "mov %r0, 0\nja32 +1000\nexit\n", NULL, EINVAL,
			  "insn 1:", "outside the program"),
		  BAD_ASM("ja32 backward out", "mov %r0, 0\nexit\nja32 -2147483648\n", NULL, EINVAL,
			  "insn 2:", "outside the program"),
		  /* Targets as far as the encodings reach, where pc + 1 + imm overflows. */
		  BAD_ASM("ja32 far forward", "mov %r0, 0\nja32 +2147483647\nexit\n", NULL, EINVAL,
			  "insn 1:", "outside the program"),
		  BAD_ASM("call local far forward", "mov %r0, 0\ncall local +2147483647\nexit\n",
			  NULL, EINVAL, "insn 1:", "outside the program"),
		  BAD_ASM("lddw func far forward",
			  "mov %r0, 0\nlddw %r0, func(+2147483647)\nexit\n", NULL, EINVAL,
			  "insn 1:", "outside the program"),
		  BAD_ASM("ja into lddw", "mov %r0, 0\nja +1\nlddw %r0, 1\nexit\n", NULL, EINVAL,
			  "insn 1:", "middle of an lddw"),
		  BAD_ASM("jne backward into lddw", "lddw %r0, 1\njne %r0, 0, -2\nexit\n", NULL,
			  EINVAL, "insn 2:", "middle of an lddw"),
		  BAD_ASM("call local out", "mov %r0, 0\ncall local +10\nexit\n", NULL, EINVAL,
			  "insn 1:", "outside the program"),
		  BAD_ASM("call local backward out", "call local -2\nexit\n", NULL, EINVAL,
			  "insn 0:", "outside the program"),
		  BAD_ASM("call local into lddw", "call local +1\nlddw %r0, 1\nexit\n", NULL,
			  EINVAL, "insn 0:", "middle of an lddw"),
		  BAD_ASM("lddw func out", "lddw %r0, func(+5)\nexit\n", NULL, EINVAL,
			  "insn 0:", "outside the program"),
		  BAD_ASM("lddw func into lddw", "lddw %r0, func(+2)\nlddw %r1, 2\nexit\n", NULL,
			  EINVAL, "insn 0:", "middle of an lddw"));
}

Test(vm_validate, falling_off_the_end, .timeout = 10)
{
	CHECK_BAD(BAD_ASM("alu last", "mov %r0, 0\n", NULL, EINVAL, "insn 0:", "fall off the end"),
		  BAD_ASM("conditional jump last", "mov %r0, 0\njeq %r0, 0, -2\n", NULL, EINVAL,
			  "insn 1:", "fall off the end"),
		  BAD_ASM("lddw last", "mov %r0, 0\nlddw %r0, 0x100000000\n", NULL, EINVAL,
			  "insn 1:", "fall off the end"),
		  BAD_ASM("call last", "exit\ncall 1\n", setup_helper1, EINVAL,
			  "insn 1:", "fall off the end"),
		  BAD_ASM("call local last", "exit\ncall local -2\n", NULL, EINVAL,
			  "insn 1:", "fall off the end"));
}

Test(vm_validate, lddw_encoding, .timeout = 10)
{
	CHECK_BAD(BAD_RAW("lddw missing second half", NULL, EINVAL, "insn 1:", "second half", MOV0,
			  LDDW(0, 0, 1)),
		  BAD_RAW("lddw alone", NULL, EINVAL, "insn 0:", "second half", LDDW(0, 0, 1)),
		  BAD_RAW("lddw second half dst", NULL, EINVAL, "insn 1:", "lddw", MOV0,
			  LDDW(0, 0, 1), INSN(0, 1, 0, 0, 0), EXIT),
		  BAD_RAW("lddw second half src", NULL, EINVAL, "insn 0:", "lddw", LDDW(0, 0, 1),
			  INSN(0, 0, 2, 0, 0), EXIT),
		  BAD_RAW("lddw second half off", NULL, EINVAL, "insn 0:", "lddw", LDDW(0, 0, 1),
			  INSN(0, 0, 0, 4, 0), EXIT),
		  BAD_RAW("lddw second half code", NULL, EINVAL, "insn 0:", "lddw", LDDW(0, 0, 1),
			  INSN(EBPF_OP_LDDW, 0, 0, 0, 0), EXIT),
		  BAD_RAW("lddw first half off", NULL, EINVAL, "insn 0:", "lddw",
			  INSN(EBPF_OP_LDDW, 0, 0, 1, 0), INSN(0, 0, 0, 0, 0), EXIT),
		  BAD_RAW("lddw unknown src 7", NULL, EINVAL, "insn 0:", "not a known pseudo form",
			  LDDW(0, 7, 0), INSN(0, 0, 0, 0, 0), EXIT),
		  BAD_RAW("lddw func with next imm", NULL, EINVAL, "insn 0:", "lddw",
			  LDDW(0, EBPF_PSEUDO_FUNC, 1), INSN(0, 0, 0, 0, 1), EXIT),
		  /* Map references need a loader to resolve them. */
		  BAD_ASM("lddw map_fd without resolver", "mov %r0, 0\nlddw %r0, map_fd(1)\nexit\n",
			  NULL, ENOTSUP, "insn 1:", "relocation callback"),
		  BAD_ASM("lddw map_value without resolver", "lddw %r0, map_value(1, 8)\nexit\n",
			  NULL, ENOTSUP, "insn 0:", "relocation callback"));
}

Test(vm_validate, calls, .timeout = 10)
{
	CHECK_BAD(BAD_ASM("unregistered helper", "mov %r0, 0\ncall 5\nexit\n", NULL, ENOENT,
			  "insn 1:", "unregistered helper 5"),
		  BAD_ASM("unregistered helper next to a registered one", "call 1\ncall 2\nexit\n",
			  setup_helper1, ENOENT, "insn 1:", "unregistered helper 2"),
		  BAD_ASM("negative helper id", "call -1\nexit\n", NULL, ENOENT,
			  "insn 0:", "unregistered helper -1"),
		  BAD_ASM("helper id past the table", "call 1024\nexit\n", NULL, ENOENT,
			  "insn 0:", "unregistered helper 1024"),
		  BAD_ASM("kfunc", "mov %r0, 0\ncall runtime 5\nexit\n", NULL, ENOTSUP,
			  "insn 1:", "kfunc"),
		  BAD_RAW("call src 3", setup_helper1, EINVAL, "insn 0:", "call kind",
			  INSN(EBPF_OP_CALL, 0, 3, 0, 1), EXIT),
		  BAD_RAW("call with dst", setup_helper1, EINVAL, "insn 0:", "reserved field",
			  INSN(EBPF_OP_CALL, 1, 0, 0, 1), EXIT),
		  BAD_RAW("call with off", setup_helper1, EINVAL, "insn 0:", "reserved field",
			  INSN(EBPF_OP_CALL, 0, 0, 3, 1), EXIT),
		  BAD_RAW("callx with imm", NULL, EINVAL, "insn 0:", "reserved field",
			  INSN(EBPF_OP_CALLX, 1, 0, 0, 1), EXIT));
}

Test(vm_validate, legacy_packet_access, .timeout = 10)
{
	CHECK_BAD(BAD_RAW("ldabsw", NULL, ENOTSUP, "insn 1:", "legacy packet access", MOV0,
			  INSN(EBPF_CLS_LD | EBPF_ABS | EBPF_W, 0, 0, 0, 12), EXIT),
		  BAD_RAW("ldabsb", NULL, ENOTSUP, "insn 0:", "legacy packet access",
			  INSN(EBPF_CLS_LD | EBPF_ABS | EBPF_B, 0, 0, 0, 0), EXIT),
		  BAD_RAW("ldindh", NULL, ENOTSUP, "insn 0:", "legacy packet access",
			  INSN(EBPF_CLS_LD | EBPF_IND | EBPF_H, 0, 1, 0, 0), EXIT));
}

Test(vm_validate, alu_encoding, .timeout = 10)
{
	CHECK_BAD(BAD_RAW("le8", NULL, EINVAL, "insn 0:", "byte swap width 8",
			  INSN(0xd4, 0, 0, 0, 8), EXIT),
		  BAD_RAW("be0", NULL, EINVAL, "insn 1:", "byte swap width 0", MOV0,
			  INSN(0xdc, 0, 0, 0, 0), EXIT),
		  BAD_RAW("bswap24", NULL, EINVAL, "insn 0:", "byte swap width 24",
			  INSN(0xd7, 0, 0, 0, 24), EXIT),
		  BAD_RAW("bswap with src", NULL, EINVAL, "insn 0:", "reserved field",
			  INSN(0xd7, 0, 1, 0, 16), EXIT),
		  BAD_RAW("movsx 24", NULL, EINVAL, "insn 0:", "movsx width 24",
			  INSN(0xbf, 0, 1, 24, 0), EXIT),
		  BAD_RAW("movsx32 32", NULL, EINVAL, "insn 0:", "movsx width 32",
			  INSN(0xbc, 0, 1, 32, 0), EXIT),
		  BAD_RAW("movsx with imm", NULL, EINVAL, "insn 0:", "reserved field imm",
			  INSN(0xbf, 0, 1, 8, 1), EXIT),
		  BAD_RAW("src in add imm", NULL, EINVAL, "insn 1:", "reserved field src", MOV0,
			  INSN(0x07, 0, 1, 0, 1), EXIT),
		  BAD_RAW("src in mov32 imm", NULL, EINVAL, "insn 0:", "reserved field src",
			  INSN(0xb4, 0, 2, 0, 1), EXIT),
		  BAD_RAW("imm in add reg", NULL, EINVAL, "insn 0:", "reserved field imm",
			  INSN(0x0f, 0, 1, 0, 1), EXIT),
		  BAD_RAW("imm in sub32 reg", NULL, EINVAL, "insn 0:", "reserved field imm",
			  INSN(0x1c, 0, 1, 0, -1), EXIT),
		  BAD_RAW("off in add", NULL, EINVAL, "insn 0:", "reserved field off",
			  INSN(0x07, 0, 0, 1, 1), EXIT),
		  BAD_RAW("off in mov imm", NULL, EINVAL, "insn 0:", "reserved field off",
			  INSN(0xb7, 0, 0, 8, 1), EXIT),
		  /* Only off 1 selects signed division. */
		  BAD_RAW("off 2 in div", NULL, EINVAL, "insn 0:", "reserved field off",
			  INSN(0x37, 0, 0, 2, 1), EXIT),
		  BAD_RAW("off 1 in mul", NULL, EINVAL, "insn 0:", "reserved field off",
			  INSN(0x2f, 0, 1, 1, 0), EXIT),
		  BAD_RAW("neg with imm", NULL, EINVAL, "insn 0:", "reserved field",
			  INSN(0x87, 0, 0, 0, 1), EXIT),
		  BAD_RAW("neg as reg", NULL, EINVAL, "insn 0:", "reserved field",
			  INSN(0x8f, 0, 1, 0, 0), EXIT));
}

Test(vm_validate, jmp_encoding, .timeout = 10)
{
	CHECK_BAD(BAD_RAW("exit with dst", NULL, EINVAL, "insn 1:", "reserved field", MOV0,
			  INSN(EBPF_OP_EXIT, 1, 0, 0, 0)),
		  BAD_RAW("exit with imm", NULL, EINVAL, "insn 0:", "reserved field",
			  INSN(EBPF_OP_EXIT, 0, 0, 0, 1)),
		  BAD_RAW("ja with imm", NULL, EINVAL, "insn 0:", "reserved field",
			  INSN(EBPF_OP_JA, 0, 0, 0, 1), EXIT),
		  BAD_RAW("ja32 with off", NULL, EINVAL, "insn 0:", "reserved field",
			  INSN(EBPF_OP_JA32, 0, 0, 1, 0), EXIT),
		  BAD_RAW("ja with dst", NULL, EINVAL, "insn 0:", "reserved field",
			  INSN(EBPF_OP_JA, 1, 0, 0, 0), EXIT),
		  BAD_RAW("jeq imm with src", NULL, EINVAL, "insn 0:", "reserved field src",
			  INSN(0x15, 0, 1, 0, 0), EXIT),
		  BAD_RAW("jeq reg with imm", NULL, EINVAL, "insn 0:", "reserved field imm",
			  INSN(0x1d, 0, 1, 0, 7), EXIT));
}

Test(vm_validate, mem_encoding, .timeout = 10)
{
	CHECK_BAD(BAD_RAW("st with src", NULL, EINVAL, "insn 0:", "reserved field src",
			  INSN(0x7a, 10, 1, -8, 0), EXIT),
		  BAD_RAW("ldx with imm", NULL, EINVAL, "insn 0:", "reserved field imm",
			  INSN(0x79, 0, 1, 0, 5), EXIT),
		  BAD_RAW("stx with imm", NULL, EINVAL, "insn 0:", "reserved field imm",
			  INSN(0x7b, 10, 1, -8, 5), EXIT),
		  /* Atomics exist only at 32 and 64 bits. */
		  BAD_RAW("atomic add byte", NULL, EINVAL, "insn 1:", "32 or 64-bit", MOV0,
			  INSN(0xd3, 10, 1, -8, EBPF_ADD), EXIT),
		  BAD_RAW("atomic xchg half", NULL, EINVAL, "insn 0:", "32 or 64-bit",
			  INSN(0xcb, 10, 1, -8, EBPF_XCHG), EXIT),
		  BAD_RAW("atomic sub", NULL, EINVAL, "insn 0:", "unknown atomic operation 0x10",
			  INSN(0xdb, 10, 1, -8, EBPF_SUB), EXIT),
		  BAD_RAW("atomic xchg without fetch", NULL, EINVAL, "insn 0:",
			  "unknown atomic operation 0xe0", INSN(0xdb, 10, 1, -8, 0xe0), EXIT),
		  BAD_RAW("atomic cmpxchg without fetch", NULL, EINVAL, "insn 0:",
			  "unknown atomic operation 0xf0", INSN(0xc3, 10, 1, -8, 0xf0), EXIT),
		  BAD_RAW("atomic high bits", NULL, EINVAL, "insn 0:",
			  "unknown atomic operation 0x1000", INSN(0xdb, 10, 1, -8, 0x1000), EXIT));
}

/* An access through r10 has a constant address, so the frame is checked at load. */
Test(vm_validate, stack_outside_frame, .timeout = 10)
{
	CHECK_BAD(BAD_ASM("stdw [r10+0]", "mov %r0, 0\nstdw [%r10+0], 1\nexit\n", NULL, EACCES,
			  "insn 1:", "outside the 512-byte frame"),
		  BAD_ASM("ldxdw [r10-520]", "ldxdw %r0, [%r10-520]\nexit\n", NULL, EACCES,
			  "insn 0:", "outside the 512-byte frame"),
		  BAD_ASM("stxb [r10-513]", "stxb [%r10-513], %r1\nexit\n", NULL, EACCES,
			  "insn 0:", "outside the 512-byte frame"),
		  BAD_ASM("ldxw straddling the top", "ldxw %r0, [%r10-2]\nexit\n", NULL, EACCES,
			  "insn 0:", "outside the 512-byte frame"),
		  BAD_ASM("ldxsh above", "ldxsh %r0, [%r10+8]\nexit\n", NULL, EACCES,
			  "insn 0:", "outside the 512-byte frame"),
		  BAD_ASM("atomic at r10", "lock add [%r10], %r1\nexit\n", NULL, EACCES,
			  "insn 0:", "outside the 512-byte frame"),
		  BAD_ASM("atomic32 straddling", "lock fetch or32 [%r10-2], %r1\nexit\n", NULL,
			  EACCES, "insn 0:", "outside the 512-byte frame"),
		  BAD_ASM("most negative offset", "ldxb %r0, [%r10-32768]\nexit\n", NULL, EACCES,
			  "insn 0:", "outside the 512-byte frame"));

	/* The edges themselves are inside. */
	cr_expect_eq(vt_run("stb [%r10-512], 1\nstdw [%r10-8], 2\nldxb %r0, [%r10-512]\n"
			    "ldxdw %r1, [%r10-8]\nadd %r0, %r1\nstb [%r10-1], 0\nexit\n"),
		     3);
}

Test(vm_validate, program_size, .timeout = 30)
{
	char msg[VM_ERRMSG_SIZE];
	struct ebpf_insn *insns;
	struct vm *vm;
	size_t n = VM_MAX_INSNS + 1;
	int r;

	insns = calloc(n, sizeof(*insns));
	cr_assert_not_null(insns);
	for (size_t i = 0; i < n; i++)
		insns[i] = vt_insn(EBPF_CLS_ALU64 | EBPF_ADD | EBPF_K, 0, 0, 0, 1);
	insns[n - 1] = vt_insn(EBPF_OP_EXIT, 0, 0, 0, 0);
	r = vt_load_insns_error(insns, n, NULL, msg);
	cr_expect_eq(r, -E2BIG);
	cr_expect(strstr(msg, "too many instructions"), "message: %s", msg);

	/* The limit itself is fine: a million instructions load and run. */
	insns[n - 2] = insns[n - 1];
	vm = vt_new(NULL);
	r = vm__load(vm, insns, VM_MAX_INSNS);
	cr_expect_eq(r, 0, "%s", vm__strerror(vm));
	if (r == 0)
		cr_expect_eq(vt_exec(vm, NULL, 0), VM_MAX_INSNS - 1);
	vm__free(vm);
	free(insns);

	r = vt_load_insns_error(NULL, 0, NULL, msg);
	cr_expect_eq(r, -EINVAL);
	cr_expect(strstr(msg, "empty"), "message: %s", msg);
}

Test(vm_validate, object_lifecycle, .timeout = 10)
{
	struct ebpf_insn good[] = { vt_insn(EBPF_CLS_ALU64 | EBPF_MOV | EBPF_K, 0, 0, 0, 42),
				    vt_insn(EBPF_OP_EXIT, 0, 0, 0, 0) };
	struct ebpf_insn bad[] = { vt_insn(EBPF_CLS_ALU64 | EBPF_MOV | EBPF_K, 10, 0, 0, 42),
				   vt_insn(EBPF_OP_EXIT, 0, 0, 0, 0) };
	struct vm *vm = vt_new(NULL);
	struct vm_fault fault = { 0 };
	uint64_t r0 = 0;

	/* Nothing loaded yet. */
	cr_expect_eq(vm__exec(vm, NULL, 0, &r0, &fault), -ENOEXEC);
	cr_expect_eq(fault.err, ENOEXEC);

	/* A refused program leaves the VM empty and ready for another try. */
	cr_expect_eq(vm__load(vm, bad, 2), -EINVAL);
	cr_expect_eq(vm__exec(vm, NULL, 0, &r0, NULL), -ENOEXEC);
	cr_expect_eq(errno, ENOEXEC);
	cr_expect_eq(vm__load(vm, good, 2), 0, "%s", vm__strerror(vm));
	cr_expect_eq(vt_exec(vm, NULL, 0), 42);

	/* The program was copied: changing the caller's array changes nothing. */
	good[0].imm = 7;
	cr_expect_eq(vt_exec(vm, NULL, 0), 42);

	/* One program per VM, and helpers are fixed once it is loaded. */
	cr_expect_eq(vm__load(vm, good, 2), -EEXIST);
	cr_expect_eq(errno, EEXIST);
	cr_expect_eq(vm__register_helper(vm, 1, "nop", nop_helper), -EBUSY);
	cr_expect_eq(errno, EBUSY);
	cr_expect_eq(vm__set_jit(vm, false), -EBUSY);
	cr_expect_eq(vt_exec(vm, NULL, 0), 42);
	vm__free(vm);

	/* Registration refuses what it cannot hold. */
	vm = vt_new(NULL);
	cr_expect_eq(vm__register_helper(vm, VM_MAX_HELPER_ID + 1, "big", nop_helper), -EINVAL);
	cr_expect(strstr(vm__strerror(vm), "1024"), "message: %s", vm__strerror(vm));
	cr_expect_eq(vm__register_helper(vm, 1, "null", NULL), -EINVAL);
	cr_expect_eq(vm__register_helper(vm, 1, NULL, nop_helper), -EINVAL);
	cr_expect_eq(vm__set_unwind_helper(vm, VM_MAX_HELPER_ID + 1), -EINVAL);
	/* Registering an id again replaces the helper. */
	cr_expect_eq(vm__register_helper(vm, 1, "first", nop_helper), 0);
	cr_expect_eq(vm__register_helper(vm, 1, "second", nop_helper), 0);
	cr_expect_str_eq(vm__helper_name(vm, 1), "second");
	vm__free(vm);

	/* Destructors accept NULL. */
	vm__free(NULL);
}

// SPDX-License-Identifier: MIT
/*
 * The assembler and disassembler of the conformance syntax: errors name
 * their line, every form of the syntax assembles to the encoding RFC 9669
 * gives it, and disassembly reassembles to identical bits — for real
 * programs and for 10,000 random instruction words.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "asm.h"
#include "vm-test-util.h"

#define INSN(c, d, s, o, i)                                                 \
	{                                                                   \
		.code = (c), .dst = (d), .src = (s), .off = (o), .imm = (i) \
	}

struct asm_error_case {
	const char *text;
	const char *line;
	const char *why;
};

Test(asm, errors_name_the_line, .timeout = 10)
{
	static const struct asm_error_case cases[] = {
		{ "mov %r0, 1\nfoo %r0\nexit\n", "line 2:", "unknown mnemonic 'foo'" },
		{ "mov %r0, 1\n\n# a comment\nja nowhere\nexit\n",
		  "line 4:", "undefined label 'nowhere'" },
		{ "mov %r16, 1\nexit\n", "line 1:", "not a register" },
		{ "exit\nmov %r0, 0x\n", "line 2:", "not a number" },
		{ "exit\nexit\nmov %r0, 12z\n", "line 3:", "not a number" },
		{ "add %r0\n", "line 1:", "add takes" },
		{ "exit\nldxw %r0, %r1\n", "line 2:", "not a memory operand" },
		{ "ldxw %r0, [%r1+x]\nexit\n", "line 1:", "bad offset" },
		{ "a:\nmov %r0, 0\na:\nexit\n", "line 3:", "defined twice" },
		{ "exit\nlock sub [%r1], %r2\n", "line 2:", "unknown atomic operation" },
		{ "lock fetch xchg [%r1], %r2\n", "line 1:", "always fetches" },
		{ "mov %r1, 1\ncall not_a_helper\n", "line 2:", "unknown helper" },
		{ "lddw %r0, map_by_fd(foo)\n", "line 1:", "unknown map 'foo'" },
		{ "lddw %r0, bogus(1)\n", "line 1:", "unknown lddw pseudo form" },
		{ "lddw %r0, map_value(1)\n", "line 1:", "takes 2 argument" },
		{ "exit\nmov %r0, 1, 2, 3, 4, 5, 6, 7, 8\n", "line 2:", "too many operands" },
		{ "jeq %r0, 1\n", "line 1:", "jeq takes" },
		{ "exit\n.insn zz\n", "line 2:", "not a number" },
		{ "le24 %r0\n", "line 1:", "unknown mnemonic" },
		{ "callx 5\n", "line 1:", "callx takes a register" },
		{ "# nothing but a comment\n", NULL, "no instructions" },
	};
	char err[ASM_ERRMSG_SIZE];
	struct ebpf_insn *insns;
	size_t cnt;
	int r;

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		insns = NULL;
		r = asm__assemble(cases[i].text, NULL, &insns, &cnt, err);
		cr_expect_eq(r, -EINVAL, "accepted:\n%s", cases[i].text);
		if (r == 0) {
			free(insns);
			continue;
		}
		if (cases[i].line)
			cr_expect(!strncmp(err, cases[i].line, strlen(cases[i].line)),
				  "\"%s\" does not start with \"%s\"", err, cases[i].line);
		cr_expect(strstr(err, cases[i].why), "\"%s\" does not say \"%s\"", err,
			  cases[i].why);
	}
}

/* A 16-bit jump offset cannot reach past 32767 instructions. */
Test(asm, label_too_far, .timeout = 10)
{
	char err[ASM_ERRMSG_SIZE], *text, *p;
	struct ebpf_insn *insns;
	size_t cnt;
	int r;

	text = malloc(40000 * 6 + 64);
	cr_assert_not_null(text);
	p = text + sprintf(text, "mov %%r0, 0\nja far\n");
	for (int i = 0; i < 40000; i++)
		p += sprintf(p, "exit\n");
	sprintf(p, "far:\nexit\n");
	r = asm__assemble(text, NULL, &insns, &cnt, err);
	free(text);
	cr_expect_eq(r, -EINVAL);
	cr_expect(strstr(err, "line 2:") && strstr(err, "too far"), "%s", err);
}

struct form {
	const char *line;
	struct ebpf_insn insn[2];
	size_t cnt;
};

static void check_form(const char *line, const struct ebpf_insn *want, size_t want_cnt)
{
	char err[ASM_ERRMSG_SIZE];
	struct ebpf_insn *insns = NULL;
	size_t cnt = 0;
	int r;

	r = asm__assemble(line, NULL, &insns, &cnt, err);
	cr_expect_eq(r, 0, "'%s': %s", line, err);
	if (r < 0)
		return;
	cr_expect_eq(cnt, want_cnt, "'%s': %zu instructions, want %zu", line, cnt, want_cnt);
	for (size_t i = 0; i < cnt && i < want_cnt; i++)
		cr_expect_eq(vt_insn_word(&insns[i]), vt_insn_word(&want[i]),
			     "'%s' slot %zu: 0x%016llx, want 0x%016llx", line, i,
			     (unsigned long long)vt_insn_word(&insns[i]),
			     (unsigned long long)vt_insn_word(&want[i]));
	free(insns);
}

/* The opcode numbers themselves, written out as the RFC tabulates them. */
Test(asm, forms_fixed_encodings, .timeout = 10)
{
	static const struct form forms[] = {
		{ "add %r1, 2", { INSN(0x07, 1, 0, 0, 2) }, 1 },
		{ "add64 %r1, %r2", { INSN(0x0f, 1, 2, 0, 0) }, 1 },
		{ "add32 r1, r2", { INSN(0x0c, 1, 2, 0, 0) }, 1 },
		{ "mov32 %r0, -1", { INSN(0xb4, 0, 0, 0, -1) }, 1 },
		{ "mov %r9, 0x7fffffff", { INSN(0xb7, 9, 0, 0, 0x7fffffff) }, 1 },
		/* Immediates are truncated to 32 bits as the corpus expects. */
		{ "mov %r0, 0x100000005", { INSN(0xb7, 0, 0, 0, 5) }, 1 },
		{ "mov %r0, -0x10", { INSN(0xb7, 0, 0, 0, -16) }, 1 },
		{ "neg %r3", { INSN(0x87, 3, 0, 0, 0) }, 1 },
		{ "neg32 %r3", { INSN(0x84, 3, 0, 0, 0) }, 1 },
		{ "sdiv %r1, -3", { INSN(0x37, 1, 0, 1, -3) }, 1 },
		{ "sdiv32 %r1, %r2", { INSN(0x3c, 1, 2, 1, 0) }, 1 },
		{ "smod %r1, %r2", { INSN(0x9f, 1, 2, 1, 0) }, 1 },
		{ "smod32 %r1, 7", { INSN(0x94, 1, 0, 1, 7) }, 1 },
		{ "movsx832 %r1, %r2", { INSN(0xbc, 1, 2, 8, 0) }, 1 },
		{ "movsx1632 %r1, %r2", { INSN(0xbc, 1, 2, 16, 0) }, 1 },
		{ "movsx864 %r1, %r2", { INSN(0xbf, 1, 2, 8, 0) }, 1 },
		{ "movsx1664 %r1, %r2", { INSN(0xbf, 1, 2, 16, 0) }, 1 },
		{ "movsx3264 %r1, %r2", { INSN(0xbf, 1, 2, 32, 0) }, 1 },
		{ "le16 %r1", { INSN(0xd4, 1, 0, 0, 16) }, 1 },
		{ "le64 %r1", { INSN(0xd4, 1, 0, 0, 64) }, 1 },
		{ "be32 %r1", { INSN(0xdc, 1, 0, 0, 32) }, 1 },
		{ "bswap64 %r1", { INSN(0xd7, 1, 0, 0, 64) }, 1 },
		{ "swap16 %r1", { INSN(0xd7, 1, 0, 0, 16) }, 1 },
		{ "lddw %r1, 0x1122334455667788",
		  { INSN(0x18, 1, 0, 0, 0x55667788), INSN(0, 0, 0, 0, 0x11223344) },
		  2 },
		{ "lddw %r1, -1", { INSN(0x18, 1, 0, 0, -1), INSN(0, 0, 0, 0, -1) }, 2 },
		{ "lddw %r2, map_fd(3)", { INSN(0x18, 2, 1, 0, 3), INSN(0, 0, 0, 0, 0) }, 2 },
		{ "lddw %r2, map_value(3, 16)",
		  { INSN(0x18, 2, 2, 0, 3), INSN(0, 0, 0, 0, 16) },
		  2 },
		{ "lddw %r2, btf_id(9)", { INSN(0x18, 2, 3, 0, 9), INSN(0, 0, 0, 0, 0) }, 2 },
		{ "lddw %r2, func(+4)", { INSN(0x18, 2, 4, 0, 4), INSN(0, 0, 0, 0, 0) }, 2 },
		{ "lddw %r2, map_idx(1)", { INSN(0x18, 2, 5, 0, 1), INSN(0, 0, 0, 0, 0) }, 2 },
		{ "lddw %r2, map_idx_value(1, 8)",
		  { INSN(0x18, 2, 6, 0, 1), INSN(0, 0, 0, 0, 8) },
		  2 },
		{ "ldxw %r0, [%r1]", { INSN(0x61, 0, 1, 0, 0) }, 1 },
		{ "ldxh %r0, [%r1+2]", { INSN(0x69, 0, 1, 2, 0) }, 1 },
		{ "ldxb %r0, [%r1 + 3]", { INSN(0x71, 0, 1, 3, 0) }, 1 },
		{ "ldxdw %r0, [%r10-8]", { INSN(0x79, 0, 10, -8, 0) }, 1 },
		{ "ldxsw %r0, [%r1+4]", { INSN(0x81, 0, 1, 4, 0) }, 1 },
		{ "ldxsh %r0, [%r1]", { INSN(0x89, 0, 1, 0, 0) }, 1 },
		{ "ldxsb %r0, [%r1-1]", { INSN(0x91, 0, 1, -1, 0) }, 1 },
		{ "stw [%r1+4], -1", { INSN(0x62, 1, 0, 4, -1) }, 1 },
		{ "sth [%r1], 7", { INSN(0x6a, 1, 0, 0, 7) }, 1 },
		{ "stb [%r10-1], 0x12", { INSN(0x72, 10, 0, -1, 0x12) }, 1 },
		{ "stdw [%r10-16], 3", { INSN(0x7a, 10, 0, -16, 3) }, 1 },
		{ "stxw [%r1+4], %r2", { INSN(0x63, 1, 2, 4, 0) }, 1 },
		{ "stxh [%r1], %r2", { INSN(0x6b, 1, 2, 0, 0) }, 1 },
		{ "stxb [%r1], %r2", { INSN(0x73, 1, 2, 0, 0) }, 1 },
		{ "stxdw [%r10-32768], %r2", { INSN(0x7b, 10, 2, -32768, 0) }, 1 },
		{ "lock add [%r1+8], %r2", { INSN(0xdb, 1, 2, 8, 0x00) }, 1 },
		{ "lock add32 [%r1], %r2", { INSN(0xc3, 1, 2, 0, 0x00) }, 1 },
		{ "lock fetch add [%r1], %r2", { INSN(0xdb, 1, 2, 0, 0x01) }, 1 },
		{ "lock or [%r1], %r2", { INSN(0xdb, 1, 2, 0, 0x40) }, 1 },
		{ "lock fetch or32 [%r1], %r2", { INSN(0xc3, 1, 2, 0, 0x41) }, 1 },
		{ "lock and [%r1], %r2", { INSN(0xdb, 1, 2, 0, 0x50) }, 1 },
		{ "lock fetch and [%r1], %r2", { INSN(0xdb, 1, 2, 0, 0x51) }, 1 },
		{ "lock xor32 [%r1], %r2", { INSN(0xc3, 1, 2, 0, 0xa0) }, 1 },
		{ "lock fetch xor [%r1], %r2", { INSN(0xdb, 1, 2, 0, 0xa1) }, 1 },
		{ "lock xchg [%r1-8], %r2", { INSN(0xdb, 1, 2, -8, 0xe1) }, 1 },
		{ "lock cmpxchg32 [%r1], %r2", { INSN(0xc3, 1, 2, 0, 0xf1) }, 1 },
		{ "ja +3", { INSN(0x05, 0, 0, 3, 0) }, 1 },
		{ "ja -1", { INSN(0x05, 0, 0, -1, 0) }, 1 },
		{ "ja32 +70000", { INSN(0x06, 0, 0, 0, 70000) }, 1 },
		{ "jeq %r1, 5, +2", { INSN(0x15, 1, 0, 2, 5) }, 1 },
		{ "jeq %r1, %r2, -2", { INSN(0x1d, 1, 2, -2, 0) }, 1 },
		{ "jne32 %r1, -1, +1", { INSN(0x56, 1, 0, 1, -1) }, 1 },
		{ "jsle32 %r1, %r3, +0", { INSN(0xde, 1, 3, 0, 0) }, 1 },
		{ "jset %r1, 0x80000000, +1", { INSN(0x45, 1, 0, 1, INT32_MIN) }, 1 },
		{ "call 5", { INSN(0x85, 0, 0, 0, 5) }, 1 },
		{ "call helper 6", { INSN(0x85, 0, 0, 0, 6) }, 1 },
		{ "call map_lookup_elem", { INSN(0x85, 0, 0, 0, 1) }, 1 },
		{ "call bpf_trace_printk", { INSN(0x85, 0, 0, 0, 6) }, 1 },
		{ "call local +3", { INSN(0x85, 0, 1, 0, 3) }, 1 },
		{ "call runtime 1234", { INSN(0x85, 0, 2, 0, 1234) }, 1 },
		{ "call %r3", { INSN(0x8d, 3, 0, 0, 0) }, 1 },
		{ "callx %r4", { INSN(0x8d, 4, 0, 0, 0) }, 1 },
		{ "exit", { INSN(0x95, 0, 0, 0, 0) }, 1 },
		{ ".insn 0x123456789abcdef0",
		  { INSN(0xf0, 0xe, 0xd, (int16_t)0x9abc, 0x12345678) },
		  1 },
		{ "exit # trailing comment", { INSN(0x95, 0, 0, 0, 0) }, 1 },
	};

	for (size_t i = 0; i < ARRAY_SIZE(forms); i++)
		check_form(forms[i].line, forms[i].insn, forms[i].cnt);
}

static const struct {
	const char *name;
	uint8_t op;
} alu_ops[] = {
	{ "add", EBPF_ADD }, { "sub", EBPF_SUB }, { "mul", EBPF_MUL }, { "div", EBPF_DIV },
	{ "or", EBPF_OR },   { "and", EBPF_AND }, { "lsh", EBPF_LSH }, { "rsh", EBPF_RSH },
	{ "mod", EBPF_MOD }, { "xor", EBPF_XOR }, { "mov", EBPF_MOV }, { "arsh", EBPF_ARSH },
};

static const struct {
	const char *name;
	uint8_t op;
} jmp_ops[] = {
	{ "jeq", EBPF_JEQ }, { "jgt", EBPF_JGT },   { "jge", EBPF_JGE },   { "jset", EBPF_JSET },
	{ "jne", EBPF_JNE }, { "jsgt", EBPF_JSGT }, { "jsge", EBPF_JSGE }, { "jlt", EBPF_JLT },
	{ "jle", EBPF_JLE }, { "jslt", EBPF_JSLT }, { "jsle", EBPF_JSLE },
};

/* Every ALU and jump mnemonic in all its widths and operand forms. */
Test(asm, forms_every_alu_and_jump, .timeout = 10)
{
	static const char *const widths[] = { "", "64", "32" };
	struct ebpf_insn want;
	char line[64];

	for (size_t i = 0; i < ARRAY_SIZE(alu_ops); i++) {
		for (size_t w = 0; w < ARRAY_SIZE(widths); w++) {
			uint8_t cls = w == 2 ? EBPF_CLS_ALU : EBPF_CLS_ALU64;

			snprintf(line, sizeof(line), "%s%s %%r3, %%r7", alu_ops[i].name, widths[w]);
			want = vt_insn(cls | alu_ops[i].op | EBPF_X, 3, 7, 0, 0);
			check_form(line, &want, 1);
			snprintf(line, sizeof(line), "%s%s r4, -77", alu_ops[i].name, widths[w]);
			want = vt_insn(cls | alu_ops[i].op | EBPF_K, 4, 0, 0, -77);
			check_form(line, &want, 1);
		}
	}
	for (size_t i = 0; i < ARRAY_SIZE(jmp_ops); i++) {
		for (size_t w = 0; w < ARRAY_SIZE(widths); w++) {
			uint8_t cls = w == 2 ? EBPF_CLS_JMP32 : EBPF_CLS_JMP;

			/* "64" is not a jump suffix in the corpus; only plain and 32. */
			if (w == 1)
				continue;
			snprintf(line, sizeof(line), "%s%s %%r2, %%r9, -5", jmp_ops[i].name,
				 widths[w]);
			want = vt_insn(cls | jmp_ops[i].op | EBPF_X, 2, 9, -5, 0);
			check_form(line, &want, 1);
			snprintf(line, sizeof(line), "%s%s %%r2, 0x10, +7", jmp_ops[i].name,
				 widths[w]);
			want = vt_insn(cls | jmp_ops[i].op | EBPF_K, 2, 0, 7, 0x10);
			check_form(line, &want, 1);
		}
	}
}

Test(asm, labels, .timeout = 10)
{
	static const struct ebpf_insn want[] = {
		INSN(0x15, 1, 0, 2, 0), /* jeq %r1, 0, out */
		INSN(0x85, 0, 1, 0, 2), /* call local f */
		INSN(0x06, 0, 0, 0, -3), /* ja32 top */
		INSN(0x05, 0, 0, 2, 0), /* out: ja exit */
		INSN(0x18, 0, 4, 0, -1), /* f: lddw %r0, func(f) */
		INSN(0, 0, 0, 0, 0),	 INSN(0x95, 0, 0, 0, 0), /* exit */
	};
	const char *text = "top: jeq %r1, 0, out\n"
			   "call local f\n"
			   "ja32 top\n"
			   "out: ja exit\n"
			   "f:\n"
			   "lddw %r0, func(f) # a label may be used before or after it is defined\n"
			   "exit\n";

	check_form(text, want, ARRAY_SIZE(want));
}

Test(asm, map_by_fd, .timeout = 10)
{
	static const char *const names[] = { "first", "counts" };
	const struct asm_maps maps = { .names = names, .cnt = 2 };
	char err[ASM_ERRMSG_SIZE];
	struct ebpf_insn *insns;
	size_t cnt;

	cr_assert_eq(asm__assemble("lddw %r1, map_by_fd(counts)\nexit\n", &maps, &insns, &cnt, err),
		     0, "%s", err);
	cr_expect_eq(cnt, 3);
	cr_expect_eq(insns[0].code, EBPF_OP_LDDW);
	cr_expect_eq(insns[0].src, EBPF_PSEUDO_MAP_FD);
	cr_expect_eq(insns[0].imm, 1);
	free(insns);
}

Test(asm, helper_names, .timeout = 10)
{
	cr_expect_eq(asm__helper_id("map_lookup_elem"), 1);
	cr_expect_eq(asm__helper_id("bpf_map_lookup_elem"), 1);
	cr_expect_eq(asm__helper_id("no_such_helper"), -1);
	cr_expect_str_eq(asm__helper_name(1), "map_lookup_elem");
	cr_expect_null(asm__helper_name(-1));
}

/*
 * Disassembles insns and reassembles the text; returns the number of
 * instructions that did not come back bit for bit.
 */
static size_t round_trip(const struct ebpf_insn *insns, size_t cnt)
{
	char err[ASM_ERRMSG_SIZE], *text = NULL;
	struct ebpf_insn *again = NULL;
	size_t len = 0, again_cnt = 0, bad = 0;
	FILE *out;
	int r;

	out = open_memstream(&text, &len);
	cr_assert_not_null(out);
	asm__disassemble(out, insns, cnt);
	fclose(out);
	r = asm__assemble(text, NULL, &again, &again_cnt, err);
	cr_expect_eq(r, 0, "disassembly does not reassemble: %s\n%s", err, text);
	if (r == 0) {
		cr_expect_eq(again_cnt, cnt, "%zu instructions came back as %zu", cnt, again_cnt);
		for (size_t i = 0; i < cnt && i < again_cnt; i++) {
			if (vt_insn_word(&insns[i]) == vt_insn_word(&again[i]))
				continue;
			bad++;
			cr_expect_fail("slot %zu: 0x%016llx came back as 0x%016llx", i,
				       (unsigned long long)vt_insn_word(&insns[i]),
				       (unsigned long long)vt_insn_word(&again[i]));
		}
	}
	free(again);
	free(text);
	return bad;
}

Test(asm, round_trip_program, .timeout = 10)
{
	const char *text = "mov %r0, 0\nmov32 %r1, -5\nadd %r0, %r1\nsdiv %r0, 3\nsmod32 %r0, %r1\n"
			   "neg %r0\nneg32 %r1\nle16 %r0\nbe64 %r1\nbswap32 %r2\n"
			   "movsx864 %r3, %r4\nmovsx1632 %r3, %r4\nmovsx3264 %r3, %r4\n"
			   "lddw %r5, 0xfedcba9876543210\nlddw %r6, map_value(2, 24)\n"
			   "lddw %r6, btf_id(5)\nlddw %r7, map_idx_value(3, 4)\nlddw %r8, func(f)\n"
			   "ldxb %r0, [%r1+1]\nldxsh %r0, [%r1-2]\nldxdw %r0, [%r10-512]\n"
			   "stb [%r10-1], -1\nstxdw [%r1+32767], %r2\n"
			   "lock add [%r10-8], %r1\nlock fetch xor32 [%r10-4], %r1\n"
			   "lock xchg32 [%r10-4], %r1\nlock cmpxchg [%r10-8], %r1\n"
			   "loop:\njeq %r1, 0, f\njsgt32 %r1, %r2, loop\njset %r1, -1, +1\n"
			   "ja32 loop\nja -2\ncall 1\ncall 7\ncall runtime 99\ncall %r5\n"
			   "call local f\n.insn 0x00000000000000ff\n.insn 0x0000000100000087\n"
			   "f:\nexit\n";
	struct ebpf_insn *insns;
	size_t cnt;

	insns = vt_assemble(text, &cnt);
	cr_expect_eq(round_trip(insns, cnt), 0);
	free(insns);
}

/* xorshift64*: a fixed seed makes every run test the same words. */
static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static uint64_t rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

static struct ebpf_insn word_insn(uint64_t w)
{
	return vt_insn((uint8_t)w, (w >> 8) & 0xf, (w >> 12) & 0xf, (int16_t)(uint16_t)(w >> 16),
		       (int32_t)(uint32_t)(w >> 32));
}

/*
 * A random word, with fields often cleared or set to values the encoding
 * gives meaning (swap widths, movsx widths, atomic operations): uniformly
 * random words almost never reach the formatter's valid paths.
 */
static struct ebpf_insn random_insn(void)
{
	static const int16_t offs[] = { 1, 8, 16, 32, -1, 2, 0x7fff, -0x8000 };
	static const int32_t imms[] = {
		16,   32,   64,	  1,	0x01, 0x40, 0x41,      0x50,  0x51,
		0xa0, 0xa1, 0xe1, 0xf1, 0xe0, -1,   INT32_MIN, 0x100, 0x110
	};
	static const uint8_t mem_codes[] = {
		EBPF_OP_LDDW,
		EBPF_CLS_LDX | EBPF_MEM | EBPF_B,
		EBPF_CLS_LDX | EBPF_MEM | EBPF_DW,
		EBPF_CLS_LDX | EBPF_MEMSX | EBPF_H,
		EBPF_CLS_ST | EBPF_MEM | EBPF_W,
		EBPF_CLS_STX | EBPF_MEM | EBPF_H,
		EBPF_CLS_STX | EBPF_ATOMIC | EBPF_W,
		EBPF_CLS_STX | EBPF_ATOMIC | EBPF_DW,
	};
	static const uint8_t op_classes[] = { EBPF_CLS_ALU, EBPF_CLS_ALU64, EBPF_CLS_JMP,
					      EBPF_CLS_JMP32 };
	struct ebpf_insn in = word_insn(rng());
	uint64_t knobs = rng();

	/* A quarter of the words get an ALU or jump opcode, a quarter a memory one. */
	if ((knobs & 0xc0) == 0x40)
		in.code = op_classes[(knobs >> 48) % 4] | (in.code & 0xf8);
	else if ((knobs & 0xc0) == 0x80)
		in.code = mem_codes[(knobs >> 48) % ARRAY_SIZE(mem_codes)];
	if (knobs & 1)
		in.src = 0;
	if (knobs & 2)
		in.dst = (knobs >> 40) % 11;
	if (knobs & 4)
		in.off = 0;
	else if (knobs & 8)
		in.off = offs[(knobs >> 16) % ARRAY_SIZE(offs)];
	if (knobs & 0x10)
		in.imm = 0;
	else if (knobs & 0x20)
		in.imm = imms[(knobs >> 24) % ARRAY_SIZE(imms)];
	return in;
}

Test(asm, round_trip_fuzz, .timeout = 30)
{
	const size_t words = 10000;
	struct ebpf_insn *insns = calloc(words + 1, sizeof(*insns));
	char line[128], err[ASM_ERRMSG_SIZE];
	struct ebpf_insn *again;
	size_t again_cnt, bad = 0, pairs = 0, named = 0;
	int r;

	cr_assert_not_null(insns);
	for (size_t i = 0; i < words; i++) {
		insns[i] = random_insn();
		/* Half the lddw first halves get a well-formed second half. */
		if (insns[i].code == EBPF_OP_LDDW && (rng() & 1) && i + 1 < words) {
			insns[i + 1] = vt_insn(0, 0, 0, 0, (int32_t)rng());
			i++;
		}
	}

	/* One instruction (or lddw pair) at a time, so a failure names its word. */
	for (size_t i = 0; i < words; i++) {
		size_t n;

		asm__format_insn(&insns[i], words - i, line, sizeof(line));
		n = strncmp(line, "lddw", 4) ? 1 : 2;
		pairs += n == 2;
		named += line[0] != '.';
		again = NULL;
		r = asm__assemble(line, NULL, &again, &again_cnt, err);
		if (r < 0 || again_cnt != n || vt_insn_word(&again[0]) != vt_insn_word(&insns[i]) ||
		    (n == 2 && vt_insn_word(&again[1]) != vt_insn_word(&insns[i + 1]))) {
			if (bad++ < 10)
				cr_expect_fail("0x%016llx -> '%s' -> %s 0x%016llx",
					       (unsigned long long)vt_insn_word(&insns[i]), line,
					       r < 0 ? err : "",
					       r < 0 ? 0ull :
						       (unsigned long long)vt_insn_word(&again[0]));
		}
		free(again);
		i += n - 1;
	}
	cr_expect_eq(bad, 0, "%zu of %zu words did not round-trip", bad, words);
	/* The bias above must actually exercise the mnemonics, not only .insn. */
	cr_expect_gt(named, words / 4, "only %zu words disassembled to mnemonics", named);
	cr_expect_gt(pairs, 0);

	/* And the whole stream at once through asm__disassemble(). */
	cr_expect_eq(round_trip(insns, words), 0);
	free(insns);
}

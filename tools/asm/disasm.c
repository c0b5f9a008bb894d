// SPDX-License-Identifier: MIT
/*
 * Disassembler: the inverse of asm.c. An instruction is printed as a mnemonic
 * only when assembling that text gives back the very same bits; anything else
 * (reserved fields set, unknown opcodes) is printed as ".insn 0x<word>".
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "asm.h"

static const char *const alu_names[16] = {
	"add", "sub", "mul", "div", "or", "and", "lsh", "rsh",
	"neg", "mod", "xor", "mov", "arsh", NULL, NULL, NULL,
};

static const char *const jmp_names[16] = {
	"ja",  "jeq",  "jgt",  "jge",  "jset", "jne",  "jsgt", "jsge",
	NULL, NULL, "jlt", "jle", "jslt", "jsle", NULL, NULL,
};

static const char *const size_names[4] = { "w", "h", "b", "dw" };

static uint64_t insn_word(const struct ebpf_insn *in)
{
	return in->code | (uint64_t)in->dst << 8 | (uint64_t)in->src << 12 |
	       (uint64_t)(uint16_t)in->off << 16 | (uint64_t)(uint32_t)in->imm << 32;
}

static void raw(const struct ebpf_insn *in, char *buf, size_t size)
{
	snprintf(buf, size, ".insn 0x%016" PRIx64, insn_word(in));
}

static void mem_operand(char *buf, size_t size, unsigned int reg, int16_t off)
{
	if (off)
		snprintf(buf, size, "[%%r%u%+d]", reg, off);
	else
		snprintf(buf, size, "[%%r%u]", reg);
}

static bool format_alu(const struct ebpf_insn *in, char *buf, size_t size)
{
	bool is32 = EBPF_CLASS(in->code) == EBPF_CLS_ALU;
	bool reg = EBPF_SRC(in->code) == EBPF_X;
	const char *w = is32 ? "32" : "";
	uint8_t opi = EBPF_OP(in->code) >> 4;
	const char *name = alu_names[opi];

	if (EBPF_OP(in->code) == EBPF_END) {
		if (in->src || in->off || (in->imm != 16 && in->imm != 32 && in->imm != 64) ||
		    (!is32 && reg))
			return false;
		snprintf(buf, size, "%s%d %%r%u", !is32 ? "bswap" : reg ? "be" : "le", in->imm,
			 in->dst);
		return true;
	}
	if (EBPF_OP(in->code) == EBPF_NEG) {
		if (reg || in->src || in->off || in->imm)
			return false;
		snprintf(buf, size, "neg%s %%r%u", w, in->dst);
		return true;
	}
	if (!name)
		return false;
	if (EBPF_OP(in->code) == EBPF_MOV && reg && in->off) {
		if (in->imm || (in->off != 8 && in->off != 16 && !(in->off == 32 && !is32)))
			return false;
		snprintf(buf, size, "movsx%d%s %%r%u, %%r%u", in->off, is32 ? "32" : "64", in->dst,
			 in->src);
		return true;
	}
	if (in->off == 1 && (EBPF_OP(in->code) == EBPF_DIV || EBPF_OP(in->code) == EBPF_MOD))
		name = EBPF_OP(in->code) == EBPF_DIV ? "sdiv" : "smod";
	else if (in->off)
		return false;
	if (reg && !in->imm)
		snprintf(buf, size, "%s%s %%r%u, %%r%u", name, w, in->dst, in->src);
	else if (!reg && !in->src)
		snprintf(buf, size, "%s%s %%r%u, %d", name, w, in->dst, in->imm);
	else
		return false;
	return true;
}

static bool format_lddw(const struct ebpf_insn *in, size_t avail, char *buf, size_t size)
{
	static const char *const pseudo[] = {
		NULL, "map_fd", "map_value", "btf_id", "func", "map_idx", "map_idx_value",
	};
	const struct ebpf_insn *next = in + 1;
	bool two_args = in->src == EBPF_PSEUDO_MAP_VALUE || in->src == EBPF_PSEUDO_MAP_IDX_VALUE;

	if (in->code != EBPF_OP_LDDW || avail < 2 || in->off || next->code || next->dst ||
	    next->src || next->off || in->src > EBPF_PSEUDO_MAP_IDX_VALUE)
		return false;
	if (in->src == EBPF_PSEUDO_IMM64)
		snprintf(buf, size, "lddw %%r%u, 0x%" PRIx64, in->dst,
			 (uint64_t)(uint32_t)in->imm | (uint64_t)(uint32_t)next->imm << 32);
	else if (two_args)
		snprintf(buf, size, "lddw %%r%u, %s(%d, %d)", in->dst, pseudo[in->src], in->imm,
			 next->imm);
	else if (next->imm)
		return false;
	else if (in->src == EBPF_PSEUDO_FUNC)
		snprintf(buf, size, "lddw %%r%u, func(%+d)", in->dst, in->imm);
	else
		snprintf(buf, size, "lddw %%r%u, %s(%d)", in->dst, pseudo[in->src], in->imm);
	return true;
}

static bool format_atomic(const struct ebpf_insn *in, char *buf, size_t size)
{
	static const struct {
		int32_t imm;
		const char *name;
	} ops[] = {
		{ EBPF_ADD, "add" },   { EBPF_OR, "or" },		{ EBPF_AND, "and" },
		{ EBPF_XOR, "xor" },   { EBPF_XCHG, "xchg" },		{ EBPF_CMPXCHG, "cmpxchg" },
		{ EBPF_ADD | EBPF_FETCH, "fetch add" },			{ EBPF_OR | EBPF_FETCH, "fetch or" },
		{ EBPF_AND | EBPF_FETCH, "fetch and" },			{ EBPF_XOR | EBPF_FETCH, "fetch xor" },
	};
	char mem[32];

	if (EBPF_SIZE(in->code) != EBPF_W && EBPF_SIZE(in->code) != EBPF_DW)
		return false;
	mem_operand(mem, sizeof(mem), in->dst, in->off);
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		if (ops[i].imm != in->imm)
			continue;
		snprintf(buf, size, "lock %s%s %s, %%r%u", ops[i].name,
			 EBPF_SIZE(in->code) == EBPF_W ? "32" : "", mem, in->src);
		return true;
	}
	return false;
}

static bool format_mem(const struct ebpf_insn *in, char *buf, size_t size)
{
	const char *sz = size_names[EBPF_SIZE(in->code) >> 3];
	uint8_t mode = EBPF_MODE(in->code);
	char mem[32];

	switch (EBPF_CLASS(in->code)) {
	case EBPF_CLS_LDX:
		if (in->imm || (mode != EBPF_MEM && !(mode == EBPF_MEMSX &&
						      EBPF_SIZE(in->code) != EBPF_DW)))
			return false;
		mem_operand(mem, sizeof(mem), in->src, in->off);
		snprintf(buf, size, "ldx%s%s %%r%u, %s", mode == EBPF_MEMSX ? "s" : "", sz, in->dst,
			 mem);
		return true;
	case EBPF_CLS_ST:
		if (mode != EBPF_MEM || in->src)
			return false;
		mem_operand(mem, sizeof(mem), in->dst, in->off);
		snprintf(buf, size, "st%s %s, %d", sz, mem, in->imm);
		return true;
	default:
		if (mode == EBPF_ATOMIC)
			return format_atomic(in, buf, size);
		if (mode != EBPF_MEM || in->imm)
			return false;
		mem_operand(mem, sizeof(mem), in->dst, in->off);
		snprintf(buf, size, "stx%s %s, %%r%u", sz, mem, in->src);
		return true;
	}
}

static bool format_jmp(const struct ebpf_insn *in, char *buf, size_t size)
{
	bool is32 = EBPF_CLASS(in->code) == EBPF_CLS_JMP32;
	bool reg = EBPF_SRC(in->code) == EBPF_X;
	uint8_t op = EBPF_OP(in->code);
	const char *w = is32 ? "32" : "";
	const char *helper;

	if (op == EBPF_JA) {
		if (reg || in->dst || in->src || (is32 ? in->off : in->imm))
			return false;
		snprintf(buf, size, "ja%s %+d", w, is32 ? in->imm : in->off);
		return true;
	}
	if (!is32 && op == EBPF_EXIT) {
		if (reg || in->dst || in->src || in->off || in->imm)
			return false;
		snprintf(buf, size, "exit");
		return true;
	}
	if (!is32 && op == EBPF_CALL) {
		if (reg) {
			if (in->src || in->off || in->imm)
				return false;
			snprintf(buf, size, "call %%r%u", in->dst);
			return true;
		}
		if (in->dst || in->off)
			return false;
		helper = asm__helper_name(in->imm);
		if (in->src == EBPF_PSEUDO_CALL_LOCAL)
			snprintf(buf, size, "call local %+d", in->imm);
		else if (in->src == EBPF_PSEUDO_CALL_KFUNC)
			snprintf(buf, size, "call runtime %d", in->imm);
		else if (in->src == EBPF_PSEUDO_CALL_HELPER && helper)
			snprintf(buf, size, "call %d # bpf_%s", in->imm, helper);
		else if (in->src == EBPF_PSEUDO_CALL_HELPER)
			snprintf(buf, size, "call %d", in->imm);
		else
			return false;
		return true;
	}
	if (!jmp_names[op >> 4] || op == EBPF_JA)
		return false;
	if (reg && !in->imm)
		snprintf(buf, size, "%s%s %%r%u, %%r%u, %+d", jmp_names[op >> 4], w, in->dst,
			 in->src, in->off);
	else if (!reg && !in->src)
		snprintf(buf, size, "%s%s %%r%u, %d, %+d", jmp_names[op >> 4], w, in->dst, in->imm,
			 in->off);
	else
		return false;
	return true;
}

void asm__format_insn(const struct ebpf_insn *in, size_t avail, char *buf, size_t size)
{
	bool ok;

	switch (EBPF_CLASS(in->code)) {
	case EBPF_CLS_ALU:
	case EBPF_CLS_ALU64:
		ok = format_alu(in, buf, size);
		break;
	case EBPF_CLS_LD:
		ok = format_lddw(in, avail, buf, size);
		break;
	case EBPF_CLS_LDX:
	case EBPF_CLS_ST:
	case EBPF_CLS_STX:
		ok = format_mem(in, buf, size);
		break;
	default:
		ok = format_jmp(in, buf, size);
		break;
	}
	if (!ok)
		raw(in, buf, size);
}

void asm__disassemble(FILE *out, const struct ebpf_insn *insns, size_t insn_cnt)
{
	char line[128];

	for (size_t pc = 0; pc < insn_cnt; pc++) {
		asm__format_insn(&insns[pc], insn_cnt - pc, line, sizeof(line));
		fprintf(out, "%s\n", line);
		if (!strncmp(line, "lddw", 4))
			pc++;
	}
}

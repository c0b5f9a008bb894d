// SPDX-License-Identifier: MIT
/*
 * Load-time validation and pre-decoding. Every instruction is checked against
 * the encoding rules of RFC 9669 (reserved fields zero, registers in range, r10
 * read-only, stack offsets inside the frame, jump and call targets on an
 * instruction boundary) and turned into one struct vm_op whose kind selects the
 * interpreter's handler. A program that passes cannot make the interpreter
 * misbehave on its own account.
 */
#include <errno.h>
#include <stdlib.h>

#include "vm-private.h"

struct decoder {
	struct vm *vm;
	const struct ebpf_insn *insns;
	uint32_t cnt;
	struct vm_op *ops;
	/* Slots holding the second half of an lddw: not a valid target. */
	uint8_t *lddw_tail;
};

/* pc + 1 + rel as an instruction index; -1 (outside any program) on overflow. */
static int32_t rel_target(uint32_t pc, int64_t rel)
{
	int64_t t = (int64_t)pc + 1 + rel;

	return t >= 0 && t <= INT32_MAX ? (int32_t)t : -1;
}

#define insn_error(d, pc, err, fmt, ...) vm_error((d)->vm, err, "insn %u: " fmt, pc, ##__VA_ARGS__)

static int bad_fields(struct decoder *d, uint32_t pc, const char *what)
{
	return insn_error(d, pc, EINVAL, "reserved field %s is not zero (opcode 0x%02x)", what,
			  d->insns[pc].code);
}

static int check_regs(struct decoder *d, uint32_t pc, bool writes_dst)
{
	const struct ebpf_insn *in = &d->insns[pc];

	if (in->dst >= EBPF_NR_REGS)
		return insn_error(d, pc, EINVAL, "bad destination register r%u", in->dst);
	if (in->src >= EBPF_NR_REGS)
		return insn_error(d, pc, EINVAL, "bad source register r%u", in->src);
	if (writes_dst && in->dst == EBPF_REG_FP)
		return insn_error(d, pc, EINVAL, "write to read-only frame pointer r10");
	return 0;
}

static const uint8_t alu_kind[2][16][2] = {
#define ALU_ROW(W)                                                                                 \
	{                                                                                          \
		[EBPF_ADD >> 4] = { VM_OP_ADD##W##_IMM, VM_OP_ADD##W##_REG },                      \
		[EBPF_SUB >> 4] = { VM_OP_SUB##W##_IMM, VM_OP_SUB##W##_REG },                      \
		[EBPF_MUL >> 4] = { VM_OP_MUL##W##_IMM, VM_OP_MUL##W##_REG },                      \
		[EBPF_DIV >> 4] = { VM_OP_DIV##W##_IMM, VM_OP_DIV##W##_REG },                      \
		[EBPF_OR >> 4] = { VM_OP_OR##W##_IMM, VM_OP_OR##W##_REG },                         \
		[EBPF_AND >> 4] = { VM_OP_AND##W##_IMM, VM_OP_AND##W##_REG },                      \
		[EBPF_LSH >> 4] = { VM_OP_LSH##W##_IMM, VM_OP_LSH##W##_REG },                      \
		[EBPF_RSH >> 4] = { VM_OP_RSH##W##_IMM, VM_OP_RSH##W##_REG },                      \
		[EBPF_MOD >> 4] = { VM_OP_MOD##W##_IMM, VM_OP_MOD##W##_REG },                      \
		[EBPF_XOR >> 4] = { VM_OP_XOR##W##_IMM, VM_OP_XOR##W##_REG },                      \
		[EBPF_MOV >> 4] = { VM_OP_MOV_IMM, VM_OP_MOV##W##_REG },                           \
		[EBPF_ARSH >> 4] = { VM_OP_ARSH##W##_IMM, VM_OP_ARSH##W##_REG },                   \
	}
	ALU_ROW(32),
	ALU_ROW(64),
#undef ALU_ROW
};

static int decode_alu(struct decoder *d, uint32_t pc)
{
	const struct ebpf_insn *in = &d->insns[pc];
	struct vm_op *op = &d->ops[pc];
	bool is64 = EBPF_CLASS(in->code) == EBPF_CLS_ALU64;
	bool reg = EBPF_SRC(in->code) == EBPF_X;
	uint8_t opc = EBPF_OP(in->code);
	int r;

	r = check_regs(d, pc, true);
	if (r < 0)
		return r;

	if (opc == EBPF_NEG) {
		if (reg || in->src || in->off || in->imm)
			return bad_fields(d, pc, "of neg (src, off, imm)");
		op->kind = is64 ? VM_OP_NEG64 : VM_OP_NEG32;
		return 0;
	}

	if (opc == EBPF_END) {
		static const uint8_t end_kind[3][3] = {
			{ VM_OP_LE16, VM_OP_LE32, VM_OP_LE64 },
			{ VM_OP_BE16, VM_OP_BE32, VM_OP_BE64 },
			{ VM_OP_BSWAP16, VM_OP_BSWAP32, VM_OP_BSWAP64 },
		};
		int width = in->imm == 16 ? 0 : in->imm == 32 ? 1 : in->imm == 64 ? 2 : -1;
		int row = is64 ? 2 : reg ? 1 : 0;

		if (is64 && reg)
			return insn_error(d, pc, EINVAL, "unknown opcode 0x%02x", in->code);
		if (width < 0)
			return insn_error(d, pc, EINVAL, "byte swap width %d is not 16, 32 or 64",
					  in->imm);
		if (in->src || in->off)
			return bad_fields(d, pc, "of byte swap (src, off)");
		op->kind = end_kind[row][width];
		return 0;
	}

	if (opc == EBPF_MOV && reg && in->off) {
		if (in->imm)
			return bad_fields(d, pc, "imm");
		switch (in->off) {
		case 8:
			op->kind = is64 ? VM_OP_MOVSX8_64 : VM_OP_MOVSX8_32;
			return 0;
		case 16:
			op->kind = is64 ? VM_OP_MOVSX16_64 : VM_OP_MOVSX16_32;
			return 0;
		case 32:
			if (is64) {
				op->kind = VM_OP_MOVSX32_64;
				return 0;
			}
			break;
		}
		return insn_error(d, pc, EINVAL, "movsx width %d is not valid", in->off);
	}

	if (opc > EBPF_ARSH)
		return insn_error(d, pc, EINVAL, "unknown opcode 0x%02x", in->code);

	op->kind = alu_kind[is64][opc >> 4][reg];
	if (in->off) {
		/* Offset 1 selects the signed form of div and mod (ISA v4). */
		if (in->off != 1 || (opc != EBPF_DIV && opc != EBPF_MOD))
			return bad_fields(d, pc, "off");
		op->kind += opc == EBPF_DIV ? VM_OP_SDIV64_IMM - VM_OP_DIV64_IMM
					    : VM_OP_SMOD64_IMM - VM_OP_MOD64_IMM;
	}
	if (reg && in->imm)
		return bad_fields(d, pc, "imm");
	if (!reg && in->src)
		return bad_fields(d, pc, "src");
	op->imm = is64 ? (uint64_t)(int64_t)in->imm : (uint32_t)in->imm;
	return 0;
}

static int size_index(uint8_t code)
{
	switch (EBPF_SIZE(code)) {
	case EBPF_B:
		return 0;
	case EBPF_H:
		return 1;
	case EBPF_W:
		return 2;
	default:
		return 3;
	}
}

/* Accesses through r10 have a constant address: keep them inside the frame. */
static int check_stack_off(struct decoder *d, uint32_t pc, unsigned int base, int size)
{
	int off = d->insns[pc].off;

	if (base == EBPF_REG_FP && (off < -EBPF_STACK_SIZE || off + size > 0))
		return insn_error(d, pc, EACCES,
				  "stack access [r10%+d] of %d bytes is outside the %d-byte frame",
				  off, size, EBPF_STACK_SIZE);
	return 0;
}

static int decode_atomic(struct decoder *d, uint32_t pc)
{
	static const uint8_t rmw[2][4] = {
		{ VM_OP_ATOMIC32_ADD, VM_OP_ATOMIC32_OR, VM_OP_ATOMIC32_AND, VM_OP_ATOMIC32_XOR },
		{ VM_OP_ATOMIC64_ADD, VM_OP_ATOMIC64_OR, VM_OP_ATOMIC64_AND, VM_OP_ATOMIC64_XOR },
	};
	const struct ebpf_insn *in = &d->insns[pc];
	struct vm_op *op = &d->ops[pc];
	int size = 1 << size_index(in->code);
	bool is64 = size == 8;
	int r;

	if (in->imm == EBPF_LOAD_ACQ || in->imm == EBPF_STORE_REL) {
		bool load = in->imm == EBPF_LOAD_ACQ;

		r = check_regs(d, pc, load);
		if (r < 0)
			return r;
		op->kind = (load ? VM_OP_LOAD_ACQ_B : VM_OP_STORE_REL_B) +
			   size_index(in->code) * (VM_OP_LDX_H - VM_OP_LDX_B);
		return check_stack_off(d, pc, load ? in->src : in->dst, size);
	}

	if (size < 4)
		return insn_error(d, pc, EINVAL, "atomic operation 0x%x needs a 32 or 64-bit size",
				  in->imm);
	r = check_regs(d, pc, false);
	if (r < 0)
		return r;
	if (in->imm == EBPF_CMPXCHG)
		op->kind = is64 ? VM_OP_ATOMIC64_CMPXCHG : VM_OP_ATOMIC32_CMPXCHG;
	else if (in->imm == EBPF_XCHG)
		op->kind = is64 ? VM_OP_ATOMIC64_XCHG : VM_OP_ATOMIC32_XCHG;
	else {
		int which;

		switch (in->imm & ~EBPF_FETCH) {
		case EBPF_ADD:
			which = 0;
			break;
		case EBPF_OR:
			which = 1;
			break;
		case EBPF_AND:
			which = 2;
			break;
		case EBPF_XOR:
			which = 3;
			break;
		default:
			return insn_error(d, pc, EINVAL, "unknown atomic operation 0x%x", in->imm);
		}
		op->kind = rmw[is64][which];
		if (in->imm & EBPF_FETCH)
			op->kind += VM_OP_ATOMIC32_FETCH_ADD - VM_OP_ATOMIC32_ADD;
	}
	return check_stack_off(d, pc, in->dst, size);
}

static int decode_mem(struct decoder *d, uint32_t pc)
{
	const struct ebpf_insn *in = &d->insns[pc];
	struct vm_op *op = &d->ops[pc];
	uint8_t cls = EBPF_CLASS(in->code), mode = EBPF_MODE(in->code);
	int sz = size_index(in->code);
	int r;

	if (cls == EBPF_CLS_STX && mode == EBPF_ATOMIC)
		return decode_atomic(d, pc);

	r = check_regs(d, pc, cls == EBPF_CLS_LDX);
	if (r < 0)
		return r;

	switch (cls) {
	case EBPF_CLS_LDX:
		if (mode == EBPF_MEMSX && sz < 3)
			op->kind = VM_OP_LDXS_B + sz;
		else if (mode == EBPF_MEM)
			op->kind = VM_OP_LDX_B + sz * (VM_OP_LDX_H - VM_OP_LDX_B);
		else
			return insn_error(d, pc, EINVAL, "unknown opcode 0x%02x", in->code);
		if (in->imm)
			return bad_fields(d, pc, "imm");
		return check_stack_off(d, pc, in->src, 1 << sz);
	case EBPF_CLS_ST:
		if (mode != EBPF_MEM)
			return insn_error(d, pc, EINVAL, "unknown opcode 0x%02x", in->code);
		if (in->src)
			return bad_fields(d, pc, "src");
		op->kind = VM_OP_ST_B + sz * (VM_OP_LDX_H - VM_OP_LDX_B);
		op->imm = (uint64_t)(int64_t)in->imm;
		return check_stack_off(d, pc, in->dst, 1 << sz);
	default:
		if (mode != EBPF_MEM)
			return insn_error(d, pc, EINVAL, "unknown opcode 0x%02x", in->code);
		if (in->imm)
			return bad_fields(d, pc, "imm");
		op->kind = VM_OP_STX_B + sz * (VM_OP_LDX_H - VM_OP_LDX_B);
		return check_stack_off(d, pc, in->dst, 1 << sz);
	}
}

static int decode_lddw(struct decoder *d, uint32_t pc)
{
	const struct ebpf_insn *in = &d->insns[pc];
	struct vm_op *op = &d->ops[pc];
	const struct ebpf_insn *next;
	int r;

	if (in->code != EBPF_OP_LDDW) {
		if (EBPF_MODE(in->code) == EBPF_ABS || EBPF_MODE(in->code) == EBPF_IND)
			return insn_error(d, pc, ENOTSUP,
					  "legacy packet access (opcode 0x%02x) is not supported",
					  in->code);
		return insn_error(d, pc, EINVAL, "unknown opcode 0x%02x", in->code);
	}
	if (pc + 1 >= d->cnt)
		return insn_error(d, pc, EINVAL, "lddw is missing its second half");
	r = check_regs(d, pc, true);
	if (r < 0)
		return r;
	next = &d->insns[pc + 1];
	if (in->off || next->code || next->dst || next->src || next->off)
		return bad_fields(d, pc, "of lddw");
	d->lddw_tail[pc + 1] = 1;

	switch (in->src) {
	case EBPF_PSEUDO_IMM64:
		op->imm = (uint32_t)in->imm | (uint64_t)(uint32_t)next->imm << 32;
		break;
	case EBPF_PSEUDO_FUNC:
		if (next->imm)
			return bad_fields(d, pc, "of lddw function");
		op->off = rel_target(pc, in->imm);
		op->imm = (uint64_t)(int64_t)op->off;
		break;
	case EBPF_PSEUDO_MAP_FD:
	case EBPF_PSEUDO_MAP_VALUE:
	case EBPF_PSEUDO_BTF_ID:
	case EBPF_PSEUDO_MAP_IDX:
	case EBPF_PSEUDO_MAP_IDX_VALUE:
		if (!d->vm->lddw_fn)
			return insn_error(d, pc, ENOTSUP,
					  "lddw with src %u needs a relocation callback", in->src);
		r = d->vm->lddw_fn(d->vm->lddw_user, in->src, in->imm, next->imm, &op->imm);
		if (r < 0)
			return insn_error(d, pc, -r, "cannot resolve lddw src %u imm %d: error %d",
					  in->src, in->imm, r);
		break;
	default:
		return insn_error(d, pc, EINVAL, "lddw src %u is not a known pseudo form", in->src);
	}
	op->kind = VM_OP_LDDW;
	return 0;
}

static const uint8_t jmp_kind[2][16][2] = {
#define JMP_ROW(W)                                                                                 \
	{                                                                                          \
		[EBPF_JEQ >> 4] = { VM_OP_JEQ##W##_IMM, VM_OP_JEQ##W##_REG },                      \
		[EBPF_JGT >> 4] = { VM_OP_JGT##W##_IMM, VM_OP_JGT##W##_REG },                      \
		[EBPF_JGE >> 4] = { VM_OP_JGE##W##_IMM, VM_OP_JGE##W##_REG },                      \
		[EBPF_JSET >> 4] = { VM_OP_JSET##W##_IMM, VM_OP_JSET##W##_REG },                   \
		[EBPF_JNE >> 4] = { VM_OP_JNE##W##_IMM, VM_OP_JNE##W##_REG },                      \
		[EBPF_JSGT >> 4] = { VM_OP_JSGT##W##_IMM, VM_OP_JSGT##W##_REG },                   \
		[EBPF_JSGE >> 4] = { VM_OP_JSGE##W##_IMM, VM_OP_JSGE##W##_REG },                   \
		[EBPF_JLT >> 4] = { VM_OP_JLT##W##_IMM, VM_OP_JLT##W##_REG },                      \
		[EBPF_JLE >> 4] = { VM_OP_JLE##W##_IMM, VM_OP_JLE##W##_REG },                      \
		[EBPF_JSLT >> 4] = { VM_OP_JSLT##W##_IMM, VM_OP_JSLT##W##_REG },                   \
		[EBPF_JSLE >> 4] = { VM_OP_JSLE##W##_IMM, VM_OP_JSLE##W##_REG },                   \
	}
	JMP_ROW(32),
	JMP_ROW(64),
#undef JMP_ROW
};

static int decode_call(struct decoder *d, uint32_t pc)
{
	const struct ebpf_insn *in = &d->insns[pc];
	struct vm_op *op = &d->ops[pc];

	if (EBPF_SRC(in->code) == EBPF_X) {
		/* callx: the helper id is in a register, looked up at run time. */
		if (in->dst >= EBPF_NR_REGS)
			return insn_error(d, pc, EINVAL, "bad register r%u", in->dst);
		if (in->src || in->off || in->imm)
			return bad_fields(d, pc, "of callx (src, off, imm)");
		op->kind = VM_OP_CALLX;
		return 0;
	}
	if (in->dst || in->off)
		return bad_fields(d, pc, "of call (dst, off)");
	switch (in->src) {
	case EBPF_PSEUDO_CALL_HELPER:
		if (in->imm < 0 || in->imm > VM_MAX_HELPER_ID || !d->vm->helpers[in->imm].fn)
			return insn_error(d, pc, ENOENT, "call to unregistered helper %d", in->imm);
		op->kind = VM_OP_CALL_HELPER;
		op->imm = (uint32_t)in->imm;
		return 0;
	case EBPF_PSEUDO_CALL_LOCAL:
		op->kind = VM_OP_CALL_LOCAL;
		op->off = rel_target(pc, in->imm);
		return 0;
	case EBPF_PSEUDO_CALL_KFUNC:
		return insn_error(d, pc, ENOTSUP, "kfunc call (btf id %d) is not supported",
				  in->imm);
	default:
		return insn_error(d, pc, EINVAL, "call src %u is not a known call kind", in->src);
	}
}

static int decode_jmp(struct decoder *d, uint32_t pc)
{
	const struct ebpf_insn *in = &d->insns[pc];
	struct vm_op *op = &d->ops[pc];
	bool is32 = EBPF_CLASS(in->code) == EBPF_CLS_JMP32;
	bool reg = EBPF_SRC(in->code) == EBPF_X;
	uint8_t opc = EBPF_OP(in->code);
	int r;

	switch (opc) {
	case EBPF_JA:
		if (reg || in->dst || in->src || (is32 ? in->off : in->imm))
			return bad_fields(d, pc, "of ja");
		op->kind = VM_OP_JA;
		op->off = rel_target(pc, is32 ? in->imm : in->off);
		return 0;
	case EBPF_CALL:
		if (is32)
			break;
		return decode_call(d, pc);
	case EBPF_EXIT:
		if (is32)
			break;
		if (reg || in->dst || in->src || in->off || in->imm)
			return bad_fields(d, pc, "of exit");
		op->kind = VM_OP_EXIT;
		return 0;
	}
	if (opc > EBPF_JSLE || !jmp_kind[!is32][opc >> 4][0])
		return insn_error(d, pc, EINVAL, "unknown opcode 0x%02x", in->code);
	r = check_regs(d, pc, false);
	if (r < 0)
		return r;
	if (reg && in->imm)
		return bad_fields(d, pc, "imm");
	if (!reg && in->src)
		return bad_fields(d, pc, "src");
	op->kind = jmp_kind[!is32][opc >> 4][reg];
	op->off = rel_target(pc, in->off);
	op->imm = is32 ? (uint32_t)in->imm : (uint64_t)(int64_t)in->imm;
	return 0;
}

static bool has_target(uint8_t kind)
{
	return (kind >= VM_OP_JA && kind <= VM_OP_JSLE32_REG) || kind == VM_OP_CALL_LOCAL;
}

static int check_targets(struct decoder *d)
{
	for (uint32_t pc = 0; pc < d->cnt; pc++) {
		const struct vm_op *op = &d->ops[pc];
		bool func = op->kind == VM_OP_LDDW && d->insns[pc].src == EBPF_PSEUDO_FUNC;
		const char *what = op->kind == VM_OP_CALL_LOCAL ? "call" : func ? "function" : "jump";

		if (!has_target(op->kind) && !func)
			continue;
		if (op->off < 0 || (uint32_t)op->off >= d->cnt)
			return insn_error(d, pc, EINVAL, "%s target %d is outside the program", what,
					  op->off);
		if (d->lddw_tail[op->off])
			return insn_error(d, pc, EINVAL, "%s target %d is the middle of an lddw",
					  what, op->off);
	}
	return 0;
}

int vm_decode(struct vm *vm, const struct ebpf_insn *insns, uint32_t cnt, struct vm_op *ops)
{
	struct decoder d = { .vm = vm, .insns = insns, .cnt = cnt, .ops = ops };
	uint32_t last;
	int r = 0;

	d.lddw_tail = calloc(cnt, 1);
	if (!d.lddw_tail)
		return vm_error(vm, ENOMEM, "out of memory decoding %u instructions", cnt);

	for (uint32_t pc = 0; pc < cnt && r == 0; pc++) {
		ops[pc] = (struct vm_op){ .kind = VM_OP_INVALID, .dst = insns[pc].dst,
					  .src = insns[pc].src };
		if (d.lddw_tail[pc])
			continue;
		switch (EBPF_CLASS(insns[pc].code)) {
		case EBPF_CLS_ALU:
		case EBPF_CLS_ALU64:
			r = decode_alu(&d, pc);
			break;
		case EBPF_CLS_LD:
			r = decode_lddw(&d, pc);
			break;
		case EBPF_CLS_LDX:
		case EBPF_CLS_ST:
		case EBPF_CLS_STX:
			r = decode_mem(&d, pc);
			if (r == 0)
				ops[pc].off = insns[pc].off;
			break;
		default:
			r = decode_jmp(&d, pc);
			break;
		}
	}
	if (r == 0)
		r = check_targets(&d);
	if (r == 0) {
		last = d.lddw_tail[cnt - 1] ? cnt - 2 : cnt - 1;
		if (ops[last].kind != VM_OP_EXIT && ops[last].kind != VM_OP_JA)
			r = insn_error(&d, last, EINVAL,
				       "execution can fall off the end of the program");
	}
	free(d.lddw_tail);
	return r;
}

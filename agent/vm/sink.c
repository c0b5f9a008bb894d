// SPDX-License-Identifier: MIT
/*
 * Moves the JIT delays past a conditional jump (vm-private.h): register
 * liveness over the whole program, then, for each register move followed
 * by a conditional jump with only unrelated instructions between, whether
 * the register is dead where the jump goes. If so the move is done only on
 * the fall-through path, after the jump: clang's BPF sets a loop's result
 * register before the loop's own back edge, each time round.
 *
 * Liveness is an over-approximation, which is what makes the move safe: a
 * register counts as read by every helper call (r1-r5), every call of a
 * function and every exit (all of r0-r9: in this VM a function finds its
 * caller's registers as they are, and its caller finds its own) and every
 * atomic (r0 and its operands), and as written only where it surely is (a
 * helper call: r0).
 */
#include <errno.h>
#include <stdlib.h>

#include "vm-private.h"

#define R(n) ((uint16_t)(1u << (n)))
#define ARGS (R(1) | R(2) | R(3) | R(4) | R(5))
#define ALL ((uint16_t)(R(EBPF_REG_FP) - 1)) /* r0-r9 */
/* How many instructions a move may be carried over to reach its jump. */
#define SINK_SCAN 8

static bool is_cond_jump(uint8_t kind)
{
	return kind > VM_OP_JA && kind <= VM_OP_JSLE32_REG;
}

/* The registers an instruction reads and those it surely writes. */
static void use_def(const struct vm *vm, uint32_t pc, uint16_t *use, uint16_t *def)
{
	const struct ebpf_insn *in = &vm->insns[pc];
	const struct vm_op *op = &vm->ops[pc];
	uint16_t d = R(in->dst), s = EBPF_SRC(in->code) == EBPF_X ? R(in->src) : 0;

	*use = *def = 0;
	if (op->kind == VM_OP_INVALID)
		return;
	switch (EBPF_CLASS(in->code)) {
	case EBPF_CLS_ALU:
	case EBPF_CLS_ALU64:
		if (EBPF_OP(in->code) == EBPF_MOV)
			*use = s;
		else if (EBPF_OP(in->code) == EBPF_NEG || EBPF_OP(in->code) == EBPF_END)
			*use = d;
		else
			*use = d | s;
		*def = d;
		return;
	case EBPF_CLS_LD:
		*def = d;
		return;
	case EBPF_CLS_LDX:
		*use = R(in->src);
		*def = d;
		return;
	case EBPF_CLS_ST:
		*use = d;
		return;
	case EBPF_CLS_STX:
		*use = d | R(in->src) | (EBPF_MODE(in->code) == EBPF_ATOMIC ? R(0) : 0);
		return;
	default:
		break;
	}
	switch (op->kind) {
	case VM_OP_JA:
		return;
	case VM_OP_EXIT:
		/* A function's caller finds every register as it left them. */
		*use = ALL;
		return;
	case VM_OP_CALL_HELPER:
		*use = ARGS;
		*def = R(0);
		return;
	case VM_OP_CALL_LOCAL:
	case VM_OP_CALLX:
		/* A function finds every register as its caller left it. */
		*use = ALL;
		return;
	default:
		*use = d | s;
		return;
	}
}

static unsigned int successors(const struct vm *vm, uint32_t pc, uint32_t succ[2])
{
	const struct vm_op *op = &vm->ops[pc];
	uint32_t next = pc + (op->kind == VM_OP_LDDW ? 2 : 1);
	unsigned int n = 0;

	if (op->kind == VM_OP_INVALID || op->kind == VM_OP_EXIT)
		return 0;
	if (op->kind == VM_OP_JA || is_cond_jump(op->kind))
		succ[n++] = (uint32_t)op->off;
	if (op->kind != VM_OP_JA && next < vm->insn_cnt)
		succ[n++] = next;
	return n;
}

/* live[pc]: the registers read before written on some path from pc. */
static uint16_t *liveness(const struct vm *vm)
{
	uint16_t *live = calloc(vm->insn_cnt, sizeof(*live));
	bool changed = true;

	while (live && changed) {
		changed = false;
		for (uint32_t pc = vm->insn_cnt; pc-- > 0;) {
			uint32_t succ[2];
			unsigned int n = successors(vm, pc, succ);
			uint16_t out = 0, use, def, in;

			for (unsigned int i = 0; i < n; i++)
				out |= live[succ[i]];
			use_def(vm, pc, &use, &def);
			in = (uint16_t)(use | (out & ~def));
			if (in != live[pc]) {
				live[pc] = in;
				changed = true;
			}
		}
	}
	return live;
}

static bool is_move(const struct ebpf_insn *in)
{
	return (EBPF_CLASS(in->code) == EBPF_CLS_ALU || EBPF_CLASS(in->code) == EBPF_CLS_ALU64) &&
	       EBPF_OP(in->code) == EBPF_MOV && !in->off && in->dst != EBPF_REG_FP;
}

/* What a move may be carried over: no jump, call, atomic or lddw. */
static bool is_plain(const struct ebpf_insn *in)
{
	switch (EBPF_CLASS(in->code)) {
	case EBPF_CLS_ALU:
	case EBPF_CLS_ALU64:
	case EBPF_CLS_LDX:
	case EBPF_CLS_ST:
		return true;
	case EBPF_CLS_STX:
		return EBPF_MODE(in->code) == EBPF_MEM;
	default:
		return false;
	}
}

/* The conditional jump the move at pc can be done after, or -1. */
static int64_t sink_target(const struct vm *vm, const uint8_t *is_target, const uint16_t *live,
			   const uint32_t *from, uint32_t pc)
{
	const struct ebpf_insn *mv = &vm->insns[pc];
	uint16_t rd = R(mv->dst), rs = EBPF_SRC(mv->code) == EBPF_X ? R(mv->src) : 0;

	for (uint32_t q = pc + 1; q < vm->insn_cnt && q <= pc + SINK_SCAN; q++) {
		const struct vm_op *op = &vm->ops[q];
		uint16_t use, def;

		if (is_target[q])
			return -1;
		use_def(vm, q, &use, &def);
		if (is_cond_jump(op->kind)) {
			/* Not read by the jump, dead where it goes, one move per jump. */
			if ((use & rd) || (live[op->off] & rd) || from[q])
				return -1;
			/* jcc +1; ja: the JIT makes one jump of the pair. */
			if (q + 1 < vm->insn_cnt && vm->ops[q + 1].kind == VM_OP_JA &&
			    op->off == (int32_t)q + 2)
				return -1;
			return q;
		}
		if (!is_plain(&vm->insns[q]) || ((use | def) & rd) || (def & rs))
			return -1;
	}
	return -1;
}

int vm_plan_sinks(const struct vm *vm, const uint8_t *is_target, uint32_t **to,
		  uint32_t **from)
{
	uint16_t *live = liveness(vm);

	*to = calloc(vm->insn_cnt, sizeof(**to));
	*from = calloc(vm->insn_cnt, sizeof(**from));
	if (!live || !*to || !*from) {
		free(live);
		free(*to);
		free(*from);
		*to = *from = NULL;
		return -ENOMEM;
	}
	for (uint32_t pc = 0; pc < vm->insn_cnt; pc++) {
		int64_t q;

		if (!is_move(&vm->insns[pc]) || vm->ops[pc].kind == VM_OP_INVALID)
			continue;
		q = sink_target(vm, is_target, live, *from, pc);
		if (q < 0)
			continue;
		(*to)[pc] = (uint32_t)q + 1;
		(*from)[q] = pc + 1;
	}
	free(live);
	return 0;
}

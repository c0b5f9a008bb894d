// SPDX-License-Identifier: MIT
/*
 * Differential tester: random valid programs run on the interpreter and the
 * JIT must leave the same r0 and the same bytes in their memory buffer.
 *
 * Program shape (valid by construction, always terminating):
 *   r9 = the 256-byte buffer (never written), r0-r7 random values, r8 a loop
 *   counter, every stack frame written before use; then a body of ALU, JMP/JMP32 (forward only, or a counted loop),
 *   loads/stores/atomics on the buffer and the stack, helper calls, callx and
 *   calls of local subprograms appended after the main exit.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "asm.h"
#include "fuzzdiff.h"
#include "vm.h"

#define BUF_SIZE 256
#define MAX_INSNS 1024
#define MIX_HELPER 1

struct gen {
	uint64_t state;
	struct ebpf_insn insns[MAX_INSNS];
	size_t cnt;
};

static uint64_t next_rand(struct gen *g)
{
	/* splitmix64 */
	uint64_t z = (g->state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint32_t rnd(struct gen *g, uint32_t n)
{
	return (uint32_t)(next_rand(g) % n);
}

static void put(struct gen *g, uint8_t code, unsigned int dst, unsigned int src, int16_t off,
		int32_t imm)
{
	g->insns[g->cnt++] = (struct ebpf_insn){
		.code = code, .dst = dst, .src = src, .off = off, .imm = imm
	};
}

/* Immediates that hit the corner cases more often than uniform ones would. */
static int32_t interesting_imm(struct gen *g)
{
	static const int32_t special[] = { 0, 1, -1, 2, 31, 32, 63, 64, INT32_MIN, INT32_MAX,
					   0x7f, 0x80, 0xff, 0x8000, 0xffff };

	if (rnd(g, 2))
		return special[rnd(g, sizeof(special) / sizeof(special[0]))];
	return (int32_t)next_rand(g);
}

static void put_lddw(struct gen *g, unsigned int dst, uint64_t v)
{
	put(g, EBPF_OP_LDDW, dst, 0, 0, (int32_t)(uint32_t)v);
	put(g, 0, 0, 0, 0, (int32_t)(uint32_t)(v >> 32));
}

static void gen_alu(struct gen *g, unsigned int nregs)
{
	static const uint8_t ops[] = { EBPF_ADD, EBPF_SUB, EBPF_MUL, EBPF_DIV, EBPF_OR,
				       EBPF_AND, EBPF_LSH, EBPF_RSH, EBPF_NEG, EBPF_MOD,
				       EBPF_XOR, EBPF_MOV, EBPF_ARSH, EBPF_END };
	uint8_t cls = rnd(g, 2) ? EBPF_CLS_ALU64 : EBPF_CLS_ALU;
	uint8_t op = ops[rnd(g, sizeof(ops) / sizeof(ops[0]))];
	unsigned int dst = rnd(g, nregs), src = rnd(g, nregs);
	bool reg = rnd(g, 2);
	int16_t off = 0;

	if (op == EBPF_NEG) {
		put(g, cls | op, dst, 0, 0, 0);
		return;
	}
	if (op == EBPF_ADD && rnd(g, 2)) {
		/* mov d, s; add d, x|imm: the JIT fuses the pair into a lea */
		put(g, EBPF_CLS_ALU64 | EBPF_MOV | EBPF_X, dst, src, 0, 0);
		if (rnd(g, 2))
			put(g, EBPF_CLS_ALU64 | EBPF_ADD | EBPF_X, dst, rnd(g, nregs), 0, 0);
		else
			put(g, EBPF_CLS_ALU64 | EBPF_ADD | EBPF_K, dst, 0, 0, interesting_imm(g));
		return;
	}
	if (op == EBPF_END) {
		static const int32_t widths[] = { 16, 32, 64 };

		put(g, cls | op | (cls == EBPF_CLS_ALU && rnd(g, 2) ? EBPF_TO_BE : 0), dst, 0, 0,
		    widths[rnd(g, 3)]);
		return;
	}
	if ((op == EBPF_DIV || op == EBPF_MOD) && rnd(g, 2))
		off = 1;
	if (op == EBPF_MOV && reg && rnd(g, 3) == 0) {
		static const int16_t sx64[] = { 8, 16, 32 };

		off = cls == EBPF_CLS_ALU64 ? sx64[rnd(g, 3)] : (int16_t)(rnd(g, 2) ? 8 : 16);
	}
	if (reg)
		put(g, cls | op | EBPF_X, dst, src, off, 0);
	else
		put(g, cls | op | EBPF_K, dst, 0, off, interesting_imm(g));
}

static const uint8_t sizes[] = { EBPF_B, EBPF_H, EBPF_W, EBPF_DW };

static int size_of(uint8_t s)
{
	return s == EBPF_B ? 1 : s == EBPF_H ? 2 : s == EBPF_W ? 4 : 8;
}

/* A base register (r9 = buffer or r10 = stack) and an offset that fits. */
static void mem_target(struct gen *g, int size, bool aligned, unsigned int *base, int16_t *off)
{
	int span = rnd(g, 2) ? BUF_SIZE : EBPF_STACK_SIZE;
	int o = (int)rnd(g, (uint32_t)(span - size + 1));

	if (aligned)
		o -= o % size;
	if (span == BUF_SIZE) {
		*base = 9;
		*off = (int16_t)o;
	} else {
		*base = 10;
		*off = (int16_t)(o - EBPF_STACK_SIZE);
	}
}

static void gen_mem(struct gen *g, unsigned int nregs)
{
	uint8_t sz = sizes[rnd(g, 4)];
	int size = size_of(sz);
	unsigned int base, reg = rnd(g, nregs);
	int16_t off;

	switch (rnd(g, 5)) {
	case 0:
		mem_target(g, size, false, &base, &off);
		put(g, EBPF_CLS_LDX | EBPF_MEM | sz, reg, base, off, 0);
		break;
	case 1:
		if (sz == EBPF_DW)
			sz = EBPF_W;
		size = size_of(sz);
		mem_target(g, size, false, &base, &off);
		put(g, EBPF_CLS_LDX | EBPF_MEMSX | sz, reg, base, off, 0);
		break;
	case 2:
		mem_target(g, size, false, &base, &off);
		put(g, EBPF_CLS_ST | EBPF_MEM | sz, base, 0, off, interesting_imm(g));
		break;
	case 3:
		mem_target(g, size, false, &base, &off);
		put(g, EBPF_CLS_STX | EBPF_MEM | sz, base, reg, off, 0);
		break;
	default: {
		static const int32_t ops[] = {
			EBPF_ADD, EBPF_OR,  EBPF_AND,  EBPF_XOR,     EBPF_ADD | EBPF_FETCH,
			EBPF_OR | EBPF_FETCH, EBPF_AND | EBPF_FETCH, EBPF_XOR | EBPF_FETCH,
			EBPF_XCHG, EBPF_CMPXCHG,
		};
		uint8_t asz = rnd(g, 2) ? EBPF_W : EBPF_DW;

		mem_target(g, size_of(asz), true, &base, &off);
		put(g, EBPF_CLS_STX | EBPF_ATOMIC | asz, base, reg, off,
		    ops[rnd(g, sizeof(ops) / sizeof(ops[0]))]);
		break;
	}
	}
}

/* A conditional jump forward by 0..span-1 instructions (over a body built after it). */
static size_t gen_jcc_start(struct gen *g, unsigned int nregs)
{
	static const uint8_t ops[] = { EBPF_JEQ,  EBPF_JGT,  EBPF_JGE,  EBPF_JSET,
				       EBPF_JNE,  EBPF_JSGT, EBPF_JSGE, EBPF_JLT,
				       EBPF_JLE,  EBPF_JSLT, EBPF_JSLE, EBPF_JA };
	uint8_t cls = rnd(g, 2) ? EBPF_CLS_JMP : EBPF_CLS_JMP32;
	uint8_t op = ops[rnd(g, sizeof(ops) / sizeof(ops[0]))];

	if (op == EBPF_JA)
		put(g, cls | op, 0, 0, 0, 0);
	else if (rnd(g, 2))
		put(g, cls | op | EBPF_X, rnd(g, nregs), rnd(g, nregs), 0, 0);
	else
		put(g, cls | op | EBPF_K, rnd(g, nregs), 0, 0, interesting_imm(g));
	return g->cnt - 1;
}

static void jcc_land(struct gen *g, size_t at)
{
	int32_t rel = (int32_t)(g->cnt - at - 1);

	if (g->insns[at].code == EBPF_OP_JA32)
		g->insns[at].imm = rel;
	else
		g->insns[at].off = (int16_t)rel;
}

static void gen_body(struct gen *g, size_t budget, unsigned int nregs, bool calls, int depth);

static void gen_one(struct gen *g, unsigned int nregs, bool calls, int depth, size_t limit)
{
	size_t at;

	switch (rnd(g, 10)) {
	case 0:
	case 1:
	case 2:
	case 3:
		gen_alu(g, nregs);
		break;
	case 4:
	case 5:
		gen_mem(g, nregs);
		break;
	case 6:
		if (depth > 2 || g->cnt + 8 > limit) {
			gen_alu(g, nregs);
			break;
		}
		at = gen_jcc_start(g, nregs);
		if (rnd(g, 3) == 0 && EBPF_OP(g->insns[at].code) != EBPF_JA) {
			/* jcc +1; ja over: the JIT fuses the pair into an inverted jcc */
			size_t ja;

			g->insns[at].off = 1;
			put(g, EBPF_OP_JA, 0, 0, 0, 0);
			ja = g->cnt - 1;
			gen_body(g, 1 + rnd(g, 6), nregs, calls, depth + 1);
			jcc_land(g, ja);
			break;
		}
		gen_body(g, 1 + rnd(g, 6), nregs, calls, depth + 1);
		jcc_land(g, at);
		break;
	case 7:
		if (!calls || depth > 2 || g->cnt + 16 > limit) {
			gen_mem(g, nregs);
			break;
		}
		/* counted loop on r8: mov r8, n; body; sub r8, 1; jne r8, 0, body */
		put(g, EBPF_CLS_ALU64 | EBPF_MOV | EBPF_K, 8, 0, 0, (int32_t)(1 + rnd(g, 4)));
		at = g->cnt;
		gen_body(g, 1 + rnd(g, 5), nregs, false, depth + 1);
		put(g, EBPF_CLS_ALU64 | EBPF_SUB | EBPF_K, 8, 0, 0, 1);
		put(g, EBPF_CLS_JMP | EBPF_JNE | EBPF_K, 8, 0, (int16_t)(at - g->cnt - 1), 0);
		break;
	case 8:
		if (!calls) {
			gen_alu(g, nregs);
			break;
		}
		if (rnd(g, 2)) {
			put(g, EBPF_OP_CALL, 0, 0, 0, MIX_HELPER);
		} else {
			unsigned int r = rnd(g, nregs);

			put(g, EBPF_CLS_ALU64 | EBPF_MOV | EBPF_K, r, 0, 0, MIX_HELPER);
			put(g, EBPF_OP_CALLX, r, 0, 0, 0);
		}
		/* A helper leaves r1-r5 undefined (the verifier forbids reading them). */
		for (unsigned int r = 1; r <= 5; r++)
			put(g, EBPF_CLS_ALU64 | EBPF_MOV | EBPF_K, r, 0, 0, interesting_imm(g));
		break;
	default:
		/* a local call, fixed up to the subprogram when it is laid down */
		if (!calls || depth > 0) {
			gen_mem(g, nregs);
			break;
		}
		put(g, EBPF_OP_CALL, 0, EBPF_PSEUDO_CALL_LOCAL, 0, -1);
		break;
	}
}

static void gen_body(struct gen *g, size_t budget, unsigned int nregs, bool calls, int depth)
{
	size_t limit = MAX_INSNS - 160;

	for (size_t i = 0; i < budget && g->cnt < limit; i++)
		gen_one(g, nregs, calls, depth, limit);
}

/* Fills the current 512-byte frame: reading unwritten stack is undefined. */
static void init_frame(struct gen *g)
{
	for (int16_t off = -8; off >= -EBPF_STACK_SIZE; off -= 8)
		put(g, EBPF_CLS_ST | EBPF_MEM | EBPF_DW, 10, 0, off, interesting_imm(g));
}

static void generate(struct gen *g)
{
	size_t sub;

	g->cnt = 0;
	put(g, EBPF_CLS_ALU64 | EBPF_MOV | EBPF_X, 9, 1, 0, 0);
	init_frame(g);
	for (unsigned int r = 0; r < 8; r++)
		put_lddw(g, r, rnd(g, 4) ? next_rand(g) : (uint64_t)(int64_t)interesting_imm(g));
	gen_body(g, 5 + rnd(g, 60), 8, true, 0);
	put(g, EBPF_OP_EXIT, 0, 0, 0, 0);

	/* The subprogram: its own frame, writes its stack, clobbers r0-r5. */
	sub = g->cnt;
	init_frame(g);
	gen_body(g, 2 + rnd(g, 12), 6, false, 1);
	put(g, EBPF_CLS_ALU64 | EBPF_ADD | EBPF_X, 0, 1, 0, 0);
	put(g, EBPF_OP_EXIT, 0, 0, 0, 0);
	for (size_t i = 0; i < sub; i++)
		if (g->insns[i].code == EBPF_OP_CALL && g->insns[i].src == EBPF_PSEUDO_CALL_LOCAL)
			g->insns[i].imm = (int32_t)(sub - i - 1);
}

static uint64_t mix(uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4, uint64_t r5)
{
	return r1 * 3 + (r2 ^ r3) - (r4 >> 3) + (r5 << 1);
}

struct outcome {
	int err;
	uint64_t r0;
	uint8_t buf[BUF_SIZE];
	char msg[VM_ERRMSG_SIZE];
};

static void run_engine(const struct gen *g, bool jit, bool trusted, const uint8_t *init,
		       struct outcome *o)
{
	struct vm *vm = vm__new();
	struct vm_fault fault;

	memcpy(o->buf, init, BUF_SIZE);
	o->r0 = 0;
	o->msg[0] = 0;
	if (!vm) {
		o->err = -ENOMEM;
		return;
	}
	o->err = vm__set_jit(vm, jit);
	if (!o->err)
		o->err = vm__register_helper(vm, MIX_HELPER, "mix", mix);
	if (!o->err && trusted)
		o->err = vm__set_mem_check(vm, vm_mem_allow_all, NULL);
	if (!o->err)
		o->err = vm__load(vm, g->insns, g->cnt);
	if (o->err) {
		snprintf(o->msg, sizeof(o->msg), "load: %.200s", vm__strerror(vm));
	} else {
		o->err = vm__exec(vm, o->buf, BUF_SIZE, &o->r0, &fault);
		if (o->err)
			snprintf(o->msg, sizeof(o->msg), "run: %.200s", fault.msg);
	}
	vm__free(vm);
}

static void print_outcome(FILE *out, const char *engine, const struct outcome *o)
{
	if (o->err)
		fprintf(out, "  %s: %s\n", engine, o->msg);
	else
		fprintf(out, "  %s: r0=0x%" PRIx64 "\n", engine, o->r0);
}

uint64_t fuzzdiff__run(uint64_t count, uint64_t seed, FILE *out)
{
	struct outcome a, b;
	uint8_t init[BUF_SIZE];
	uint64_t diffs = 0, faults = 0;
	struct gen g;

	for (uint64_t n = 0; n < count; n++) {
		g.state = seed * 0x100000001b3ULL + n;
		for (size_t i = 0; i < BUF_SIZE; i++)
			init[i] = (uint8_t)next_rand(&g);
		generate(&g);
		run_engine(&g, false, false, init, &a);
		run_engine(&g, true, n & 1, init, &b);
		if (a.err || b.err)
			faults++;
		if (a.err == b.err && a.r0 == b.r0 && !memcmp(a.buf, b.buf, BUF_SIZE))
			continue;
		if (diffs++ < 3) {
			fprintf(out, "DIFF program %" PRIu64 " (seed %" PRIu64 "):\n", n, seed);
			print_outcome(out, "interp", &a);
			print_outcome(out, "jit", &b);
			if (memcmp(a.buf, b.buf, BUF_SIZE))
				fprintf(out, "  memory differs\n");
			asm__disassemble(out, g.insns, g.cnt);
		}
	}
	fprintf(out, "%" PRIu64 " programs, %" PRIu64 " differences (%" PRIu64 " refused or faulted)\n",
		count, diffs, faults);
	return diffs;
}

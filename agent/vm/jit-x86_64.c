// SPDX-License-Identifier: MIT
/*
 * x86-64 JIT. Register mapping is the kernel's, so helper calls are plain
 * SysV calls: r0=rax r1=rdi r2=rsi r3=rdx r4=rcx r5=r8 r6=rbx r7=r13 r8=r14
 * r9=r15 r10=rbp; r9-r11 are scratch, r12 holds the struct vm_run.
 *
 * The code is emitted into a growable buffer, pass after pass, until the
 * size of every jump has settled (short jumps only ever get shorter); the
 * final image is copied into a fresh mapping that is made read+execute and is
 * never writable at the same time.
 *
 * Native stack layout after the prologue (rsp 16-byte aligned):
 *   [rsp, rsp+VM_MAX_FRAMES*512)  eBPF stack frames, r10 starts at the top
 *   a local call pushes rbx r13 r14 r15 rbp (+ return address) below rsp,
 *   keeping rsp aligned for helper calls inside the callee.
 * run->saved_rsp lets any exit, from any depth, unwind in one move.
 *
 * Memory accesses other than r10-relative ones (checked at load) are
 * checked exactly like the interpreter does, through an out-of-line call,
 * unless the VM's memory check is vm_mem_allow_all (kernel-verified code).
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "vm-private.h"

enum x86_reg {
	RAX = 0, RCX, RDX, RBX, RSP, RBP, RSI, RDI,
	R8, R9, R10, R11, R12, R13, R14, R15,
};

static const uint8_t reg_map[EBPF_NR_REGS] = {
	RAX, RDI, RSI, RDX, RCX, R8, RBX, R13, R14, R15, RBP,
};

#define STACK_BYTES (VM_MAX_FRAMES * EBPF_STACK_SIZE)
/* Room below the eBPF frames so rsp stays 16-byte aligned after 6 pushes. */
#define FRAME_BYTES (STACK_BYTES + 8)

/* x86 condition codes (the low nibble of jcc). */
enum cc { CC_B = 0x2, CC_AE = 0x3, CC_E = 0x4, CC_NE = 0x5, CC_BE = 0x6, CC_A = 0x7,
	  CC_L = 0xc, CC_GE = 0xd, CC_LE = 0xe, CC_G = 0xf };

/* What reaches an instruction other than the one before it. */
#define TARGET 1u      /* a jump or a call */
#define TARGET_LOOP 2u /* a jump back: a loop's head */

/* Why JIT-compiled code stopped early (run->err), formatted after the run. */
enum jit_fault { JIT_FAULT_NONE, JIT_FAULT_MEM, JIT_FAULT_CALLX, JIT_FAULT_DEPTH,
		 JIT_FAULT_ALIGN, JIT_FAULT_INVALID };

struct jit {
	const struct vm *vm;
	uint8_t *buf;
	size_t len, cap;
	bool oom;
	/* Start of each instruction's code, from the previous pass. */
	uint32_t *addrs;
	uint32_t *new_addrs;
	uint32_t epilogue, new_epilogue;
	uint32_t func_entry;
	/* Instructions something jumps or calls to (TARGET_*): never fused into a pair. */
	uint8_t *is_target;
	/* Moves done after the jump that follows them (vm_plan_sinks). */
	uint32_t *sink_to, *sink_from;
	/* copy_of[r]: the register r is known to equal (see copies_*), or -1. */
	int8_t copy_of[EBPF_REG_FP + 1];
	bool checked;
	bool first_pass;
};

static void emit_bytes(struct jit *j, const void *p, size_t n)
{
	if (j->len + n > j->cap) {
		size_t cap = j->cap ? j->cap * 2 : 4096;
		uint8_t *b;

		while (cap < j->len + n)
			cap *= 2;
		b = realloc(j->buf, cap);
		if (!b) {
			j->oom = true;
			return;
		}
		j->buf = b;
		j->cap = cap;
	}
	memcpy(j->buf + j->len, p, n);
	j->len += n;
}

static void emit1(struct jit *j, uint8_t b)
{
	emit_bytes(j, &b, 1);
}

static void emit2(struct jit *j, uint8_t a, uint8_t b)
{
	uint8_t v[2] = { a, b };

	emit_bytes(j, v, 2);
}

static void emit4(struct jit *j, uint32_t v)
{
	emit_bytes(j, &v, 4);
}

static void emit8(struct jit *j, uint64_t v)
{
	emit_bytes(j, &v, 8);
}

/* REX prefix; force emits it even when empty (byte access to sil/dil). */
static void rex(struct jit *j, bool w, int reg, int rm, bool force)
{
	uint8_t b = 0x40 | (w ? 8 : 0) | ((reg & 8) ? 4 : 0) | ((rm & 8) ? 1 : 0);

	if (b != 0x40 || force)
		emit1(j, b);
}

static void modrm_reg(struct jit *j, int reg, int rm)
{
	emit1(j, (uint8_t)(0xc0 | (reg & 7) << 3 | (rm & 7)));
}

/* ModRM (+SIB) for [base + disp]; always with a displacement, never rip. */
static void modrm_mem(struct jit *j, int reg, int base, int32_t disp)
{
	bool d8 = disp >= -128 && disp <= 127;

	emit1(j, (uint8_t)((d8 ? 0x40 : 0x80) | (reg & 7) << 3 | (base & 7)));
	if ((base & 7) == RSP)
		emit1(j, 0x24);
	if (d8)
		emit1(j, (uint8_t)disp);
	else
		emit4(j, (uint32_t)disp);
}

/* op r/m, reg (register form), e.g. 0x01 add, 0x89 mov, 0x39 cmp, 0x85 test. */
static void alu_rr(struct jit *j, uint8_t op, bool w, int dst, int src)
{
	rex(j, w, src, dst, false);
	emit1(j, op);
	modrm_reg(j, src, dst);
}

/* group-1 op r/m, imm: ext 0 add, 1 or, 4 and, 5 sub, 6 xor, 7 cmp. */
static void alu_ri(struct jit *j, int ext, bool w, int dst, int32_t imm)
{
	rex(j, w, 0, dst, false);
	if (imm >= -128 && imm <= 127) {
		emit1(j, 0x83);
		modrm_reg(j, ext, dst);
		emit1(j, (uint8_t)imm);
	} else {
		emit1(j, 0x81);
		modrm_reg(j, ext, dst);
		emit4(j, (uint32_t)imm);
	}
}

static void mov_rr(struct jit *j, bool w, int dst, int src)
{
	alu_rr(j, 0x89, w, dst, src);
}

/* dst = imm: zero-extended for 32-bit, sign-extended for 64-bit. */
static void mov_ri(struct jit *j, bool w, int dst, int32_t imm)
{
	if (imm == 0) {
		alu_rr(j, 0x31, false, dst, dst);
	} else if (!w || imm > 0) {
		rex(j, false, 0, dst, false);
		emit1(j, (uint8_t)(0xb8 + (dst & 7)));
		emit4(j, (uint32_t)imm);
	} else {
		rex(j, true, 0, dst, false);
		emit1(j, 0xc7);
		modrm_reg(j, 0, dst);
		emit4(j, (uint32_t)imm);
	}
}

static void mov_ri64(struct jit *j, int dst, uint64_t imm)
{
	if (imm <= UINT32_MAX) {
		mov_ri(j, false, dst, (int32_t)(uint32_t)imm);
	} else if ((int64_t)imm >= INT32_MIN && (int64_t)imm < 0) {
		mov_ri(j, true, dst, (int32_t)imm);
	} else {
		rex(j, true, 0, dst, false);
		emit1(j, (uint8_t)(0xb8 + (dst & 7)));
		emit8(j, imm);
	}
}

static void push(struct jit *j, int r)
{
	rex(j, false, 0, r, false);
	emit1(j, (uint8_t)(0x50 + (r & 7)));
}

static void pop(struct jit *j, int r)
{
	rex(j, false, 0, r, false);
	emit1(j, (uint8_t)(0x58 + (r & 7)));
}

/* Zero-extend the low 32 bits of r into r. */
static void zext32(struct jit *j, int r)
{
	mov_rr(j, false, r, r);
}

/* Jumps to an absolute code offset known from the previous pass. */
static void jmp_to(struct jit *j, int cc, uint32_t target)
{
	int64_t rel8 = (int64_t)target - (int64_t)(j->len + 2);
	bool near = !j->first_pass && rel8 >= -128 && rel8 <= 127;

	if (near) {
		emit2(j, cc < 0 ? 0xeb : (uint8_t)(0x70 | cc), (uint8_t)rel8);
	} else if (cc < 0) {
		emit1(j, 0xe9);
		emit4(j, (uint32_t)(target - (j->len + 4)));
	} else {
		emit2(j, 0x0f, (uint8_t)(0x80 | cc));
		emit4(j, (uint32_t)(target - (j->len + 4)));
	}
}

/* One of the recommended multi-byte NOPs, n <= 9 bytes. */
static void emit_nop(struct jit *j, unsigned int n)
{
	static const uint8_t nops[9][9] = {
		{ 0x90 },
		{ 0x66, 0x90 },
		{ 0x0f, 0x1f, 0x00 },
		{ 0x0f, 0x1f, 0x40, 0x00 },
		{ 0x0f, 0x1f, 0x44, 0x00, 0x00 },
		{ 0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00 },
		{ 0x0f, 0x1f, 0x80, 0x00, 0x00, 0x00, 0x00 },
		{ 0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00 },
		{ 0x66, 0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00 },
	};

	emit_bytes(j, nops[n - 1], n);
}

/*
 * A loop starts here: at a 16-byte boundary, as compilers place them. The
 * padding runs once, on the way in; the jump back lands after it.
 */
static void align_loop(struct jit *j)
{
	unsigned int pad = (unsigned int)(-j->len & 15);

	while (pad) {
		unsigned int n = pad > 9 ? 9 : pad;

		emit_nop(j, n);
		pad -= n;
	}
}

static void jmp_insn(struct jit *j, int cc, int32_t target_pc)
{
	jmp_to(j, cc, j->addrs[target_pc]);
}

/* A short forward jump over a fixed-size block; patched by jcc_here(). */
static size_t jcc_fwd(struct jit *j, int cc)
{
	emit2(j, cc < 0 ? 0xeb : (uint8_t)(0x70 | cc), 0);
	return j->len;
}

static void jcc_here(struct jit *j, size_t from)
{
	if (!j->oom)
		j->buf[from - 1] = (uint8_t)(j->len - from);
}

/* Stops the run, recording the fault kind and the instruction index. */
static void emit_fault(struct jit *j, uint32_t pc, enum jit_fault kind)
{
	/* mov dword [r12 + err], kind; mov dword [r12 + depth], pc */
	rex(j, false, 0, R12, false);
	emit1(j, 0xc7);
	modrm_mem(j, 0, R12, offsetof(struct vm_run, err));
	emit4(j, kind);
	rex(j, false, 0, R12, false);
	emit1(j, 0xc7);
	modrm_mem(j, 0, R12, offsetof(struct vm_run, fault_pc));
	emit4(j, pc);
	jmp_to(j, -1, j->epilogue);
}

static bool jit_check(struct vm_run *run, uint64_t addr, uint64_t packed)
{
	uint32_t pc = (uint32_t)(packed >> 32);
	uint64_t len = packed & 0xff;
	bool write = packed & 0x100;

	run->stack_lo = run->saved_rsp;
	run->stack_hi = run->stack_lo + STACK_BYTES;
	if (vm_mem_ok(run, pc, addr, len, write))
		return true;
	run->err = JIT_FAULT_MEM;
	return false;
}

/*
 * Checked mode: calls jit_check(run, base + off, pc|write|size) with every
 * eBPF register preserved; a refusal ends the run.
 */
static void emit_mem_check(struct jit *j, uint32_t pc, int base, int16_t off, int size,
			   bool write)
{
	static const int saved[] = { RAX, RDI, RSI, RDX, RCX, R8 };

	if (!j->checked || base == RBP)
		return;
	for (size_t i = 0; i < 6; i++)
		push(j, saved[i]);
	/* lea rsi, [base + off] */
	rex(j, true, RSI, base, false);
	emit1(j, 0x8d);
	modrm_mem(j, RSI, base, off);
	mov_rr(j, true, RDI, R12);
	mov_ri64(j, RDX, (uint64_t)pc << 32 | (write ? 0x100 : 0) | (uint64_t)size);
	mov_ri64(j, RAX, (uintptr_t)jit_check);
	emit2(j, 0xff, 0xd0); /* call rax */
	mov_rr(j, false, R10, RAX);
	for (size_t i = 6; i-- > 0;)
		pop(j, saved[i]);
	/* test r10b, r10b; jz epilogue */
	emit2(j, 0x45, 0x84);
	modrm_reg(j, R10, R10);
	jmp_to(j, CC_E, j->epilogue);
}

/* Faults on a misaligned atomic, as the interpreter does. */
static void emit_align_check(struct jit *j, uint32_t pc, int base, int16_t off, int size)
{
	size_t skip;

	if (!j->checked || size == 1)
		return;
	/* lea r11, [base + off]; test r11b, size - 1; jz ok */
	rex(j, true, R11, base, false);
	emit1(j, 0x8d);
	modrm_mem(j, R11, base, off);
	emit2(j, 0x41, 0xf6);
	modrm_reg(j, 0, R11);
	emit1(j, (uint8_t)(size - 1));
	skip = jcc_fwd(j, CC_E);
	emit_fault(j, pc, JIT_FAULT_ALIGN);
	jcc_here(j, skip);
}

static int size_bytes(uint8_t code)
{
	switch (EBPF_SIZE(code)) {
	case EBPF_B:
		return 1;
	case EBPF_H:
		return 2;
	case EBPF_W:
		return 4;
	default:
		return 8;
	}
}

/* dst = [base + off], zero- or sign-extended. */
static void emit_load(struct jit *j, int size, bool sx, int dst, int base, int16_t off)
{
	switch (size) {
	case 1:
		rex(j, sx, dst, base, false);
		emit2(j, 0x0f, sx ? 0xbe : 0xb6);
		break;
	case 2:
		rex(j, sx, dst, base, false);
		emit2(j, 0x0f, sx ? 0xbf : 0xb7);
		break;
	case 4:
		rex(j, sx, dst, base, false);
		emit1(j, sx ? 0x63 : 0x8b);
		break;
	default:
		rex(j, true, dst, base, false);
		emit1(j, 0x8b);
		break;
	}
	modrm_mem(j, dst, base, off);
}

/* [base + off] = src, with an optional prefix such as lock. */
static void emit_store_reg(struct jit *j, int size, int base, int16_t off, int src)
{
	if (size == 2)
		emit1(j, 0x66);
	rex(j, size == 8, src, base, size == 1);
	emit1(j, size == 1 ? 0x88 : 0x89);
	modrm_mem(j, src, base, off);
}

static void emit_store_imm(struct jit *j, int size, int base, int16_t off, int32_t imm)
{
	if (size == 2)
		emit1(j, 0x66);
	rex(j, size == 8, 0, base, false);
	emit1(j, size == 1 ? 0xc6 : 0xc7);
	modrm_mem(j, 0, base, off);
	if (size == 1)
		emit1(j, (uint8_t)imm);
	else if (size == 2)
		emit_bytes(j, &imm, 2);
	else
		emit4(j, (uint32_t)imm);
}

/* Shifts by register need the count in cl, which is eBPF r4. */
static void emit_shift_reg(struct jit *j, int ext, bool w, int dst, int src)
{
	if (src == RCX) {
		rex(j, w, 0, dst, false);
		emit1(j, 0xd3);
		modrm_reg(j, ext, dst);
		if (!w)
			zext32(j, dst);
		return;
	}
	mov_rr(j, true, R11, RCX);
	mov_rr(j, true, RCX, src);
	/* When dst is rcx its value now lives in r11. */
	rex(j, w, 0, dst == RCX ? R11 : dst, false);
	emit1(j, 0xd3);
	modrm_reg(j, ext, dst == RCX ? R11 : dst);
	if (dst == RCX) {
		mov_rr(j, w, RCX, R11);
	} else {
		if (!w)
			zext32(j, dst);
		mov_rr(j, true, RCX, R11);
	}
}

/*
 * Division and modulo with eBPF semantics: x/0 = 0, x%0 = x, signed
 * INT_MIN/-1 = INT_MIN and INT_MIN%-1 = 0 (x86 would trap on both). The
 * divisor goes to r11; rax and rdx are kept in r9 and r10 around the divide.
 * A constant divisor needs no run-time guard at all.
 */
static void emit_div(struct jit *j, bool w, bool mod, bool sign, int dst, bool reg, int src,
		     int32_t imm)
{
	size_t zero = 0, minus1 = 0, done1, done2 = 0;
	bool guard = reg || imm == 0 || (sign && imm == -1);

	if (!reg && imm == 0) {
		/* x / 0 = 0, x % 0 = x */
		if (mod) {
			if (!w)
				zext32(j, dst);
		} else {
			alu_rr(j, 0x31, false, dst, dst);
		}
		return;
	}
	if (reg)
		mov_rr(j, w, R11, src);
	else
		mov_ri(j, w, R11, imm);
	if (dst != RAX)
		mov_rr(j, true, R9, RAX);
	if (dst != RDX)
		mov_rr(j, true, R10, RDX);
	mov_rr(j, w, RAX, dst);
	if (guard) {
		alu_rr(j, 0x85, w, R11, R11); /* test r11, r11 */
		zero = jcc_fwd(j, CC_E);
		if (sign) {
			alu_ri(j, 7, w, R11, -1); /* cmp r11, -1 */
			minus1 = jcc_fwd(j, CC_E);
		}
	}
	if (sign) {
		if (w)
			emit2(j, 0x48, 0x99); /* cqo */
		else
			emit1(j, 0x99); /* cdq */
		rex(j, w, 0, R11, false);
		emit1(j, 0xf7);
		modrm_reg(j, 7, R11); /* idiv r11 */
	} else {
		alu_rr(j, 0x31, false, RDX, RDX);
		rex(j, w, 0, R11, false);
		emit1(j, 0xf7);
		modrm_reg(j, 6, R11); /* div r11 */
	}
	mov_rr(j, w, R11, mod ? RDX : RAX);
	if (guard) {
		done1 = jcc_fwd(j, -1);
		if (sign) {
			jcc_here(j, minus1);
			/* x / -1 = -x (wrapping), x % -1 = 0 */
			if (mod) {
				alu_rr(j, 0x31, false, R11, R11);
			} else {
				mov_rr(j, w, R11, RAX);
				rex(j, w, 0, R11, false);
				emit1(j, 0xf7);
				modrm_reg(j, 3, R11); /* neg r11 */
			}
			done2 = jcc_fwd(j, -1);
		}
		jcc_here(j, zero);
		if (mod)
			mov_rr(j, w, R11, RAX);
		else
			alu_rr(j, 0x31, false, R11, R11);
		jcc_here(j, done1);
		if (sign)
			jcc_here(j, done2);
	}
	if (dst != RAX)
		mov_rr(j, true, RAX, R9);
	if (dst != RDX)
		mov_rr(j, true, RDX, R10);
	mov_rr(j, w, dst, R11);
}

static int emit_alu(struct jit *j, uint32_t pc, const struct ebpf_insn *in)
{
	bool w = EBPF_CLASS(in->code) == EBPF_CLS_ALU64;
	bool reg = EBPF_SRC(in->code) == EBPF_X;
	int dst = reg_map[in->dst], src = reg_map[in->src];
	static const int8_t group1[16] = {
		[EBPF_ADD >> 4] = 0, [EBPF_SUB >> 4] = 5, [EBPF_OR >> 4] = 1,
		[EBPF_AND >> 4] = 4, [EBPF_XOR >> 4] = 6,
	};
	static const uint8_t rr_op[16] = {
		[EBPF_ADD >> 4] = 0x01, [EBPF_SUB >> 4] = 0x29, [EBPF_OR >> 4] = 0x09,
		[EBPF_AND >> 4] = 0x21, [EBPF_XOR >> 4] = 0x31,
	};
	static const int shift_ext[16] = {
		[EBPF_LSH >> 4] = 4, [EBPF_RSH >> 4] = 5, [EBPF_ARSH >> 4] = 7,
	};
	uint8_t op = EBPF_OP(in->code);

	switch (op) {
	case EBPF_ADD:
	case EBPF_SUB:
	case EBPF_OR:
	case EBPF_AND:
	case EBPF_XOR:
		if (reg)
			alu_rr(j, rr_op[op >> 4], w, dst, src);
		else
			alu_ri(j, group1[op >> 4], w, dst, in->imm);
		return 0;
	case EBPF_MUL:
		if (reg) {
			rex(j, w, dst, src, false);
			emit2(j, 0x0f, 0xaf);
			modrm_reg(j, dst, src);
		} else {
			rex(j, w, dst, dst, false);
			emit1(j, 0x69);
			modrm_reg(j, dst, dst);
			emit4(j, (uint32_t)in->imm);
		}
		return 0;
	case EBPF_DIV:
	case EBPF_MOD:
		emit_div(j, w, op == EBPF_MOD, in->off == 1, dst, reg, src, in->imm);
		return 0;
	case EBPF_LSH:
	case EBPF_RSH:
	case EBPF_ARSH:
		if (reg) {
			emit_shift_reg(j, shift_ext[op >> 4], w, dst, src);
		} else if (in->imm & (w ? 63 : 31)) {
			rex(j, w, 0, dst, false);
			emit1(j, 0xc1);
			modrm_reg(j, shift_ext[op >> 4], dst);
			emit1(j, (uint8_t)(in->imm & (w ? 63 : 31)));
		} else if (!w) {
			/* a shift by 0 leaves the register alone: zero-extend explicitly */
			zext32(j, dst);
		}
		return 0;
	case EBPF_NEG:
		rex(j, w, 0, dst, false);
		emit1(j, 0xf7);
		modrm_reg(j, 3, dst);
		return 0;
	case EBPF_MOV:
		if (!reg) {
			mov_ri(j, w, dst, in->imm);
		} else if (in->off == 0) {
			mov_rr(j, w, dst, src);
		} else if (in->off == 32) {
			rex(j, true, dst, src, false);
			emit1(j, 0x63); /* movsxd */
			modrm_reg(j, dst, src);
		} else {
			rex(j, w, dst, src, in->off == 8);
			emit2(j, 0x0f, in->off == 8 ? 0xbe : 0xbf);
			modrm_reg(j, dst, src);
		}
		return 0;
	case EBPF_END:
		if (!w && !reg) {
			/* le: truncate */
			if (in->imm == 16) {
				rex(j, false, dst, dst, false);
				emit2(j, 0x0f, 0xb7);
				modrm_reg(j, dst, dst);
			} else if (in->imm == 32) {
				zext32(j, dst);
			}
			return 0;
		}
		if (in->imm == 16) {
			/* rol r16, 8; movzx r32, r16 */
			emit1(j, 0x66);
			rex(j, false, 0, dst, false);
			emit1(j, 0xc1);
			modrm_reg(j, 0, dst);
			emit1(j, 8);
			rex(j, false, dst, dst, false);
			emit2(j, 0x0f, 0xb7);
			modrm_reg(j, dst, dst);
		} else {
			rex(j, in->imm == 64, 0, dst, false);
			emit2(j, 0x0f, (uint8_t)(0xc8 + (dst & 7)));
		}
		return 0;
	}
	return vm_error((struct vm *)j->vm, ENOTSUP, "insn %u: JIT cannot compile opcode 0x%02x",
			pc, in->code);
}

/* Atomic read-modify-write; fetch or/and/xor need a cmpxchg loop on rax. */
static void emit_atomic(struct jit *j, uint32_t pc, const struct ebpf_insn *in)
{
	int size = size_bytes(in->code);
	bool w = size == 8;
	int base = reg_map[in->dst], src = reg_map[in->src];
	int32_t op = in->imm;
	size_t loop;
	int sval;

	if (op == EBPF_LOAD_ACQ) {
		/* dst = *(src + off); x86 loads already have acquire semantics */
		emit_mem_check(j, pc, src, in->off, size, false);
		emit_align_check(j, pc, src, in->off, size);
		emit_load(j, size, false, base, src, in->off);
		return;
	}
	emit_mem_check(j, pc, base, in->off, size, true);
	emit_align_check(j, pc, base, in->off, size);
	switch (op) {
	case EBPF_STORE_REL:
		/* x86 stores already have release semantics */
		emit_store_reg(j, size, base, in->off, src);
		return;
	case EBPF_ADD:
	case EBPF_OR:
	case EBPF_AND:
	case EBPF_XOR:
		emit1(j, 0xf0);
		rex(j, w, src, base, false);
		emit1(j, op == EBPF_ADD ? 0x01 : op == EBPF_OR ? 0x09 : op == EBPF_AND ? 0x21 : 0x31);
		modrm_mem(j, src, base, in->off);
		return;
	case EBPF_ADD | EBPF_FETCH:
		emit1(j, 0xf0);
		rex(j, w, src, base, false);
		emit2(j, 0x0f, 0xc1); /* xadd */
		modrm_mem(j, src, base, in->off);
		return;
	case EBPF_XCHG:
		rex(j, w, src, base, false);
		emit1(j, 0x87);
		modrm_mem(j, src, base, in->off);
		return;
	case EBPF_CMPXCHG:
		emit1(j, 0xf0);
		rex(j, w, src, base, false);
		emit2(j, 0x0f, 0xb1);
		modrm_mem(j, src, base, in->off);
		if (!w)
			zext32(j, RAX);
		return;
	}
	/*
	 * fetch or/and/xor: r11 = address, r10 = saved r0, r9 = new value.
	 * The operand is read from r10 when it is r0 itself.
	 */
	sval = src == RAX ? R10 : src;
	rex(j, true, R11, base, false);
	emit1(j, 0x8d);
	modrm_mem(j, R11, base, in->off);
	mov_rr(j, true, R10, RAX);
	emit_load(j, size, false, RAX, R11, 0);
	loop = j->len;
	mov_rr(j, w, R9, RAX);
	alu_rr(j, (op & ~EBPF_FETCH) == EBPF_OR ? 0x09 : (op & ~EBPF_FETCH) == EBPF_AND ? 0x21 : 0x31,
	       w, R9, sval);
	emit1(j, 0xf0);
	rex(j, w, R9, R11, false);
	emit2(j, 0x0f, 0xb1);
	modrm_mem(j, R9, R11, 0);
	emit2(j, 0x75, (uint8_t)(loop - (j->len + 2))); /* jnz loop */
	if (src != RAX) {
		mov_rr(j, w, src, RAX);
		mov_rr(j, true, RAX, R10);
	} else if (!w) {
		zext32(j, RAX);
	}
}

static void emit_helper_call(struct jit *j, uint64_t fn)
{
	mov_ri64(j, RAX, fn);
	emit2(j, 0xff, 0xd0); /* call rax */
}

static void emit_unwind_check(struct jit *j)
{
	alu_rr(j, 0x85, true, RAX, RAX);
	jmp_to(j, CC_E, j->epilogue);
}

/* callx: the helper id is in a register, checked and looked up at run time. */
static void emit_callx(struct jit *j, uint32_t pc, int idreg)
{
	size_t ok, found;

	mov_rr(j, true, R10, idreg);
	/* cmp r10, VM_MAX_HELPER_ID; jbe ok */
	alu_ri(j, 7, true, R10, VM_MAX_HELPER_ID);
	ok = jcc_fwd(j, CC_BE);
	emit_fault(j, pc, JIT_FAULT_CALLX);
	jcc_here(j, ok);
	/* r11 = vm->helpers[r10].fn */
	mov_ri64(j, R11, (uintptr_t)&j->vm->helpers[0].fn);
	rex(j, true, 0, R10, false);
	emit1(j, 0xc1);
	modrm_reg(j, 4, R10);
	emit1(j, 4); /* shl r10, 4 */
	_Static_assert(sizeof(struct vm_helper) == 16, "helper slots are 16 bytes");
	alu_rr(j, 0x01, true, R11, R10);
	rex(j, true, R11, R11, false);
	emit1(j, 0x8b);
	modrm_mem(j, R11, R11, 0);
	alu_rr(j, 0x85, true, R11, R11);
	found = jcc_fwd(j, CC_NE);
	emit_fault(j, pc, JIT_FAULT_CALLX);
	jcc_here(j, found);
	/* keep the id (shifted) across the call for the unwind check */
	alu_ri(j, 5, true, RSP, 16);
	rex(j, true, R10, RSP, false);
	emit1(j, 0x89);
	modrm_mem(j, R10, RSP, 0);
	rex(j, false, 0, R11, false);
	emit2(j, 0xff, 0xd3); /* call r11 */
	rex(j, true, R10, RSP, false);
	emit1(j, 0x8b);
	modrm_mem(j, R10, RSP, 0);
	alu_ri(j, 0, true, RSP, 16);
	if (j->vm->unwind_helper >= 0) {
		size_t skip;

		alu_ri(j, 7, true, R10, (int32_t)(j->vm->unwind_helper << 4));
		skip = jcc_fwd(j, CC_NE);
		emit_unwind_check(j);
		jcc_here(j, skip);
	}
}

/* bpf-to-bpf call: r6-r9 and r10 saved on the native stack, a new frame. */
static void emit_local_call(struct jit *j, uint32_t pc, int32_t target)
{
	static const int saved[] = { RBX, R13, R14, R15, RBP };
	size_t ok;

	/* inc dword [r12 + depth]; cmp dword [r12 + depth], MAX - 1; jbe ok */
	rex(j, false, 0, R12, false);
	emit1(j, 0xff);
	modrm_mem(j, 0, R12, offsetof(struct vm_run, depth));
	rex(j, false, 0, R12, false);
	emit1(j, 0x83);
	modrm_mem(j, 7, R12, offsetof(struct vm_run, depth));
	emit1(j, VM_MAX_FRAMES - 1);
	ok = jcc_fwd(j, CC_BE);
	emit_fault(j, pc, JIT_FAULT_DEPTH);
	jcc_here(j, ok);
	for (size_t i = 0; i < 5; i++)
		push(j, saved[i]);
	alu_ri(j, 5, true, RBP, EBPF_STACK_SIZE);
	emit1(j, 0xe8);
	emit4(j, (uint32_t)(j->addrs[target] - (j->len + 4)));
	for (size_t i = 5; i-- > 0;)
		pop(j, saved[i]);
	rex(j, false, 0, R12, false);
	emit1(j, 0xff);
	modrm_mem(j, 1, R12, offsetof(struct vm_run, depth)); /* dec */
}

static void emit_exit(struct jit *j)
{
	size_t nested;

	/* cmp dword [r12 + depth], 0; jne nested; jmp epilogue; nested: ret */
	rex(j, false, 0, R12, false);
	emit1(j, 0x83);
	modrm_mem(j, 7, R12, offsetof(struct vm_run, depth));
	emit1(j, 0);
	nested = jcc_fwd(j, CC_NE);
	jmp_to(j, -1, j->epilogue);
	jcc_here(j, nested);
	emit1(j, 0xc3);
}

static void emit_jcc(struct jit *j, const struct ebpf_insn *in, int32_t target, bool invert)
{
	static const int8_t cc[16] = {
		[EBPF_JEQ >> 4] = CC_E,	  [EBPF_JNE >> 4] = CC_NE, [EBPF_JGT >> 4] = CC_A,
		[EBPF_JGE >> 4] = CC_AE,  [EBPF_JLT >> 4] = CC_B,  [EBPF_JLE >> 4] = CC_BE,
		[EBPF_JSGT >> 4] = CC_G,  [EBPF_JSGE >> 4] = CC_GE, [EBPF_JSLT >> 4] = CC_L,
		[EBPF_JSLE >> 4] = CC_LE, [EBPF_JSET >> 4] = CC_NE,
	};
	bool w = EBPF_CLASS(in->code) == EBPF_CLS_JMP;
	bool reg = EBPF_SRC(in->code) == EBPF_X;
	int dst = reg_map[in->dst], src = reg_map[in->src];
	uint8_t op = EBPF_OP(in->code);

	if (op == EBPF_JSET) {
		if (reg) {
			alu_rr(j, 0x85, w, dst, src);
		} else {
			/* test r/m, imm32 */
			rex(j, w, 0, dst, false);
			emit1(j, 0xf7);
			modrm_reg(j, 0, dst);
			emit4(j, (uint32_t)in->imm);
		}
	} else if (reg) {
		alu_rr(j, 0x39, w, dst, src);
	} else if (!in->imm) {
		/* test r, r: the flags of cmp r, 0 (CF and OF clear), in fewer bytes */
		alu_rr(j, 0x85, w, dst, dst);
	} else {
		alu_ri(j, 7, w, dst, in->imm);
	}
	jmp_insn(j, invert ? cc[op >> 4] ^ 1 : cc[op >> 4], target);
}

/*
 * Pairs of instructions that x86 does in one; the second must not be a jump
 * target. Returns true when pc and pc + 1 were emitted together.
 */
static bool emit_fused(struct jit *j, uint32_t pc)
{
	const struct ebpf_insn *a = &j->vm->insns[pc], *b = a + 1;
	const struct vm_op *op = &j->vm->ops[pc];

	if (pc + 1 >= j->vm->insn_cnt || j->is_target[pc + 1])
		return false;

	/* mov d, s; add d, x|imm  ->  lea d, [s + x|imm] */
	if (a->code == (EBPF_CLS_ALU64 | EBPF_MOV | EBPF_X) && !a->off &&
	    (b->code == (EBPF_CLS_ALU64 | EBPF_ADD | EBPF_X) ||
	     b->code == (EBPF_CLS_ALU64 | EBPF_ADD | EBPF_K)) &&
	    b->dst == a->dst && a->src != EBPF_REG_FP && a->dst != a->src &&
	    (EBPF_SRC(b->code) == EBPF_K || (b->src != a->dst && b->src != EBPF_REG_FP))) {
		int d = reg_map[a->dst], base = reg_map[a->src];

		if (EBPF_SRC(b->code) == EBPF_X) {
			int index = reg_map[b->src];

			/*
			 * lea d, [base + index]: two components, no displacement
			 * (a 3-component lea is slower). rbp/r13 as base need a
			 * displacement, so swap them into the index.
			 */
			if ((base & 7) == RBP) {
				int t = base;

				base = index;
				index = t;
			}
			if ((base & 7) == RBP) {
				mov_rr(j, true, d, base);
				alu_rr(j, 0x01, true, d, index);
				return true;
			}
			emit1(j, (uint8_t)(0x48 | ((d & 8) ? 4 : 0) | ((index & 8) ? 2 : 0) |
					   ((base & 8) ? 1 : 0)));
			emit1(j, 0x8d);
			emit1(j, (uint8_t)(0x04 | (d & 7) << 3));
			emit1(j, (uint8_t)((index & 7) << 3 | (base & 7)));
		} else {
			rex(j, true, d, base, false);
			emit1(j, 0x8d);
			modrm_mem(j, d, base, b->imm);
		}
		return true;
	}

	/* jcc +1; ja T  ->  j!cc T */
	if (op->kind >= VM_OP_JEQ64_IMM && op->kind <= VM_OP_JSLE32_REG &&
	    op->off == (int32_t)pc + 2 && j->vm->ops[pc + 1].kind == VM_OP_JA) {
		emit_jcc(j, a, j->vm->ops[pc + 1].off, true);
		return true;
	}
	return false;
}

static int emit_insn(struct jit *j, uint32_t pc, const struct ebpf_insn *in,
		     const struct vm_op *op)
{
	int size = size_bytes(in->code);
	int dst = reg_map[in->dst], src = reg_map[in->src];

	switch (EBPF_CLASS(in->code)) {
	case EBPF_CLS_ALU:
	case EBPF_CLS_ALU64:
		return emit_alu(j, pc, in);
	case EBPF_CLS_LD:
		mov_ri64(j, dst, op->imm);
		return 0;
	case EBPF_CLS_LDX:
		emit_mem_check(j, pc, src, in->off, size, false);
		emit_load(j, size, EBPF_MODE(in->code) == EBPF_MEMSX, dst, src, in->off);
		return 0;
	case EBPF_CLS_ST:
		emit_mem_check(j, pc, dst, in->off, size, true);
		emit_store_imm(j, size, dst, in->off, in->imm);
		return 0;
	case EBPF_CLS_STX:
		if (EBPF_MODE(in->code) == EBPF_ATOMIC) {
			emit_atomic(j, pc, in);
			return 0;
		}
		emit_mem_check(j, pc, dst, in->off, size, true);
		emit_store_reg(j, size, dst, in->off, src);
		return 0;
	}

	switch (op->kind) {
	case VM_OP_JA:
		jmp_insn(j, -1, op->off);
		return 0;
	case VM_OP_EXIT:
		emit_exit(j);
		return 0;
	case VM_OP_CALL_HELPER:
		emit_helper_call(j, (uintptr_t)j->vm->helpers[op->imm].fn);
		if ((int64_t)op->imm == j->vm->unwind_helper)
			emit_unwind_check(j);
		return 0;
	case VM_OP_CALLX:
		emit_callx(j, pc, dst);
		return 0;
	case VM_OP_CALL_LOCAL:
		emit_local_call(j, pc, op->off);
		return 0;
	default:
		emit_jcc(j, in, op->off, false);
		return 0;
	}
}

/*
 * What every entry does first: save the callee-saved registers, keep the
 * struct vm_run (third argument) in r12, make room for the eBPF frames and
 * point r10 at the top one.
 */
static void emit_frame(struct jit *j)
{
	static const int saved[] = { RBP, RBX, R12, R13, R14, R15 };

	for (size_t i = 0; i < 6; i++)
		push(j, saved[i]);
	mov_rr(j, true, R12, RDX);
	alu_ri(j, 5, true, RSP, FRAME_BYTES);
	rex(j, true, RSP, R12, false);
	emit1(j, 0x89);
	modrm_mem(j, RSP, R12, offsetof(struct vm_run, saved_rsp));
	/* lea rbp, [rsp + STACK_BYTES] */
	rex(j, true, RBP, RSP, false);
	emit1(j, 0x8d);
	modrm_mem(j, RBP, RSP, STACK_BYTES);
}

static void emit_prologue(struct jit *j)
{
	emit_frame(j);
	/* r0 and r3-r9 start at zero, as in the interpreter */
	alu_rr(j, 0x31, false, RAX, RAX);
	alu_rr(j, 0x31, false, RDX, RDX);
	alu_rr(j, 0x31, false, RCX, RCX);
	alu_rr(j, 0x31, false, R8, R8);
	alu_rr(j, 0x31, false, RBX, RBX);
	alu_rr(j, 0x31, false, R13, R13);
	alu_rr(j, 0x31, false, R14, R14);
	alu_rr(j, 0x31, false, R15, R15);
}

static void emit_epilogue(struct jit *j)
{
	static const int saved[] = { RBP, RBX, R12, R13, R14, R15 };

	/* mov rsp, [r12 + saved_rsp]; add rsp, FRAME_BYTES */
	rex(j, true, RSP, R12, false);
	emit1(j, 0x8b);
	modrm_mem(j, RSP, R12, offsetof(struct vm_run, saved_rsp));
	alu_ri(j, 0, true, RSP, FRAME_BYTES);
	for (size_t i = 6; i-- > 0;)
		pop(j, saved[i]);
	emit1(j, 0xc3);
}

/*
 * The entry that runs one function of the program (vm__exec_func):
 * called as fn(args, target, run), it builds the same frame as the prologue,
 * loads r1-r5 from args and jumps to the function's code. The function's
 * exit at depth 0 leaves through the common epilogue.
 */
static void emit_func_entry(struct jit *j)
{
	static const int arg_regs[] = { RDI, RSI, RDX, RCX, R8 };

	emit_frame(j);
	mov_rr(j, true, R11, RSI);
	mov_rr(j, true, R10, RDI);
	for (size_t i = 0; i < 5; i++) {
		/* mov arg_regs[i], [r10 + 8 * i] */
		rex(j, true, arg_regs[i], R10, false);
		emit1(j, 0x8b);
		modrm_mem(j, arg_regs[i], R10, (int32_t)(8 * i));
	}
	alu_rr(j, 0x31, false, RAX, RAX);
	alu_rr(j, 0x31, false, RBX, RBX);
	alu_rr(j, 0x31, false, R13, R13);
	alu_rr(j, 0x31, false, R14, R14);
	alu_rr(j, 0x31, false, R15, R15);
	emit2(j, 0x41, 0xff);
	modrm_reg(j, 4, R11); /* jmp r11 */
}

/*
 * Copies: within a straight run of code (forgotten at every jump target
 * and every call), which register holds what another holds, so that a
 * move that would copy what is already there emits nothing (clang's BPF
 * code repeats `r0 = r2` on each path out of a loop body).
 */
static void copies_forget_all(struct jit *j)
{
	memset(j->copy_of, -1, sizeof(j->copy_of));
}

/* r is written: it equals nothing it did, and nothing equals it. */
static void copies_forget(struct jit *j, int r)
{
	j->copy_of[r] = -1;
	for (int k = 0; k <= EBPF_REG_FP; k++)
		if (j->copy_of[k] == r)
			j->copy_of[k] = -1;
}

static bool is_mov64_reg(const struct ebpf_insn *in)
{
	return in->code == (EBPF_CLS_ALU64 | EBPF_MOV | EBPF_X) && !in->off;
}

static bool copy_redundant(const struct jit *j, const struct ebpf_insn *in)
{
	return is_mov64_reg(in) &&
	       (in->dst == in->src || j->copy_of[in->dst] == in->src ||
		j->copy_of[in->src] == in->dst);
}

/* What one instruction does to the registers' known copies. */
static void copies_after(struct jit *j, const struct ebpf_insn *in)
{
	switch (EBPF_CLASS(in->code)) {
	case EBPF_CLS_ALU:
	case EBPF_CLS_ALU64:
		if (copy_redundant(j, in))
			return;
		copies_forget(j, in->dst);
		if (is_mov64_reg(in))
			j->copy_of[in->dst] = (int8_t)in->src;
		return;
	case EBPF_CLS_LD:
	case EBPF_CLS_LDX:
		copies_forget(j, in->dst);
		return;
	case EBPF_CLS_STX:
		if (EBPF_MODE(in->code) == EBPF_ATOMIC) {
			copies_forget(j, in->dst); /* load-acquire */
			copies_forget(j, in->src); /* fetch */
			copies_forget(j, 0);	   /* cmpxchg */
		}
		return;
	case EBPF_CLS_JMP:
		if (EBPF_OP(in->code) == EBPF_CALL)
			copies_forget_all(j);
		return;
	default:
		return;
	}
}

/*
 * One instruction, where it stands or (a move) after the jump it was
 * carried over: nothing when it copies what is there already.
 */
static int emit_tracked(struct jit *j, uint32_t pc)
{
	const struct ebpf_insn *in = &j->vm->insns[pc];
	int r;

	if (copy_redundant(j, in))
		return 0;
	r = emit_insn(j, pc, in, &j->vm->ops[pc]);
	if (r == 0)
		copies_after(j, in);
	return r;
}

static int jit_pass(struct jit *j)
{
	const struct vm *vm = j->vm;
	int r;

	j->len = 0;
	emit_prologue(j);
	for (uint32_t pc = 0; pc < vm->insn_cnt; pc++) {
		j->new_addrs[pc] = (uint32_t)j->len;
		if (vm->ops[pc].kind == VM_OP_INVALID) {
			/* the second half of an lddw: no code */
			continue;
		}
		if (j->is_target[pc] || pc == 0)
			copies_forget_all(j);
		if (j->is_target[pc] & TARGET_LOOP) {
			align_loop(j);
			j->new_addrs[pc] = (uint32_t)j->len;
		}
		if (j->sink_to[pc])
			continue;
		if (!copy_redundant(j, &vm->insns[pc]) && emit_fused(j, pc)) {
			copies_after(j, &vm->insns[pc]);
			copies_after(j, &vm->insns[pc + 1]);
			j->new_addrs[++pc] = (uint32_t)j->len;
			continue;
		}
		r = emit_tracked(j, pc);
		if (r == 0 && j->sink_from[pc])
			r = emit_tracked(j, j->sink_from[pc] - 1);
		if (r < 0)
			return r;
	}
	j->new_epilogue = (uint32_t)j->len;
	emit_epilogue(j);
	j->func_entry = (uint32_t)j->len;
	emit_func_entry(j);
	return j->oom ? vm_error((struct vm *)vm, ENOMEM, "out of memory compiling") : 0;
}

int vm_jit_compile(struct vm *vm)
{
	struct jit j = { .vm = vm, .first_pass = true };
	bool settled;
	void *code;
	int r = 0;

	j.checked = vm->mem_check_fn != vm_mem_allow_all;
	j.addrs = calloc(vm->insn_cnt, sizeof(*j.addrs));
	j.new_addrs = calloc(vm->insn_cnt, sizeof(*j.new_addrs));
	j.is_target = calloc(vm->insn_cnt, 1);
	if (!j.addrs || !j.new_addrs || !j.is_target) {
		r = vm_error(vm, ENOMEM, "out of memory compiling");
		goto out;
	}
	for (uint32_t pc = 0; pc < vm->insn_cnt; pc++) {
		const struct vm_op *op = &vm->ops[pc];
		bool jump = op->kind >= VM_OP_JA && op->kind <= VM_OP_JSLE32_REG;

		if (jump || op->kind == VM_OP_CALL_LOCAL ||
		    (op->kind == VM_OP_LDDW && vm->insns[pc].src == EBPF_PSEUDO_FUNC))
			j.is_target[op->off] |= TARGET;
		if (jump && op->off <= (int32_t)pc)
			j.is_target[op->off] |= TARGET_LOOP;
	}
	if (vm_plan_sinks(vm, j.is_target, &j.sink_to, &j.sink_from) < 0) {
		r = vm_error(vm, ENOMEM, "out of memory compiling");
		goto out;
	}
	/*
	 * Pass 1 uses only long jumps; later passes shorten the jumps whose
	 * distance, measured in the previous pass, fits in 8 bits. The image is
	 * final when a pass lays every instruction where the previous one did,
	 * so every jump was computed from the true addresses.
	 */
	for (int pass = 0;; pass++) {
		r = jit_pass(&j);
		if (r < 0)
			goto out;
		settled = !memcmp(j.addrs, j.new_addrs, vm->insn_cnt * sizeof(*j.addrs)) &&
			  j.epilogue == j.new_epilogue;
		memcpy(j.addrs, j.new_addrs, vm->insn_cnt * sizeof(*j.addrs));
		j.epilogue = j.new_epilogue;
		if (settled)
			break;
		/* Should short jumps keep moving, long jumps everywhere settle in two. */
		j.first_pass = pass >= 16;
	}
	code = mmap(NULL, j.len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (code == MAP_FAILED) {
		r = vm_error(vm, errno, "cannot map %zu bytes of JIT code", j.len);
		goto out;
	}
	memcpy(code, j.buf, j.len);
	if (mprotect(code, j.len, PROT_READ | PROT_EXEC) < 0) {
		r = vm_error(vm, errno, "cannot make JIT code executable");
		munmap(code, j.len);
		goto out;
	}
	vm->jit_code = code;
	vm->jit_size = j.len;
	vm->jit_addrs = j.addrs;
	vm->jit_func_entry = j.func_entry;
	j.addrs = NULL;
out:
	free(j.buf);
	free(j.addrs);
	free(j.new_addrs);
	free(j.is_target);
	free(j.sink_to);
	free(j.sink_from);
	return r;
}

void vm_jit_free(struct vm *vm)
{
	if (vm->jit_code)
		munmap(vm->jit_code, vm->jit_size);
	free(vm->jit_addrs);
	vm->jit_code = NULL;
	vm->jit_size = 0;
	vm->jit_addrs = NULL;
}

typedef uint64_t (*jit_fn)(uint64_t r1, uint64_t r2, struct vm_run *run);
typedef uint64_t (*jit_func_fn)(const uint64_t *args, uintptr_t target, struct vm_run *run);

static __attribute__((noinline, cold)) int jit_fault(const struct vm_run *run,
						     struct vm_fault *fault)
{
	switch (run->err) {
	case JIT_FAULT_MEM:
		/* jit_check already described the access */
		errno = EFAULT;
		return -EFAULT;
	case JIT_FAULT_CALLX:
		return vm_fault_set(fault, run->fault_pc, ENOENT, "callx to unregistered helper");
	case JIT_FAULT_DEPTH:
		return vm_fault_set(fault, run->fault_pc, E2BIG, "call depth exceeds %d frames",
				    VM_MAX_FRAMES);
	case JIT_FAULT_ALIGN:
		return vm_fault_set(fault, run->fault_pc, EFAULT, "misaligned atomic access");
	default:
		return vm_fault_set(fault, run->fault_pc, EINVAL, "JIT code stopped (fault %d)",
				    run->err);
	}
}

int vm_jit_exec_main(const struct vm *vm, void *ctx, size_t ctx_len, uint64_t *ret,
		     struct vm_fault *fault)
{
	struct vm_run run = {
		.vm = vm,
		.ctx_lo = (uintptr_t)ctx,
		.ctx_hi = (uintptr_t)ctx + (ctx ? ctx_len : 0),
		.fault = fault,
	};
	uint64_t r0 = ((jit_fn)vm->jit_code)((uintptr_t)ctx, ctx_len, &run);

	if (__builtin_expect(run.err != JIT_FAULT_NONE, 0))
		return jit_fault(&run, fault);
	*ret = r0;
	return 0;
}

int vm_jit_exec(const struct vm *vm, uint32_t entry, const uint64_t args[5], const void *ctx,
		size_t ctx_len, uint64_t *ret, struct vm_fault *fault)
{
	struct vm_run run = {
		.vm = vm,
		.ctx_lo = (uintptr_t)ctx,
		.ctx_hi = (uintptr_t)ctx + (ctx ? ctx_len : 0),
		.fault = fault,
	};
	uint8_t *code = vm->jit_code;
	uint64_t r0;

	r0 = ((jit_func_fn)(code + vm->jit_func_entry))(
		args, (uintptr_t)(code + vm->jit_addrs[entry]), &run);
	if (__builtin_expect(run.err != JIT_FAULT_NONE, 0))
		return jit_fault(&run, fault);
	*ret = r0;
	return 0;
}

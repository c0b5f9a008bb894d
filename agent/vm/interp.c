// SPDX-License-Identifier: MIT
/*
 * The reference interpreter: computed-goto dispatch over the pre-decoded
 * program. Semantics follow RFC 9669 and the kernel exactly (x/0 = 0,
 * x%0 = x, INT_MIN/-1 = INT_MIN, masked shift counts, 32-bit results
 * zero-extended). All arithmetic is done on unsigned types so the C code has
 * no undefined behaviour. Memory accesses are checked: the stack frames and
 * the context are always allowed, anything else only when the memory-check
 * callback agrees.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "vm-private.h"

struct frame {
	uint32_t ret_pc;
	uint64_t saved[4]; /* r6-r9 of the caller */
	uint64_t fp;
};

static inline uint64_t sdiv64(uint64_t a, uint64_t b)
{
	if (b == 0)
		return 0;
	if (b == UINT64_MAX)
		return 0 - a;
	return (uint64_t)((int64_t)a / (int64_t)b);
}

static inline uint64_t smod64(uint64_t a, uint64_t b)
{
	if (b == 0)
		return a;
	if (b == UINT64_MAX)
		return 0;
	return (uint64_t)((int64_t)a % (int64_t)b);
}

static inline uint32_t sdiv32(uint32_t a, uint32_t b)
{
	if (b == 0)
		return 0;
	if (b == UINT32_MAX)
		return 0 - a;
	return (uint32_t)((int32_t)a / (int32_t)b);
}

static inline uint32_t smod32(uint32_t a, uint32_t b)
{
	if (b == 0)
		return a;
	if (b == UINT32_MAX)
		return 0;
	return (uint32_t)((int32_t)a % (int32_t)b);
}

int vm_interpret(const struct vm *vm, uint32_t entry, const uint64_t args[5], const void *ctx,
		 size_t ctx_len, uint64_t *ret, struct vm_fault *fault_out)
{
	static const void *const dispatch[VM_OP__COUNT] = {
#define VM_OP_LABEL(name) [VM_OP_##name] = &&op_##name,
		VM_OPS(VM_OP_LABEL)
#undef VM_OP_LABEL
	};
	uint8_t stack[VM_MAX_FRAMES * EBPF_STACK_SIZE] __attribute__((aligned(16)));
	struct frame frames[VM_MAX_FRAMES];
	unsigned int depth = 0;
	const struct vm_op *const ops = vm->ops;
	const struct vm_op *op = ops + entry;
	struct vm_run rs = {
		.vm = vm,
		.fault = fault_out,
		.stack_lo = (uintptr_t)stack,
		.stack_hi = (uintptr_t)stack + sizeof(stack),
		.ctx_lo = (uintptr_t)ctx,
		.ctx_hi = (uintptr_t)ctx + (ctx ? ctx_len : 0),
	};
	uint64_t reg[EBPF_NR_REGS] = { 0 };
	uint64_t addr, val;

	memcpy(&reg[1], args, 5 * sizeof(reg[1]));
	reg[EBPF_REG_FP] = rs.stack_hi;

#define PC ((uint32_t)(op - ops))
#define DST reg[op->dst]
#define SRC reg[op->src]
#define IMM op->imm
#define NEXT goto *dispatch[(++op)->kind]
#define JUMP_IF(cond)                                                                              \
	do {                                                                                       \
		if (cond) {                                                                        \
			op = ops + op->off;                                                        \
			goto *dispatch[op->kind];                                                  \
		}                                                                                  \
		NEXT;                                                                              \
	} while (0)
#define CHECK_MEM(a, size, write)                                                                  \
	do {                                                                                       \
		if (__builtin_expect(!vm_mem_ok(&rs, PC, (a), (size), (write)), 0))                \
			return -EFAULT;                                                            \
	} while (0)
#define LOAD(type, ext)                                                                            \
	do {                                                                                       \
		type v_;                                                                           \
		addr = SRC + (uint64_t)(int64_t)op->off;                                           \
		CHECK_MEM(addr, sizeof(type), false);                                              \
		__builtin_memcpy(&v_, (const void *)(uintptr_t)addr, sizeof(type));                \
		DST = (uint64_t)(ext)v_;                                                           \
		NEXT;                                                                              \
	} while (0)
#define STORE(type, value)                                                                         \
	do {                                                                                       \
		type v_ = (type)(value);                                                           \
		addr = DST + (uint64_t)(int64_t)op->off;                                           \
		CHECK_MEM(addr, sizeof(type), true);                                               \
		__builtin_memcpy((void *)(uintptr_t)addr, &v_, sizeof(type));                      \
		NEXT;                                                                              \
	} while (0)
#define ATOMIC_ADDR(type)                                                                          \
	do {                                                                                       \
		addr = DST + (uint64_t)(int64_t)op->off;                                           \
		CHECK_MEM(addr, sizeof(type), true);                                               \
		if (addr % sizeof(type))                                                           \
			return vm_fault_set(fault_out, PC, EFAULT,                                        \
				     "misaligned atomic access at 0x%llx",                         \
				     (unsigned long long)addr);                                    \
	} while (0)
#define ATOMIC_RMW(type, fn, fetch)                                                                \
	do {                                                                                       \
		ATOMIC_ADDR(type);                                                                 \
		val = fn((type *)(uintptr_t)addr, (type)SRC, __ATOMIC_SEQ_CST);                    \
		if (fetch)                                                                         \
			SRC = (type)val;                                                           \
		NEXT;                                                                              \
	} while (0)
#define ALU_OPS(W, T)                                                                              \
	op_ADD##W##_IMM : DST = (T)(DST + IMM);                                                    \
	NEXT;                                                                                      \
	op_ADD##W##_REG : DST = (T)(DST + SRC);                                                    \
	NEXT;                                                                                      \
	op_SUB##W##_IMM : DST = (T)(DST - IMM);                                                    \
	NEXT;                                                                                      \
	op_SUB##W##_REG : DST = (T)(DST - SRC);                                                    \
	NEXT;                                                                                      \
	op_MUL##W##_IMM : DST = (T)((T)DST * (T)IMM);                                              \
	NEXT;                                                                                      \
	op_MUL##W##_REG : DST = (T)((T)DST * (T)SRC);                                              \
	NEXT;                                                                                      \
	op_DIV##W##_IMM : DST = (T)IMM ? (T)DST / (T)IMM : 0;                                      \
	NEXT;                                                                                      \
	op_DIV##W##_REG : DST = (T)SRC ? (T)DST / (T)SRC : 0;                                      \
	NEXT;                                                                                      \
	op_SDIV##W##_IMM : DST = sdiv##W((T)DST, (T)IMM);                                          \
	NEXT;                                                                                      \
	op_SDIV##W##_REG : DST = sdiv##W((T)DST, (T)SRC);                                          \
	NEXT;                                                                                      \
	op_MOD##W##_IMM : DST = (T)IMM ? (T)DST % (T)IMM : (T)DST;                                 \
	NEXT;                                                                                      \
	op_MOD##W##_REG : DST = (T)SRC ? (T)DST % (T)SRC : (T)DST;                                 \
	NEXT;                                                                                      \
	op_SMOD##W##_IMM : DST = smod##W((T)DST, (T)IMM);                                          \
	NEXT;                                                                                      \
	op_SMOD##W##_REG : DST = smod##W((T)DST, (T)SRC);                                          \
	NEXT;                                                                                      \
	op_OR##W##_IMM : DST = (T)(DST | IMM);                                                     \
	NEXT;                                                                                      \
	op_OR##W##_REG : DST = (T)(DST | SRC);                                                     \
	NEXT;                                                                                      \
	op_AND##W##_IMM : DST = (T)(DST & IMM);                                                    \
	NEXT;                                                                                      \
	op_AND##W##_REG : DST = (T)(DST & SRC);                                                    \
	NEXT;                                                                                      \
	op_XOR##W##_IMM : DST = (T)(DST ^ IMM);                                                    \
	NEXT;                                                                                      \
	op_XOR##W##_REG : DST = (T)(DST ^ SRC);                                                    \
	NEXT;                                                                                      \
	op_LSH##W##_IMM : DST = (T)((T)DST << (IMM & (W - 1)));                                    \
	NEXT;                                                                                      \
	op_LSH##W##_REG : DST = (T)((T)DST << (SRC & (W - 1)));                                    \
	NEXT;                                                                                      \
	op_RSH##W##_IMM : DST = (T)DST >> (IMM & (W - 1));                                         \
	NEXT;                                                                                      \
	op_RSH##W##_REG : DST = (T)DST >> (SRC & (W - 1));                                         \
	NEXT;                                                                                      \
	op_ARSH##W##_IMM : DST = (T)((int##W##_t)(T)DST >> (IMM & (W - 1)));                      \
	NEXT;                                                                                      \
	op_ARSH##W##_REG : DST = (T)((int##W##_t)(T)DST >> (SRC & (W - 1)));                      \
	NEXT;                                                                                      \
	op_MOV##W##_REG : DST = (T)SRC;                                                            \
	NEXT;                                                                                      \
	op_NEG##W : DST = (T)(0 - (T)DST);                                                         \
	NEXT;
#define JMP_OPS(W, T, S)                                                                           \
	op_JEQ##W##_IMM : JUMP_IF((T)DST == (T)IMM);                                               \
	op_JEQ##W##_REG : JUMP_IF((T)DST == (T)SRC);                                               \
	op_JNE##W##_IMM : JUMP_IF((T)DST != (T)IMM);                                               \
	op_JNE##W##_REG : JUMP_IF((T)DST != (T)SRC);                                               \
	op_JGT##W##_IMM : JUMP_IF((T)DST > (T)IMM);                                                \
	op_JGT##W##_REG : JUMP_IF((T)DST > (T)SRC);                                                \
	op_JGE##W##_IMM : JUMP_IF((T)DST >= (T)IMM);                                               \
	op_JGE##W##_REG : JUMP_IF((T)DST >= (T)SRC);                                               \
	op_JLT##W##_IMM : JUMP_IF((T)DST < (T)IMM);                                                \
	op_JLT##W##_REG : JUMP_IF((T)DST < (T)SRC);                                                \
	op_JLE##W##_IMM : JUMP_IF((T)DST <= (T)IMM);                                               \
	op_JLE##W##_REG : JUMP_IF((T)DST <= (T)SRC);                                               \
	op_JSET##W##_IMM : JUMP_IF((T)DST & (T)IMM);                                               \
	op_JSET##W##_REG : JUMP_IF((T)DST & (T)SRC);                                               \
	op_JSGT##W##_IMM : JUMP_IF((S)DST > (S)IMM);                                               \
	op_JSGT##W##_REG : JUMP_IF((S)DST > (S)SRC);                                               \
	op_JSGE##W##_IMM : JUMP_IF((S)DST >= (S)IMM);                                              \
	op_JSGE##W##_REG : JUMP_IF((S)DST >= (S)SRC);                                              \
	op_JSLT##W##_IMM : JUMP_IF((S)DST < (S)IMM);                                               \
	op_JSLT##W##_REG : JUMP_IF((S)DST < (S)SRC);                                               \
	op_JSLE##W##_IMM : JUMP_IF((S)DST <= (S)IMM);                                              \
	op_JSLE##W##_REG : JUMP_IF((S)DST <= (S)SRC);
#define MEM_OPS(S, T)                                                                              \
	op_LDX_##S : LOAD(T, T);                                                                   \
	op_ST_##S : STORE(T, IMM);                                                                 \
	op_STX_##S : STORE(T, SRC);                                                                \
	op_LOAD_ACQ_##S : addr = SRC + (uint64_t)(int64_t)op->off;                                 \
	CHECK_MEM(addr, sizeof(T), false);                                                         \
	if (addr % sizeof(T))                                                                      \
		return vm_fault_set(fault_out, PC, EFAULT, "misaligned load-acquire at 0x%llx",           \
			     (unsigned long long)addr);                                            \
	DST = __atomic_load_n((T *)(uintptr_t)addr, __ATOMIC_ACQUIRE);                             \
	NEXT;                                                                                      \
	op_STORE_REL_##S : ATOMIC_ADDR(T);                                                         \
	__atomic_store_n((T *)(uintptr_t)addr, (T)SRC, __ATOMIC_RELEASE);                          \
	NEXT;
#define ATOMIC_OPS(W, T)                                                                           \
	op_ATOMIC##W##_ADD : ATOMIC_RMW(T, __atomic_fetch_add, false);                             \
	op_ATOMIC##W##_OR : ATOMIC_RMW(T, __atomic_fetch_or, false);                               \
	op_ATOMIC##W##_AND : ATOMIC_RMW(T, __atomic_fetch_and, false);                             \
	op_ATOMIC##W##_XOR : ATOMIC_RMW(T, __atomic_fetch_xor, false);                             \
	op_ATOMIC##W##_FETCH_ADD : ATOMIC_RMW(T, __atomic_fetch_add, true);                        \
	op_ATOMIC##W##_FETCH_OR : ATOMIC_RMW(T, __atomic_fetch_or, true);                          \
	op_ATOMIC##W##_FETCH_AND : ATOMIC_RMW(T, __atomic_fetch_and, true);                        \
	op_ATOMIC##W##_FETCH_XOR : ATOMIC_RMW(T, __atomic_fetch_xor, true);                        \
	op_ATOMIC##W##_XCHG : ATOMIC_RMW(T, __atomic_exchange_n, true);                            \
	op_ATOMIC##W##_CMPXCHG : ATOMIC_ADDR(T);                                                   \
	{                                                                                          \
		T expected_ = (T)reg[0];                                                           \
		__atomic_compare_exchange_n((T *)(uintptr_t)addr, &expected_, (T)SRC, false,       \
					    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);                   \
		reg[0] = expected_;                                                                \
	}                                                                                          \
	NEXT;

	goto *dispatch[op->kind];

	ALU_OPS(64, uint64_t)
	ALU_OPS(32, uint32_t)
	JMP_OPS(64, uint64_t, int64_t)
	JMP_OPS(32, uint32_t, int32_t)
	MEM_OPS(B, uint8_t)
	MEM_OPS(H, uint16_t)
	MEM_OPS(W, uint32_t)
	MEM_OPS(DW, uint64_t)
	ATOMIC_OPS(32, uint32_t)
	ATOMIC_OPS(64, uint64_t)

op_MOV_IMM:
	DST = IMM;
	NEXT;
op_LDDW:
	DST = IMM;
	op += 2;
	goto *dispatch[op->kind];
op_MOVSX8_64:
	DST = (uint64_t)(int64_t)(int8_t)SRC;
	NEXT;
op_MOVSX16_64:
	DST = (uint64_t)(int64_t)(int16_t)SRC;
	NEXT;
op_MOVSX32_64:
	DST = (uint64_t)(int64_t)(int32_t)SRC;
	NEXT;
op_MOVSX8_32:
	DST = (uint32_t)(int32_t)(int8_t)SRC;
	NEXT;
op_MOVSX16_32:
	DST = (uint32_t)(int32_t)(int16_t)SRC;
	NEXT;
op_LE16:
	DST = (uint16_t)DST;
	NEXT;
op_LE32:
	DST = (uint32_t)DST;
	NEXT;
op_LE64:
	NEXT;
op_BE16:
op_BSWAP16:
	DST = __builtin_bswap16((uint16_t)DST);
	NEXT;
op_BE32:
op_BSWAP32:
	DST = __builtin_bswap32((uint32_t)DST);
	NEXT;
op_BE64:
op_BSWAP64:
	DST = __builtin_bswap64(DST);
	NEXT;
op_LDXS_B:
	LOAD(int8_t, int64_t);
op_LDXS_H:
	LOAD(int16_t, int64_t);
op_LDXS_W:
	LOAD(int32_t, int64_t);
op_JA:
	op = ops + op->off;
	goto *dispatch[op->kind];

op_CALLX:
	val = DST;
	if (val > VM_MAX_HELPER_ID || !vm->helpers[val].fn)
		return vm_fault_set(fault_out, PC, ENOENT, "callx to unregistered helper %llu",
			     (unsigned long long)val);
	goto call_helper;
op_CALL_HELPER:
	val = IMM;
call_helper:
	reg[0] = vm->helpers[val].fn(reg[1], reg[2], reg[3], reg[4], reg[5]);
	if ((int64_t)val == vm->unwind_helper && reg[0] == 0)
		goto done;
	NEXT;
op_CALL_LOCAL:
	if (depth + 1 >= VM_MAX_FRAMES)
		return vm_fault_set(fault_out, PC, E2BIG, "call depth exceeds %d frames", VM_MAX_FRAMES);
	frames[depth] = (struct frame){
		.ret_pc = PC + 1,
		.saved = { reg[6], reg[7], reg[8], reg[9] },
		.fp = reg[EBPF_REG_FP],
	};
	depth++;
	reg[EBPF_REG_FP] -= EBPF_STACK_SIZE;
	op = ops + op->off;
	goto *dispatch[op->kind];
op_EXIT:
	if (depth == 0)
		goto done;
	depth--;
	memcpy(&reg[6], frames[depth].saved, sizeof(frames[depth].saved));
	reg[EBPF_REG_FP] = frames[depth].fp;
	op = ops + frames[depth].ret_pc;
	goto *dispatch[op->kind];
op_INVALID:
	return vm_fault_set(fault_out, PC, EINVAL, "reached an instruction slot that is not code");
done:
	*ret = reg[0];
	return 0;

#undef PC
#undef DST
#undef SRC
#undef IMM
#undef NEXT
#undef JUMP_IF
#undef CHECK_MEM
#undef LOAD
#undef STORE
#undef ATOMIC_ADDR
#undef ATOMIC_RMW
#undef ALU_OPS
#undef JMP_OPS
#undef MEM_OPS
#undef ATOMIC_OPS
}

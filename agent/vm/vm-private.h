/* SPDX-License-Identifier: MIT */
/*
 * Internals of the VM shared by the loader (validation and pre-decoding) and
 * the interpreter. A loaded program is an array of struct vm_op, one per
 * eBPF instruction slot, so instruction indices stay the same in both forms;
 * the second slot of an lddw holds VM_OP_INVALID and is never reached.
 */
#ifndef BPFTIME_VM_PRIVATE_H
#define BPFTIME_VM_PRIVATE_H

#include "vm.h"

/*
 * Every operation the interpreter implements. ALU and JMP operations come in
 * _IMM (immediate pre-converted to the operation's width) and _REG forms.
 */
#define VM_ALU_OPS(X, W)                                                                   \
	X(ADD##W##_IMM) X(ADD##W##_REG) X(SUB##W##_IMM) X(SUB##W##_REG) X(MUL##W##_IMM)    \
	X(MUL##W##_REG) X(DIV##W##_IMM) X(DIV##W##_REG) X(SDIV##W##_IMM) X(SDIV##W##_REG)  \
	X(MOD##W##_IMM) X(MOD##W##_REG) X(SMOD##W##_IMM) X(SMOD##W##_REG) X(OR##W##_IMM)   \
	X(OR##W##_REG) X(AND##W##_IMM) X(AND##W##_REG) X(XOR##W##_IMM) X(XOR##W##_REG)     \
	X(LSH##W##_IMM) X(LSH##W##_REG) X(RSH##W##_IMM) X(RSH##W##_REG) X(ARSH##W##_IMM)   \
	X(ARSH##W##_REG) X(MOV##W##_REG) X(NEG##W)

#define VM_JMP_OPS(X, W)                                                                   \
	X(JEQ##W##_IMM) X(JEQ##W##_REG) X(JNE##W##_IMM) X(JNE##W##_REG) X(JGT##W##_IMM)    \
	X(JGT##W##_REG) X(JGE##W##_IMM) X(JGE##W##_REG) X(JLT##W##_IMM) X(JLT##W##_REG)    \
	X(JLE##W##_IMM) X(JLE##W##_REG) X(JSET##W##_IMM) X(JSET##W##_REG) X(JSGT##W##_IMM) \
	X(JSGT##W##_REG) X(JSGE##W##_IMM) X(JSGE##W##_REG) X(JSLT##W##_IMM)                \
	X(JSLT##W##_REG) X(JSLE##W##_IMM) X(JSLE##W##_REG)

#define VM_ATOMIC_OPS(X, W)                                                                \
	X(ATOMIC##W##_ADD) X(ATOMIC##W##_OR) X(ATOMIC##W##_AND) X(ATOMIC##W##_XOR)         \
	X(ATOMIC##W##_FETCH_ADD) X(ATOMIC##W##_FETCH_OR) X(ATOMIC##W##_FETCH_AND)          \
	X(ATOMIC##W##_FETCH_XOR) X(ATOMIC##W##_XCHG) X(ATOMIC##W##_CMPXCHG)

#define VM_MEM_OPS(X, S)                                                                   \
	X(LDX_##S) X(ST_##S) X(STX_##S) X(LOAD_ACQ_##S) X(STORE_REL_##S)

#define VM_OPS(X)                                                                          \
	X(INVALID)                                                                         \
	VM_ALU_OPS(X, 64) VM_ALU_OPS(X, 32) X(MOV_IMM) X(LDDW) X(MOVSX8_64) X(MOVSX16_64)          \
	X(MOVSX32_64) X(MOVSX8_32) X(MOVSX16_32) X(LE16) X(LE32) X(LE64) X(BE16) X(BE32)  \
	X(BE64) X(BSWAP16) X(BSWAP32) X(BSWAP64) VM_MEM_OPS(X, B) VM_MEM_OPS(X, H)         \
	VM_MEM_OPS(X, W) VM_MEM_OPS(X, DW) X(LDXS_B) X(LDXS_H) X(LDXS_W)                   \
	VM_ATOMIC_OPS(X, 32) VM_ATOMIC_OPS(X, 64) X(JA) VM_JMP_OPS(X, 64) VM_JMP_OPS(X, 32) \
	X(CALL_HELPER) X(CALL_LOCAL) X(CALLX) X(EXIT)

enum vm_op_kind {
#define VM_OP_ENUM(name) VM_OP_##name,
	VM_OPS(VM_OP_ENUM)
#undef VM_OP_ENUM
	VM_OP__COUNT
};

/* One pre-decoded instruction slot. */
struct vm_op {
	uint8_t kind;
	uint8_t dst;
	uint8_t src;
	uint8_t pad;
	/* Memory offset, or the absolute target of a jump or local call. */
	int32_t off;
	/* Immediate at the operation's width, lddw value, or helper id. */
	uint64_t imm;
};

/* The state of one run, shared by the interpreter and JIT-compiled code. */
struct vm_run {
	const struct vm *vm;
	uintptr_t stack_lo, stack_hi;
	uintptr_t ctx_lo, ctx_hi;
	struct vm_fault *fault;
	/* JIT only: rsp after the prologue, local call depth, why and where it stopped. */
	uint64_t saved_rsp;
	uint32_t depth;
	int err;
	uint32_t fault_pc;
};

static inline bool vm_in_range(uintptr_t lo, uintptr_t hi, uint64_t addr, uint64_t len)
{
	return addr >= lo && addr <= hi && len <= hi - addr;
}

struct vm_helper {
	vm_helper_fn fn;
	char *name;
};

struct vm {
	struct vm_helper helpers[VM_MAX_HELPER_ID + 1];
	int64_t unwind_helper;

	vm_lddw_fn lddw_fn;
	void *lddw_user;
	vm_mem_check_fn mem_check_fn;
	void *mem_check_user;

	struct ebpf_insn *insns;
	struct vm_op *ops;
	uint32_t insn_cnt;
	/* Instructions a function starts at (0, local call and lddw func targets). */
	uint8_t *func_entry;

	bool jit_enabled;
	void *jit_code;
	size_t jit_size;
	/* Code offset of each instruction, and of the entry that runs a function. */
	uint32_t *jit_addrs;
	uint32_t jit_func_entry;

	char errmsg[VM_ERRMSG_SIZE];
};

/* Formats the VM's error message and returns -err (errno set to err). */
int vm_error(struct vm *vm, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Validates insns and fills vm->ops; on failure vm->errmsg names the index. */
int vm_decode(struct vm *vm, const struct ebpf_insn *insns, uint32_t insn_cnt,
	      struct vm_op *ops);

/* Allows or refuses an access; a refusal is recorded in run->fault. */
bool vm_mem_ok(struct vm_run *run, uint32_t pc, uint64_t addr, uint64_t len, bool write);

/* Records a run-time fault; returns -err with errno set. */
int vm_fault_set(struct vm_fault *fault, uint32_t pc, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/*
 * Moves the JIT does after the conditional jump that follows them (sink.c):
 * to[pc] = q + 1 when the move at pc is done on the fall-through path of
 * the jump at q, its register being dead where q jumps to; from[q] = pc + 1
 * likewise. is_target marks the instructions something jumps or calls to.
 * Both arrays are the caller's to free; -ENOMEM.
 */
int vm_plan_sinks(const struct vm *vm, const uint8_t *is_target, uint32_t **to,
		  uint32_t **from);

/* Compiles the decoded program to x86-64 (vm->jit_code); -errno on failure. */
int vm_jit_compile(struct vm *vm);
void vm_jit_free(struct vm *vm);

/*
 * Both engines run the function starting at instruction entry (0: the
 * program) with r1-r5 = args; [ctx, ctx + ctx_len) is the context the
 * memory checks allow.
 */
int vm_jit_exec(const struct vm *vm, uint32_t entry, const uint64_t args[5], const void *ctx,
		size_t ctx_len, uint64_t *ret, struct vm_fault *fault);
/* The JIT's fast path for the program itself: r1 = ctx, r2 = ctx_len. */
int vm_jit_exec_main(const struct vm *vm, void *ctx, size_t ctx_len, uint64_t *ret,
		     struct vm_fault *fault);
int vm_interpret(const struct vm *vm, uint32_t entry, const uint64_t args[5], const void *ctx,
		 size_t ctx_len, uint64_t *ret, struct vm_fault *fault);

#endif

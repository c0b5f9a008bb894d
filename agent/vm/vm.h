/* SPDX-License-Identifier: MIT */
/*
 * vm — an eBPF virtual machine for RFC 9669 programs (ISA v1-v4).
 *
 * Contract:
 *  - vm__new() makes an empty VM; register helpers and callbacks, then
 *    vm__load() validates and pre-decodes a program once. Everything that can
 *    be refused is refused there, with the instruction index and the reason in
 *    vm__strerror(). A loaded program never crashes on the VM's account: stack
 *    and context accesses are bounds-checked, other memory is only touched when
 *    the memory-check callback allows it.
 *  - vm__exec() may run concurrently from many threads on one loaded VM; it
 *    reports run-time faults through its own struct vm_fault, never through
 *    the shared VM.
 *  - Functions return 0 or a negative errno (errno is set too); vm__new()
 *    returns NULL with errno set. Nothing here logs or allocates on exec.
 */
#ifndef BPFTIME_VM_H
#define BPFTIME_VM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ebpf.h"

/* Program limits: the kernel's instruction limit and call depth. */
#define VM_MAX_INSNS 1000000
#define VM_MAX_FRAMES 8
#define VM_MAX_HELPER_ID 1023
#define VM_ERRMSG_SIZE 256

struct vm;

/* A helper receives r1..r5 and returns r0, exactly like a kernel helper. */
typedef uint64_t (*vm_helper_fn)(uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4, uint64_t r5);

/*
 * Resolves an lddw pseudo form: src is 1 (map fd), 2 (map value), 3 (BTF id),
 * 5 (map index) or 6 (map index value); imm and next_imm are the two
 * immediates of the instruction pair. Stores the 64-bit value the
 * destination register receives; returns 0 or a negative errno.
 */
typedef int (*vm_lddw_fn)(void *user, unsigned int src, int32_t imm, int32_t next_imm,
			  uint64_t *value);

/*
 * Allows an access outside the program's stack and context: [addr, addr+len)
 * is about to be read or written. Return true to allow it.
 */
typedef bool (*vm_mem_check_fn)(void *user, uint64_t addr, uint64_t len, bool write);

/*
 * The memory check for programs the kernel verifier has accepted: every
 * access is allowed, and JIT-compiled code carries no checks at all.
 */
bool vm_mem_allow_all(void *user, uint64_t addr, uint64_t len, bool write);

/* Where and why a run stopped early. */
struct vm_fault {
	uint32_t pc;
	int err;
	char msg[VM_ERRMSG_SIZE];
};

struct vm *vm__new(void);
void vm__free(struct vm *vm);

/* Helpers and callbacks must be set before vm__load(). */
int vm__register_helper(struct vm *vm, uint32_t id, const char *name, vm_helper_fn fn);
const char *vm__helper_name(const struct vm *vm, uint32_t id);
/* A call to this helper that returns 0 ends the program with r0 = 0. */
int vm__set_unwind_helper(struct vm *vm, uint32_t id);
int vm__set_lddw_resolver(struct vm *vm, vm_lddw_fn fn, void *user);
int vm__set_mem_check(struct vm *vm, vm_mem_check_fn fn, void *user);

/*
 * Chooses the engine: the x86-64 JIT (the default where there is one) or the
 * interpreter, which stays the reference. Before vm__load().
 */
int vm__set_jit(struct vm *vm, bool enable);
bool vm__jit_enabled(const struct vm *vm);

/*
 * Validates and pre-decodes insn_cnt instructions (a copy is kept), then
 * compiles them when the JIT is on. lddw with src 4 (a function) loads the
 * absolute instruction index of that function.
 */
int vm__load(struct vm *vm, const struct ebpf_insn *insns, size_t insn_cnt);
/* The message of the last failed call on this VM (load, registration). */
const char *vm__strerror(const struct vm *vm);

/* Runs the loaded program with r1 = ctx, r2 = ctx_len; r0 goes to *ret. */
int vm__exec(const struct vm *vm, void *ctx, size_t ctx_len, uint64_t *ret,
	     struct vm_fault *fault);

/*
 * Runs one function of the loaded program, the one starting at instruction
 * pc (the value an lddw src 4 loads), with r1-r5 = args and a stack of its
 * own; r0 goes to *ret. For helpers that call back into the program, such as
 * bpf_loop: it may be called from inside a helper during a run. pc must be a
 * function entry (0, or the target of a local call or of an lddw src 4),
 * else -EINVAL. Outside that function's stack, the memory check decides
 * every access (the caller's stack and context included).
 */
int vm__exec_func(const struct vm *vm, uint32_t pc, const uint64_t args[5], uint64_t *ret,
		  struct vm_fault *fault);

#endif

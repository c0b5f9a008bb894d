/* SPDX-License-Identifier: MIT */
/*
 * What the VM unit tests share: programs are written as assembly text (the
 * syntax of tools/asm, where ".insn 0x..." gives a raw instruction word),
 * assembled, loaded on a fresh VM and run. A helper that cannot do its part
 * fails the current Criterion test, so test bodies state only what they check.
 *
 * The engine is the interpreter, the reference; VM_TEST_ENGINE=jit in the
 * environment runs the same tests on the JIT instead.
 */
#ifndef VM_TEST_UTIL_H
#define VM_TEST_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vm.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Called on a fresh VM before vm__load(): helpers, resolvers, memory checks. */
typedef void (*vt_setup_fn)(struct vm *vm);

/* Assembles text or fails the test; free() the result. */
struct ebpf_insn *vt_assemble(const char *text, size_t *cnt);

/* A fresh VM on the engine under test, set up by setup (may be NULL). */
struct vm *vt_new(vt_setup_fn setup);

/* Assembles and loads text on a fresh VM, failing the test on any error. */
struct vm *vt_load(const char *text, vt_setup_fn setup);

/* Runs a loaded program with r1 = mem, r2 = len; fails the test on a fault. */
uint64_t vt_exec(const struct vm *vm, void *mem, size_t len);

/* Assembles, loads and runs text; mem (if any) is given to the program as is. */
uint64_t vt_run(const char *text);
uint64_t vt_run_mem(const char *text, void *mem, size_t len);
uint64_t vt_run_setup(const char *text, vt_setup_fn setup, void *mem, size_t len);

/*
 * Like vt_run_setup() but never fails the test: returns 0 with *r0 set, or a
 * negative errno with the assembly, load or run-time message in msg.
 */
int vt_try_run(const char *text, vt_setup_fn setup, void *mem, size_t len, uint64_t *r0,
	       char msg[VM_ERRMSG_SIZE]);

/*
 * Loads a program that vm__load() must refuse: returns its negative errno and
 * copies vm__strerror() to msg. Fails the test if the program loads.
 */
int vt_load_error(const char *text, vt_setup_fn setup, char msg[VM_ERRMSG_SIZE]);
int vt_load_insns_error(const struct ebpf_insn *insns, size_t cnt, vt_setup_fn setup,
			char msg[VM_ERRMSG_SIZE]);

/*
 * Runs a program that loads but must fault: returns vm__exec()'s negative
 * errno with the fault in *fault. Fails the test if the run succeeds.
 */
int vt_exec_fault(const char *text, vt_setup_fn setup, void *mem, size_t len,
		  struct vm_fault *fault);

/* One instruction word as in a "-- raw" section or an ".insn" line. */
static inline struct ebpf_insn vt_insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off,
				       int32_t imm)
{
	return (struct ebpf_insn){ .code = code, .dst = dst, .src = src, .off = off, .imm = imm };
}

static inline uint64_t vt_insn_word(const struct ebpf_insn *in)
{
	return in->code | (uint64_t)in->dst << 8 | (uint64_t)in->src << 12 |
	       (uint64_t)(uint16_t)in->off << 16 | (uint64_t)(uint32_t)in->imm << 32;
}

#endif

// SPDX-License-Identifier: MIT
/* Assemble, load and run helpers for the VM unit tests (see vm-test-util.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "asm.h"
#include "vm-test-util.h"

static bool want_jit(void)
{
	const char *engine = getenv("VM_TEST_ENGINE");

	return engine && !strcmp(engine, "jit");
}

struct ebpf_insn *vt_assemble(const char *text, size_t *cnt)
{
	char err[ASM_ERRMSG_SIZE];
	struct ebpf_insn *insns = NULL;
	int r;

	r = asm__assemble(text, NULL, &insns, cnt, err);
	cr_assert_eq(r, 0, "cannot assemble: %s\n%s", err, text);
	return insns;
}

struct vm *vt_new(vt_setup_fn setup)
{
	struct vm *vm = vm__new();
	int r;

	cr_assert_not_null(vm, "vm__new: %s", strerror(errno));
	/* Pin the engine: the JIT is the library's default where there is one. */
	r = vm__set_jit(vm, want_jit());
	cr_assert_eq(r, 0, "vm__set_jit: %s", vm__strerror(vm));
	if (setup)
		setup(vm);
	return vm;
}

struct vm *vt_load(const char *text, vt_setup_fn setup)
{
	struct ebpf_insn *insns;
	struct vm *vm;
	size_t cnt;
	int r;

	insns = vt_assemble(text, &cnt);
	vm = vt_new(setup);
	r = vm__load(vm, insns, cnt);
	free(insns);
	cr_assert_eq(r, 0, "vm__load refused the program: %s\n%s", vm__strerror(vm), text);
	return vm;
}

uint64_t vt_exec(const struct vm *vm, void *mem, size_t len)
{
	struct vm_fault fault = { 0 };
	uint64_t r0 = 0;
	int r;

	r = vm__exec(vm, mem, len, &r0, &fault);
	cr_assert_eq(r, 0, "vm__exec faulted (%d): %s", r, fault.msg);
	return r0;
}

int vt_try_run(const char *text, vt_setup_fn setup, void *mem, size_t len, uint64_t *r0,
	       char msg[VM_ERRMSG_SIZE])
{
	char err[ASM_ERRMSG_SIZE];
	struct vm_fault fault = { 0 };
	struct ebpf_insn *insns;
	struct vm *vm;
	size_t cnt;
	int r;

	msg[0] = 0;
	r = asm__assemble(text, NULL, &insns, &cnt, err);
	if (r < 0) {
		snprintf(msg, VM_ERRMSG_SIZE, "assembly: %.240s", err);
		return r;
	}
	vm = vt_new(setup);
	r = vm__load(vm, insns, cnt);
	free(insns);
	if (r < 0) {
		snprintf(msg, VM_ERRMSG_SIZE, "load: %.240s", vm__strerror(vm));
	} else {
		r = vm__exec(vm, mem, len, r0, &fault);
		if (r < 0)
			snprintf(msg, VM_ERRMSG_SIZE, "run: %.240s", fault.msg);
	}
	vm__free(vm);
	return r;
}

uint64_t vt_run_setup(const char *text, vt_setup_fn setup, void *mem, size_t len)
{
	char msg[VM_ERRMSG_SIZE];
	uint64_t r0 = 0;
	int r;

	r = vt_try_run(text, setup, mem, len, &r0, msg);
	cr_assert_eq(r, 0, "%s\n%s", msg, text);
	return r0;
}

uint64_t vt_run(const char *text)
{
	return vt_run_setup(text, NULL, NULL, 0);
}

uint64_t vt_run_mem(const char *text, void *mem, size_t len)
{
	return vt_run_setup(text, NULL, mem, len);
}

int vt_load_insns_error(const struct ebpf_insn *insns, size_t cnt, vt_setup_fn setup,
			char msg[VM_ERRMSG_SIZE])
{
	struct vm *vm = vt_new(setup);
	int r;

	errno = 0;
	r = vm__load(vm, insns, cnt);
	/* The errno contract: a failed call sets errno to the error it returns. */
	if (r < 0)
		cr_expect_eq(errno, -r, "vm__load returned %d but errno is %d", r, errno);
	snprintf(msg, VM_ERRMSG_SIZE, "%s", vm__strerror(vm));
	vm__free(vm);
	cr_assert_lt(r, 0, "vm__load accepted a malformed program");
	return r;
}

int vt_load_error(const char *text, vt_setup_fn setup, char msg[VM_ERRMSG_SIZE])
{
	struct ebpf_insn *insns;
	size_t cnt;
	int r;

	insns = vt_assemble(text, &cnt);
	r = vt_load_insns_error(insns, cnt, setup, msg);
	free(insns);
	return r;
}

int vt_exec_fault(const char *text, vt_setup_fn setup, void *mem, size_t len,
		  struct vm_fault *fault)
{
	struct vm *vm = vt_load(text, setup);
	uint64_t r0 = 0;
	int r;

	memset(fault, 0, sizeof(*fault));
	r = vm__exec(vm, mem, len, &r0, fault);
	vm__free(vm);
	cr_assert_lt(r, 0, "the program ran to the end (r0 = 0x%llx) instead of faulting\n%s",
		     (unsigned long long)r0, text);
	return r;
}

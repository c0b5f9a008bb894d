// SPDX-License-Identifier: MIT
/* The VM object: lifetime, helper registration, callbacks, load and exec. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vm-private.h"

int vm_error(struct vm *vm, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(vm->errmsg, sizeof(vm->errmsg), fmt, ap);
	va_end(ap);
	errno = err;
	return -err;
}

int vm_fault_set(struct vm_fault *fault, uint32_t pc, int err, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (fault) {
		fault->pc = pc;
		fault->err = err;
		n = snprintf(fault->msg, sizeof(fault->msg), "insn %u: ", pc);
		va_start(ap, fmt);
		vsnprintf(fault->msg + n, sizeof(fault->msg) - (size_t)n, fmt, ap);
		va_end(ap);
	}
	errno = err;
	return -err;
}

bool vm_mem_ok(struct vm_run *run, uint32_t pc, uint64_t addr, uint64_t len, bool write)
{
	const struct vm *vm = run->vm;

	if (vm_in_range(run->stack_lo, run->stack_hi, addr, len) ||
	    vm_in_range(run->ctx_lo, run->ctx_hi, addr, len) ||
	    (vm->mem_check_fn && vm->mem_check_fn(vm->mem_check_user, addr, len, write)))
		return true;
	vm_fault_set(run->fault, pc, EFAULT,
		     "%s of %llu bytes at 0x%llx is outside the stack, the context and allowed "
		     "memory",
		     write ? "write" : "read", (unsigned long long)len, (unsigned long long)addr);
	return false;
}

bool vm_mem_allow_all(void *user, uint64_t addr, uint64_t len, bool write)
{
	return true;
}

struct vm *vm__new(void)
{
	struct vm *vm = calloc(1, sizeof(*vm));

	if (!vm)
		return NULL;
	vm->unwind_helper = -1;
#if defined(__x86_64__)
	vm->jit_enabled = true;
#endif
	return vm;
}

static void vm_unload(struct vm *vm)
{
	vm_jit_free(vm);
	free(vm->insns);
	free(vm->ops);
	free(vm->func_entry);
	vm->insns = NULL;
	vm->ops = NULL;
	vm->func_entry = NULL;
	vm->insn_cnt = 0;
}

void vm__free(struct vm *vm)
{
	if (!vm)
		return;
	vm_unload(vm);
	for (size_t i = 0; i <= VM_MAX_HELPER_ID; i++)
		free(vm->helpers[i].name);
	free(vm);
}

int vm__register_helper(struct vm *vm, uint32_t id, const char *name, vm_helper_fn fn)
{
	char *copy;

	if (id > VM_MAX_HELPER_ID)
		return vm_error(vm, EINVAL, "helper id %u is above %d", id, VM_MAX_HELPER_ID);
	if (!fn || !name)
		return vm_error(vm, EINVAL, "helper %u needs a function and a name", id);
	if (vm->ops)
		return vm_error(vm, EBUSY, "helpers must be registered before loading");
	copy = strdup(name);
	if (!copy)
		return vm_error(vm, ENOMEM, "out of memory");
	free(vm->helpers[id].name);
	vm->helpers[id] = (struct vm_helper){ .fn = fn, .name = copy };
	return 0;
}

const char *vm__helper_name(const struct vm *vm, uint32_t id)
{
	return id <= VM_MAX_HELPER_ID ? vm->helpers[id].name : NULL;
}

int vm__set_unwind_helper(struct vm *vm, uint32_t id)
{
	if (id > VM_MAX_HELPER_ID)
		return vm_error(vm, EINVAL, "helper id %u is above %d", id, VM_MAX_HELPER_ID);
	vm->unwind_helper = id;
	return 0;
}

int vm__set_lddw_resolver(struct vm *vm, vm_lddw_fn fn, void *user)
{
	vm->lddw_fn = fn;
	vm->lddw_user = user;
	return 0;
}

int vm__set_mem_check(struct vm *vm, vm_mem_check_fn fn, void *user)
{
	vm->mem_check_fn = fn;
	vm->mem_check_user = user;
	return 0;
}

int vm__set_jit(struct vm *vm, bool enable)
{
	if (vm->ops)
		return vm_error(vm, EBUSY, "the engine must be chosen before loading");
#if !defined(__x86_64__)
	if (enable)
		return vm_error(vm, ENOTSUP, "no JIT for this architecture");
#endif
	vm->jit_enabled = enable;
	return 0;
}

bool vm__jit_enabled(const struct vm *vm)
{
	return vm->jit_enabled;
}

int vm__load(struct vm *vm, const struct ebpf_insn *insns, size_t insn_cnt)
{
	struct ebpf_insn *copy;
	struct vm_op *ops;
	uint8_t *func_entry;
	int r;

	if (vm->ops)
		return vm_error(vm, EEXIST, "a program is already loaded");
	if (insn_cnt == 0)
		return vm_error(vm, EINVAL, "the program is empty");
	if (insn_cnt > VM_MAX_INSNS)
		return vm_error(vm, E2BIG, "too many instructions (%zu, at most %d)", insn_cnt,
				VM_MAX_INSNS);
	copy = malloc(insn_cnt * sizeof(*copy));
	ops = calloc(insn_cnt, sizeof(*ops));
	func_entry = calloc(insn_cnt, 1);
	if (!copy || !ops || !func_entry) {
		free(copy);
		free(ops);
		free(func_entry);
		return vm_error(vm, ENOMEM, "out of memory loading %zu instructions", insn_cnt);
	}
	memcpy(copy, insns, insn_cnt * sizeof(*copy));
	r = vm_decode(vm, copy, (uint32_t)insn_cnt, ops);
	if (r < 0) {
		free(copy);
		free(ops);
		free(func_entry);
		return r;
	}
	func_entry[0] = 1;
	for (size_t pc = 0; pc < insn_cnt; pc++)
		if (ops[pc].kind == VM_OP_CALL_LOCAL ||
		    (ops[pc].kind == VM_OP_LDDW && copy[pc].src == EBPF_PSEUDO_FUNC))
			func_entry[ops[pc].off] = 1;
	vm->insns = copy;
	vm->ops = ops;
	vm->func_entry = func_entry;
	vm->insn_cnt = (uint32_t)insn_cnt;
	if (vm->jit_enabled) {
		r = vm_jit_compile(vm);
		if (r < 0)
			vm_unload(vm);
	}
	return r;
}

const char *vm__strerror(const struct vm *vm)
{
	return vm->errmsg;
}

int vm__exec(const struct vm *vm, void *ctx, size_t ctx_len, uint64_t *ret,
	     struct vm_fault *fault)
{
	if (vm->jit_code)
		return vm_jit_exec_main(vm, ctx, ctx_len, ret, fault);
	if (!vm->ops) {
		if (fault)
			*fault = (struct vm_fault){ .err = ENOEXEC, .msg = "no program is loaded" };
		errno = ENOEXEC;
		return -ENOEXEC;
	}
	return vm_interpret(vm, 0, (const uint64_t[5]){ (uintptr_t)ctx, ctx_len }, ctx, ctx_len,
			    ret, fault);
}

int vm__exec_func(const struct vm *vm, uint32_t pc, const uint64_t args[5], uint64_t *ret,
		  struct vm_fault *fault)
{
	if (!vm->ops) {
		if (fault)
			*fault = (struct vm_fault){ .err = ENOEXEC, .msg = "no program is loaded" };
		errno = ENOEXEC;
		return -ENOEXEC;
	}
	if (pc >= vm->insn_cnt || !vm->func_entry[pc])
		return vm_fault_set(fault, pc, EINVAL, "no function starts at instruction %u", pc);
	if (vm->jit_code)
		return vm_jit_exec(vm, pc, args, NULL, 0, ret, fault);
	return vm_interpret(vm, pc, args, NULL, 0, ret, fault);
}

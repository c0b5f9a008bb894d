/* SPDX-License-Identifier: MIT */
/*
 * Inline hooks on x86-64: an entry hook at any instruction of this process
 * and a return hook on the function it enters, calling back with the
 * kernel's struct pt_regs as a uprobe program would see it.
 *
 * Contract:
 *  - hook__new() only plans and builds: it decodes the ORIGINAL bytes of the
 *    site (as the file has them: the kernel may have written 0xcc or a call
 *    into [uprobes-trampoline] over them in memory), chooses a patch that
 *    stays valid if the kernel later writes a breakpoint at the address
 *    (execution may resume at addr + length of the first instruction), and
 *    builds the trampoline within +-2 GiB. It refuses with a reason when no
 *    such patch exists.
 *  - hook__enable()/hook__disable() change the code. A patch of one
 *    instruction (and a jump into alignment padding) is written with the
 *    int3 protocol and is safe while other threads run; a patch that spans
 *    several instructions needs every other thread stopped (the daemon does
 *    that with ptrace), which the caller promises with HOOK_F_STOPPED.
 *    hook__disable() puts back exactly the original bytes, or with
 *    HOOK_F_KERNEL_BREAKPOINT the kernel's breakpoint over them.
 *  - HOOK_AFTER keeps the first instruction: enabling also takes a kernel
 *    breakpoint off it, and a call that finds one there (the kernel served
 *    it and resumed into the jump) runs no callback. Without
 *    HOOK_F_STOPPED, disabling can only put that breakpoint back
 *    (HOOK_F_KERNEL_BREAKPOINT; the jump stays and does nothing while it is
 *    there), and is refused with -EBUSY otherwise.
 *  - Callbacks run on the hooked thread with all general registers saved,
 *    and the flags too where they can be live (not at a function's entry
 *    or return, where the ABI carries none); regs->ip is the probed address and regs->sp the stack
 *    pointer at it, as for a kernel uprobe. Changes a callback makes to the
 *    caller-saved registers in regs (ax, cx, dx, si, di, r8-r11) take
 *    effect (bpf_override_return). Every vector register (xmm/ymm/zmm,
 *    AVX-512 masks) is saved around the callbacks, which may use them.
 *  - A return callback sees regs->ax = the return value and regs->ip = the
 *    address the function returns to, as the kernel's uretprobe does. Per-thread shadow stacks match returns to entries
 *    by stack pointer, so recursion and longjmp/exceptions past frames are
 *    handled as the kernel does.
 *  - A kernel uprobe registered later on the same address writes 0xcc over
 *    the first byte; until hook__repair() writes the patch again (for
 *    HOOK_AFTER: takes the breakpoint off, safe while threads run), the
 *    kernel serves this process (the patch keeps its resume point valid).
 *  - hook__free() retires a hook: a thread may still be inside its
 *    trampoline or callback, so neither is ever unmapped or freed.
 */
#ifndef BPFTIME_HOOK_H
#define BPFTIME_HOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <asm/ptrace.h>

#define HOOK_ERRMSG_SIZE 256
/* Original bytes the planner may need from the site. */
#define HOOK_MAX_ORIG 32

struct hook_site {
	uint64_t addr; /* the probed instruction in this process */
	/* The original bytes at addr, from the file. */
	uint8_t orig[HOOK_MAX_ORIG];
	size_t orig_len;
	/*
	 * The function holding addr and what surrounds it, from the symbol
	 * table (0: unknown): [func_start, func_end), the end of the previous
	 * symbol (bytes in [prev_end, func_start) are alignment padding) and
	 * the start of the next one (padding in [func_end, next_start)).
	 */
	uint64_t func_start, func_end;
	uint64_t prev_end, next_start;
};

typedef void (*hook_fn)(void *user, struct pt_regs *regs);

struct hook_ops {
	hook_fn entry; /* NULL: no entry callback */
	hook_fn ret;   /* NULL: no return hook */
	void *user;
};

enum hook_strategy {
	HOOK_DIRECT, /* the first instruction holds the 5-byte jump */
	HOOK_CAVE,   /* a 2-byte jump in it leads to a 5-byte jump in padding */
	HOOK_AFTER,  /* the jump follows the first instruction, whose effect is replayed */
};

#define HOOK_F_STOPPED (1u << 0) /* no other thread runs: multi-instruction patch allowed */
/*
 * hook__disable(): the kernel still has its uprobe here; put its breakpoint
 * back (0xcc over the original first byte) so it serves this process again.
 */
#define HOOK_F_KERNEL_BREAKPOINT (1u << 1)

struct hook;

struct hook *hook__new(const struct hook_site *site, const struct hook_ops *ops,
		       char err[HOOK_ERRMSG_SIZE]);
int hook__enable(struct hook *h, unsigned int flags);
int hook__disable(struct hook *h, unsigned int flags);
/*
 * Turns the return hook on or off (on by default when ops.ret is set):
 * while off, entries do not take over the return address at all.
 */
void hook__set_return(struct hook *h, bool on);
/* Writes an enabled hook's patch again (e.g. over a kernel breakpoint). */
int hook__repair(struct hook *h, unsigned int flags);
void hook__free(struct hook *h);

enum hook_strategy hook__strategy(const struct hook *h);
/* Where the patch goes and how many bytes it changes. */
uint64_t hook__patch_addr(const struct hook *h);
size_t hook__patch_len(const struct hook *h);

#endif

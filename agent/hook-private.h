/* SPDX-License-Identifier: MIT */
/*
 * Internals of the hooks: the patch plan (hook-plan.c: which bytes change
 * and what runs out of line, decided with capstone), the trampolines
 * (hook-tramp.c) and the dispatch from trampolines to callbacks (hook.c).
 */
#ifndef BPFTIME_HOOK_PRIVATE_H
#define BPFTIME_HOOK_PRIVATE_H

#include "hook.h"

#define JMP_REL32_LEN 5
#define JMP_REL8_LEN 2
/* Longest relocated code: every instruction may grow (jcc rel8 -> rel32). */
#define RELOC_MAX 128

struct hook_plan {
	enum hook_strategy strategy;
	/* The 5-byte jump to the trampoline and the bytes it replaces. */
	uint64_t patch_addr;
	size_t patch_len;
	uint8_t patch_orig[HOOK_MAX_ORIG];
	/* HOOK_CAVE: the 2-byte jump at the site that leads to patch_addr. */
	uint64_t entry_addr;
	uint8_t entry_orig[JMP_REL8_LEN];
	/* The original instructions the trampoline runs out of line. */
	uint64_t reloc_addr;
	uint8_t reloc[HOOK_MAX_ORIG];
	size_t reloc_len;
	/* Where the trampoline continues once they ran. */
	uint64_t resume_addr;
	/* HOOK_AFTER: the stack pointer at the site = at the jump + sp_adjust. */
	int64_t sp_adjust;
};

int hook_plan(const struct hook_site *site, struct hook_plan *plan, char err[HOOK_ERRMSG_SIZE]);

/*
 * Re-encodes the plan's instructions to run at address `at`: relative
 * branches become rel32 to the same targets, rip-relative operands keep
 * their targets. Returns the length written to out, or -errno with err set.
 */
int hook_relocate(const struct hook_plan *plan, uint64_t at, uint8_t *out, size_t cap,
		  char err[HOOK_ERRMSG_SIZE]);

struct hook {
	struct hook_site site;
	struct hook_ops ops;
	struct hook_plan plan;
	uint64_t tramp;	      /* entry trampoline */
	uint64_t tramp_tail; /* its relocated instructions, for threads caught mid-patch */
	bool enabled;
	bool ret_enabled; /* the return callback is wanted now */
	struct hook *next_retired;
};

/* Builds the entry trampoline of h near its site; sets h->tramp. */
int hook_tramp_build(struct hook *h, char err[HOOK_ERRMSG_SIZE]);
/* The return trampoline shared by every hook (built on first use), or 0. */
uint64_t hook_ret_tramp(void);

/* Called by trampolines. */
void hook_entry_dispatch(struct hook *h, struct pt_regs *regs);
uint64_t hook_return_dispatch(struct pt_regs *regs);

#endif

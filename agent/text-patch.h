/* SPDX-License-Identifier: MIT */
/*
 * Changing this process's code. Every write goes through /proc/self/mem, so
 * no mapping ever becomes writable (W^X holds) and the kernel makes the
 * private copy of the page, as it does for a debugger.
 *
 * text_poke_live() replaces the bytes of ONE instruction that other threads
 * may be executing, with the int3 protocol the kernel uses for its own text:
 * 0xcc first, then the tail, then the first byte, each step made visible to
 * every core (membarrier SYNC_CORE). A thread that meets the temporary 0xcc
 * is sent to `redirect` (code that does what the instruction would have,
 * then continues); one that trapped on a 0xcc already gone restarts at the
 * address. The SIGTRAP handler that does this is installed once and passes
 * every other trap on to the application's own handler.
 *
 * text_poke_kernel_breakpoint() puts back what a kernel uprobe left there:
 * the original bytes of one instruction with 0xcc on the first. The kernel
 * serves the breakpoint while its uprobe lives; once the uprobe is gone a
 * trap there reaches our handler, which puts the first byte back and
 * reruns the instruction, so a breakpoint left behind costs one trap.
 *
 * text_poke_stopped() writes any bytes at once: the caller promises no
 * other thread runs (the daemon stops them with ptrace).
 */
#ifndef BPFTIME_TEXT_PATCH_H
#define BPFTIME_TEXT_PATCH_H

#include <stddef.h>
#include <stdint.h>

int text_poke_live(uint64_t addr, const void *bytes, size_t len, uint64_t redirect);
#define TEXT_PATCH_MAX 16

int text_poke_kernel_breakpoint(uint64_t addr, const void *orig, size_t len, uint64_t redirect);
int text_poke_stopped(uint64_t addr, const void *bytes, size_t len);
/* Reads code as the process sees it now. */
int text_peek(uint64_t addr, void *bytes, size_t len);

#endif

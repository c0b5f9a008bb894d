/* SPDX-License-Identifier: MIT */
/*
 * Fault-safe reads of this process's memory for the probe_read helpers: a
 * bad pointer (NULL, unmapped, a guard page, past the end of a truncated
 * file) is an error, never a crash, and the good path makes no syscall.
 *
 * Contract:
 *  - agent_uaccess__init() installs, once per process, a SIGSEGV and SIGBUS
 *    handler that recovers the faults raised inside the copy routines below
 *    and hands every other fault to the handler the application had before
 *    (or to the default action, which then kills as it would have). Call it
 *    before any copy; calling it again re-installs the handler if the
 *    application replaced it since, chaining to the new one.
 *  - agent_uaccess_read() copies n bytes from src: 0, or -EFAULT when
 *    [src, src + n) is not all readable user memory (dst may be partly
 *    written then).
 *  - agent_uaccess_strncpy() copies up to n > 0 bytes from src, stopping
 *    after a NUL: returns the bytes copied including the NUL, n when there
 *    was no NUL in the first n bytes, or -EFAULT.
 *  - Only the addresses a user access may reach in the kernel (below the top
 *    of the user address space) are read; others give -EFAULT.
 */
#ifndef BPFTIME_AGENT_UACCESS_H
#define BPFTIME_AGENT_UACCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

int agent_uaccess__init(void);

/* The top of the user address space (the kernel's TASK_SIZE_MAX). */
#define AGENT_USER_TOP 0x00fffffffffff000ull

/*
 * The kernel's x86-64 TASK_SIZE_MAX (4- or 5-level paging) and virtual
 * address width, learnt by agent_uaccess__init().
 */
extern uint64_t agent_task_size_max;
extern unsigned int agent_virt_bits;

static inline bool agent_uaccess_ok(uint64_t addr, uint64_t n)
{
	return addr <= AGENT_USER_TOP && n <= AGENT_USER_TOP - addr;
}

/* The routines the fault handler knows (uaccess-x86_64.S). */
long agent_uaccess_copy(void *dst, const void *src, size_t n);
long agent_uaccess_strncpy_raw(char *dst, const char *src, size_t n);

static inline int agent_uaccess_read(void *dst, const void *src, size_t n)
{
	if (!agent_uaccess_ok((uintptr_t)src, n))
		return -14; /* EFAULT */
	return (int)agent_uaccess_copy(dst, src, n);
}

static inline long agent_uaccess_strncpy(char *dst, const char *src, size_t n)
{
	if (!agent_uaccess_ok((uintptr_t)src, 1))
		return -14; /* EFAULT */
	if (!agent_uaccess_ok((uintptr_t)src, n))
		n = AGENT_USER_TOP - (uintptr_t)src;
	return agent_uaccess_strncpy_raw(dst, src, n);
}

/*
 * strncpy_from_user_nofault(): count > 0 bytes at most; the length with the
 * NUL, count when there was none (dst[count - 1] is then NUL), or -EFAULT.
 * Like the kernel it copies aligned words and zeroes the bytes after the NUL
 * in the word that holds it.
 */
long agent_strncpy_from_user(char *dst, uint64_t src, long count);

/*
 * What a kernel read (copy_from_kernel_nofault) of addr says when addr is not
 * kernel memory: -ERANGE for user, vsyscall and non-canonical addresses,
 * which x86 refuses to read, else -EFAULT.
 */
int agent_kernel_read_error(uint64_t addr);

#endif

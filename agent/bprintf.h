/* SPDX-License-Identifier: MIT */
/*
 * The kernel's printf for BPF programs (bpf_trace_printk, bpf_trace_vprintk,
 * bpf_snprintf): the format checks and argument capture of
 * bpf_bprintf_prepare(), then the output of bstr_printf(), so a program gets
 * the same text and the same return values as in the kernel. Strings and
 * addresses the kernel reads from user memory are read fault-safe; what it
 * reads as kernel memory must be the program's own memory (mem->is_kernel),
 * else it fails as the kernel does for a user address.
 *
 * Differences that cannot be helped: plain %p and %pK print the raw value
 * (the kernel prints a keyed hash unless booted with no_hash_pointers), and
 * %pS/%ps/%pB print "0x<addr>" (the kernel has no symbol for a user address
 * either, but would for a kernel one).
 */
#ifndef BPFTIME_AGENT_BPRINTF_H
#define BPFTIME_AGENT_BPRINTF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The kernel's limits: arguments, captured argument bytes, trace_printk's buffer. */
#define AGENT_BPRINTF_MAX_ARGS 12
#define AGENT_BPRINTF_BIN_ARGS 512
#define AGENT_BPRINTF_BUF 1024

struct agent_bprintf_mem {
	/* Would a kernel read of [addr, addr + len) reach this memory? */
	bool (*is_kernel)(void *user, uint64_t addr, uint64_t len);
	void *user;
};

/*
 * Checks fmt (NUL-terminated within fmt_size bytes) against nargs arguments
 * and formats it into out (out_size bytes, NUL-terminated when out_size > 0).
 * Returns the length of the whole output without the NUL, as bstr_printf()
 * does, or -EINVAL / -ENOSPC as bpf_bprintf_prepare() does.
 */
int agent_bprintf(char *out, size_t out_size, const char *fmt, uint32_t fmt_size,
		  const uint64_t *args, uint32_t nargs, const struct agent_bprintf_mem *mem);

#endif

// SPDX-License-Identifier: MIT
/*
 * bpf_trace_printk() for an agent: the agent formats the text as the kernel
 * would (agent/bprintf.c) and this SEC("raw_tp") program, run with
 * BPF_PROG_TEST_RUN in the caller's context, hands it to the kernel's own
 * bpf_trace_printk, so the trace buffer gets the line the kernel would have
 * written, with the caller's comm, pid and CPU.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "output.h"

SEC("raw_tp")
int trace_printk(__u64 *ctx)
{
	static const char fmt[] = "%s";

	return bpf_trace_printk(fmt, sizeof(fmt), (const char *)ctx[0]);
}

char LICENSE[] SEC("license") = "GPL";

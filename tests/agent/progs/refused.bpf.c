// SPDX-License-Identifier: MIT
/* Programs the kernel accepts and the agent must refuse, naming why. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

/* bpf_get_current_task: a kernel pointer the agent has no way to give. */
SEC("uprobe")
int task_helper(struct pt_regs *ctx)
{
	return bpf_get_current_task() != 0;
}

/* bpftrace's ustack: a STACK_TRACE map only the kernel can fill. */
struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 64);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, 127 * sizeof(__u64));
} stacks SEC(".maps");

SEC("uprobe")
int stackid(struct pt_regs *ctx)
{
	return bpf_get_stackid(ctx, &stacks, BPF_F_USER_STACK);
}

/* A tail call through a PROG_ARRAY. */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} jump SEC(".maps");

SEC("uprobe")
int tail(struct pt_regs *ctx)
{
	bpf_tail_call(ctx, &jump, 0);
	return 0;
}

/* bpf_trace_printk without the helper program that writes the trace buffer. */
SEC("uprobe")
int printk_no_prog(struct pt_regs *ctx)
{
	static const char f[] = "x\n";

	return bpf_trace_printk(f, sizeof(f));
}

char LICENSE[] SEC("license") = "GPL";

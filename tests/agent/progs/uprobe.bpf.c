// SPDX-License-Identifier: MIT
/*
 * Uprobe programs whose effects the tests read from outside: records in a
 * ring buffer and a perf buffer, lines in the trace buffer, user stacks,
 * signals, and what a program knows of its probe.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

struct event {
	__u64 seq;
	__u64 pid_tgid;
	__u32 cpu;
	__u32 kind;
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} rb SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} events SEC(".maps");

struct result {
	__s64 ret;
	__u64 val[4];
	__u64 stack[32];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct result);
} out SEC(".maps");

static __always_inline struct result *res(void)
{
	__u32 k = 0;

	return bpf_map_lookup_elem(&out, &k);
}

static __always_inline void fill(struct event *e, struct pt_regs *ctx, __u32 kind)
{
	e->seq = PT_REGS_PARM1(ctx);
	e->pid_tgid = bpf_get_current_pid_tgid();
	e->cpu = bpf_get_smp_processor_id();
	e->kind = kind;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
}

/* arg1: sequence number; three records: output, reserve + submit, reserve + discard */
SEC("uprobe")
int ringbuf(struct pt_regs *ctx)
{
	struct event e = {}, *p;
	struct result *r = res();

	fill(&e, ctx, 1);
	if (r)
		r->ret = bpf_ringbuf_output(&rb, &e, sizeof(e), 0);
	p = bpf_ringbuf_reserve(&rb, sizeof(*p), 0);
	if (p) {
		fill(p, ctx, 2);
		bpf_ringbuf_submit(p, 0);
	}
	p = bpf_ringbuf_reserve(&rb, sizeof(*p), 0);
	if (p) {
		fill(p, ctx, 3);
		bpf_ringbuf_discard(p, 0);
	}
	/* Larger than the ring: the kernel says NULL. */
	p = (void *)bpf_ringbuf_reserve(&rb, 2 << 20, 0);
	if (p)
		bpf_ringbuf_discard(p, 0);
	if (r)
		r->val[0] = p != 0;
	return 0;
}

/* arg1: sequence number; arg2: the flags of bpf_perf_event_output */
SEC("uprobe")
int perf(struct pt_regs *ctx)
{
	struct event e = {};
	struct result *r = res();
	long ret;

	fill(&e, ctx, 4);
	ret = bpf_perf_event_output(ctx, &events, PT_REGS_PARM2(ctx), &e, sizeof(e));
	if (r)
		r->ret = ret;
	return 0;
}

/* arg1: a number to find the line by */
SEC("uprobe")
int printk(struct pt_regs *ctx)
{
	static const char f[] = "agent-test %llu comm=%s\n";
	struct result *r = res();
	char comm[16];

	bpf_get_current_comm(comm, sizeof(comm));
	if (r)
		r->ret = bpf_trace_printk(f, sizeof(f), PT_REGS_PARM1(ctx), comm);
	return 0;
}

/* arg1: bpf_get_stack flags; arg2: bytes asked for (multiple of 8, at most 256) */
SEC("uprobe")
int stack(struct pt_regs *ctx)
{
	struct result *r = res();
	__u32 size = PT_REGS_PARM2(ctx) & 0x1f8;

	if (!r)
		return 0;
	if (size > sizeof(r->stack))
		size = sizeof(r->stack);
	r->ret = bpf_get_stack(ctx, r->stack, size, PT_REGS_PARM1(ctx));
	return 0;
}

/* arg1: signal; arg2: 0 for the process, 1 for the thread */
SEC("uprobe")
int signal(struct pt_regs *ctx)
{
	struct result *r = res();

	if (!r)
		return 0;
	if (PT_REGS_PARM2(ctx))
		r->ret = bpf_send_signal_thread(PT_REGS_PARM1(ctx));
	else
		r->ret = bpf_send_signal(PT_REGS_PARM1(ctx));
	return 0;
}

SEC("uprobe")
int probe_info(struct pt_regs *ctx)
{
	struct result *r = res();

	if (!r)
		return 0;
	r->val[0] = bpf_get_func_ip(ctx);
	r->val[1] = bpf_get_attach_cookie(ctx);
	r->val[2] = bpf_ktime_get_ns();
	r->val[3] = bpf_ktime_get_boot_ns();
	r->stack[0] = bpf_ktime_get_ns();
	r->stack[1] = bpf_get_prandom_u32();
	r->stack[2] = bpf_get_prandom_u32();
	r->stack[3] = PT_REGS_PARM1(ctx) + PT_REGS_RC(ctx);
	return 0;
}

/* The current pid_tgid into out.val[arg1 & 3]. */
SEC("uprobe")
int pid(struct pt_regs *ctx)
{
	struct result *r = res();

	if (r)
		r->val[PT_REGS_PARM1(ctx) & 3] = bpf_get_current_pid_tgid();
	return 0;
}

/* The thread's comm into the stack buffer. */
SEC("uprobe")
int comm(struct pt_regs *ctx)
{
	struct result *r = res();

	if (r)
		r->ret = bpf_get_current_comm(r->stack, 16);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";

// SPDX-License-Identifier: MIT
/* The programs tests/bench/agent-prog-bench.c times. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} arr SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} mm SEC(".maps");

/* bpftrace's @[key] = count() */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, __u64);
} pcpu_hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
} rb SEC(".maps");

SEC("uprobe")
int empty(struct pt_regs *ctx)
{
	return 0;
}

SEC("uprobe")
int array_count(struct pt_regs *ctx)
{
	__u32 key = 0;
	__u64 *v = bpf_map_lookup_elem(&arr, &key);

	if (v)
		(*v)++;
	return 0;
}

SEC("uprobe")
int mmap_count(struct pt_regs *ctx)
{
	__u32 key = 0;
	__u64 *v = bpf_map_lookup_elem(&mm, &key);

	if (v)
		__sync_fetch_and_add(v, 1);
	return 0;
}

static __always_inline int count_key(__u64 key)
{
	__u64 one = 1, *v = bpf_map_lookup_elem(&pcpu_hash, &key);

	if (v)
		(*v)++;
	else
		bpf_map_update_elem(&pcpu_hash, &key, &one, BPF_NOEXIST);
	return 0;
}

/* bpftrace's @[arg0] = count() */
SEC("uprobe")
int pcpu_hash_count(struct pt_regs *ctx)
{
	return count_key(PT_REGS_PARM1(ctx));
}

/* bpftrace's @ = count(): one key */
SEC("uprobe")
int pcpu_count(struct pt_regs *ctx)
{
	return count_key(0);
}

SEC("uprobe")
int ringbuf_record(struct pt_regs *ctx)
{
	struct {
		__u64 ts;
		__u64 arg;
	} e = { bpf_ktime_get_ns(), PT_REGS_PARM1(ctx) };

	bpf_ringbuf_output(&rb, &e, sizeof(e), 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";

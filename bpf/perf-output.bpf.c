// SPDX-License-Identifier: MIT
/*
 * bpf_perf_event_output() for an agent: forwards one record from the
 * caller's memory into the tool's PERF_EVENT_ARRAY (the loader gives
 * "events" the tool's map with bpf_map__reuse_fd). A SEC("raw_tp") program
 * run with BPF_PROG_TEST_RUN: the kernel runs it on the caller's CPU with
 * preemption off, so BPF_F_CURRENT_CPU means the caller's CPU, as for a
 * uprobe, and the per-CPU staging buffer is the caller's alone.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "output.h"

#define E2BIG 7
#define EFAULT 14

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} events SEC(".maps");

struct staging {
	char data[BPFTIMED_PERF_MAX_RECORD];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct staging);
} staging SEC(".maps");

SEC("raw_tp")
int perf_output(__u64 *ctx)
{
	__u64 data = ctx[0], size = ctx[1], flags = ctx[2];
	struct staging *buf;
	__u32 zero = 0;

	if (size > BPFTIMED_PERF_MAX_RECORD)
		return -E2BIG;
	buf = bpf_map_lookup_elem(&staging, &zero);
	if (!buf)
		return -E2BIG;
	if (bpf_probe_read_user(buf->data, size, (void *)data))
		return -EFAULT;
	return bpf_perf_event_output(ctx, &events, flags, buf->data, size);
}

char LICENSE[] SEC("license") = "GPL";

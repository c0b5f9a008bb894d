// SPDX-License-Identifier: MIT
/*
 * bpf_current_task_under_cgroup() for an agent: a process cannot read a
 * tool's CGROUP_ARRAY (the kernel has no lookup for it from user space), but
 * it can run this program, which the daemon loads with the tool's map as
 * "cgroups" (bpf_map__reuse_fd). A SEC("raw_tp") program run with
 * BPF_PROG_TEST_RUN runs in the calling thread, so "current" is the thread
 * the uprobe fired in. Input: struct bpftimed_output_args, data = the index.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "output.h"

struct {
	__uint(type, BPF_MAP_TYPE_CGROUP_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
	__uint(max_entries, 1);
} cgroups SEC(".maps");

SEC("raw_tp")
int under_cgroup(__u64 *ctx)
{
	return bpf_current_task_under_cgroup(&cgroups, (__u32)ctx[0]);
}

char LICENSE[] SEC("license") = "GPL";

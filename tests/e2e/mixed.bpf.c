// SPDX-License-Identifier: MIT
/*
 * A tool of our own with a tracepoint and a uprobe on one map: each counts
 * into the same hash, the tracepoint writes per process and fd, the uprobe
 * calls per process and second argument.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "mixed.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct mixed_key);
	__type(value, __u64);
} counts SEC(".maps");

static void count(__u32 kind, __s64 value)
{
	struct mixed_key key = {
		.kind = kind,
		.pid = bpf_get_current_pid_tgid() >> 32,
		.value = value,
	};
	__u64 one = 1, *v;

	v = bpf_map_lookup_elem(&counts, &key);
	if (v) {
		__sync_fetch_and_add(v, 1);
		return;
	}
	if (bpf_map_update_elem(&counts, &key, &one, BPF_NOEXIST)) {
		/* Another CPU made it first. */
		v = bpf_map_lookup_elem(&counts, &key);
		if (v)
			__sync_fetch_and_add(v, 1);
	}
}

SEC("tracepoint/syscalls/sys_enter_write")
int on_write(struct trace_event_raw_sys_enter *ctx)
{
	count(MIXED_WRITE, ctx->args[0]);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(on_call, int a, int b)
{
	count(MIXED_CALL, b);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";

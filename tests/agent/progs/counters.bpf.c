// SPDX-License-Identifier: MIT
/*
 * Counting programs, one per map type, as tools write them: look the key up,
 * add to the value in place ((*v)++ or an atomic add, chosen by the second
 * argument), create the element when it is missing. Every run also adds 1
 * to a global (.bss, an mmapable array) and reads its step from .rodata.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#define MAP(name, t, n)                                                                            \
	struct {                                                                                   \
		__uint(type, t);                                                                   \
		__uint(max_entries, n);                                                            \
		__type(key, __u32);                                                                \
		__type(value, __u64);                                                              \
	} name SEC(".maps")

MAP(arr, BPF_MAP_TYPE_ARRAY, 16);
MAP(hash, BPF_MAP_TYPE_HASH, 64);
MAP(lru, BPF_MAP_TYPE_LRU_HASH, 64);
MAP(pcpu_arr, BPF_MAP_TYPE_PERCPU_ARRAY, 16);
MAP(pcpu_hash, BPF_MAP_TYPE_PERCPU_HASH, 64);
MAP(lru_pcpu, BPF_MAP_TYPE_LRU_PERCPU_HASH, 64);

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} mm SEC(".maps");

__u64 hits;
const volatile __u64 step = 1;

static __always_inline int count(void *map, struct pt_regs *ctx)
{
	__u32 key = (__u32)PT_REGS_PARM1(ctx);
	__u64 *v, init = step;

	__sync_fetch_and_add(&hits, 1);
	v = bpf_map_lookup_elem(map, &key);
	if (v) {
		if (PT_REGS_PARM2(ctx))
			__sync_fetch_and_add(v, step);
		else
			*v += step;
		return 0;
	}
	return bpf_map_update_elem(map, &key, &init, BPF_NOEXIST);
}

#define COUNT(map)                                                                                 \
	SEC("uprobe") int count_##map(struct pt_regs *ctx)                                         \
	{                                                                                          \
		return count(&map, ctx);                                                           \
	}

COUNT(arr)
COUNT(hash)
COUNT(lru)
COUNT(pcpu_arr)
COUNT(pcpu_hash)
COUNT(lru_pcpu)
COUNT(mm)

/* What the benchmark measures: nothing at all, and bpftrace's count(). */
SEC("uprobe")
int empty(struct pt_regs *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";

// SPDX-License-Identifier: MIT
/*
 * Programs for the additivity check (agent/additive.h), written the way
 * tools write them: bpftrace's count(), sum() and hist() (lookup, add,
 * update), BCC's increment() (lookup or create, then an atomic add), a
 * two-word value as avg() keeps it — and what is not additive: max(), an
 * assignment, a delete, a value printed, branched on or returned, or
 * written by a helper.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#define MAP(name, t, v)                                                                            \
	struct {                                                                                   \
		__uint(type, t);                                                                   \
		__uint(max_entries, 128);                                                          \
		__type(key, __u64);                                                                \
		__type(value, v);                                                                  \
	} name SEC(".maps")

struct pair {
	__u64 count, total;
};

MAP(counts, BPF_MAP_TYPE_PERCPU_HASH, __u64);
MAP(sums, BPF_MAP_TYPE_HASH, __u64);
MAP(hist, BPF_MAP_TYPE_PERCPU_HASH, __u64);
MAP(avgs, BPF_MAP_TYPE_HASH, struct pair);
MAP(maxes, BPF_MAP_TYPE_HASH, __u64);
MAP(vals, BPF_MAP_TYPE_HASH, __u64);

/* @ = count() */
SEC("uprobe")
int count(struct pt_regs *ctx)
{
	__u64 key = 0, n = 1, *v = bpf_map_lookup_elem(&counts, &key);

	if (v)
		n = *v + 1;
	bpf_map_update_elem(&counts, &key, &n, BPF_ANY);
	return 0;
}

/* @[arg0 & 3] = sum(arg1) */
SEC("uprobe")
int sum(struct pt_regs *ctx)
{
	__u64 key = PT_REGS_PARM1(ctx) & 3, n = PT_REGS_PARM2(ctx), *v;

	v = bpf_map_lookup_elem(&sums, &key);
	if (v)
		n += *v;
	bpf_map_update_elem(&sums, &key, &n, BPF_ANY);
	return 0;
}

/* @ = hist(arg0) */
SEC("uprobe")
int log2_hist(struct pt_regs *ctx)
{
	__u64 x = PT_REGS_PARM1(ctx), key = 0, n = 1, *v;

	while (x > 1 && key < 63) {
		x >>= 1;
		key++;
	}
	v = bpf_map_lookup_elem(&hist, &key);
	if (v)
		n = *v + 1;
	bpf_map_update_elem(&hist, &key, &n, BPF_ANY);
	return 0;
}

/* BCC: counts.increment(key) */
SEC("uprobe")
int increment(struct pt_regs *ctx)
{
	__u64 key = PT_REGS_PARM1(ctx), zero = 0, *v;

	v = bpf_map_lookup_elem(&sums, &key);
	if (!v) {
		bpf_map_update_elem(&sums, &key, &zero, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&sums, &key);
	}
	if (v)
		__sync_fetch_and_add(v, 1);
	return 0;
}

/* @ = avg(arg0): a count and a total */
SEC("uprobe")
int average(struct pt_regs *ctx)
{
	__u64 key = 0;
	struct pair n = { 1, PT_REGS_PARM1(ctx) }, *v = bpf_map_lookup_elem(&avgs, &key);

	if (v) {
		n.count += v->count;
		n.total += v->total;
	}
	bpf_map_update_elem(&avgs, &key, &n, BPF_ANY);
	return 0;
}

/* @ = count(); @m = max(arg0): one map additive, one not */
SEC("uprobe")
int count_and_max(struct pt_regs *ctx)
{
	__u64 key = 0, n = 1, x = PT_REGS_PARM1(ctx), *v = bpf_map_lookup_elem(&counts, &key);

	if (v)
		n = *v + 1;
	bpf_map_update_elem(&counts, &key, &n, BPF_ANY);
	v = bpf_map_lookup_elem(&maxes, &key);
	if (!v || *v < x)
		bpf_map_update_elem(&maxes, &key, &x, BPF_ANY);
	return 0;
}

/* @v = arg0 */
SEC("uprobe")
int assign(struct pt_regs *ctx)
{
	__u64 key = 0, x = PT_REGS_PARM1(ctx);

	bpf_map_update_elem(&vals, &key, &x, BPF_ANY);
	return 0;
}

/* delete(@v[arg0]) */
SEC("uprobe")
int delete(struct pt_regs *ctx)
{
	__u64 key = PT_REGS_PARM1(ctx);

	bpf_map_delete_elem(&vals, &key);
	return 0;
}

/* printf("%d", @v) after counting it */
SEC("uprobe")
int count_and_print(struct pt_regs *ctx)
{
	__u64 key = 0, n = 1, *v = bpf_map_lookup_elem(&vals, &key);

	if (v)
		n = *v + 1;
	bpf_map_update_elem(&vals, &key, &n, BPF_ANY);
	bpf_printk("%llu", n);
	return 0;
}

/* counts only while below 10 */
SEC("uprobe")
int capped(struct pt_regs *ctx)
{
	__u64 key = 0, *v = bpf_map_lookup_elem(&vals, &key);

	if (v && *v < 10)
		__sync_fetch_and_add(v, 1);
	return 0;
}

/* returns what it found */
SEC("uprobe")
int returns_value(struct pt_regs *ctx)
{
	__u64 key = 0, *v = bpf_map_lookup_elem(&vals, &key);

	if (!v)
		return 0;
	__sync_fetch_and_add(v, 1);
	return *v & 1;
}

/* writes the value twice over: the old word plus an amount into another word */
SEC("uprobe")
int crossed(struct pt_regs *ctx)
{
	__u64 key = 0;
	struct pair *v = bpf_map_lookup_elem(&avgs, &key);

	if (v)
		v->total = v->count + 1;
	return 0;
}

/* a helper writes the value: bpf_probe_read_kernel(v, ...) */
SEC("uprobe")
int helper_writes(struct pt_regs *ctx)
{
	__u64 key = 0, x = PT_REGS_PARM1(ctx), *v = bpf_map_lookup_elem(&vals, &key);

	if (v)
		bpf_probe_read_kernel(v, sizeof(*v), &x);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";

// SPDX-License-Identifier: MIT
/*
 * Programs run twice with the same arguments: in the kernel (raw_tp,
 * BPF_PROG_TEST_RUN, in the test's own thread) and in the agent, each on its
 * own instance of this object. Their return values and what they leave in
 * the maps must be the same. ctx is the argument array.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#define BUF 256

struct result {
	__s64 ret;
	__s64 ret2;
	__u64 val[4];
	char buf[BUF];
	char buf2[BUF];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct result);
} out SEC(".maps");

#define MAP(name, t, n, f)                                                                         \
	struct {                                                                                   \
		__uint(type, t);                                                                   \
		__uint(max_entries, n);                                                            \
		__uint(map_flags, f);                                                              \
		__type(key, __u32);                                                                \
		__type(value, __u64);                                                              \
	} name SEC(".maps")

MAP(arr, BPF_MAP_TYPE_ARRAY, 4, 0);
MAP(hash, BPF_MAP_TYPE_HASH, 4, 0);
MAP(lru, BPF_MAP_TYPE_LRU_HASH, 64, 0);
MAP(pcpu_arr, BPF_MAP_TYPE_PERCPU_ARRAY, 4, 0);
MAP(pcpu_hash, BPF_MAP_TYPE_PERCPU_HASH, 4, 0);
MAP(lru_pcpu, BPF_MAP_TYPE_LRU_PERCPU_HASH, 64, 0);
MAP(mm, BPF_MAP_TYPE_ARRAY, 4, BPF_F_MMAPABLE);

static __always_inline struct result *res(void)
{
	__u32 k = 0;

	return bpf_map_lookup_elem(&out, &k);
}

/* ctx: op (0 update, 1 delete, 2 lookup, 3 lookup + add), map, key, flags, value */
SEC("raw_tp")
int map_op(__u64 *ctx)
{
	__u32 key = (__u32)ctx[2];
	__u64 flags = ctx[3], value = ctx[4], *v;
	struct result *r = res();
	void *map;

	if (!r)
		return 0;
	switch (ctx[1]) {
	case 0: map = &arr; break;
	case 1: map = &hash; break;
	case 2: map = &lru; break;
	case 3: map = &pcpu_arr; break;
	case 4: map = &pcpu_hash; break;
	case 5: map = &lru_pcpu; break;
	default: map = &mm; break;
	}
	switch (ctx[0]) {
	case 0:
		r->ret = bpf_map_update_elem(map, &key, &value, flags);
		break;
	case 1:
		r->ret = bpf_map_delete_elem(map, &key);
		break;
	default:
		v = bpf_map_lookup_elem(map, &key);
		r->ret = v ? 1 : 0;
		if (v) {
			r->val[0] = *v;
			if (ctx[0] == 3)
				*v += value;
		}
		break;
	}
	return 0;
}

/* ctx: user pointer, size, which helper (0 read, 1 user, 2 kernel, 3 str, 4 user_str, 5 kernel_str) */
SEC("raw_tp")
int probe_read(__u64 *ctx)
{
	const void *p = (const void *)ctx[0];
	__u32 size = ctx[1] & (BUF - 1);
	struct result *r = res();
	char buf[64];

	if (!r)
		return 0;
	__builtin_memset(r->buf, 0xaa, sizeof(r->buf));
	switch (ctx[2]) {
	case 0: r->ret = bpf_probe_read(r->buf, size, p); break;
	case 1: r->ret = bpf_probe_read_user(r->buf, size, p); break;
	case 2: r->ret = bpf_probe_read_kernel(r->buf, size, p); break;
	case 3: r->ret = bpf_probe_read_str(r->buf, size, p); break;
	case 4: r->ret = bpf_probe_read_user_str(r->buf, size, p); break;
	default: r->ret = bpf_probe_read_kernel_str(r->buf, size, p); break;
	}
	/* The program's own memory (its stack) is kernel memory for every variant. */
	__builtin_memcpy(buf, "on the stack", 13);
	r->ret2 = bpf_probe_read_kernel_str(r->buf2, sizeof(r->buf2), buf);
	r->val[0] = bpf_probe_read_kernel(&r->val[1], 8, &ctx[1]);
	return 0;
}

/* ctx: user string; compares its first ctx[1] bytes with "hello" */
SEC("raw_tp")
int cmp(__u64 *ctx)
{
	struct result *r = res();
	char s[16] = {};

	if (!r)
		return 0;
	bpf_probe_read_user_str(s, sizeof(s), (const void *)ctx[0]);
	r->ret = bpf_strncmp(s, (ctx[1] & 7) + 1, "hello");
	r->ret2 = bpf_strncmp(s, sizeof(s), "hello");
	return 0;
}

/* ctx: an int, a long, a user string */
SEC("raw_tp")
int fmt(__u64 *ctx)
{
	static const char f1[] = "%d %u %x %X %ld %lu %lx %lld %llu %llX|%5d|%-5d|";
	static const char f2[] = "%05d|%+d|% d|%c|%-3c|%s|%8s|%-8s|%pks|%pus|%pI4|%pi4|%%";
	static const char f3[] = "%pI6 %pi6 %pks %px";
	struct result *r = res();
	__u64 a[12];
	char stackstr[8] = "stack";
	__u8 ip[16] = { 10, 0, 0, 1, 0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 };

	if (!r)
		return 0;
	for (int i = 0; i < 4; i++)
		a[i] = ctx[0];
	for (int i = 4; i < 10; i++)
		a[i] = ctx[1];
	a[10] = ctx[0];
	a[11] = ctx[0];
	r->ret = bpf_snprintf(r->buf, sizeof(r->buf), f1, a, sizeof(a));
	/* truncated: the length it would have had, plus one (the verifier checked the formats) */
	r->val[1] = bpf_snprintf(r->buf2 + 160, 8, f1, a, sizeof(a));
	a[0] = ctx[0];
	a[1] = ctx[0];
	a[2] = ctx[0];
	a[3] = 'Z';
	a[4] = 'y';
	a[5] = ctx[2];
	a[6] = ctx[2];
	a[7] = ctx[2];
	a[8] = (__u64)stackstr;
	a[9] = ctx[2];
	a[10] = (__u64)ip;
	a[11] = (__u64)ip;
	r->ret2 = bpf_snprintf(r->buf2, 160, f2, a, sizeof(a));
	a[0] = (__u64)ip;
	a[1] = (__u64)ip;
	a[2] = ctx[2]; /* a user pointer where the kernel wants kernel memory */
	a[3] = ctx[1];
	r->val[0] = bpf_snprintf(r->buf2 + 180, 76, f3, a, 32);
	/* a zero-sized buffer: nothing written, the length returned */
	r->val[2] = bpf_snprintf(r->buf2 + 170, 0, f3, a, 32);
	return 0;
}

/* What the kernel knows of the current task and CPU. */
SEC("raw_tp")
int task(__u64 *ctx)
{
	struct result *r = res();

	if (!r)
		return 0;
	r->val[0] = bpf_get_current_pid_tgid();
	r->val[1] = bpf_get_current_uid_gid();
	r->val[2] = bpf_get_smp_processor_id();
	r->val[3] = bpf_get_numa_node_id();
	r->ret = bpf_get_current_comm(r->buf, 16);
	r->ret2 = bpf_get_current_comm(r->buf2, 5);
	return 0;
}

struct loop_ctx {
	__u64 sum;
	__u32 stop;
};

static long loop_cb(__u32 i, void *data)
{
	struct loop_ctx *c = data;

	c->sum += i * i;
	return i == c->stop;
}

/* ctx: iterations, where the callback stops, flags */
SEC("raw_tp")
int loop(__u64 *ctx)
{
	struct loop_ctx c = { .stop = (__u32)ctx[1] };
	struct result *r = res();

	if (!r)
		return 0;
	r->ret = bpf_loop((__u32)ctx[0], loop_cb, &c, ctx[2]);
	r->val[0] = c.sum;
	return 0;
}

/* ctx: a user string */
SEC("raw_tp")
int printk(__u64 *ctx)
{
	static const char f[] = "oracle %d %s|%x\n";
	static const char bad[] = "oracle %z\n";
	struct result *r = res();

	if (!r)
		return 0;
	r->ret = bpf_trace_printk(f, sizeof(f), (int)ctx[0], ctx[1], ctx[2]);
	r->ret2 = bpf_trace_printk(bad, sizeof(bad));
	return 0;
}

struct {
	__uint(type, BPF_MAP_TYPE_CGROUP_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} cgroups SEC(".maps");

/* ctx: an index past the array. The test fills slots 0 and 1, not 2. */
SEC("raw_tp")
int cgroup(__u64 *ctx)
{
	struct result *r = res();

	if (!r)
		return 0;
	r->ret = bpf_current_task_under_cgroup(&cgroups, 0);
	r->ret2 = bpf_current_task_under_cgroup(&cgroups, 1);
	r->val[0] = bpf_current_task_under_cgroup(&cgroups, 2);
	r->val[1] = bpf_current_task_under_cgroup(&cgroups, (__u32)ctx[0]);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";

// SPDX-License-Identifier: MIT
/*
 * Adds an additive map's pending deltas (delta.h) into its values. The
 * daemon loads one per map, with the tool's map as "target"
 * (bpf_map__reuse_fd) and the key and value sizes in .rodata.
 * drain_on_syscall runs at the entry of every bpf() map command (but an
 * agent's or the daemon's), before the kernel reads or changes the map;
 * drain_now is for the daemon (BPF_PROG_TEST_RUN). A delta is taken with an atomic exchange and added
 * atomically to the value of the draining CPU (per-CPU maps: the sum over
 * CPUs is what tools read); an element not there yet is created with it.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "delta.h"

#define BPF_MAP_LOOKUP_ELEM 1
#define BPF_MAP_DELETE_ELEM 3
#define BPF_MAP_LOOKUP_AND_DELETE_ELEM 21
#define BPF_MAP_LOOKUP_AND_DELETE_BATCH 25
#define BPF_MAP_DELETE_BATCH 27

const volatile __u32 value_words = 1;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, BPFTIMED_DELTA_SLOTS);
	__type(key, __u32);
	__type(value, struct bpftimed_delta_slot);
} deltas SEC(".maps");

/*
 * Processes whose map commands need no drain (the daemon's list, shared by
 * every drain program): those with an agent (is a key there? create it)
 * and the daemon itself, which reads no tool's values and deletes none.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u8);
} agents SEC(".maps");

/* The tool's map (reuse_fd): its real type and sizes replace these. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__uint(key_size, BPFTIMED_DELTA_KEY_MAX);
	__uint(value_size, BPFTIMED_DELTA_WORDS * 8);
} target SEC(".maps");

static long drain_slot(__u32 i, void *ctx)
{
	__u64 d[BPFTIMED_DELTA_WORDS] = {};
	struct bpftimed_delta_slot *s;
	bool any = false;
	__u32 idx = i + 1;
	__u64 *v;

	s = bpf_map_lookup_elem(&deltas, &idx);
	if (!s || s->state != BPFTIMED_DELTA_READY)
		return 0;
	for (int w = 0; w < BPFTIMED_DELTA_WORDS && w < value_words; w++) {
		d[w] = __atomic_exchange_n(&s->delta[w], 0, __ATOMIC_SEQ_CST);
		any |= d[w] != 0;
	}
	if (!any)
		return 0;
	v = bpf_map_lookup_elem(&target, s->key);
	if (!v) {
		if (bpf_map_update_elem(&target, s->key, d, BPF_NOEXIST) == 0)
			return 0;
		v = bpf_map_lookup_elem(&target, s->key);
		if (!v)
			return 0;
	}
	for (int w = 0; w < BPFTIMED_DELTA_WORDS && w < value_words; w++)
		__sync_fetch_and_add(&v[w], d[w]);
	return 0;
}

static long forget_slot(__u32 i, void *ctx)
{
	__u32 idx = i + 1;
	struct bpftimed_delta_slot *s = bpf_map_lookup_elem(&deltas, &idx);

	if (s)
		s->presence = BPFTIMED_DELTA_UNKNOWN;
	return 0;
}

/* How long a reader waits for a drain in progress elsewhere (loop turns, a few ms). */
#define WAIT_TURNS (1 << 20)

struct header_ref {
	struct bpftimed_delta_slot *h;
};

static long drained(__u32 i, void *ctx)
{
	struct header_ref *r = ctx;

	return *(volatile __u32 *)&r->h->presence == 0;
}

/*
 * The header's presence counts the drains in progress: one that found the
 * deltas already taken waits for those, so that a reader never reads a
 * value while another CPU still holds part of what was added to it.
 */
static void drain(bool wait)
{
	__u32 zero = 0;
	struct bpftimed_delta_slot *h = bpf_map_lookup_elem(&deltas, &zero);
	struct header_ref r = { h };

	if (!h)
		return;
	__sync_fetch_and_add(&h->presence, 1);
	if (__atomic_exchange_n(&h->state, 0, __ATOMIC_SEQ_CST))
		bpf_loop(BPFTIMED_DELTA_SLOTS - 1, drain_slot, NULL, 0);
	__sync_fetch_and_sub(&h->presence, 1);
	if (wait)
		bpf_loop(WAIT_TURNS, drained, &r, 0);
}

SEC("tracepoint/syscalls/sys_enter_bpf")
int drain_on_syscall(struct trace_event_raw_sys_enter *ctx)
{
	long cmd = ctx->args[0];
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	if (cmd < BPF_MAP_LOOKUP_ELEM || (cmd > 4 && cmd < 21) || cmd > BPF_MAP_DELETE_BATCH ||
	    bpf_map_lookup_elem(&agents, &tgid))
		return 0;
	drain(true);
	/* Deleted elements: the agents ask the kernel again whether a key exists. */
	if (cmd == BPF_MAP_DELETE_ELEM || cmd == BPF_MAP_LOOKUP_AND_DELETE_ELEM ||
	    cmd == BPF_MAP_LOOKUP_AND_DELETE_BATCH || cmd == BPF_MAP_DELETE_BATCH)
		bpf_loop(BPFTIMED_DELTA_SLOTS - 1, forget_slot, NULL, 0);
	return 0;
}

SEC("syscall")
int drain_now(void *ctx)
{
	drain(false);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";

/* SPDX-License-Identifier: MIT */
/*
 * What the parts of a loaded program share (prog.c, maps.c, scratch.c,
 * helpers.c, output.c): the program, its maps, and the state of one run,
 * reached from helpers through a per-thread pointer to the current run.
 */
#ifndef BPFTIME_AGENT_PROG_PRIVATE_H
#define BPFTIME_AGENT_PROG_PRIVATE_H

#include <asm/ptrace.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "prog.h"
#include "vm.h"

struct shm_maplock;
struct bpftimed_delta_slot;

/* A kernel map as the agent uses it. */
struct agent_map {
	int fd; /* our own duplicate */
	uint32_t id, type, key_size, value_size, max_entries, flags;
	bool percpu;
	bool syscall; /* reached through bpf() on the fd, under the write-back lock */
	/* Bytes of a per-run copy: the value, or every CPU's value for per-CPU maps. */
	uint32_t copy_size;
	uint32_t value_stride; /* round_up(value_size, 8): array elements, per-CPU slots */
	/* BPF_F_MMAPABLE arrays: the map's memory, mapped here. */
	uint8_t *mem;
	size_t mem_len;
	struct shm_maplock *lock;
	int lock_index; /* bit in the run's held-locks mask, -1 without a lock */
	int output_prog_fd; /* RINGBUF, PERF_EVENT_ARRAY, CGROUP_ARRAY: our duplicate, -1 without */
	/* An additive map's delta array (bpf/delta.h), mapped; NULL: none. */
	struct bpftimed_delta_slot *deltas;
};

/* A value a run handed out: the program's copy of a map value, or a ringbuf record. */
enum agent_entry_kind {
	ENTRY_VALUE, /* a copy of a kernel value, written back if changed */
	ENTRY_GONE, /* the program deleted the element: never written back */
	ENTRY_RECORD, /* a bpf_ringbuf_reserve() record not yet submitted */
	ENTRY_DONE, /* a record submitted or discarded */
	ENTRY_DELTA, /* what the program added to an additive map's value, from zero */
};

struct agent_entry {
	struct agent_map *map;
	void *key;
	uint8_t *copy;
	uint8_t *orig; /* the value as read, to tell whether the program changed it */
	struct bpftimed_delta_slot *delta; /* ENTRY_DELTA: where it goes */
	uint32_t size;
	uint8_t kind;
};

#define AGENT_MAX_ENTRIES 128

/* Scratch of one run: claimed when the run first needs it, reused by later runs. */
struct agent_slot {
	int busy;
	uint32_t nentries;
	size_t used;
	uint8_t *arena;
	size_t arena_size;
	struct agent_entry entries[AGENT_MAX_ENTRIES];
};

struct agent_slot_chunk;

#define AGENT_MAX_SIGNALS 4
#define AGENT_MAX_LOCKS 64

struct agent_run {
	struct agent_prog *prog;
	struct pt_regs *regs;
	const struct agent_probe_info *info;
	/* The VM's stack lies between a helper's frame and this address. */
	uintptr_t stack_top;
	int cpu; /* -1 until a helper needs it; then fixed for the run */
	struct agent_slot *slot;
	uint64_t held; /* write-back locks held, by lock_index */
	bool locked;
	uint8_t nsignals;
	struct {
		int sig;
		bool thread;
	} signals[AGENT_MAX_SIGNALS];
};

struct agent_prog {
	struct vm *vm;
	struct agent_map *maps;
	size_t map_cnt;
	int *tool_map_fds;
	/* The write-back locks of the syscall maps, in map id order. */
	struct shm_maplock *locks[AGENT_MAX_LOCKS];
	size_t nlocks;
	int ringbuf_prog_fd, perf_prog_fd, trace_prog_fd;
	/* Scratch: chunks of slots, never freed before the program. */
	struct agent_slot_chunk *chunks;
	size_t arena_size;
	/* Counters (relaxed atomics). */
	uint64_t missed, scratch_full, lock_failed, writeback_failed;
};

extern __thread struct agent_run *agent_cur_run __attribute__((tls_model("initial-exec")));

/* Possible CPUs (the size of a per-CPU value from bpf()), set at first load. */
extern unsigned int agent_ncpus;

/* The CPU of the run, asked once per run. */
int agent_run_cpu(struct agent_run *run);

/* Whether the kernel would read [addr, addr + len) as kernel memory: the program's own. */
bool agent_run_is_kernel(struct agent_run *run, uint64_t addr, uint64_t len);

/* scratch.c */
struct agent_slot *agent_run_slot(struct agent_run *run);
void *agent_run_alloc(struct agent_run *run, size_t size);
struct agent_entry *agent_run_entry(struct agent_run *run);
void agent_run_release_slot(struct agent_run *run);
int agent_prog_scratch_init(struct agent_prog *prog);
void agent_prog_scratch_free(struct agent_prog *prog);
bool agent_run_in_scratch(struct agent_run *run, uint64_t addr, uint64_t len);

/* maps.c */
bool agent_map_type_supported(uint32_t type);
const char *agent_map_type_name(uint32_t type);
int agent_map_open(struct agent_map *m, const struct agent_map_spec *spec, char *err,
		   size_t err_size);
int agent_map_open_lock(struct agent_map *m, int lock_fd, char *err, size_t err_size);
void agent_map_close(struct agent_map *m);
/* Stops using the map's deltas (the program does more than add to it). */
void agent_map_drop_deltas(struct agent_map *m);
/* Adds the map's pending deltas into it through bpf(): when no daemon drains them. */
void agent_map_flush_deltas(struct agent_map *m);
void *agent_map_lookup(struct agent_run *run, struct agent_map *m, const void *key);
void *agent_map_lookup_percpu(struct agent_run *run, struct agent_map *m, const void *key,
			      uint32_t cpu);
long agent_map_update(struct agent_run *run, struct agent_map *m, const void *key,
		      const void *value, uint64_t flags);
long agent_map_delete(struct agent_run *run, struct agent_map *m, const void *key);
void agent_run_writeback(struct agent_run *run);
bool agent_maps_contain(struct agent_prog *prog, uint64_t addr, uint64_t len);

/* output.c */
long agent_output_ringbuf(struct agent_map *m, const void *data, uint64_t size, uint64_t flags);
long agent_output_perf(struct agent_map *m, const void *data, uint64_t size, uint64_t flags);
long agent_output_trace(int prog_fd, const char *text);
/* bpf_current_task_under_cgroup(m, index) for the calling thread. */
long agent_output_cgroup(struct agent_map *m, uint32_t index);

/* helpers.c */
struct agent_helper {
	uint32_t id;
	vm_helper_fn fn;
};
extern const struct agent_helper agent_helpers[];
extern const size_t agent_helper_cnt;
bool agent_helper_supported(int32_t id);
void agent_run_deliver_signals(struct agent_run *run);
/* Once per process: the fork handler and sysctl kernel.perf_event_max_stack. */
void agent_helpers_init(void);
extern unsigned int agent_perf_max_stack;

#endif

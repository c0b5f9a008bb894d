/* SPDX-License-Identifier: MIT */
/*
 * A tool's uprobe program, loaded into the agent: the VM (JIT by default)
 * with the kernel's helpers and the tool's own kernel maps, reached through
 * the fds the daemon passes.
 *
 * Contract:
 *  - agent_prog__load() refuses, with a message naming it, any helper or map
 *    type the agent does not support: the daemon then keeps the program in
 *    the kernel. Nothing is refused at run time.
 *  - agent_prog__load() installs, once per process, the SIGSEGV/SIGBUS
 *    handler behind the fault-safe reads (agent/uaccess.h); it chains every
 *    other fault to the application's handler.
 *  - agent_prog__run() may be called from any thread, concurrently, from a
 *    hook: it does not allocate (the one exception: when more runs are in
 *    flight than scratch slots, one more chunk of slots is mapped, once), does
 *    not take locks other than the map write-back lock, never raises a
 *    signal of its own (bpf_send_signal's are sent after the write-back) and
 *    never crashes on a bad pointer the program passes to a probe_read
 *    helper. The program must not be freed while a run is in flight.
 *  - Map values a program looks up are per-run copies written back to the
 *    kernel when the program returns, under a lock shared by every agent of
 *    the map, so (*v)++ and atomic adds give exact counts; per-CPU maps show
 *    the slot of the CPU the thread runs on. BPF_F_MMAPABLE arrays are
 *    mapped and used in place.
 *  - A run that starts while the same thread is inside a run (a helper got
 *    to a hooked function) is skipped with -EBUSY and *ret = 0, as the
 *    kernel skips a program that fires while another one runs on the CPU.
 *  - Functions return 0 or -errno; load errors come with a message in err.
 */
#ifndef BPFTIME_AGENT_PROG_H
#define BPFTIME_AGENT_PROG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ebpf.h"

#define AGENT_ERRMSG_SIZE 256

/* A kernel map the program refers to, as the daemon describes it. */
struct agent_map_spec {
	int fd;		  /* the tool's map, duplicated into this process */
	uint32_t id;	  /* kernel map id */
	uint32_t type;	  /* BPF_MAP_TYPE_* */
	uint32_t key_size;
	uint32_t value_size;
	uint32_t max_entries;
	uint32_t flags;
	/*
	 * RINGBUF and PERF_EVENT_ARRAY maps: the helper program that forwards
	 * records into this map (bpf/ringbuf-output.bpf.c, perf-output.bpf.c).
	 * 0 or less: the spec's ringbuf_output_prog_fd / perf_output_prog_fd.
	 * CGROUP_ARRAY maps: bpf/cgroup-check.bpf.c on this map (required).
	 */
	int output_prog_fd;
	/*
	 * The map's delta array (bpf/delta.h), when every program using the
	 * map only adds to it; 0 or less: none. The agent then adds to it
	 * instead of changing the map through bpf(), where this program too
	 * only adds (agent/additive.h).
	 */
	int delta_fd;
	/*
	 * The map's write-back lock (shm/maplock.h), the same for every agent
	 * of the map; required of a map reached through bpf(); -1: none.
	 */
	int lock_fd;
};

struct agent_prog_spec {
	const struct ebpf_insn *insns;
	size_t insn_cnt;
	/*
	 * The maps, in the order the program's lddw instructions name them:
	 * lddw src 1/2 imm = the tool's fd is translated by the daemon into an
	 * index into this array (map_fds[i] = the tool's fd).
	 */
	const struct agent_map_spec *maps;
	const int *tool_map_fds;
	size_t map_cnt;
	/* Helper programs for output (BPF_PROG_TEST_RUN), -1 when absent. */
	int ringbuf_output_prog_fd;
	int perf_output_prog_fd;
	int trace_printk_prog_fd;
	bool jit;
};

/* What a program sees of the probe that ran it. */
struct agent_probe_info {
	uint64_t func_ip; /* bpf_get_func_ip: the probed address */
	uint64_t cookie;  /* bpf_get_attach_cookie */
	/*
	 * The probed instruction is push %rbp or endbr64: the kernel then
	 * takes *sp as the caller's address in user stacks (bpf_get_stack).
	 */
	bool func_entry;
};

struct agent_prog;

int agent_prog__load(const struct agent_prog_spec *spec, struct agent_prog **out,
		     char err[AGENT_ERRMSG_SIZE]);
void agent_prog__free(struct agent_prog *prog);
/*
 * Adds what runs added to additive maps into them through bpf() (no drain
 * program runs any more: the daemon is gone). Not while runs are in flight.
 */
void agent_prog__flush_deltas(struct agent_prog *prog);

/*
 * Runs the program with ctx = regs (struct pt_regs, x86-64 kernel layout).
 * Writes back the maps it touched before returning.
 */
int agent_prog__run(struct agent_prog *prog, void *regs, const struct agent_probe_info *info,
		    uint64_t *ret);

#endif

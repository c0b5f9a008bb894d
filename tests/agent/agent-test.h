/* SPDX-License-Identifier: MIT */
/*
 * What the agent tests share: they do what a tool and the daemon do. A BPF
 * object from tests/agent/progs is opened and loaded with libbpf (the real
 * kernel verifies it and creates its maps); a program's relocated
 * instructions and its maps' fds become an agent_prog_spec, with the output
 * helper programs of bpf/ loaded onto its output maps; the agent program is
 * then run directly with a hand-made struct pt_regs, and the results are read
 * back from the kernel with libbpf.
 *
 * The engine is the JIT; AGENT_TEST_ENGINE=interp runs the interpreter.
 * Failures fail the current Criterion test.
 */
#ifndef AGENT_TEST_H
#define AGENT_TEST_H

#include <asm/ptrace.h>
#include <stdbool.h>
#include <stdint.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "prog.h"

#define AT_MAX_HELPERS 16

struct drain_bpf;

struct at_obj {
	struct bpf_object *obj;
	struct bpf_object *helpers[AT_MAX_HELPERS];
	int nhelpers;
	struct drain_bpf *drains[AT_MAX_HELPERS];
	int ndrains;
	int trace_prog_fd;
};

/* Whether this machine can run the agent tests: NULL, or why not. */
const char *at_missing(void);

/*
 * main() of an agent test binary: when at_missing() says why not, prints the
 * reason and skips (TAP "1..0 # SKIP" under --tap, exit 77 otherwise).
 */
int at_main(int argc, char *argv[]);

/* Opens and loads progs/<name>.bpf.o into the kernel. */
struct at_obj *at_obj_load(const char *name);
void at_obj_free(struct at_obj *o);

int at_map_fd(struct at_obj *o, const char *map);
/* Map map_id's write-back lock, as the daemon makes it: one per map for the whole test. */
int at_map_lock(uint32_t map_id);
int at_prog_fd(struct at_obj *o, const char *prog);

#define AT_NO_TRACE_PROG 1u /* do not give the agent the trace_printk helper program */
/*
 * Give every hash and array map (not mmapable) a delta array with its drain
 * program, as the daemon does for additive maps; with AT_UNDRAINED the
 * drain program is loaded but not attached (nothing drains but the agent).
 */
#define AT_DELTAS 2u
#define AT_UNDRAINED 4u

/*
 * Builds the spec of program prog of o as the daemon will and loads it into
 * the agent: 0, or the agent's -errno with its message in err.
 */
int at_prog_try_load(struct at_obj *o, const char *prog, unsigned int flags,
		     struct agent_prog **out, char err[AGENT_ERRMSG_SIZE]);
/* The same, failing the test on a refusal. */
struct agent_prog *at_prog_load(struct at_obj *o, const char *prog);

bool at_jit(void);

/* Runs p with a pt_regs whose argument registers hold a1..a5 (rdi, rsi, rdx, rcx, r8). */
uint64_t at_run(struct agent_prog *p, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
		uint64_t a5);
/* Runs p with ctx = the array args (what a raw_tp program sees). */
uint64_t at_run_ctx(struct agent_prog *p, const uint64_t *args, size_t n);

/* Runs the raw_tp program prog of o in the kernel with BPF_PROG_TEST_RUN. */
uint32_t at_kernel_run(struct at_obj *o, const char *prog, const uint64_t *args, size_t n);

/* Pins the calling thread to cpu. */
void at_pin_cpu(int cpu);
int at_ncpus(void);

#endif

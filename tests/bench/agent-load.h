/* SPDX-License-Identifier: MIT */
/* A libbpf program loaded into the agent as the daemon would (see agent-load.c). */
#ifndef BPFTIME_BENCH_AGENT_LOAD_H
#define BPFTIME_BENCH_AGENT_LOAD_H

#include <stdarg.h>
#include <stdbool.h>

#include <bpf/libbpf.h>

#include "prog.h"

/*
 * Exits with a message when the agent refuses the program. With deltas,
 * hash and array maps get a delta array and an attached drain program, as
 * the daemon gives additive maps (they stay loaded until the process ends).
 */
struct agent_prog *bench_agent_load(struct bpf_object *obj, const char *name, bool jit,
				    bool deltas);
/* libbpf's print callback for benchmarks: warnings only. */
int bench_libbpf_quiet(enum libbpf_print_level level, const char *fmt, va_list ap);

#endif

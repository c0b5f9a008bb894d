/* SPDX-License-Identifier: MIT */
/*
 * The helper programs the daemon loads for agents (bpf/output.h): per RINGBUF
 * or PERF_EVENT_ARRAY map of a tool, a program that forwards records into
 * it; per CGROUP_ARRAY, the one that answers bpf_current_task_under_cgroup;
 * and one trace_printk program. An agent runs them with BPF_PROG_TEST_RUN;
 * the daemon passes their fds with a LOAD.
 *
 * Contract: outputs_get() loads a map's program once and returns the same fd
 * until outputs_release() drops programs of maps no longer named; the fds
 * stay owned here. Functions return an fd or -errno with a reason in err.
 */
#ifndef BPFTIMED_OUTPUTS_H
#define BPFTIMED_OUTPUTS_H

#include <stddef.h>
#include <stdint.h>

struct outputs;

struct outputs *outputs_new(void);
void outputs_free(struct outputs *o);

/* The program for map_id (a RINGBUF, PERF_EVENT_ARRAY or CGROUP_ARRAY, type map_type). */
int outputs_get(struct outputs *o, uint32_t map_id, uint32_t map_type, char *err, size_t err_size);
/* The trace_printk program. */
int outputs_printk(struct outputs *o, char *err, size_t err_size);
/* Unloads the programs of every map for which keep(ctx, map_id) is false. */
void outputs_release(struct outputs *o, int (*keep)(void *ctx, uint32_t map_id), void *ctx);

#endif

// SPDX-License-Identifier: MIT
/*
 * Output into the tool's ring buffers, perf buffers and the trace buffer,
 * and the answer of bpf_current_task_under_cgroup() for its CGROUP_ARRAY,
 * through the helper programs of bpf/output.h, run with BPF_PROG_TEST_RUN:
 * the kernel checks the flags, picks the CPU and wakes the consumer exactly
 * as for its own programs, and the return value is the helper's own.
 */
#include <errno.h>
#include <linux/bpf.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "prog-private.h"

#include "output.h"

static long test_run(int prog_fd, const struct bpftimed_output_args *args)
{
	union bpf_attr attr = {
		.test.prog_fd = (uint32_t)prog_fd,
		.test.ctx_in = (uintptr_t)args,
		.test.ctx_size_in = sizeof(*args),
	};

	if (syscall(__NR_bpf, BPF_PROG_TEST_RUN, &attr, sizeof(attr)) < 0)
		return -errno;
	return (int32_t)attr.test.retval;
}

long agent_output_ringbuf(struct agent_map *m, const void *data, uint64_t size, uint64_t flags)
{
	const struct bpftimed_output_args args = { (uintptr_t)data, size, flags };

	return test_run(m->output_prog_fd, &args);
}

long agent_output_perf(struct agent_map *m, const void *data, uint64_t size, uint64_t flags)
{
	const struct bpftimed_output_args args = { (uintptr_t)data, size, flags };

	return test_run(m->output_prog_fd, &args);
}

long agent_output_cgroup(struct agent_map *m, uint32_t index)
{
	const struct bpftimed_output_args args = { index, 0, 0 };

	return test_run(m->output_prog_fd, &args);
}

long agent_output_trace(int prog_fd, const char *text)
{
	const struct bpftimed_output_args args = { (uintptr_t)text, strlen(text) + 1, 0 };

	return test_run(prog_fd, &args);
}

// SPDX-License-Identifier: MIT
/*
 * ns per agent_prog__run() for what uprobe tools run most: an empty program,
 * an ARRAY count, bpftrace's @[key] = count() (a PERCPU_HASH), one ringbuf
 * record, and for reference an atomic count in an mmapable array. The
 * programs come from tests/agent/progs/bench.bpf.c, loaded into the kernel
 * with libbpf as a tool would; the agent runs them directly (no hook), so
 * the figures are the program side of a hit. Not a test: it prints a table.
 *
 *   agent-prog-bench [--interp] [-n RUNS] [--only PROGRAM]
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <asm/ptrace.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include "prog.h"
#include "agent-load.h"

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int drop(void *ctx, void *data, size_t size)
{
	(*(uint64_t *)ctx)++;
	return 0;
}

int main(int argc, char *argv[])
{
	static const struct {
		const char *prog, *what;
	} rows[] = {
		{ "empty", "empty program" },
		{ "array_count", "ARRAY count ((*v)++)" },
		{ "pcpu_hash_count", "PERCPU_HASH count (bpftrace @[k] = count())" },
		{ "ringbuf_record", "one ringbuf record (16 bytes)" },
		{ "mmap_count", "mmapable ARRAY atomic count (reference)" },
	};
	bool jit = true;
	long runs = 200000;
	const char *only = NULL;
	struct bpf_object *obj;
	char path[512];
	uint64_t consumed = 0;
	struct ring_buffer *rb;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--interp"))
			jit = false;
		else if (!strcmp(argv[i], "-n") && i + 1 < argc)
			runs = atol(argv[++i]);
		else if (!strcmp(argv[i], "--only") && i + 1 < argc)
			only = argv[++i];
	}
	libbpf_set_print(bench_libbpf_quiet);
	snprintf(path, sizeof(path), "%s/bench.bpf.o", AGENT_PROGS_DIR);
	obj = bpf_object__open_file(path, NULL);
	if (!obj || bpf_object__load(obj)) {
		fprintf(stderr, "cannot load %s (root needed)\n", path);
		return 1;
	}
	rb = ring_buffer__new(bpf_map__fd(bpf_object__find_map_by_name(obj, "rb")), drop, &consumed,
			      NULL);
	printf("agent_prog__run, %s, %ld runs each, 1 thread\n", jit ? "JIT" : "interpreter", runs);
	printf("%-48s %12s\n", "program", "ns/run");
	for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
		if (only && strcmp(only, rows[r].prog))
			continue;
		struct agent_prog *p = bench_agent_load(obj, rows[r].prog, jit, false);
		long n = !strcmp(rows[r].prog, "empty") || !strcmp(rows[r].prog, "mmap_count") ?
				 runs * 50 :
				 runs;
		uint64_t best = UINT64_MAX;

		for (int rep = 0; rep < 5; rep++) {
			struct pt_regs regs = { 0 };
			uint64_t t0 = now_ns(), ret;

			for (long i = 0; i < n; i++) {
				regs.rdi = (uint64_t)(i & 63);
				agent_prog__run(p, &regs, NULL, &ret);
				if ((i & 4095) == 4095 && rb)
					ring_buffer__consume(rb);
			}
			uint64_t dt = now_ns() - t0;

			if (dt < best)
				best = dt;
		}
		printf("%-48s %12.1f\n", rows[r].what, (double)best / (double)n);
		agent_prog__free(p);
	}
	if (!only) {
		/* What the map and output rows are made of: the syscalls alone. */
		int arr = bpf_map__fd(bpf_object__find_map_by_name(obj, "arr"));
		int pcpu = bpf_map__fd(bpf_object__find_map_by_name(obj, "pcpu_hash"));
		uint64_t vals[1024] = { 0 }, key = 1,
			 best[3] = { UINT64_MAX, UINT64_MAX, UINT64_MAX };
		uint32_t zero = 0;

		for (int rep = 0; rep < 5; rep++) {
			uint64_t t0 = now_ns();

			for (long i = 0; i < runs; i++)
				bpf_map_lookup_elem(arr, &zero, vals);
			uint64_t t1 = now_ns();

			for (long i = 0; i < runs; i++)
				bpf_map_update_elem(arr, &zero, vals, BPF_ANY);
			uint64_t t2 = now_ns();

			for (long i = 0; i < runs; i++)
				bpf_map_lookup_elem(pcpu, &key, vals);
			uint64_t t3 = now_ns();

			best[0] = t1 - t0 < best[0] ? t1 - t0 : best[0];
			best[1] = t2 - t1 < best[1] ? t2 - t1 : best[1];
			best[2] = t3 - t2 < best[2] ? t3 - t2 : best[2];
		}
		printf("%-48s %12.1f\n", "  syscall: ARRAY lookup", (double)best[0] / (double)runs);
		printf("%-48s %12.1f\n", "  syscall: ARRAY update", (double)best[1] / (double)runs);
		printf("%-48s %12.1f\n", "  syscall: PERCPU_HASH lookup (all CPUs)",
		       (double)best[2] / (double)runs);
	}
	if (rb) {
		ring_buffer__consume(rb);
		ring_buffer__free(rb);
	}
	bpf_object__close(obj);
	return 0;
}

// SPDX-License-Identifier: MIT
/*
 * The kernel uprobe against the agent, side by side in one run: the same
 * program (tests/agent/progs/bench.bpf.c, loaded by libbpf as a tool would)
 * on the same function of this process, first attached as a kernel uprobe,
 * then run by the agent behind an inline hook. Functions whose first
 * instruction is lea (single-stepped by the kernel), endbr64 (single-
 * stepped) and push (emulated). Prints ns per hit over a plain call and the
 * kernel/agent ratio. Not a test.
 *
 *   uprobe-bench [--interp]
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "agent-load.h"
#include "hook.h"
#include "self-offset.h"

#define TARGET(name)                                                                               \
	extern int name(int);                                                                      \
	extern char name##_end[];
TARGET(hk_lea)
TARGET(hk_endbr)
TARGET(hk_push)
extern char hk_nop5_end[];

static const struct {
	const char *what;
	int (*fn)(int);
	const char *end, *prev_end;
} targets[] = {
	{ "lea", hk_lea, hk_lea_end, NULL },
	{ "endbr64", hk_endbr, hk_endbr_end, hk_nop5_end },
	{ "push", hk_push, hk_push_end, NULL },
};

/* deltas: the map additive, as the daemon makes bpftrace's count() maps. */
static const struct {
	const char *name, *label;
	bool deltas;
} programs[] = {
	{ "empty", "empty", false },
	{ "array_count", "array_count", false },
	{ "pcpu_hash_count", "pcpu_hash_count", false },
	{ "pcpu_count", "pcpu_count", false },
	{ "pcpu_count", "+ deltas", true },
	{ "ringbuf_record", "ringbuf_record", false },
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Best of 5 of ns per call. */
static double time_calls(int (*fn)(int), long n)
{
	double best = 1e18;
	volatile int sink = 0;

	for (int rep = 0; rep < 5; rep++) {
		uint64_t t0 = now_ns();

		for (long i = 0; i < n; i++)
			sink += fn((int)i);
		double per = (double)(now_ns() - t0) / (double)n;

		if (per < best)
			best = per;
	}
	return best;
}

struct run_ctx {
	struct agent_prog *prog;
	uint64_t func_ip;
};

static void run_program(void *user, struct pt_regs *regs)
{
	struct run_ctx *c = user;
	struct agent_probe_info info = { .func_ip = c->func_ip };
	uint64_t ret;

	agent_prog__run(c->prog, regs, &info, &ret);
}

static int drop(void *ctx, void *data, size_t size)
{
	return 0;
}

int main(int argc, char **argv)
{
	bool jit = !(argc > 1 && !strcmp(argv[1], "--interp"));
	struct bpf_object *obj;
	struct ring_buffer *rb;
	char path[512];

	libbpf_set_print(bench_libbpf_quiet);
	snprintf(path, sizeof(path), "%s/bench.bpf.o", AGENT_PROGS_DIR);
	obj = bpf_object__open_file(path, NULL);
	if (!obj || bpf_object__load(obj)) {
		fprintf(stderr, "cannot load %s (root needed)\n", path);
		return 1;
	}
	rb = ring_buffer__new(bpf_map__fd(bpf_object__find_map_by_name(obj, "rb")), drop, NULL,
			      NULL);
	printf("ns per hit over a plain call; agent on the %s; kernel %s\n",
	       jit ? "JIT" : "interpreter", "uprobe via perf_event + BPF_PERF_EVENT link");
	printf("%-8s %-16s %10s %12s %12s %12s\n", "first", "program", "call ns", "kernel ns",
	       "agent ns", "kernel/agent");
	for (size_t t = 0; t < sizeof(targets) / sizeof(targets[0]); t++) {
		uint64_t off = self_file_offset(targets[t].fn);
		double plain = time_calls(targets[t].fn, 2000000);

		for (size_t p = 0; p < sizeof(programs) / sizeof(programs[0]); p++) {
			struct bpf_program *bp =
				bpf_object__find_program_by_name(obj, programs[p].name);
			struct run_ctx ctx = { .func_ip = (uint64_t)targets[t].fn };
			struct hook_ops ops = { .entry = run_program, .user = &ctx };
			struct hook_site site = {
				.addr = (uint64_t)targets[t].fn,
				.orig_len = HOOK_MAX_ORIG,
				.func_start = (uint64_t)targets[t].fn,
				.func_end = (uint64_t)targets[t].end,
				.prev_end = (uint64_t)targets[t].prev_end,
			};
			char err[HOOK_ERRMSG_SIZE];
			struct bpf_link *link;
			double kernel, agent;
			struct hook *h;

			/* The kernel: tens of thousands of hits are plenty at microseconds each. */
			link = bpf_program__attach_uprobe(bp, false, getpid(), "/proc/self/exe", off);
			if (!link) {
				fprintf(stderr, "cannot attach %s as a kernel uprobe\n",
					programs[p].name);
				return 1;
			}
			kernel = time_calls(targets[t].fn, 20000) - plain;
			bpf_link__destroy(link);

			memcpy(site.orig, (const void *)targets[t].fn, HOOK_MAX_ORIG);
			ctx.prog = bench_agent_load(obj, programs[p].name, jit, programs[p].deltas);
			h = hook__new(&site, &ops, err);
			if (!h || hook__enable(h, HOOK_F_STOPPED) < 0) {
				fprintf(stderr, "cannot hook %s: %s\n", targets[t].what, err);
				return 1;
			}
			agent = time_calls(targets[t].fn, !strcmp(programs[p].name, "empty") ? 2000000
											 : 200000) -
				plain;
			hook__disable(h, HOOK_F_STOPPED);
			hook__free(h);
			if (rb)
				ring_buffer__consume(rb);
			printf("%-8s %-16s %10.1f %12.1f %12.1f %11.0fx\n", targets[t].what,
			       programs[p].label, plain, kernel, agent, kernel / agent);
			/* The program stays loaded: a hook retired just now may still reach it. */
		}
	}
	if (rb)
		ring_buffer__free(rb);
	bpf_object__close(obj);
	return 0;
}

// SPDX-License-Identifier: MIT
/*
 * Additive maps through deltas (agent/additive.h, bpf/delta.h), against
 * the kernel: programs of tests/agent/progs/additive.bpf.c run in the agent
 * from several threads with each hash map given a delta array and its
 * drain program, as the daemon does; reading the map with bpf() (as a
 * tool reads it) then shows exactly what the runs added. Without a drain
 * program the agent's own flush puts it there. A map the program does more
 * than add to is still changed through bpf(), exactly.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "agent-test.h"

#define THREADS 4
#define RUNS 25000

struct worker {
	struct agent_prog *p;
	uint64_t base;
};

static void *work(void *arg)
{
	struct worker *w = arg;

	for (uint64_t i = 0; i < RUNS; i++)
		at_run(w->p, w->base + i, w->base + i, 0, 0, 0);
	return NULL;
}

/* Runs p THREADS x RUNS times; run i of thread t gets arg0 = arg1 = t * RUNS + i. */
static void run_threads(struct agent_prog *p)
{
	pthread_t t[THREADS];
	struct worker w[THREADS];

	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct worker){ p, (uint64_t)i * RUNS };
		cr_assert_eq(pthread_create(&t[i], NULL, work, &w[i]), 0);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
}

/* The value of key, summed over CPUs for per-CPU maps (as tools print it). */
static uint64_t read_value(struct at_obj *o, const char *map, uint64_t key, int word)
{
	int fd = at_map_fd(o, map), n = libbpf_num_possible_cpus();
	struct bpf_map_info info = { 0 };
	uint32_t len = sizeof(info);
	uint64_t v[4096] = { 0 }, sum = 0;
	int stride;

	cr_assert_eq(bpf_obj_get_info_by_fd(fd, &info, &len), 0);
	stride = (int)(info.value_size / 8);
	if (bpf_map_lookup_elem(fd, &key, v) < 0)
		return 0;
	if (info.type != BPF_MAP_TYPE_PERCPU_HASH && info.type != BPF_MAP_TYPE_PERCPU_ARRAY)
		return v[word];
	for (int c = 0; c < n; c++)
		sum += v[c * stride + word];
	return sum;
}

Test(agent_deltas, count_from_threads, .timeout = 60)
{
	struct at_obj *o = at_obj_load("additive");
	struct agent_prog *p;
	char err[AGENT_ERRMSG_SIZE];

	cr_assert_eq(at_prog_try_load(o, "count", AT_DELTAS, &p, err), 0, "%s", err);
	run_threads(p);
	cr_expect_eq(read_value(o, "counts", 0, 0), THREADS * RUNS, "count %llu of %d",
		     (unsigned long long)read_value(o, "counts", 0, 0), THREADS * RUNS);
	agent_prog__free(p);
	at_obj_free(o);
}

Test(agent_deltas, sums_increments_and_averages, .timeout = 60)
{
	struct at_obj *o = at_obj_load("additive");
	uint64_t want[4] = { 0 }, n = (uint64_t)THREADS * RUNS;
	struct agent_prog *sum, *inc, *avg;
	char err[AGENT_ERRMSG_SIZE];

	cr_assert_eq(at_prog_try_load(o, "sum", AT_DELTAS, &sum, err), 0, "%s", err);
	cr_assert_eq(at_prog_try_load(o, "average", AT_DELTAS, &avg, err), 0, "%s", err);
	run_threads(sum);
	run_threads(avg);
	for (uint64_t x = 0; x < n; x++)
		want[x & 3] += x;
	for (uint64_t k = 0; k < 4; k++)
		cr_expect_eq(read_value(o, "sums", k, 0), want[k], "sum[%llu]: %llu, not %llu",
			     (unsigned long long)k, (unsigned long long)read_value(o, "sums", k, 0),
			     (unsigned long long)want[k]);
	cr_expect_eq(read_value(o, "avgs", 0, 0), n);
	cr_expect_eq(read_value(o, "avgs", 0, 1), n * (n - 1) / 2);
	/* increment() counts into the same map, key arg0: 0..3 get one more each */
	cr_assert_eq(at_prog_try_load(o, "increment", AT_DELTAS, &inc, err), 0, "%s", err);
	for (uint64_t k = 0; k < 4; k++)
		at_run(inc, k, 0, 0, 0, 0);
	for (uint64_t k = 0; k < 4; k++)
		cr_expect_eq(read_value(o, "sums", k, 0), want[k] + 1);
	cr_expect_eq(read_value(o, "sums", 9, 0), 0);
	at_run(inc, 9, 0, 0, 0, 0);
	cr_expect_eq(read_value(o, "sums", 9, 0), 1, "a key created by increment()");
	agent_prog__free(sum);
	agent_prog__free(avg);
	agent_prog__free(inc);
	at_obj_free(o);
}

Test(agent_deltas, flushed_without_a_drain, .timeout = 60)
{
	struct at_obj *o = at_obj_load("additive");
	struct agent_prog *p;
	char err[AGENT_ERRMSG_SIZE];

	cr_assert_eq(at_prog_try_load(o, "count", AT_DELTAS | AT_UNDRAINED, &p, err), 0, "%s",
		     err);
	run_threads(p);
	/* Only the first calls, which created the element, reached the kernel. */
	cr_expect_lt(read_value(o, "counts", 0, 0), THREADS + 1, "%llu counted without a drain",
		     (unsigned long long)read_value(o, "counts", 0, 0));
	agent_prog__flush_deltas(p);
	cr_expect_eq(read_value(o, "counts", 0, 0), THREADS * RUNS);
	agent_prog__free(p);
	at_obj_free(o);
}

Test(agent_deltas, a_max_stays_on_bpf, .timeout = 60)
{
	struct at_obj *o = at_obj_load("additive");
	struct agent_prog *p;
	char err[AGENT_ERRMSG_SIZE];

	cr_assert_eq(at_prog_try_load(o, "count_and_max", AT_DELTAS, &p, err), 0, "%s", err);
	run_threads(p);
	cr_expect_eq(read_value(o, "counts", 0, 0), THREADS * RUNS);
	cr_expect_eq(read_value(o, "maxes", 0, 0), THREADS * RUNS - 1);
	agent_prog__free(p);
	at_obj_free(o);
}

int main(int argc, char *argv[])
{
	return at_main(argc, argv);
}

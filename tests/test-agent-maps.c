// SPDX-License-Identifier: MIT
/*
 * The agent on the tool's kernel maps: every supported map type counted by
 * (*v)++ and by atomic adds, exact under 16 threads and across processes;
 * per-CPU maps show the run's CPU slot and no other; the map helpers' flags
 * and errors are the kernel's, checked against the same program run in the
 * kernel on a twin set of maps.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "agent-test.h"

static const char *const count_maps[] = { "arr",       "hash",	   "lru", "pcpu_arr",
					  "pcpu_hash", "lru_pcpu", "mm" };

static bool is_percpu(const char *map)
{
	return strstr(map, "pcpu") != NULL;
}

/* The value at key summed over every CPU, and the slot of each. */
static uint64_t read_sum(int fd, uint32_t key, bool percpu, uint64_t *slots)
{
	uint64_t vals[256] = { 0 }, sum = 0;
	int n = percpu ? at_ncpus() : 1;

	if (bpf_map_lookup_elem(fd, &key, vals) < 0)
		return 0;
	for (int i = 0; i < n; i++) {
		sum += vals[i];
		if (slots)
			slots[i] = vals[i];
	}
	return sum;
}

static uint64_t read_hits(struct at_obj *o)
{
	uint32_t zero = 0;
	uint64_t v = 0;
	struct bpf_map *bss = NULL, *m;

	bpf_object__for_each_map(m, o->obj)
		if (strstr(bpf_map__name(m), ".bss"))
			bss = m;
	cr_assert_not_null(bss);
	cr_assert_eq(bpf_map_lookup_elem(bpf_map__fd(bss), &zero, &v), 0);
	return v;
}

Test(agent_maps, count_every_type_once, .timeout = 60)
{
	struct at_obj *o = at_obj_load("counters");

	for (size_t i = 0; i < sizeof(count_maps) / sizeof(count_maps[0]); i++) {
		char prog[32];
		struct agent_prog *p;

		snprintf(prog, sizeof(prog), "count_%.20s", count_maps[i]);
		p = at_prog_load(o, prog);
		for (int k = 0; k < 10; k++)
			at_run(p, 3, k & 1, 0, 0, 0);
		cr_expect_eq(read_sum(at_map_fd(o, count_maps[i]), 3, is_percpu(count_maps[i]),
				      NULL),
			     10, "%s", count_maps[i]);
		/* Other keys untouched. */
		cr_expect_eq(read_sum(at_map_fd(o, count_maps[i]), 4, is_percpu(count_maps[i]),
				      NULL),
			     0, "%s", count_maps[i]);
		agent_prog__free(p);
	}
	cr_expect_eq(read_hits(o), 70);
	at_obj_free(o);
}

Test(agent_maps, percpu_slot_is_the_runs_cpu, .timeout = 60)
{
	static const char *const maps[] = { "pcpu_arr", "pcpu_hash", "lru_pcpu" };
	struct at_obj *o = at_obj_load("counters");
	int ncpus = at_ncpus();

	cr_assert_gt(ncpus, 0);
	for (size_t i = 0; i < 3; i++) {
		char prog[32];
		struct agent_prog *p;
		uint64_t slots[256];

		snprintf(prog, sizeof(prog), "count_%.20s", maps[i]);
		p = at_prog_load(o, prog);
		/* cpu c gets c + 1 counts on key 5 */
		for (int c = 0; c < ncpus; c++) {
			at_pin_cpu(c);
			for (int k = 0; k <= c; k++)
				at_run(p, 5, k & 1, 0, 0, 0);
		}
		read_sum(at_map_fd(o, maps[i]), 5, true, slots);
		for (int c = 0; c < ncpus; c++)
			cr_expect_eq(slots[c], (uint64_t)c + 1, "%s cpu %d: %llu", maps[i], c,
				     (unsigned long long)slots[c]);
		agent_prog__free(p);
	}
	at_obj_free(o);
}

/* ---- exact counts under concurrency ---- */

#define THREADS 16
#define RUNS 2000

struct worker {
	struct agent_prog *p;
	uint32_t key;
	int atomic;
};

static void *work(void *arg)
{
	struct worker *w = arg;

	for (int i = 0; i < RUNS; i++) {
		struct pt_regs regs = { .rdi = w->key, .rsi = (uint64_t)w->atomic };
		uint64_t ret;

		if (agent_prog__run(w->p, &regs, NULL, &ret) < 0)
			return (void *)1;
	}
	return NULL;
}

static void run_threads(struct agent_prog *p, uint32_t key, int atomic)
{
	pthread_t t[THREADS];
	struct worker w = { p, key, atomic };
	void *res;

	for (int i = 0; i < THREADS; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, work, &w), 0);
	for (int i = 0; i < THREADS; i++) {
		cr_assert_eq(pthread_join(t[i], &res), 0);
		cr_expect_null(res);
	}
}

Test(agent_maps, exact_under_16_threads, .timeout = 300)
{
	struct at_obj *o = at_obj_load("counters");

	for (size_t i = 0; i < sizeof(count_maps) / sizeof(count_maps[0]); i++) {
		char prog[32];
		struct agent_prog *p;

		snprintf(prog, sizeof(prog), "count_%.20s", count_maps[i]);
		p = at_prog_load(o, prog);
		/* The mmapable array is shared memory: only atomics are exact there. */
		if (i != sizeof(count_maps) / sizeof(count_maps[0]) - 1) {
			run_threads(p, 7, 0);
			cr_expect_eq(read_sum(at_map_fd(o, count_maps[i]), 7,
					      is_percpu(count_maps[i]), NULL),
				     THREADS * RUNS, "(*v)++ on %s", count_maps[i]);
		}
		run_threads(p, 8, 1);
		cr_expect_eq(read_sum(at_map_fd(o, count_maps[i]), 8, is_percpu(count_maps[i]),
				      NULL),
			     THREADS * RUNS, "atomic add on %s", count_maps[i]);
		agent_prog__free(p);
	}
	at_obj_free(o);
}

Test(agent_maps, exact_across_processes, .timeout = 300)
{
	static const char *const maps[] = { "arr",	"hash",	     "lru",
					    "pcpu_arr", "pcpu_hash", "lru_pcpu" };
	struct at_obj *o = at_obj_load("counters");

	for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
		char prog[32];
		struct agent_prog *p;
		pid_t child;
		int status;

		snprintf(prog, sizeof(prog), "count_%.20s", maps[i]);
		p = at_prog_load(o, prog);
		child = fork();
		cr_assert_geq(child, 0);
		if (child == 0) {
			/* A second agent process: the same program on the same maps. */
			struct agent_prog *q = at_prog_load(o, prog);
			struct worker w[2] = { { q, 9, 0 }, { q, 10, 1 } };
			pthread_t t[4];
			void *res;
			int bad = 0;

			for (int k = 0; k < 4; k++)
				pthread_create(&t[k], NULL, work, &w[k & 1]);
			for (int k = 0; k < 4; k++) {
				pthread_join(t[k], &res);
				bad |= res != NULL;
			}
			_exit(bad);
		}
		{
			struct worker w[2] = { { p, 9, 0 }, { p, 10, 1 } };
			pthread_t t[4];
			void *res;

			for (int k = 0; k < 4; k++)
				pthread_create(&t[k], NULL, work, &w[k & 1]);
			for (int k = 0; k < 4; k++) {
				pthread_join(t[k], &res);
				cr_expect_null(res);
			}
		}
		cr_assert_eq(waitpid(child, &status, 0), child);
		cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0);
		cr_expect_eq(read_sum(at_map_fd(o, maps[i]), 9, is_percpu(maps[i]), NULL),
			     2 * 2 * RUNS, "(*v)++ on %s from two processes", maps[i]);
		cr_expect_eq(read_sum(at_map_fd(o, maps[i]), 10, is_percpu(maps[i]), NULL),
			     2 * 2 * RUNS, "atomic add on %s from two processes", maps[i]);
		agent_prog__free(p);
	}
	at_obj_free(o);
}

/* ---- the map helpers' semantics, against the kernel ---- */

struct result {
	int64_t ret;
	int64_t ret2;
	uint64_t val[4];
	char buf[256];
	char buf2[256];
};

enum { OP_UPDATE, OP_DELETE, OP_LOOKUP, OP_ADD };
enum { M_ARR, M_HASH, M_LRU, M_PCPU_ARR, M_PCPU_HASH, M_LRU_PCPU, M_MM, M_COUNT };
static const char *const oracle_maps[] = { "arr",	"hash",	    "lru", "pcpu_arr",
					   "pcpu_hash", "lru_pcpu", "mm" };

static struct result out_of(struct at_obj *o)
{
	struct result r;
	uint32_t zero = 0;

	cr_assert_eq(bpf_map_lookup_elem(at_map_fd(o, "out"), &zero, &r), 0);
	return r;
}

/* The same op in the kernel (on k) and in the agent (on a): same return value. */
static void same_op(struct at_obj *k, struct at_obj *a, struct agent_prog *p, uint64_t op,
		    uint64_t map, uint64_t key, uint64_t flags, uint64_t value)
{
	const uint64_t args[5] = { op, map, key, flags, value };
	struct result rk, ra;

	at_kernel_run(k, "map_op", args, 5);
	at_run_ctx(p, args, 5);
	rk = out_of(k);
	ra = out_of(a);
	cr_expect_eq(ra.ret, rk.ret, "op %llu on %s key %llu flags %llu: agent %lld, kernel %lld",
		     (unsigned long long)op, oracle_maps[map], (unsigned long long)key,
		     (unsigned long long)flags, (long long)ra.ret, (long long)rk.ret);
	if (op >= OP_LOOKUP && rk.ret == 1)
		cr_expect_eq(ra.val[0], rk.val[0], "value of %s key %llu", oracle_maps[map],
			     (unsigned long long)key);
}

static void same_contents(struct at_obj *k, struct at_obj *a, const char *map, int nkeys)
{
	int ncpus = at_ncpus();

	for (uint32_t key = 0; key < (uint32_t)nkeys; key++) {
		uint64_t vk[256] = { 0 }, va[256] = { 0 };
		int rk = bpf_map_lookup_elem(at_map_fd(k, map), &key, vk);
		int ra = bpf_map_lookup_elem(at_map_fd(a, map), &key, va);

		cr_expect_eq(ra, rk, "%s key %u present: agent %d, kernel %d", map, key, ra, rk);
		for (int c = 0; c < (strstr(map, "pcpu") ? ncpus : 1); c++)
			cr_expect_eq(va[c], vk[c], "%s key %u cpu %d: agent %llu, kernel %llu", map,
				     key, c, (unsigned long long)va[c], (unsigned long long)vk[c]);
	}
}

Test(agent_maps, helpers_match_the_kernel, .timeout = 120)
{
	struct at_obj *k = at_obj_load("oracle"), *a = at_obj_load("oracle");
	struct agent_prog *p = at_prog_load(a, "map_op");

	/* Per-CPU updates land in the slot of the CPU they ran on: keep it fixed. */
	at_pin_cpu(at_ncpus() - 1);
	for (uint64_t m = 0; m < M_COUNT; m++) {
		/* flags: any, noexist, exist, BPF_F_LOCK, and with it, and an unknown one */
		static const uint64_t flags[] = { 0, 1, 2, 4, 5, 6, 8 };

		for (uint64_t key = 0; key < 6; key++)
			for (size_t f = 0; f < sizeof(flags) / sizeof(flags[0]); f++)
				same_op(k, a, p, OP_UPDATE, m, key, flags[f],
					100 * m + 10 * key + f);
		for (uint64_t key = 0; key < 6; key++) {
			same_op(k, a, p, OP_LOOKUP, m, key, 0, 0);
			same_op(k, a, p, OP_ADD, m, key, 0, 5);
			same_op(k, a, p, OP_LOOKUP, m, key, 0, 0);
		}
		same_op(k, a, p, OP_DELETE, m, 1, 0, 0);
		same_op(k, a, p, OP_DELETE, m, 1, 0, 0);
		same_op(k, a, p, OP_DELETE, m, 99, 0, 0);
		same_op(k, a, p, OP_UPDATE, m, 1, 2, 7);
		same_op(k, a, p, OP_UPDATE, m, 1, 1, 8);
		same_op(k, a, p, OP_LOOKUP, m, 1, 0, 0);
		same_contents(k, a, oracle_maps[m], 8);
	}
	agent_prog__free(p);
	at_obj_free(k);
	at_obj_free(a);
}

int main(int argc, char *argv[])
{
	return at_main(argc, argv);
}

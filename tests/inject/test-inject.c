// SPDX-License-Identifier: MIT
/*
 * The ptrace injector against real processes: single-threaded and 16-thread
 * targets that check their own YMM registers continuously, 100 load/unload
 * cycles with the stop time of each, a target blocked in read(), a target of
 * another uid, a target killed during the dlopen, a non-PIE one, and one
 * that just exec'd (injected at its entry point).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "inject.h"

static const char *target_path, *nopie_path, *lib_path, *slow_path;

struct child {
	pid_t pid;
	int in, out; /* its stdin (write end) and stdout (read end) */
};

/* The target exe, started with `preload` (or nothing) in LD_PRELOAD; not waited for. */
static void spawn_exe(struct child *c, const char *exe, const char *threads, const char *seconds,
		      const char *mode, uid_t uid, const char *preload)
{
	int in[2], out[2];

	cr_assert_eq(pipe(in), 0);
	cr_assert_eq(pipe(out), 0);
	c->pid = fork();
	cr_assert_geq(c->pid, 0);
	if (c->pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		if (uid && setresuid(uid, uid, uid) < 0)
			_exit(5);
		if (preload)
			setenv("LD_PRELOAD", preload, 1);
		execl(exe, exe, threads, seconds, mode, (char *)NULL);
		_exit(6);
	}
	close(in[0]);
	close(out[1]);
	c->in = in[1];
	c->out = out[0];
}

static void spawn(struct child *c, const char *threads, const char *seconds, const char *mode,
		  uid_t uid, const char *preload)
{
	spawn_exe(c, target_path, threads, seconds, mode, uid, preload);
}

/* Its main() runs: it says so. */
static void wait_ready(struct child *c)
{
	char line[64];
	FILE *f = fdopen(dup(c->out), "r");

	cr_assert(fgets(line, sizeof(line), f), "target did not start");
	cr_assert_str_eq(line, "ready\n");
	fclose(f);
}

static void start(struct child *c, const char *threads, const char *seconds, const char *mode,
		  uid_t uid)
{
	spawn(c, threads, seconds, mode, uid, NULL);
	wait_ready(c);
	/* Let its threads get into their check loops. */
	usleep(50000);
}

static int finish(struct child *c)
{
	int status;

	cr_assert_eq(waitpid(c->pid, &status, 0), c->pid);
	close(c->in);
	close(c->out);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static bool mapped(pid_t pid, const char *path)
{
	char maps[64], line[4096];
	bool found = false;
	FILE *f;

	snprintf(maps, sizeof(maps), "/proc/%d/maps", pid);
	f = fopen(maps, "r");
	while (f && !found && fgets(line, sizeof(line), f))
		found = strstr(line, path) != NULL;
	if (f)
		fclose(f);
	return found;
}

static void setup(void)
{
	target_path = getenv("INJECT_TARGET");
	nopie_path = getenv("INJECT_TARGET_NOPIE");
	lib_path = getenv("INJECT_LIB");
	slow_path = getenv("INJECT_SLOW_LIB");
	if (geteuid() != 0)
		cr_skip_test("ptrace injection into other processes needs root");
	cr_assert(target_path && nopie_path && lib_path && slow_path, "INJECT_* not set");
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

Test(inject, single_threaded, .init = setup, .timeout = 60)
{
	struct inject_result res;
	char err[INJECT_ERRMSG_SIZE];
	struct child c;

	start(&c, "1", "2", "spin", 0);
	cr_assert_eq(inject_library(c.pid, lib_path, &res, err), 0, "%s", err);
	cr_expect_neq(res.handle, 0);
	cr_expect(mapped(c.pid, lib_path));
	cr_expect_eq(finish(&c), 0, "the target saw its registers change");
}

Test(inject, sixteen_threads_100_cycles, .init = setup, .timeout = 120)
{
	uint64_t stops[200];
	struct inject_result res;
	char err[INJECT_ERRMSG_SIZE];
	struct child c;
	int n = 0;

	start(&c, "16", "8", "spin", 0);
	for (int i = 0; i < 100; i++) {
		cr_assert_eq(inject_library(c.pid, lib_path, &res, err), 0, "cycle %d: %s", i, err);
		stops[n++] = res.stop_ns;
		cr_assert_eq(inject_unload(c.pid, res.handle, &res, err), 0, "cycle %d: %s", i,
			     err);
		stops[n++] = res.stop_ns;
	}
	cr_expect(!mapped(c.pid, lib_path), "unloaded after the last cycle");
	qsort(stops, (size_t)n, sizeof(stops[0]), cmp_u64);
	cr_log_info("16-thread target: %d stops, median %.2f ms, max %.2f ms", n,
	       stops[n / 2] / 1e6, stops[n - 1] / 1e6);
	cr_expect_eq(finish(&c), 0, "the target saw its registers change");
}

/* What inject_probe_entry() (inject-lib.c) wrote in the target. */
static void expect_entry_called(const char *file, pid_t pid)
{
	char line[64] = "", want[64];
	FILE *f = fopen(file, "r");

	cr_assert(f, "the library's entry point did not run in the target");
	cr_assert(fgets(line, sizeof(line), f));
	fclose(f);
	unlink(file);
	snprintf(want, sizeof(want), "called %d\n", pid);
	cr_expect_str_eq(line, want);
}

/* The target is in its loader (the slow library mapped): injected at its entry point. */
static void inject_at_entry(struct child *c, const char *file, struct inject_result *res)
{
	char err[INJECT_ERRMSG_SIZE];

	for (int i = 0; i < 2000 && !mapped(c->pid, slow_path); i++)
		usleep(500);
	cr_assert(mapped(c->pid, slow_path), "the target did not start its loader");
	cr_assert_eq(inject_library_call(c->pid, lib_path, "inject_probe_entry", file,
					 INJECT_AT_ENTRY, res, err),
		     0, "%s", err);
	cr_expect(res->at_entry, "not injected at the entry point");
	cr_expect_eq(res->tid, c->pid);
	expect_entry_called(file, c->pid);
}

/*
 * Just exec'd, a constructor of a preloaded library still running (300 ms):
 * the loader is not done, so the library goes in at the program's entry
 * point, before main(), which then runs with its registers intact.
 */
Test(inject, just_execd_at_entry_point, .init = setup, .timeout = 60)
{
	struct inject_result res;
	char file[64];
	struct child c;

	snprintf(file, sizeof(file), "/tmp/bpftime-inject-entry-%d", getpid());
	spawn(&c, "1", "1", "spin", 0, slow_path);
	inject_at_entry(&c, file, &res);
	wait_ready(&c);
	cr_log_info("just exec'd: injected at its entry point, thread stopped %.2f ms",
		    res.stop_ns / 1e6);
	cr_expect_eq(finish(&c), 0, "the target saw its registers change");
}

/* Held in its loader longer than the injector waits: left alone, injected once it runs main(). */
Test(inject, loader_too_slow_is_left_alone, .init = setup, .timeout = 60)
{
	struct inject_result res;
	char err[INJECT_ERRMSG_SIZE];
	struct child c;

	setenv("INJECT_SLOW_MS", "1500", 1);
	spawn(&c, "1", "2", "spin", 0, slow_path);
	unsetenv("INJECT_SLOW_MS");
	for (int i = 0; i < 2000 && !mapped(c.pid, slow_path); i++)
		usleep(500);
	cr_assert_eq(inject_library_call(c.pid, lib_path, "inject_probe_entry", "/nonexistent",
					 INJECT_AT_ENTRY, &res, err),
		     -EAGAIN, "%s", err);
	cr_expect(strstr(err, "did not reach its entry point"), "%s", err);
	cr_expect(!mapped(c.pid, lib_path));
	wait_ready(&c);
	cr_assert_eq(inject_library(c.pid, lib_path, &res, err), 0, "%s", err);
	cr_expect_eq(finish(&c), 0, "the target saw its registers change");
}

/*
 * A constructor forks while the breakpoint is in: the child, which goes on
 * to the program's _start, must not inherit it (it would die of SIGTRAP).
 */
Test(inject, child_forked_in_the_loader_runs, .init = setup, .timeout = 60)
{
	struct inject_result res;
	char file[64];
	struct child c;

	snprintf(file, sizeof(file), "/tmp/bpftime-inject-fork-%d", getpid());
	setenv("INJECT_SLOW_FORK_MS", "150", 1);
	spawn(&c, "1", "1", "spin", 0, slow_path);
	unsetenv("INJECT_SLOW_FORK_MS");
	inject_at_entry(&c, file, &res);
	/* Both the target and the child it forked get to main() and finish it. */
	{
		FILE *f = fdopen(dup(c.out), "r");
		char line[64];
		int ready = 0, done = 0;

		while (f && done < 2 && fgets(line, sizeof(line), f)) {
			ready += !strcmp(line, "ready\n");
			done += !strncmp(line, "max gap", 7);
		}
		if (f)
			fclose(f);
		cr_expect_eq(ready, 2, "%d of the 2 processes got to main()", ready);
		cr_expect_eq(done, 2, "%d of the 2 processes finished", done);
	}
	cr_expect_eq(finish(&c), 0, "the target saw its registers change");
}

/* Past its entry point already: injected where it stands, without waiting. */
Test(inject, past_entry_point_where_it_stands, .init = setup, .timeout = 60)
{
	struct inject_result res;
	char err[INJECT_ERRMSG_SIZE], file[64];
	struct child c;

	snprintf(file, sizeof(file), "/tmp/bpftime-inject-past-%d", getpid());
	start(&c, "1", "2", "spin", 0);
	cr_assert_eq(inject_library_call(c.pid, lib_path, "inject_probe_entry", file,
					 INJECT_AT_ENTRY, &res, err),
		     0, "%s", err);
	cr_expect(!res.at_entry);
	expect_entry_called(file, c.pid);
	cr_expect_lt(res.stop_ns, 50000000ULL, "stopped %.2f ms", res.stop_ns / 1e6);
	cr_expect_eq(res.tid, c.pid);
	cr_expect_eq(finish(&c), 0, "the target saw its registers change");
}

/* A non-PIE executable: at its fixed addresses, running and just exec'd. */
Test(inject, non_pie_target, .init = setup, .timeout = 60)
{
	struct inject_result res;
	char err[INJECT_ERRMSG_SIZE], file[64];
	struct child c;

	spawn_exe(&c, nopie_path, "4", "2", "spin", 0, NULL);
	wait_ready(&c);
	usleep(50000);
	cr_assert_eq(inject_library(c.pid, lib_path, &res, err), 0, "%s", err);
	cr_expect(mapped(c.pid, lib_path));
	cr_expect_eq(finish(&c), 0, "the target saw its registers change");

	snprintf(file, sizeof(file), "/tmp/bpftime-inject-nopie-%d", getpid());
	spawn_exe(&c, nopie_path, "1", "1", "spin", 0, slow_path);
	inject_at_entry(&c, file, &res);
	wait_ready(&c);
	cr_expect_eq(finish(&c), 0, "the target saw its registers change");
}

Test(inject, blocked_in_read, .init = setup, .timeout = 60)
{
	struct inject_result res;
	char err[INJECT_ERRMSG_SIZE], line[64];
	struct child c;
	FILE *f;

	start(&c, "1", "0", "read", 0);
	cr_assert_eq(inject_library(c.pid, lib_path, &res, err), 0, "%s", err);
	cr_expect(mapped(c.pid, lib_path));
	/* The interrupted read() restarted: it still gets the line. */
	cr_assert_eq(write(c.in, "go\n", 3), 3);
	f = fdopen(dup(c.out), "r");
	cr_assert(fgets(line, sizeof(line), f));
	cr_expect_str_eq(line, "read done\n");
	fclose(f);
	cr_expect_eq(finish(&c), 0);
}

Test(inject, other_uid, .init = setup, .timeout = 60)
{
	struct inject_result res;
	char err[INJECT_ERRMSG_SIZE];
	struct child c;

	start(&c, "4", "2", "spin", 65534);
	cr_assert_eq(inject_library(c.pid, lib_path, &res, err), 0, "%s", err);
	cr_expect(mapped(c.pid, lib_path));
	cr_expect_eq(finish(&c), 0);
}

struct killer {
	pid_t pid;
};

static void *kill_soon(void *arg)
{
	struct killer *k = arg;

	usleep(100000);
	kill(k->pid, SIGKILL);
	return NULL;
}

Test(inject, target_dies_during_dlopen, .init = setup, .timeout = 60)
{
	struct inject_result res;
	char err[INJECT_ERRMSG_SIZE];
	struct child c;
	struct killer k;
	pthread_t th;
	int r;

	start(&c, "2", "10", "spin", 0);
	k.pid = c.pid;
	pthread_create(&th, NULL, kill_soon, &k);
	/* The slow constructor keeps dlopen busy for 300 ms: the kill lands inside. */
	r = inject_library(c.pid, slow_path, &res, err);
	pthread_join(th, NULL);
	cr_expect_eq(r, -ESRCH, "returned %d: %s", r, err);
	cr_expect(strstr(err, "exited"), "message: %s", err);
	cr_expect_eq(finish(&c), 128 + SIGKILL);
}

Test(inject, missing_library_is_a_clear_error, .init = setup, .timeout = 60)
{
	struct inject_result res;
	char err[INJECT_ERRMSG_SIZE];
	struct child c;

	start(&c, "1", "2", "spin", 0);
	cr_expect_eq(inject_library(c.pid, "/nonexistent/libnothing.so", &res, err), -ENOEXEC);
	cr_expect(strstr(err, "libnothing.so"), "message: %s", err);
	cr_expect_eq(finish(&c), 0, "the target lives on unharmed");
}

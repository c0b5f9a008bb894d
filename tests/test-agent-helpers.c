// SPDX-License-Identifier: MIT
/*
 * The agent's helpers against the kernel's. Oracle tests run the same
 * raw_tp program in the kernel (BPF_PROG_TEST_RUN, in this very thread) and
 * in the agent, each on its own instance of the object, and compare every
 * byte they produce: probe_read and its variants on good, NULL, unmapped and
 * guard-page pointers, strncmp, snprintf, what the task and CPU helpers say,
 * bpf_loop, bpf_current_task_under_cgroup on a CGROUP_ARRAY. Then what only a uprobe program can see: comm of a renamed
 * thread, pid/tgid after fork, the probe's ip and cookie, user stacks,
 * signals, and that the application's own SIGSEGV handler still gets its
 * faults.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "agent-test.h"

struct result {
	int64_t ret;
	int64_t ret2;
	uint64_t val[4];
	char buf[256];
	char buf2[256];
};

static struct result out_of(struct at_obj *o, const char *map)
{
	struct result r;
	uint32_t zero = 0;

	cr_assert_eq(bpf_map_lookup_elem(at_map_fd(o, map), &zero, &r), 0);
	return r;
}

struct twin {
	struct at_obj *k, *a;
	struct agent_prog *p;
	const char *prog;
};

static struct twin twin_new(const char *prog)
{
	struct twin t = { at_obj_load("oracle"), at_obj_load("oracle"), NULL, prog };

	t.p = at_prog_load(t.a, prog);
	return t;
}

static void twin_free(struct twin *t)
{
	agent_prog__free(t->p);
	at_obj_free(t->k);
	at_obj_free(t->a);
}

/* Runs the program in both; returns the kernel's result and fills *agent. */
static struct result twin_run(struct twin *t, const uint64_t *args, size_t n, struct result *agent)
{
	at_kernel_run(t->k, t->prog, args, n);
	at_run_ctx(t->p, args, n);
	*agent = out_of(t->a, "out");
	return out_of(t->k, "out");
}

static void expect_same(const struct result *k, const struct result *a, const char *what)
{
	cr_expect_eq(a->ret, k->ret, "%s: ret agent %lld, kernel %lld", what, (long long)a->ret,
		     (long long)k->ret);
	cr_expect_eq(a->ret2, k->ret2, "%s: ret2 agent %lld, kernel %lld", what, (long long)a->ret2,
		     (long long)k->ret2);
	for (int i = 0; i < 4; i++)
		cr_expect_eq(a->val[i], k->val[i], "%s: val[%d] agent %#llx, kernel %#llx", what, i,
			     (unsigned long long)a->val[i], (unsigned long long)k->val[i]);
	cr_expect(!memcmp(a->buf, k->buf, sizeof(a->buf)),
		  "%s: buf agent \"%.64s\", kernel \"%.64s\"", what, a->buf, k->buf);
	cr_expect(!memcmp(a->buf2, k->buf2, sizeof(a->buf2)),
		  "%s: buf2 agent \"%.160s\", kernel \"%.160s\"", what, a->buf2, k->buf2);
}

/* ---- probe_read ---- */

Test(agent_helpers, probe_read_matches_the_kernel, .timeout = 120)
{
	static const char *const variant[] = { "probe_read",	      "probe_read_user",
					       "probe_read_kernel",   "probe_read_str",
					       "probe_read_user_str", "probe_read_kernel_str" };
	static const uint32_t sizes[] = { 0, 1, 5, 8, 13, 64, 200 };
	long page = sysconf(_SC_PAGESIZE);
	struct twin t = twin_new("probe_read");
	uint8_t *area, *gone;
	struct {
		const char *what;
		uint64_t ptr;
	} ptrs[8];
	int n = 0;

	/* [ good page | guard page ], and a page that was unmapped */
	area = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(area, MAP_FAILED);
	cr_assert_eq(mprotect(area + page, page, PROT_NONE), 0);
	memset(area, 'x', page);
	strcpy((char *)area, "hello, agent");
	memcpy(area + page - 6, "tail!", 6); /* NUL just before the guard page */
	gone = mmap(NULL, page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(gone, MAP_FAILED);
	munmap(gone, page);

	ptrs[n].what = "good";
	ptrs[n++].ptr = (uintptr_t)area;
	ptrs[n].what = "NULL";
	ptrs[n++].ptr = 0;
	ptrs[n].what = "unmapped";
	ptrs[n++].ptr = (uintptr_t)gone;
	ptrs[n].what = "guard page";
	ptrs[n++].ptr = (uintptr_t)area + page;
	ptrs[n].what = "into the guard page";
	ptrs[n++].ptr = (uintptr_t)area + page - 3; /* "x" bytes, no NUL, then the guard */
	ptrs[n].what = "string before the guard page";
	ptrs[n++].ptr = (uintptr_t)area + page - 6;
	ptrs[n].what = "non-canonical";
	ptrs[n++].ptr = 0x8000000000000000ull;
	ptrs[n].what = "top of user space";
	ptrs[n++].ptr = 0x7ffffffff000ull - 4;

	for (int v = 0; v < 6; v++)
		for (int i = 0; i < n; i++)
			for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
				const uint64_t args[3] = { ptrs[i].ptr, sizes[s], (uint64_t)v };
				struct result a, k = twin_run(&t, args, 3, &a);
				char what[128];

				snprintf(what, sizeof(what), "%s of %u bytes from %s", variant[v],
					 sizes[s], ptrs[i].what);
				expect_same(&k, &a, what);
			}
	/* A user pointer to a kernel-only helper: both refuse it with -ERANGE. */
	{
		const uint64_t args[3] = { (uintptr_t)area, 8, 2 };
		struct result a, k = twin_run(&t, args, 3, &a);

		cr_expect_eq(k.ret, -ERANGE);
		cr_expect_eq(a.ret, -ERANGE);
	}
	twin_free(&t);
	munmap(area, 2 * page);
}

Test(agent_helpers, strncmp_matches_the_kernel, .timeout = 60)
{
	static const char *const strs[] = { "hello", "hell", "help", "hello!", "", "a", "z" };
	struct twin t = twin_new("cmp");

	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		for (uint64_t len = 0; len < 8; len++) {
			const uint64_t args[2] = { (uintptr_t)strs[i], len };
			struct result a, k = twin_run(&t, args, 2, &a);
			char what[64];

			snprintf(what, sizeof(what), "strncmp(\"%s\", %llu)", strs[i],
				 (unsigned long long)len);
			expect_same(&k, &a, what);
		}
	twin_free(&t);
}

Test(agent_helpers, snprintf_matches_the_kernel, .timeout = 60)
{
	static const uint64_t ints[] = { 0, 42, (uint64_t)-42, 0x7fffffff, 0x80000000 };
	static const uint64_t longs[] = { 0, 1, (uint64_t)-1, 0x123456789abcdef0ull,
					  0x8000000000000000ull };
	static const char *const strs[] = { "user-str", "", "a much longer user string" };
	struct twin t = twin_new("fmt");

	for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++)
		for (size_t l = 0; l < sizeof(longs) / sizeof(longs[0]); l++)
			for (size_t s = 0; s < sizeof(strs) / sizeof(strs[0]); s++) {
				const uint64_t args[3] = { ints[i], longs[l], (uintptr_t)strs[s] };
				struct result a, k = twin_run(&t, args, 3, &a);
				char what[128];

				snprintf(what, sizeof(what), "formats of %#llx %#llx \"%s\"",
					 (unsigned long long)ints[i], (unsigned long long)longs[l],
					 strs[s]);
				expect_same(&k, &a, what);
			}
	/* The kernel's answers themselves, once. */
	{
		const uint64_t args[3] = { (uint64_t)-42, 0x123456789abcdef0ull,
					   (uintptr_t) "user-str" };
		struct result a, k = twin_run(&t, args, 3, &a);

		cr_expect_str_eq(a.buf, "-42 4294967254 ffffffd6 FFFFFFD6 1311768467463790320 "
					"1311768467463790320 123456789abcdef0 1311768467463790320 "
					"1311768467463790320 123456789ABCDEF0|  -42|-42  |");
		cr_expect_str_eq(a.buf2, "-0042|-42|-42|Z|y  |user-str|user-str|user-str|stack|"
					 "user-str|10.0.0.1|010.000.000.001|%");
		cr_expect_eq(a.ret, (int64_t)strlen(a.buf) + 1);
		(void)k;
	}
	twin_free(&t);
}

Test(agent_helpers, task_and_cpu_match_the_kernel, .timeout = 60)
{
	struct twin t = twin_new("task");
	const uint64_t args[1] = { 0 };

	prctl(PR_SET_NAME, "oracle-thread");
	for (int c = 0; c < at_ncpus(); c++) {
		struct result a, k;

		at_pin_cpu(c);
		k = twin_run(&t, args, 1, &a);
		expect_same(&k, &a, "task");
		cr_expect_eq(a.val[2], (uint64_t)c);
		cr_expect_str_eq(a.buf, "oracle-thread");
		cr_expect_str_eq(a.buf2, "orac");
	}
	twin_free(&t);
}

Test(agent_helpers, loop_matches_the_kernel, .timeout = 60)
{
	static const uint64_t cases[][3] = {
		{ 10, 100, 0 },
		{ 10, 3, 0 },
		{ 0, 0, 0 },
		{ 1, 0, 0 },
		{ 1000, 999, 0 },
		{ 5, 1, 1 },
		{ (1u << 23) + 1, 0, 0 },
	};
	struct twin t = twin_new("loop");

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct result a, k = twin_run(&t, cases[i], 3, &a);
		char what[64];

		snprintf(what, sizeof(what), "bpf_loop(%llu) stopping at %llu, flags %llu",
			 (unsigned long long)cases[i][0], (unsigned long long)cases[i][1],
			 (unsigned long long)cases[i][2]);
		expect_same(&k, &a, what);
	}
	twin_free(&t);
}

/* ---- what only a uprobe program sees ---- */

struct uresult {
	int64_t ret;
	uint64_t val[4];
	uint64_t stack[32];
};

static struct uresult uout(struct at_obj *o)
{
	struct uresult r;
	uint32_t zero = 0;

	cr_assert_eq(bpf_map_lookup_elem(at_map_fd(o, "out"), &zero, &r), 0);
	return r;
}

struct comm_arg {
	struct agent_prog *p;
	struct at_obj *o;
	char name[16];
	char seen[2][16];
};

static void *comm_thread(void *arg)
{
	struct comm_arg *c = arg;
	struct uresult r;

	pthread_setname_np(pthread_self(), c->name);
	at_run(c->p, 0, 0, 0, 0, 0);
	r = uout(c->o);
	memcpy(c->seen[0], r.stack, 16);
	/* Renamed by itself: the next run sees the new name. */
	pthread_setname_np(pthread_self(), "renamed");
	at_run(c->p, 0, 0, 0, 0, 0);
	r = uout(c->o);
	memcpy(c->seen[1], r.stack, 16);
	return NULL;
}

/* Where cgroup v2 is mounted and this process's cgroup in it, as one path. */
static bool own_cgroup2(char *path, size_t size)
{
	char line[4096], mnt[1024] = "", rel[2048] = "";
	FILE *f = fopen("/proc/self/mountinfo", "re");

	while (f && fgets(line, sizeof(line), f)) {
		char point[1024];
		const char *sep = strstr(line, " - ");

		if (sep && !strncmp(sep, " - cgroup2 ", 11) &&
		    sscanf(line, "%*s %*s %*s %*s %1023s", point) == 1)
			snprintf(mnt, sizeof(mnt), "%s", point);
	}
	if (f)
		fclose(f);
	f = fopen("/proc/self/cgroup", "re");
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "0::", 3))
			sscanf(line + 3, "%2047[^\n]", rel);
	if (f)
		fclose(f);
	if (!mnt[0] || !rel[0])
		return false;
	snprintf(path, size, "%s%s", mnt, strcmp(rel, "/") ? rel : "");
	return true;
}

/* bpf_current_task_under_cgroup(): our cgroup, a child we are not in, an empty slot, past the end. */
Test(agent_helpers, cgroup_matches_the_kernel, .timeout = 30)
{
	char own[4096], child[4200];
	const uint64_t args[1] = { 9 };
	struct result a, k;
	struct twin t;
	int fds[2];

	if (!own_cgroup2(own, sizeof(own)))
		cr_skip_test("no cgroup v2 hierarchy mounted");
	snprintf(child, sizeof(child), "%s/bpftime-test-%d", own, getpid());
	cr_assert(mkdir(child, 0755) == 0 || errno == EEXIST, "mkdir %s: %s", child,
		  strerror(errno));
	fds[0] = open(own, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	fds[1] = open(child, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cr_assert(fds[0] >= 0 && fds[1] >= 0, "cannot open %s or its child", own);
	t = twin_new("cgroup");
	for (uint32_t i = 0; i < 2; i++) {
		cr_assert_eq(bpf_map_update_elem(at_map_fd(t.k, "cgroups"), &i, &fds[i], 0), 0);
		cr_assert_eq(bpf_map_update_elem(at_map_fd(t.a, "cgroups"), &i, &fds[i], 0), 0);
	}
	k = twin_run(&t, args, 1, &a);
	expect_same(&k, &a, "cgroup");
	cr_expect_eq(a.ret, 1, "in our own cgroup: %lld", (long long)a.ret);
	cr_expect_eq(a.ret2, 0, "in a child we are not in: %lld", (long long)a.ret2);
	cr_expect_eq((int64_t)a.val[0], -EAGAIN, "empty slot: %lld", (long long)a.val[0]);
	cr_expect_eq((int64_t)a.val[1], -E2BIG, "past the end: %lld", (long long)a.val[1]);
	twin_free(&t);
	close(fds[0]);
	close(fds[1]);
	rmdir(child);
}

Test(agent_helpers, comm_is_the_threads, .timeout = 30)
{
	struct at_obj *o = at_obj_load("uprobe");
	struct comm_arg c = { .p = at_prog_load(o, "comm"), .o = o, .name = "worker-7" };
	pthread_t th;

	prctl(PR_SET_NAME, "main-thread");
	cr_assert_eq(pthread_create(&th, NULL, comm_thread, &c), 0);
	pthread_join(th, NULL);
	cr_expect_str_eq(c.seen[0], "worker-7");
	cr_expect_str_eq(c.seen[1], "renamed");
	at_run(c.p, 0, 0, 0, 0, 0);
	cr_expect_str_eq((char *)uout(o).stack, "main-thread");
	agent_prog__free(c.p);
	at_obj_free(o);
}

Test(agent_helpers, pid_tgid_after_fork, .timeout = 30)
{
	struct at_obj *o = at_obj_load("uprobe");
	struct agent_prog *p = at_prog_load(o, "pid");
	uint64_t me = (uint64_t)getpid() << 32 | (uint32_t)syscall(SYS_gettid);
	pid_t child;
	int status;

	at_run(p, 0, 0, 0, 0, 0);
	cr_expect_eq(uout(o).val[0], me);
	child = fork();
	cr_assert_geq(child, 0);
	if (child == 0) {
		uint64_t want = (uint64_t)getpid() << 32 | (uint32_t)getpid();

		at_run(p, 1, 0, 0, 0, 0);
		_exit(uout(o).val[1] == want ? 0 : 1);
	}
	cr_assert_eq(waitpid(child, &status, 0), child);
	cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child saw its parent's ids");
	cr_expect_eq(uout(o).val[1], (uint64_t)child << 32 | (uint32_t)child);
	at_run(p, 2, 0, 0, 0, 0);
	cr_expect_eq(uout(o).val[2], me);
	agent_prog__free(p);
	at_obj_free(o);
}

static uint64_t now_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

Test(agent_helpers, probe_info_and_clocks, .timeout = 30)
{
	struct at_obj *o = at_obj_load("uprobe");
	struct agent_prog *p = at_prog_load(o, "probe_info");
	struct agent_probe_info info = { .func_ip = 0x5555deadbeef, .cookie = 0xc00c1e };
	struct pt_regs regs = { .rdi = 40, .rax = 2 };
	uint64_t ret, t0, b0;
	struct uresult r;

	t0 = now_ns(CLOCK_MONOTONIC);
	b0 = now_ns(CLOCK_BOOTTIME);
	cr_assert_eq(agent_prog__run(p, &regs, &info, &ret), 0);
	r = uout(o);
	cr_expect_eq(r.val[0], info.func_ip);
	cr_expect_eq(r.val[1], info.cookie);
	cr_expect(r.val[2] >= t0 && r.val[2] <= now_ns(CLOCK_MONOTONIC));
	cr_expect(r.val[3] >= b0 && r.val[3] <= now_ns(CLOCK_BOOTTIME));
	cr_expect(r.stack[0] >= r.val[2]);
	cr_expect_neq(r.stack[1], r.stack[2]);
	cr_expect_eq(r.stack[3], 42);
	agent_prog__free(p);
	at_obj_free(o);
}

/* ---- user stacks ---- */

static struct agent_prog *stack_prog;
static struct at_obj *stack_obj;
static uint64_t want[8];

/* Captures registers here and runs the program as a probe on this function would. */
__attribute__((noinline)) static int64_t probe_here(uint64_t flags, uint64_t size, bool entry)
{
	struct agent_probe_info info = { .func_entry = entry };
	struct pt_regs regs = { .rdi = flags, .rsi = size };
	uint64_t ret, *fp, fake_sp[2] = { 0x1234, 0 };

	regs.rip = (uintptr_t) && here;
here:
	regs.rbp = (uintptr_t)__builtin_frame_address(0);
	/* sp holds the return address at a push %rbp-first probe */
	regs.rsp = (uintptr_t)fake_sp;
	/* The frame-pointer chain, as the kernel walks it. */
	want[0] = regs.rip;
	fp = (uint64_t *)regs.rbp;
	for (int i = 1; i < 8 && fp; i++) {
		want[i] = fp[1];
		fp = (uint64_t *)fp[0];
	}
	cr_assert_eq(agent_prog__run(stack_prog, &regs, &info, &ret), 0);
	return uout(stack_obj).ret;
}

__attribute__((noinline)) static int64_t caller2(uint64_t flags, uint64_t size, bool entry)
{
	int64_t r = probe_here(flags, size, entry);

	__asm__ volatile("" ::: "memory");
	return r;
}

__attribute__((noinline)) static int64_t caller1(uint64_t flags, uint64_t size, bool entry)
{
	int64_t r = caller2(flags, size, entry);

	__asm__ volatile("" ::: "memory");
	return r;
}

Test(agent_helpers, get_stack_user, .timeout = 30)
{
	struct uresult r;
	int64_t ret;

	stack_obj = at_obj_load("uprobe");
	stack_prog = at_prog_load(stack_obj, "stack");

	/* 4 frames asked for: ip and the first three return addresses. */
	ret = caller1(BPF_F_USER_STACK, 32, false);
	r = uout(stack_obj);
	cr_expect_eq(ret, 32);
	for (int i = 0; i < 4; i++)
		cr_expect_eq(r.stack[i], want[i], "frame %d: %#llx, want %#llx", i,
			     (unsigned long long)r.stack[i], (unsigned long long)want[i]);
	cr_expect_eq(r.stack[4], 0, "the rest is zeroed");

	/* skip 2 */
	ret = caller1(BPF_F_USER_STACK | 2, 16, false);
	r = uout(stack_obj);
	cr_expect_eq(ret, 16);
	cr_expect_eq(r.stack[0], want[2]);
	cr_expect_eq(r.stack[1], want[3]);

	/* At a push %rbp / endbr64 probe the kernel adds *sp as the caller. */
	ret = caller1(BPF_F_USER_STACK, 24, true);
	r = uout(stack_obj);
	cr_expect_eq(ret, 24);
	cr_expect_eq(r.stack[0], want[0]);
	cr_expect_eq(r.stack[1], 0x1234);
	cr_expect_eq(r.stack[2], want[1]);

	/* A uprobe's kernel stack is empty; bad sizes and flags are -EINVAL, buffer zeroed. */
	cr_expect_eq(caller1(0, 64, false), 0);
	cr_expect_eq(caller1(0 | 1, 64, false), -EFAULT);
	cr_expect_eq(caller1(BPF_F_USER_STACK, 12 & ~7u, false), 8);
	cr_expect_eq(caller1(BPF_F_USER_STACK | BPF_F_USER_BUILD_ID, 64, false), 64);
	r = uout(stack_obj);
	cr_expect_eq((int32_t)r.stack[0], BPF_STACK_BUILD_ID_IP);
	cr_expect_eq(r.stack[3], want[0]);
	cr_expect_eq(caller1(BPF_F_USER_STACK | BPF_F_USER_BUILD_ID, 40, false), -EINVAL);
	cr_expect_eq(caller1(BPF_F_USER_STACK | (1ull << 20), 64, false), -EINVAL);
	r = uout(stack_obj);
	cr_expect_eq(r.stack[0], 0);

	agent_prog__free(stack_prog);
	at_obj_free(stack_obj);
}

/* ---- signals ---- */

static volatile sig_atomic_t got_sig, got_code, got_tid;

static void on_usr(int sig, siginfo_t *si, void *uc)
{
	got_sig = sig;
	got_code = si->si_code;
	got_tid = (sig_atomic_t)syscall(SYS_gettid);
}

Test(agent_helpers, send_signal, .timeout = 30)
{
	struct at_obj *o = at_obj_load("uprobe");
	struct agent_prog *p = at_prog_load(o, "signal");
	struct sigaction sa = { .sa_sigaction = on_usr, .sa_flags = SA_SIGINFO };

	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	at_run(p, SIGUSR1, 0, 0, 0, 0);
	cr_expect_eq(uout(o).ret, 0);
	cr_expect_eq(got_sig, SIGUSR1);
	cr_expect_eq(got_code, SI_KERNEL);
	got_sig = 0;
	at_run(p, SIGUSR2, 1, 0, 0, 0);
	cr_expect_eq(got_sig, SIGUSR2);
	cr_expect_eq(got_code, SI_KERNEL);
	cr_expect_eq(got_tid, (sig_atomic_t)syscall(SYS_gettid));
	got_sig = 0;
	at_run(p, 65, 0, 0, 0, 0);
	cr_expect_eq(uout(o).ret, -EINVAL);
	at_run(p, 0, 0, 0, 0, 0);
	cr_expect_eq(uout(o).ret, 0);
	cr_expect_eq(got_sig, 0);
	agent_prog__free(p);
	at_obj_free(o);
}

/* ---- the application's SIGSEGV handler keeps working ---- */

static uint8_t *fault_page;
static volatile int app_faults;

static void app_segv(int sig, siginfo_t *si, void *uc)
{
	app_faults++;
	mprotect(fault_page, (size_t)sysconf(_SC_PAGESIZE), PROT_READ | PROT_WRITE);
}

Test(agent_helpers, application_fault_handler_chained, .timeout = 30)
{
	struct sigaction sa = { .sa_sigaction = app_segv, .sa_flags = SA_SIGINFO };
	long page = sysconf(_SC_PAGESIZE);
	struct twin t;

	fault_page = mmap(NULL, page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(fault_page, MAP_FAILED);
	cr_assert_eq(sigaction(SIGSEGV, &sa, NULL), 0);
	t = twin_new("probe_read");
	/* The agent's reads fault without the application noticing... */
	{
		const uint64_t args[3] = { (uintptr_t)fault_page, 8, 1 };
		struct result a, k = twin_run(&t, args, 3, &a);

		cr_expect_eq(a.ret, -EFAULT);
		cr_expect_eq(k.ret, -EFAULT);
	}
	cr_expect_eq(app_faults, 0);
	/* ...and the application's own fault still reaches its handler. */
	*(volatile uint8_t *)fault_page = 1;
	__asm__ volatile("" ::: "memory");
	cr_expect_eq(app_faults, 1);
	cr_expect_eq(fault_page[0], 1);
	twin_free(&t);
}

int main(int argc, char *argv[])
{
	return at_main(argc, argv);
}

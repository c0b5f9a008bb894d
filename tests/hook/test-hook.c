// SPDX-License-Identifier: MIT
/*
 * The inline hooks on real code of this process: every patch strategy,
 * entry and return callbacks with the registers a uprobe program would see,
 * exact restoration, recursion, longjmp past hooked frames, 16 threads
 * calling a function while it is hooked and unhooked 1,000 times, and a
 * kernel uprobe registered on the hooked address.
 */
#include <errno.h>
#include <linux/perf_event.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "hook.h"
#include "self-offset.h"

typedef int (*target_fn)(int);

#define TARGET(name)                                                                               \
	extern int name(int);                                                                      \
	extern char name##_end[];
TARGET(hk_lea)
TARGET(hk_nop5)
TARGET(hk_endbr)
TARGET(hk_push)
TARGET(hk_nop1)
TARGET(hk_short)
TARGET(hk_riprel)
TARGET(hk_jcc)
TARGET(hk_sub)
TARGET(hk_fact)
TARGET(hk_call_cb)
TARGET(hk_mid)
extern char hk_mid_probe[];
extern double hk_double(int, double);
extern char hk_double_end[];
TARGET(hk_xmm_mid)
TARGET(hk_zmm_mid)
extern char hk_xmm_probe[], hk_zmm_probe[];

struct target {
	const char *name;
	target_fn fn;
	const char *end;
	int add;
	enum hook_strategy want;
};

/* In layout order: each function's padding runs up to the next one. */
static const struct target targets[] = {
	{ "hk_lea", hk_lea, hk_lea_end, 0x1000, HOOK_DIRECT },
	{ "hk_nop5", hk_nop5, hk_nop5_end, 2, HOOK_DIRECT },
	{ "hk_endbr", hk_endbr, hk_endbr_end, 3, HOOK_CAVE },
	{ "hk_push", hk_push, hk_push_end, 4, HOOK_AFTER },
	{ "hk_nop1", hk_nop1, hk_nop1_end, 6, HOOK_AFTER },
	{ "hk_short", hk_short, hk_short_end, 6, HOOK_CAVE },
	{ "hk_riprel", hk_riprel, hk_riprel_end, 7, HOOK_DIRECT },
	{ "hk_jcc", hk_jcc, hk_jcc_end, 8, HOOK_AFTER },
	{ "hk_sub", hk_sub, hk_sub_end, 9, HOOK_CAVE },
};
#define NTARGETS (sizeof(targets) / sizeof(targets[0]))

static struct hook_site site_of(target_fn fn, const char *end, const char *prev_end,
				const char *next)
{
	struct hook_site s = {
		.addr = (uint64_t)fn,
		.orig_len = HOOK_MAX_ORIG,
		.func_start = (uint64_t)fn,
		.func_end = (uint64_t)end,
		.prev_end = (uint64_t)prev_end,
		.next_start = (uint64_t)next,
	};

	memcpy(s.orig, (const void *)fn, HOOK_MAX_ORIG);
	return s;
}

static struct hook_site target_site(size_t i)
{
	return site_of(targets[i].fn, targets[i].end, i ? targets[i - 1].end : NULL,
		       i + 1 < NTARGETS ? (const char *)targets[i + 1].fn : NULL);
}

struct seen {
	unsigned long entries, returns;
	uint64_t ip, di, sp_top, ret_ip, ax;
};

static void on_entry(void *user, struct pt_regs *regs)
{
	struct seen *s = user;

	__atomic_add_fetch(&s->entries, 1, __ATOMIC_RELAXED);
	s->ip = regs->rip;
	s->di = regs->rdi;
	/* At a function's entry the stack holds the return address. */
	s->sp_top = *(uint64_t *)regs->rsp;
}

static void on_return(void *user, struct pt_regs *regs)
{
	struct seen *s = user;

	__atomic_add_fetch(&s->returns, 1, __ATOMIC_RELAXED);
	s->ret_ip = regs->rip;
	s->ax = regs->rax;
}

static unsigned int flags_for(const struct hook *h)
{
	/* Multi-instruction patches need the other threads stopped; here there are none. */
	return hook__strategy(h) == HOOK_AFTER ? HOOK_F_STOPPED : 0;
}

Test(hook, strategies_and_calls, .timeout = 30)
{
	for (size_t i = 0; i < NTARGETS; i++) {
		const struct target *t = &targets[i];
		struct hook_site site = target_site(i);
		struct hook_ops ops = { .entry = on_entry, .ret = on_return };
		uint8_t before[64], after[64];
		struct seen seen = { 0 };
		char err[HOOK_ERRMSG_SIZE];
		struct hook *h;

		ops.user = &seen;
		memcpy(before, (const char *)t->fn - 16, sizeof(before));
		h = hook__new(&site, &ops, err);
		cr_assert(h, "%s: %s", t->name, err);
		cr_expect_eq(hook__strategy(h), t->want, "%s: strategy %d, want %d", t->name,
			     hook__strategy(h), t->want);
		cr_assert_eq(hook__enable(h, flags_for(h)), 0, "%s: enable", t->name);
		cr_expect_eq(t->fn(10), 10 + t->add, "%s: result with the hook", t->name);
		cr_expect_eq(seen.entries, 1, "%s: entries %lu", t->name, seen.entries);
		cr_expect_eq(seen.returns, 1, "%s: returns %lu", t->name, seen.returns);
		cr_expect_eq(seen.ip, (uint64_t)t->fn, "%s: ip", t->name);
		cr_expect_eq(seen.di, 10, "%s: di", t->name);
		cr_expect_eq(seen.ax, (uint64_t)(10 + t->add), "%s: ax at return", t->name);
		cr_expect_eq(seen.sp_top, seen.ret_ip, "%s: [sp] at entry is where it returns",
			     t->name);
		cr_assert_eq(hook__disable(h, HOOK_F_STOPPED), 0, "%s: disable", t->name);
		memcpy(after, (const char *)t->fn - 16, sizeof(after));
		cr_expect(!memcmp(before, after, sizeof(before)), "%s: bytes restored", t->name);
		cr_expect_eq(t->fn(20), 20 + t->add, "%s: result after", t->name);
		cr_expect_eq(seen.entries, 1, "%s: no entry after disable", t->name);
		hook__free(h);
	}
}

Test(hook, replays_sub_rsp_without_padding, .timeout = 10)
{
	struct hook_site site = site_of(hk_sub, hk_sub_end, NULL, NULL);
	struct seen seen = { 0 };
	struct hook_ops ops = { .entry = on_entry, .ret = on_return, .user = &seen };
	char err[HOOK_ERRMSG_SIZE];
	struct hook *h = hook__new(&site, &ops, err);

	cr_assert(h, "%s", err);
	cr_expect_eq(hook__strategy(h), HOOK_AFTER);
	cr_assert_eq(hook__enable(h, HOOK_F_STOPPED), 0);
	cr_expect_eq(hk_sub(1), 10);
	cr_expect_eq(seen.sp_top, seen.ret_ip, "sp replayed through sub $24");
	cr_assert_eq(hook__disable(h, HOOK_F_STOPPED), 0);
	hook__free(h);
}

static void clobber_flags(void *user, struct pt_regs *regs)
{
	unsigned long *n = user;

	/* Leave every arithmetic flag set the other way round from a compare of 3 with 5. */
	__asm__ volatile("cmp %0, %0" : : "r"(*n) : "cc");
	(*n)++;
}

Test(hook, mid_function_probe_keeps_flags, .timeout = 10)
{
	struct hook_site site = site_of(hk_mid, hk_mid_end, NULL, NULL);
	unsigned long n = 0;
	struct hook_ops ops = { .entry = clobber_flags, .user = &n };
	char err[HOOK_ERRMSG_SIZE];
	struct hook *h;

	site.addr = (uint64_t)hk_mid_probe;
	memcpy(site.orig, hk_mid_probe, HOOK_MAX_ORIG);
	h = hook__new(&site, &ops, err);
	cr_assert(h, "%s", err);
	cr_assert_eq(hook__enable(h, 0), 0);
	cr_expect_eq(hk_mid(3), 3 + 0x1000, "3 < 5 must still jump");
	cr_expect_eq(hk_mid(10), 100);
	cr_expect_eq(n, 2);
	cr_assert_eq(hook__disable(h, 0), 0);
	hook__free(h);
}

/* What C code does to the vector registers: every one zeroed, and a vector memset. */
static void clobber_vectors(void *user, struct pt_regs *regs)
{
	static char buf[4096];

	(void)regs;
	if (__builtin_cpu_supports("avx512f"))
		__asm__ volatile("vpxord %%zmm16, %%zmm16, %%zmm16" ::: "memory");
	if (__builtin_cpu_supports("avx"))
		__asm__ volatile("vzeroall" ::: "memory");
	else
		__asm__ volatile("pxor %%xmm0, %%xmm0\n\tpxor %%xmm9, %%xmm9" ::: "xmm0", "xmm9");
	memset(buf, (int)(uintptr_t)user, sizeof(buf));
	__asm__ volatile("" : : "r"(buf) : "memory");
}

Test(hook, callbacks_keep_the_vector_registers, .timeout = 10)
{
	struct hook_site site = site_of((target_fn)(void (*)(void))hk_double, hk_double_end, NULL, NULL);
	struct hook_ops ops = { .entry = clobber_vectors, .ret = clobber_vectors, .user = NULL };
	char err[HOOK_ERRMSG_SIZE];
	struct hook *h = hook__new(&site, &ops, err);

	cr_assert(h, "%s", err);
	cr_assert_eq(hook__enable(h, 0), 0);
	/* the argument in xmm0 at the entry, the result in xmm0 at the return */
	cr_expect_eq(hk_double(1, 1.25), 2.5, "hk_double(1.25) = %g", hk_double(1, 1.25));
	cr_expect_eq(hk_double(2, -3.0), -6.0);
	cr_assert_eq(hook__disable(h, 0), 0);
	hook__free(h);
}

/* A value kept in a vector register across a probe in the middle of a function. */
static void expect_kept(target_fn fn, const char *end, const char *probe, const char *what)
{
	struct hook_site site = site_of(fn, end, NULL, NULL);
	struct hook_ops ops = { .entry = clobber_vectors };
	char err[HOOK_ERRMSG_SIZE];
	struct hook *h;

	site.addr = (uint64_t)probe;
	memcpy(site.orig, probe, HOOK_MAX_ORIG);
	h = hook__new(&site, &ops, err);
	cr_assert(h, "%s", err);
	cr_assert_eq(hook__enable(h, 0), 0);
	cr_expect_eq(fn(0x1234567), 0x1234567, "%s across the probe: %#x", what, fn(0x1234567));
	cr_assert_eq(hook__disable(h, 0), 0);
	hook__free(h);
}

Test(hook, vector_registers_live_across_a_probe, .timeout = 10)
{
	expect_kept(hk_xmm_mid, hk_xmm_mid_end, hk_xmm_probe, "xmm9");
	if (__builtin_cpu_supports("avx512f"))
		expect_kept(hk_zmm_mid, hk_zmm_mid_end, hk_zmm_probe, "xmm16");
}

Test(hook, refuses_multi_instruction_patch_while_running, .timeout = 10)
{
	struct hook_site site = target_site(3);
	struct hook_ops ops = { .entry = on_entry };
	char err[HOOK_ERRMSG_SIZE];
	struct hook *h = hook__new(&site, &ops, err);

	cr_assert(h, "%s", err);
	cr_expect_eq(hook__enable(h, 0), -EBUSY);
	hook__free(h);
}

Test(hook, refuses_without_a_safe_patch, .timeout = 10)
{
	/* push first, function bounds unknown: no way to check branches */
	struct hook_site site = site_of(hk_push, NULL, NULL, NULL);
	struct hook_ops ops = { .entry = on_entry };
	char err[HOOK_ERRMSG_SIZE];

	cr_expect_null(hook__new(&site, &ops, err));
	cr_expect(strstr(err, "bounds"), "reason: %s", err);
}

Test(hook, recursion, .timeout = 10)
{
	struct hook_site site = site_of(hk_fact, hk_fact_end, NULL, NULL);
	struct seen seen = { 0 };
	struct hook_ops ops = { .entry = on_entry, .ret = on_return, .user = &seen };
	char err[HOOK_ERRMSG_SIZE];
	struct hook *h = hook__new(&site, &ops, err);

	cr_assert(h, "%s", err);
	cr_assert_eq(hook__enable(h, HOOK_F_STOPPED), 0);
	cr_expect_eq(hk_fact(10), 55);
	cr_expect_eq(seen.entries, 11);
	cr_expect_eq(seen.returns, 11);
	cr_expect_eq(seen.ax, 55, "the outermost return is seen last");
	cr_assert_eq(hook__disable(h, HOOK_F_STOPPED), 0);
	hook__free(h);
}

static jmp_buf escape;

static int escape_cb(int x)
{
	longjmp(escape, 1);
	return x;
}

static int plain_cb(int x)
{
	return x * 2;
}

Test(hook, longjmp_past_hooked_frames, .timeout = 10)
{
	struct hook_site site = site_of(hk_call_cb, hk_call_cb_end, NULL, NULL);
	struct seen seen = { 0 };
	struct hook_ops ops = { .entry = on_entry, .ret = on_return, .user = &seen };
	int (*call_cb)(int, int (*)(int)) = (int (*)(int, int (*)(int)))(void *)hk_call_cb;
	char err[HOOK_ERRMSG_SIZE];
	struct hook *h = hook__new(&site, &ops, err);

	cr_assert(h, "%s", err);
	cr_assert_eq(hook__enable(h, HOOK_F_STOPPED), 0);
	for (int i = 0; i < 3; i++)
		if (!setjmp(escape))
			call_cb(1, escape_cb);
	cr_expect_eq(call_cb(5, plain_cb), 11);
	cr_expect_eq(seen.entries, 4);
	cr_expect_eq(seen.returns, 1, "only the call that returned is seen returning");
	cr_expect_eq(seen.ax, 11);
	cr_assert_eq(hook__disable(h, HOOK_F_STOPPED), 0);
	hook__free(h);
}

struct stress {
	target_fn fn;
	int add;
	volatile bool stop;
	unsigned long calls;
	bool wrong;
};

static void *stress_thread(void *arg)
{
	struct stress *st = arg;
	unsigned long n = 0;

	while (!st->stop) {
		if (st->fn((int)(n & 0xffff)) != (int)(n & 0xffff) + st->add)
			st->wrong = true;
		n++;
	}
	__atomic_add_fetch(&st->calls, n, __ATOMIC_RELAXED);
	return NULL;
}

static void stress(size_t i)
{
	struct hook_site site = target_site(i);
	struct seen seen = { 0 };
	struct hook_ops ops = { .entry = on_entry, .ret = on_return, .user = &seen };
	struct stress st = { .fn = targets[i].fn, .add = targets[i].add };
	char err[HOOK_ERRMSG_SIZE];
	pthread_t threads[16];
	struct hook *h = hook__new(&site, &ops, err);
	unsigned long before;

	cr_assert(h, "%s", err);
	for (int t = 0; t < 16; t++)
		pthread_create(&threads[t], NULL, stress_thread, &st);
	for (int round = 0; round < 1000; round++) {
		cr_assert_eq(hook__enable(h, 0), 0, "round %d enable", round);
		cr_assert_eq(hook__disable(h, 0), 0, "round %d disable", round);
	}
	st.stop = true;
	for (int t = 0; t < 16; t++)
		pthread_join(threads[t], NULL);
	cr_expect(!st.wrong, "%s: a call returned a wrong value while patched", targets[i].name);
	cr_expect_eq(seen.entries, seen.returns, "%s: every hooked entry returned through us",
		     targets[i].name);
	cr_expect_leq(seen.entries, st.calls);

	/* Hooked and quiet: every call is seen. */
	cr_assert_eq(hook__enable(h, 0), 0);
	before = seen.entries;
	st.stop = false;
	st.calls = 0;
	for (int t = 0; t < 16; t++)
		pthread_create(&threads[t], NULL, stress_thread, &st);
	usleep(100000);
	st.stop = true;
	for (int t = 0; t < 16; t++)
		pthread_join(threads[t], NULL);
	cr_expect_eq(seen.entries - before, st.calls, "%s: %lu hooked entries for %lu calls",
		     targets[i].name, seen.entries - before, st.calls);
	cr_assert_eq(hook__disable(h, 0), 0);
	hook__free(h);
}

Test(hook, stress_direct_16_threads_1000_toggles, .timeout = 120)
{
	stress(0);
}

Test(hook, stress_cave_16_threads_1000_toggles, .timeout = 120)
{
	stress(2);
}

static int open_uprobe(const char *path, uint64_t offset)
{
	struct perf_event_attr attr = { .size = sizeof(attr) };
	FILE *f = fopen("/sys/bus/event_source/devices/uprobe/type", "r");
	int type = -1;

	if (!f)
		return -ENOENT;
	if (fscanf(f, "%d", &type) != 1)
		type = -1;
	fclose(f);
	attr.type = (uint32_t)type;
	attr.config1 = (uint64_t)(uintptr_t)path;
	attr.config2 = offset;
	return (int)syscall(SYS_perf_event_open, &attr, getpid(), -1, -1, PERF_FLAG_FD_CLOEXEC);
}

Test(hook, kernel_uprobe_on_the_hooked_address, .timeout = 30)
{
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (geteuid() != 0)
		cr_skip_test("a kernel uprobe needs root");
	cr_assert_gt(n, 0);
	exe[n] = 0;
	for (size_t i = 0; i < NTARGETS; i++) {
		struct hook_site site = target_site(i);
		struct seen seen = { 0 };
		struct hook_ops ops = { .entry = on_entry, .user = &seen };
		uint64_t off = self_file_offset(targets[i].fn);
		char err[HOOK_ERRMSG_SIZE];
		struct hook *h = hook__new(&site, &ops, err);
		int fd;

		cr_assert(h, "%s", err);
		cr_assert_neq(off, 0);
		cr_assert_eq(hook__enable(h, HOOK_F_STOPPED), 0);
		fd = open_uprobe(exe, off);
		cr_assert_geq(fd, 0, "%s: perf_event_open uprobe: %s", targets[i].name,
			      strerror(errno));
		/* The kernel's breakpoint took byte 0: it serves the call, nothing breaks. */
		cr_expect_eq(targets[i].fn(10), 10 + targets[i].add, "%s under the kernel",
			     targets[i].name);
		/* As the daemon does after a registration: our patch again. */
		cr_assert_eq(hook__repair(h, HOOK_F_STOPPED), 0);
		cr_expect_eq(targets[i].fn(11), 11 + targets[i].add);
		close(fd);
		cr_expect_eq(targets[i].fn(12), 12 + targets[i].add, "%s after the kernel left",
			     targets[i].name);
		cr_expect_geq(seen.entries, 2, "%s: %lu entries", targets[i].name, seen.entries);
		cr_assert_eq(hook__disable(h, HOOK_F_STOPPED), 0);
		hook__free(h);
	}
}

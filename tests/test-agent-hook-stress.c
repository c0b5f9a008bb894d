// SPDX-License-Identifier: MIT
/*
 * Hooks and programs together under load: 16 threads call a function in a
 * tight loop while it is hooked and unhooked 1,000 times, every hooked call
 * running a tool's (*v)++ program against its kernel ARRAY map. No call may
 * return a wrong value, and the kernel map must hold exactly the number of
 * calls that went through the hook.
 */
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "agent-test.h"
#include "hook.h"

extern int hk_lea(int);
extern char hk_lea_end[];

struct stress {
	struct agent_prog *prog;
	unsigned long hooked;
	volatile bool stop;
	bool wrong;
};

static void run(void *user, struct pt_regs *regs)
{
	struct stress *s = user;
	struct agent_probe_info info = { .func_ip = (uint64_t)hk_lea };
	uint64_t ret;

	__atomic_add_fetch(&s->hooked, 1, __ATOMIC_RELAXED);
	agent_prog__run(s->prog, regs, &info, &ret);
}

static void *caller(void *arg)
{
	struct stress *s = arg;

	for (int i = 0; !s->stop; i++)
		if (hk_lea(i) != i + 0x1000)
			s->wrong = true;
	return NULL;
}

Test(agent_hook, sixteen_threads_1000_toggles_exact_count, .timeout = 300)
{
	struct at_obj *o = at_obj_load("bench");
	struct stress s = { .prog = at_prog_load(o, "array_count") };
	struct hook_ops ops = { .entry = run, .user = &s };
	struct hook_site site = {
		.addr = (uint64_t)hk_lea,
		.orig_len = HOOK_MAX_ORIG,
		.func_start = (uint64_t)hk_lea,
		.func_end = (uint64_t)hk_lea_end,
	};
	char err[HOOK_ERRMSG_SIZE];
	pthread_t threads[16];
	uint32_t key = 0;
	uint64_t count = 0;
	struct hook *h;

	memcpy(site.orig, (const void *)hk_lea, HOOK_MAX_ORIG);
	h = hook__new(&site, &ops, err);
	cr_assert(h, "%s", err);
	for (int t = 0; t < 16; t++)
		pthread_create(&threads[t], NULL, caller, &s);
	for (int round = 0; round < 1000; round++) {
		cr_assert_eq(hook__enable(h, 0), 0);
		/* Hooked long enough for the threads to run the program many times. */
		usleep(200);
		cr_assert_eq(hook__disable(h, 0), 0);
	}
	s.stop = true;
	for (int t = 0; t < 16; t++)
		pthread_join(threads[t], NULL);
	cr_expect(!s.wrong, "a call returned a wrong value while being patched");
	cr_assert_eq(bpf_map_lookup_elem(at_map_fd(o, "arr"), &key, &count), 0);
	cr_expect_eq(count, s.hooked, "kernel map %llu, hooked calls %lu",
		     (unsigned long long)count, s.hooked);
	cr_expect_gt(s.hooked, 0, "no call went through the hook");
	cr_log_info("%lu hooked calls counted exactly in the kernel map", s.hooked);
	hook__free(h);
	at_obj_free(o);
}

int main(int argc, char *argv[])
{
	return at_main(argc, argv);
}

// SPDX-License-Identifier: MIT
/* Live code patching of this process (see text-patch.h). */
#include <errno.h>
#include <fcntl.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include "text-patch.h"

/* Sites that ever carried one of our temporary breakpoints. */
#define MAX_SITES 4096

struct trap_site {
	uint64_t addr;
	uint64_t redirect; /* 0: the breakpoint is gone, restart at addr */
	/* A kernel breakpoint we put back: the byte it covers, for when the kernel let go. */
	bool kernel_bpt;
	uint8_t orig_first;
};

static pthread_mutex_t poke_lock = PTHREAD_MUTEX_INITIALIZER;
static int mem_fd = -1;
static bool sync_core;
static struct trap_site sites[MAX_SITES];
static unsigned int nsites;
static struct sigaction chained;

static int mem_write(uint64_t addr, const void *bytes, size_t len)
{
	ssize_t n = pwrite(mem_fd, bytes, len, (off_t)addr);

	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EIO;
}

int text_peek(uint64_t addr, void *bytes, size_t len)
{
	int fd = mem_fd >= 0 ? mem_fd : open("/proc/self/mem", O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = pread(fd, bytes, len, (off_t)addr);
	if (fd != mem_fd)
		close(fd);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EIO;
}

/* Every core stops executing stale copies of the code we changed. */
static void serialize_cores(void)
{
	if (sync_core)
		syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE, 0, 0);
}

static struct trap_site *find_site(uint64_t addr)
{
	unsigned int n = __atomic_load_n(&nsites, __ATOMIC_ACQUIRE);

	for (unsigned int i = 0; i < n; i++)
		if (__atomic_load_n(&sites[i].addr, __ATOMIC_RELAXED) == addr)
			return &sites[i];
	return NULL;
}

static void on_sigtrap(int sig, siginfo_t *info, void *ucv)
{
	ucontext_t *uc = ucv;
	uint64_t at = (uint64_t)uc->uc_mcontext.gregs[REG_RIP] - 1;
	struct trap_site *s = find_site(at);

	if (s) {
		uint64_t redirect = __atomic_load_n(&s->redirect, __ATOMIC_ACQUIRE);
		uint8_t now = 0;
		bool bpt = text_peek(at, &now, 1) == 0 && now == 0xcc;

		/* Still our breakpoint: go where the instruction leads; gone: rerun it. */
		if (redirect && bpt) {
			uc->uc_mcontext.gregs[REG_RIP] = (greg_t)redirect;
			return;
		}
		/*
		 * A kernel breakpoint we put back reached us: the kernel's uprobe
		 * is gone since, so the instruction gets its first byte again.
		 */
		if (bpt && __atomic_load_n(&s->kernel_bpt, __ATOMIC_ACQUIRE)) {
			mem_write(at, &s->orig_first, 1);
			serialize_cores();
		}
		uc->uc_mcontext.gregs[REG_RIP] = (greg_t)at;
		return;
	}
	/* Not ours: whatever the application asked for. */
	if (chained.sa_flags & SA_SIGINFO) {
		if (chained.sa_sigaction)
			chained.sa_sigaction(sig, info, ucv);
		return;
	}
	if (chained.sa_handler == SIG_IGN)
		return;
	if (chained.sa_handler != SIG_DFL) {
		chained.sa_handler(sig);
		return;
	}
	/* Default action: die of SIGTRAP as if we were not here. */
	sigaction(SIGTRAP, &chained, NULL);
	raise(SIGTRAP);
}

/*
 * A forked child has its own memory: /proc/self/mem as the parent opened it
 * is the parent's (a poke through it would change the parent's code).
 */
static void forget_parent(void)
{
	if (mem_fd >= 0)
		close(mem_fd);
	mem_fd = -1;
	pthread_mutex_init(&poke_lock, NULL);
}

static void register_fork_handler(void)
{
	pthread_atfork(NULL, NULL, forget_parent);
}

static int setup(void)
{
	static pthread_once_t fork_once = PTHREAD_ONCE_INIT;
	static bool handler; /* installed once: a forked child inherits it */
	struct sigaction sa = { .sa_sigaction = on_sigtrap, .sa_flags = SA_SIGINFO | SA_RESTART };

	pthread_once(&fork_once, register_fork_handler);
	if (mem_fd >= 0)
		return 0;
	mem_fd = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
	if (mem_fd < 0)
		return -errno;
	sync_core = syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE, 0,
			    0) == 0;
	if (handler)
		return 0;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGTRAP, &sa, &chained) < 0)
		return -errno;
	handler = true;
	return 0;
}

static struct trap_site *get_site(uint64_t addr)
{
	struct trap_site *s = find_site(addr);

	if (s || nsites == MAX_SITES)
		return s;
	s = &sites[nsites];
	s->addr = addr;
	__atomic_store_n(&nsites, nsites + 1, __ATOMIC_RELEASE);
	return s;
}

int text_poke_live(uint64_t addr, const void *bytes, size_t len, uint64_t redirect)
{
	static const uint8_t int3 = 0xcc;
	struct trap_site *s = NULL;
	uint8_t first;
	int r;

	if (!len)
		return 0;
	pthread_mutex_lock(&poke_lock);
	r = setup();
	if (r == 0)
		r = text_peek(addr, &first, 1);
	s = r == 0 ? get_site(addr) : NULL;
	if (r == 0 && !s)
		r = -ENOSPC;
	if (r < 0)
		goto out;
	__atomic_store_n(&s->kernel_bpt, false, __ATOMIC_RELEASE);
	__atomic_store_n(&s->redirect, redirect, __ATOMIC_RELEASE);
	r = mem_write(addr, &int3, 1);
	if (r < 0)
		goto out;
	serialize_cores();
	if (len > 1) {
		r = mem_write(addr + 1, (const uint8_t *)bytes + 1, len - 1);
		if (r < 0) {
			/* The tail is as it was: so must the first byte be. */
			mem_write(addr, &first, 1);
			serialize_cores();
			goto out;
		}
		serialize_cores();
	}
	r = mem_write(addr, bytes, 1);
	serialize_cores();
out:
	if (s)
		__atomic_store_n(&s->redirect, 0, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&poke_lock);
	return r;
}

int text_poke_kernel_breakpoint(uint64_t addr, const void *orig, size_t len, uint64_t redirect)
{
	uint8_t bytes[TEXT_PATCH_MAX];
	struct trap_site *s;
	int r;

	if (!len || len > sizeof(bytes))
		return -EINVAL;
	memcpy(bytes, orig, len);
	bytes[0] = 0xcc;
	r = text_poke_live(addr, bytes, len, redirect);
	if (r < 0)
		return r;
	pthread_mutex_lock(&poke_lock);
	s = find_site(addr);
	if (s) {
		s->orig_first = ((const uint8_t *)orig)[0];
		__atomic_store_n(&s->kernel_bpt, true, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&poke_lock);
	return 0;
}

int text_poke_stopped(uint64_t addr, const void *bytes, size_t len)
{
	int r;

	pthread_mutex_lock(&poke_lock);
	r = setup();
	if (r == 0)
		r = mem_write(addr, bytes, len);
	if (r == 0)
		serialize_cores();
	pthread_mutex_unlock(&poke_lock);
	return r;
}

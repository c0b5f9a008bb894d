// SPDX-License-Identifier: MIT
/*
 * The fault handler behind uaccess.h. A SIGSEGV or SIGBUS raised by the
 * kernel (si_code > 0) on an instruction of the copy routines resumes at
 * their fixup; anything else goes to the application's handler as if we were
 * not there. The handler is installed once, not per copy: sigaction is a
 * syscall, and swapping dispositions per call would race with the
 * application's threads.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>
#include <unistd.h>

#include "uaccess.h"

extern const char agent_uaccess_text_start[], agent_uaccess_text_end[];
extern const char agent_uaccess_fixup[];

static const int fault_signals[] = { SIGSEGV, SIGBUS };

/* What each signal did before us; read by the handler, written at install. */
static struct sigaction prev_action[2];
static pthread_mutex_t install_lock = PTHREAD_MUTEX_INITIALIZER;

static int signal_index(int sig)
{
	return sig == SIGBUS;
}

static void chain(int sig, siginfo_t *si, void *uc)
{
	const struct sigaction *prev = &prev_action[signal_index(sig)];
	struct sigaction dfl;

	if (prev->sa_flags & SA_SIGINFO) {
		prev->sa_sigaction(sig, si, uc);
		return;
	}
	if (prev->sa_handler != SIG_DFL && prev->sa_handler != SIG_IGN) {
		prev->sa_handler(sig);
		return;
	}
	/* Sent with kill() and ignored before us: nothing happens. */
	if (prev->sa_handler == SIG_IGN && si->si_code <= 0)
		return;
	/*
	 * The default action: a fault raised by an instruction happens again on
	 * return and kills the process with the usual core; a signal sent with
	 * kill() is raised again and delivered once we return.
	 */
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigaction(sig, &dfl, NULL);
	if (si->si_code <= 0)
		raise(sig);
}

static void fault_handler(int sig, siginfo_t *si, void *uc_)
{
	ucontext_t *uc = uc_;
	uintptr_t ip = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];

	if (si->si_code > 0 && ip >= (uintptr_t)agent_uaccess_text_start &&
	    ip < (uintptr_t)agent_uaccess_text_end) {
		uc->uc_mcontext.gregs[REG_RIP] = (greg_t)(uintptr_t)agent_uaccess_fixup;
		return;
	}
	chain(sig, si, uc_);
}

static int install(int sig)
{
	struct sigaction cur, act;
	int i = signal_index(sig);

	if (sigaction(sig, NULL, &cur) < 0)
		return -errno;
	if ((cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == fault_handler)
		return 0;
	/*
	 * Behave like the handler we replace where the kernel decides: the
	 * same mask, alternate stack and deferral.
	 */
	memset(&act, 0, sizeof(act));
	act.sa_sigaction = fault_handler;
	act.sa_mask = cur.sa_mask;
	act.sa_flags = SA_SIGINFO | (cur.sa_flags & (SA_ONSTACK | SA_NODEFER | SA_RESTART));
	prev_action[i] = cur;
	if (sigaction(sig, &act, NULL) < 0)
		return -errno;
	return 0;
}

uint64_t agent_task_size_max = (1ull << 47) - 4096;
unsigned int agent_virt_bits = 48;

/* 5-level paging shows as the la57 flag; the address width as "address sizes". */
static void address_space(void)
{
	static char buf[1 << 14];
	ssize_t n;
	char *p;
	int fd;

	fd = open("/proc/cpuinfo", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = 0;
	p = strstr(buf, "\nflags");
	if (p) {
		char *eol = strchr(p + 1, '\n');

		if (eol)
			*eol = 0;
		if (strstr(p, " la57"))
			agent_task_size_max = (1ull << 56) - 4096;
		if (eol)
			*eol = '\n';
	}
	p = strstr(buf, "bits physical, ");
	if (p) {
		unsigned int bits = (unsigned int)strtoul(p + strlen("bits physical, "), NULL, 10);

		if (bits >= 48 && bits <= 64)
			agent_virt_bits = bits;
	}
}

int agent_kernel_read_error(uint64_t addr)
{
	int64_t top = (int64_t)addr >> (agent_virt_bits - 1);

	if (addr < agent_task_size_max + 4096)
		return -ERANGE;
	if ((addr & ~4095ull) == 0xffffffffff600000ull) /* vsyscall */
		return -ERANGE;
	if (top != 0 && top != -1) /* non-canonical */
		return -ERANGE;
	return -EFAULT;
}

long agent_strncpy_from_user(char *dst, uint64_t src, long count)
{
	uint64_t max;
	long res = 0;

	if (src >= agent_task_size_max)
		return -EFAULT;
	max = agent_task_size_max - src;
	if (max > (uint64_t)count)
		max = (uint64_t)count;
	while (max >= 8) {
		uint64_t c;

		/* a word that faults falls back to bytes, as in the kernel */
		if (agent_uaccess_copy(&c, (const void *)(uintptr_t)(src + (uint64_t)res), 8) < 0)
			break;
		for (int i = 0; i < 8; i++) {
			if (!((c >> (8 * i)) & 0xff)) {
				/* keep what precedes the NUL, zero the rest of the word */
				uint64_t mask = i ? (~0ull >> (64 - 8 * i)) : 0;

				c &= mask;
				memcpy(dst + res, &c, 8);
				res += i;
				goto found;
			}
		}
		memcpy(dst + res, &c, 8);
		res += 8;
		max -= 8;
	}
	while (max) {
		char c;

		if (agent_uaccess_copy(&c, (const void *)(uintptr_t)(src + (uint64_t)res), 1) < 0)
			return -EFAULT;
		dst[res] = c;
		if (!c)
			goto found;
		res++;
		max--;
	}
	if (res < count)
		return -EFAULT; /* stopped by the top of user space */
	dst[count - 1] = 0;
	return count;
found:
	return res + 1;
}

int agent_uaccess__init(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	int r = 0;

	pthread_once(&once, address_space);

	pthread_mutex_lock(&install_lock);
	for (size_t i = 0; i < sizeof(fault_signals) / sizeof(fault_signals[0]) && r == 0; i++)
		r = install(fault_signals[i]);
	pthread_mutex_unlock(&install_lock);
	return r;
}

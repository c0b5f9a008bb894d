// SPDX-License-Identifier: MIT
/* Stopping the other threads of a process around a patch (see stopper.h). */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "stopper.h"

#define STOP_TIMEOUT_MS 500
#define RETRIES 20

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static bool holds(const struct stopped *s, pid_t tid)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->threads[i].tid == tid)
			return true;
	return false;
}

/* Seizes and interrupts tid and waits for it to stop: 0, -ESRCH (gone) or -errno. */
static int stop_one(struct stopped *s, pid_t tid)
{
	uint64_t deadline = now_ms() + STOP_TIMEOUT_MS;
	struct stopped_thread *t;
	int status;
	pid_t w;

	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 16;
		struct stopped_thread *more = realloc(s->threads, cap * sizeof(*more));

		if (!more)
			return -ENOMEM;
		s->threads = more;
		s->cap = cap;
	}
	if (ptrace(PTRACE_SEIZE, tid, 0, 0) < 0)
		return errno == ESRCH ? -ESRCH : -errno;
	t = &s->threads[s->n++];
	*t = (struct stopped_thread){ .tid = tid };
	if (ptrace(PTRACE_INTERRUPT, tid, 0, 0) < 0)
		return -errno;
	for (;;) {
		w = waitpid(tid, &status, __WALL | WNOHANG);
		if (w < 0)
			return -errno;
		if (w == 0) {
			if (now_ms() > deadline)
				return -ETIMEDOUT;
			usleep(20);
			continue;
		}
		if (WIFEXITED(status) || WIFSIGNALED(status)) {
			s->n--;
			return -ESRCH;
		}
		if (!WIFSTOPPED(status))
			continue;
		/* A signal-delivery stop is a stop too: the signal goes with the detach. */
		if ((status >> 16) != PTRACE_EVENT_STOP)
			t->pending_sig = WSTOPSIG(status);
		return 0;
	}
}

void stopper_resume(struct stopped *s)
{
	for (size_t i = 0; i < s->n; i++)
		ptrace(PTRACE_DETACH, s->threads[i].tid, 0, s->threads[i].pending_sig);
	free(s->threads);
	*s = (struct stopped){ 0 };
}

/* Stops every thread of pid but except not stopped yet: how many were new, or -errno. */
static int stop_all(struct stopped *s, pid_t except, char *err, size_t err_size)
{
	char path[64];
	struct dirent *d;
	DIR *dir;
	int fresh = 0, r = 0;

	snprintf(path, sizeof(path), "/proc/%d/task", s->pid);
	dir = opendir(path);
	if (!dir) {
		snprintf(err, err_size, "process %d: %s", s->pid, strerror(errno));
		return -errno;
	}
	while (r >= 0 && (d = readdir(dir))) {
		pid_t tid = (pid_t)atoi(d->d_name);

		if (tid <= 0 || tid == except || holds(s, tid))
			continue;
		r = stop_one(s, tid);
		if (r == -ESRCH)
			r = 0;
		else if (r < 0)
			snprintf(err, err_size, "cannot stop thread %d of process %d: %s", tid,
				 s->pid, strerror(-r));
		else
			fresh++;
	}
	closedir(dir);
	return r < 0 ? r : fresh;
}

/* The thread whose instruction pointer is inside (lo, hi), or 0. */
static pid_t inside(const struct stopped *s, uint64_t lo, uint64_t hi)
{
	for (size_t i = 0; i < s->n; i++) {
		struct user_regs_struct regs;

		if (ptrace(PTRACE_GETREGS, s->threads[i].tid, 0, &regs) == 0 && regs.rip > lo &&
		    regs.rip < hi)
			return s->threads[i].tid;
	}
	return 0;
}

int stopper_stop(pid_t pid, pid_t except, uint64_t lo, uint64_t hi, struct stopped *out,
		 char *err, size_t err_size)
{
	pid_t busy = 0;
	int r;

	for (int attempt = 0; attempt < RETRIES; attempt++) {
		*out = (struct stopped){ .pid = pid };
		/* Until a pass finds no thread it had not stopped yet (clone() races). */
		do
			r = stop_all(out, except, err, err_size);
		while (r > 0);
		if (r < 0) {
			stopper_resume(out);
			return r;
		}
		busy = inside(out, lo, hi);
		if (!busy)
			return 0;
		stopper_resume(out);
		usleep(1000);
	}
	snprintf(err, err_size,
		 "thread %d of process %d was inside [0x%llx, 0x%llx) at each of %d stops", busy,
		 pid, (unsigned long long)lo, (unsigned long long)hi, RETRIES);
	return -EAGAIN;
}

/* SPDX-License-Identifier: MIT */
/*
 * Stopping every thread of a process but one, for a patch of several
 * instructions that no thread may be executing (DESIGN.md section 2): each
 * other thread is seized and interrupted with ptrace, and none may have its
 * instruction pointer inside the patch, past its first byte. The one thread
 * left running (the agent's) writes the patch; then the others go on.
 *
 * Contract: stopper_stop() returns 0 with every other thread stopped, or
 * -errno with a reason and nothing stopped (-EAGAIN: a thread stayed inside
 * the range over every retry). stopper_resume() lets them go, a signal that
 * arrived meanwhile delivered as it would have been. Threads that exit
 * meanwhile are simply gone; a thread created meanwhile is stopped too.
 */
#ifndef BPFTIMED_STOPPER_H
#define BPFTIMED_STOPPER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct stopped_thread {
	pid_t tid;
	int pending_sig;
};

struct stopped {
	pid_t pid;
	struct stopped_thread *threads;
	size_t n, cap;
};

int stopper_stop(pid_t pid, pid_t except, uint64_t lo, uint64_t hi, struct stopped *out,
		 char *err, size_t err_size);
void stopper_resume(struct stopped *s);

#endif

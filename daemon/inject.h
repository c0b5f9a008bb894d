/* SPDX-License-Identifier: MIT */
/*
 * Loading a shared object into a running process with ptrace: one thread is
 * seized and interrupted, made to call dlopen() in its own libc, and put
 * back exactly as it was (general registers, the full extended state with
 * XMM/YMM, the signal mask; an interrupted system call restarts as if
 * nothing happened). The other threads keep running: a thread stopped while
 * holding the loader's or malloc's lock would deadlock the dlopen.
 *
 * Contract: returns 0 with the dlopen handle, or -errno with a message; on
 * every path the target is left detached and running (or it exited on its
 * own). The thread chosen is one blocked in a system call when there is
 * one (it holds no libc lock), else the main thread.
 *
 * A process that has just exec'd (INJECT_AT_ENTRY) may still be in the
 * dynamic loader: its libc not mapped yet, or its libraries' constructors
 * running. Its main thread is let run to the program's entry point (a
 * breakpoint there, taken out again), where the loader is done and libc is
 * initialised, and the library is loaded there, before main(). The
 * breakpoint is taken out again on every path, and out of a child it forks
 * meanwhile; its signals reach it as they come. One past its entry point
 * already (glibc's
 * _start has run) is injected where it stands, as any other; one that does
 * not get there within INJECT_ENTRY_WAIT_MS is left as it was, with -EAGAIN
 * and before_entry set.
 */
#ifndef BPFTIMED_INJECT_H
#define BPFTIMED_INJECT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define INJECT_ERRMSG_SIZE 512
#define INJECT_ENTRY_WAIT_MS 500

/* Flags of inject_library_call(). */
#define INJECT_AT_ENTRY (1u << 0)

struct inject_result {
	uint64_t handle;   /* what the call returned in the target (dlopen: the handle) */
	pid_t tid;	   /* the thread that ran it */
	uint64_t stop_ns;  /* how long that thread was stopped */
	bool at_entry;	   /* it ran at the program's entry point (INJECT_AT_ENTRY) */
	/* -EAGAIN because it was still in its loader after INJECT_ENTRY_WAIT_MS: try later */
	bool before_entry;
};

int inject_library(pid_t pid, const char *path, struct inject_result *res,
		   char err[INJECT_ERRMSG_SIZE]);
/*
 * dlopen(path), then the library's function `entry` (int entry(const char
 * *arg)) with arg, in the same stop; a negative return is the error.
 */
int inject_library_call(pid_t pid, const char *path, const char *entry, const char *arg,
			unsigned int flags, struct inject_result *res,
			char err[INJECT_ERRMSG_SIZE]);
/* dlclose(handle) in the target, the same way. */
int inject_unload(pid_t pid, uint64_t handle, struct inject_result *res,
		  char err[INJECT_ERRMSG_SIZE]);

#endif

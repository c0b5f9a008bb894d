/* SPDX-License-Identifier: MIT */
/*
 * Which processes run which files: one pass over /proc/PID/maps, reporting
 * each process once per file it maps executable, with how long ago the
 * process started (or last exec'd). Processes that vanish mid-scan are
 * skipped; kernel threads map nothing.
 */
#ifndef BPFTIMED_PROCSCAN_H
#define BPFTIMED_PROCSCAN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct procscan_ops {
	/* Whether to look at pid at all. */
	bool (*want_pid)(void *ctx, pid_t pid);
	/* Whether this file (device, inode) matters. */
	bool (*want_file)(void *ctx, uint64_t dev, uint64_t ino);
	/* pid maps the file executable; called once per process and file. */
	void (*found)(void *ctx, pid_t pid, uint64_t age_usec, uint64_t dev, uint64_t ino);
	void *ctx;
};

/* Returns 0, or -errno when /proc cannot be read. */
int procscan_run(const struct procscan_ops *ops);
/* The same for one process (want_pid is not asked). */
void procscan_pid(const struct procscan_ops *ops, pid_t pid);

#endif

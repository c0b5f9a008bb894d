/* SPDX-License-Identifier: MIT */
/*
 * Rebuilding the model from /proc when the monitor cannot be trusted (at
 * start-up, for tools that were there before us, and after lost records):
 * each fd of a process is classified by its anon-inode name, programs, maps
 * and links are read through pidfd_getfd and BPF_OBJ_GET_INFO_BY_FD, uprobe
 * perf events through BPF_TASK_FD_QUERY. What the model already knew about an
 * object that is still there (the captured instructions) is kept.
 */
#ifndef BPFTIMED_RESYNC_H
#define BPFTIMED_RESYNC_H

#include <sys/types.h>

#include "model.h"

/* Brings the model of one process in line with /proc; 0 or -errno. */
int resync_process(struct model *m, pid_t pid);
/* Every process but self; returns the number of tools found, or -errno. */
int resync_all(struct model *m, pid_t self);

#endif

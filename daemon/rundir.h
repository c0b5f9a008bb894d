/* SPDX-License-Identifier: MIT */
/*
 * The daemon's own directories below its runtime directory (the agents'
 * status pages, the maps' locks): files there are the daemon's, and what an
 * earlier daemon left behind is gone with its agents.
 *
 * Contract: rundir_make_empty() creates path (mode 0755) when missing and
 * removes the files in it; 0 or -errno (-EPERM: path is not a directory of
 * ours that only we write, nor a symbolic link to one).
 */
#ifndef BPFTIMED_RUNDIR_H
#define BPFTIMED_RUNDIR_H

int rundir_make_empty(const char *path);

#endif

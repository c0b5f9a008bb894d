/* SPDX-License-Identifier: MIT */
/*
 * Grace periods for what the hook path reads: a thread that runs programs
 * at a site does so inside a read-side section, and grace__wait() returns
 * once every section that began before it was called has ended. So a
 * program taken off its site (its pointer no longer published) may be freed
 * after grace__wait(), however many threads keep calling the site.
 *
 * Contract:
 *  - grace__enter()/grace__exit() cost two atomic adds, never block, and
 *    nest; exit takes what enter returned.
 *  - grace__wait() is for one thread at a time (the agent's, under its
 *    lock). It returns true once the sections have drained, false if one was
 *    still open after timeout_ns (a thread stopped by a debugger inside a
 *    program): the caller must then leak rather than free.
 *  - grace__reset() is for a forked child, where the threads that held
 *    sections in the parent do not exist.
 */
#ifndef BPFTIME_AGENT_GRACE_H
#define BPFTIME_AGENT_GRACE_H

#include <stdbool.h>
#include <stdint.h>

unsigned int grace__enter(void);
void grace__exit(unsigned int idx);
bool grace__wait(uint64_t timeout_ns);
void grace__reset(void);

#endif

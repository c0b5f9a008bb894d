/* SPDX-License-Identifier: MIT */
/*
 * The offload planner: which uprobe attachments agents serve, in which
 * processes, and the hand-off between the kernel and an agent
 * (DESIGN.md §1.6-1.7).
 *
 * Contract:
 *  - An attachment is offloaded only when it is enabled, on a file we serve
 *    (Serve=/Exclude=), its program and maps are known and the agent accepts
 *    them; otherwise it stays in the kernel and reason() says why.
 *  - Processes: those mapping the file executable, never bpftimed, PID 1 or
 *    an eBPF tool, honouring the attachment's pid filter, once they have
 *    run InjectDelaySec=. A process that exec's while anything can be
 *    offloaded is looked at InjectDelaySec= after its exec (planner_exec;
 *    right away when 0, injected at its entry point: inject.h), and once
 *    more 50 ms after it when it mapped nothing of ours yet (its loader had
 *    not mapped its libraries); others are found by a rescan every
 *    PLANNER_RESCAN_USEC.
 *  - A site (file, offset) is served in a process wholly by its agent or
 *    wholly by the kernel: the agent's hook takes the kernel's breakpoint
 *    away from every attachment there. Programs are loaded first; the
 *    attachments of a site are sent only when all its programs loaded.
 *  - Undo: an attachment that goes away is detached in every agent, with
 *    the kernel's breakpoint put back while any uprobe of the kernel
 *    remains at the site for that process. planner_stop() puts every
 *    kernel breakpoint back before the daemon exits.
 *  - planner_kick() schedules one reconciliation in the next loop
 *    iteration, however many things changed.
 */
#ifndef BPFTIMED_PLANNER_H
#define BPFTIMED_PLANNER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <systemd/sd-event.h>

#include "agents.h"
#include "config.h"
#include "model.h"

#define PLANNER_RESCAN_USEC 500000ULL
#define PLANNER_REASON_LEN 256

struct planner;

int planner_new(struct planner **ret, sd_event *event, struct model *model,
		struct agents *agents, const struct config *config);
void planner_free(struct planner *p);

/* The callbacks agents_start() takes. */
void planner_agents_ops(struct planner *p, struct agents_ops *ops);

void planner_kick(struct planner *p);
/* Process pid exec'd (the monitor saw it): a candidate from its first instruction. */
void planner_exec(struct planner *p, pid_t pid);
/* The configuration changed: every attachment is judged again. */
void planner_reconfigure(struct planner *p);
/* Every agent's hooks out, the kernel's breakpoints back. */
void planner_stop(struct planner *p);

/* A user said where an agent must not be (bpftimectl detach) or may be again (attach). */
void planner_set_refused(struct planner *p, pid_t pid, bool refused);

enum planner_where {
	PLANNER_KERNEL,	 /* the kernel serves it */
	PLANNER_PENDING, /* being handed to the agent */
	PLANNER_AGENT,	 /* the agent serves it */
};

/* How one attachment is served in one process. */
struct planner_serving {
	pid_t pid;
	enum planner_where where;
	const char *reason; /* why the kernel, or "" */
	uint64_t hits;
	uint64_t ns_per_hit;
};

/*
 * Calls fn for every process the attachment of tool (perf_fd, link_fd,
 * offset) applies to; *reason says why it is kept in the kernel everywhere
 * ("" when it is offloadable). Returns the number of processes.
 */
int planner_serving(struct planner *p, pid_t tool, int perf_fd, int link_fd, uint64_t offset,
		    const char **reason,
		    void (*fn)(void *ctx, const struct planner_serving *s), void *ctx);

#endif

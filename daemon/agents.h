/* SPDX-License-Identifier: MIT */
/*
 * The agents: processes running libbpftime-agent.so, connected to the
 * daemon's SOCK_SEQPACKET socket (default /run/bpftimed/agent.sock).
 *
 * Contract:
 *  - A connection is kept only from a process the daemon injected or that
 *    has the agent library mapped (LD_PRELOAD), judged by SO_PEERCRED and
 *    /proc/PID/maps; its first message must be a valid HELLO. Every message
 *    is decoded by proto/ with its fds; a malformed one is logged with the
 *    reason and the connection closed, the daemon carries on.
 *  - Each agent gets a status page (shm/agentstat.h) right after HELLO:
 *    <socket dir>/agents/<pid>, mode 0600, owned by the agent's uid, read
 *    here for its counters and removed when the connection ends.
 *  - agents_attach() injects the agent (dlopen, then its entry point with
 *    the socket path) and returns once it is loaded; the agent connects on
 *    its own. agents_detach() asks the agent to drop every probe and go
 *    dormant (BYE): the library stays mapped, since a thread may still be
 *    about to return through one of its return trampolines.
 */
#ifndef BPFTIMED_AGENTS_H
#define BPFTIMED_AGENTS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <systemd/sd-event.h>

#include "agentstat.h"

#define AGENTS_MAX_PENDING 64

struct agents;
struct agent;
struct proto_msg;

/* What the planner hears of agents; each may be NULL. */
struct agents_ops {
	/* The agent said HELLO: requests may go to it. */
	void (*ready)(void *ctx, struct agent *g);
	/* A DONE or ERROR about one of our requests, or a STOP. */
	void (*message)(void *ctx, struct agent *g, const struct proto_msg *m);
	/* The connection is gone; the agent put the kernel's breakpoints back itself. */
	void (*gone)(void *ctx, pid_t pid);
	/* The process's agent can never serve (why): inject it no more. */
	void (*unfit)(void *ctx, pid_t pid, const char *why);
	void *ctx;
};

struct agent {
	struct agent *next;
	struct agents *owner;
	pid_t pid;
	uid_t uid;
	gid_t gid;
	int fd;
	sd_event_source *source;
	uint64_t connected_usec; /* CLOCK_REALTIME */
	uint64_t stop_ns;	 /* how long the injection stopped it, 0 if preloaded */
	bool hello;
	uint32_t caps;
	char version[16];
	/* Its status page, -1 when it could not be made (no counters then). */
	int stat_fd;
};

/* What an agent's status page says now (read, never mapped: see agentstat.h). */
struct agent_status {
	uint32_t state; /* enum shm_agent_state */
	uint32_t probes;
	struct shm_agentstat_reading hits; /* of the attachment asked for, or all */
};

struct agents {
	sd_event *event;
	int listen_fd;
	sd_event_source *listen_source;
	char socket_path[108];
	char stat_dir[128];
	char library[4096];
	struct agent *list;
	/* Processes injected whose agent has not connected yet. */
	pid_t pending[AGENTS_MAX_PENDING];
	uint64_t stop_ns[AGENTS_MAX_PENDING];
	uint32_t next_seq;
	struct agents_ops ops;
};

int agents_start(struct agents *a, sd_event *event, const char *socket_path,
		 const char *library, const struct agents_ops *ops);
void agents_stop(struct agents *a);

/*
 * just_execd: the process may still be in its loader (inject.h,
 * INJECT_AT_ENTRY); *not_yet (may be NULL) then says it was left alone
 * because it did not reach its entry point in time.
 */
int agents_attach(struct agents *a, pid_t pid, bool just_execd, bool *not_yet, char *err,
		  size_t err_size);
/* Whether the process has libbpftime-agent.so mapped (injected or preloaded). */
bool agents_library_mapped(pid_t pid);
int agents_detach(struct agents *a, pid_t pid, char *err, size_t err_size);
struct agent *agents_find(struct agents *a, pid_t pid);
/* attach 0: the agent's totals. -errno when it has no page or the page is spoiled. */
int agents_status(const struct agent *g, uint32_t attach, struct agent_status *out);
/* Sends one request with its fds (not closed here); returns its seq or -errno. */
int agents_send(struct agents *a, struct agent *g, struct proto_msg *m, const int *fds,
		size_t nfds);

#endif

// SPDX-License-Identifier: MIT
/* The agents' socket, their connections and their injection (see agents.h). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "agents.h"
#include "inject.h"
#include "log.h"
#include "proto.h"
#include "rundir.h"

#define AGENT_ENTRY "bpftime_agent_main"
#define AGENT_LIBRARY_NAME "libbpftime-agent.so"
#define RECV_MAX 65536
/* How long a stopping daemon waits for its agents to go dormant. */
#define AGENTS_STOP_WAIT_MS 1000

static uint64_t realtime_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000ULL + (uint64_t)ts.tv_nsec / 1000;
}

struct agent *agents_find(struct agents *a, pid_t pid)
{
	for (struct agent *g = a->list; g; g = g->next)
		if (g->pid == pid)
			return g;
	return NULL;
}

static void agent_drop(struct agents *a, struct agent *g, const char *why)
{
	for (struct agent **pp = &a->list; *pp; pp = &(*pp)->next) {
		if (*pp == g) {
			*pp = g->next;
			break;
		}
	}
	log_info("Agent in process %d disconnected: %s.", g->pid, why);
	if (g->stat_fd >= 0) {
		close(g->stat_fd);
		(void)shm_agentstat__unlink(a->stat_dir, g->pid);
	}
	sd_event_source_unref(g->source);
	if (g->fd >= 0)
		close(g->fd);
	if (a->ops.gone)
		a->ops.gone(a->ops.ctx, g->pid);
	free(g);
}

int agents_send(struct agents *a, struct agent *g, struct proto_msg *m, const int *fds,
		size_t nfds)
{
	size_t cap = 4096;
	uint8_t *buf;
	ssize_t n;
	int r;

	if (m->type == PROTO_LOAD)
		cap += (size_t)m->load.fixed.insn_cnt * 8 +
		       (size_t)m->load.fixed.map_cnt * sizeof(struct proto_map);
	buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	m->seq = ++a->next_seq;
	m->nfds = (uint32_t)nfds;
	n = proto_msg__encode(m, buf, cap);
	r = n < 0 ? (int)n : proto_send(g->fd, buf, (size_t)n, fds, nfds);
	free(buf);
	return r < 0 ? r : (int)m->seq;
}

static int send_msg(struct agents *a, struct agent *g, struct proto_msg *m)
{
	int r = agents_send(a, g, m, NULL, 0);

	return r < 0 ? r : 0;
}

/*
 * The agent's status page, after our HELLO. Without one the agent still
 * serves; only its counters are missing, and the log says why.
 */
static int send_stat_page(struct agents *a, struct agent *g)
{
	struct proto_msg m = { .type = PROTO_STATS };
	int fd = shm_agentstat__create(a->stat_dir, g->pid, g->uid, g->gid);
	int r;

	if (fd < 0) {
		log_warning_errno(fd, "Agent in process %d: cannot make its status page in %s: %m; "
				      "its probes' hits are not counted.",
				  g->pid, a->stat_dir);
		return 0;
	}
	g->stat_fd = fd;
	m.stats = (struct proto_stats_fixed){ .size = sizeof(struct shm_agentstat),
					      .version = 1 };
	r = agents_send(a, g, &m, &fd, 1);
	return r < 0 ? r : 0;
}

int agents_status(const struct agent *g, uint32_t attach, struct agent_status *out)
{
	struct shm_agentstat *page;
	int r;

	if (g->stat_fd < 0)
		return -ENOENT;
	page = malloc(sizeof(*page));
	if (!page)
		return -ENOMEM;
	r = shm_agentstat__load(g->stat_fd, page);
	if (r == 0) {
		out->state = page->state;
		out->probes = page->probes;
		shm_agentstat__read(page, attach, &out->hits);
	}
	free(page);
	return r;
}

static void on_message(struct agents *a, struct agent *g, const struct proto_msg *m)
{
	struct proto_msg reply = { .type = PROTO_HELLO };

	switch (m->type) {
	case PROTO_HELLO:
		g->hello = true;
		g->caps = m->hello.caps;
		memcpy(g->version, m->hello.version, sizeof(g->version));
		/* An agent of another build stays resident: injecting again brings it back. */
		if (strcmp(g->version, BPFTIMED_VERSION)) {
			char why[128];

			snprintf(why, sizeof(why),
				 "its agent is version %s, bpftimed %s: restart it to have it served",
				 g->version, BPFTIMED_VERSION);
			log_warning("Agent in process %d speaks another version: %s.", g->pid, why);
			if (a->ops.unfit)
				a->ops.unfit(a->ops.ctx, g->pid, why);
			agent_drop(a, g, "another version");
			return;
		}
		reply.hello = (struct proto_hello){ .pid = (uint32_t)getpid(),
						    .max_msg = PROTO_MAX_MSG };
		snprintf(reply.hello.version, sizeof(reply.hello.version), "%s", BPFTIMED_VERSION);
		if (send_msg(a, g, &reply) < 0 || send_stat_page(a, g) < 0) {
			agent_drop(a, g, "cannot answer its HELLO");
			return;
		}
		log_info("Agent %s in process %d (uid %u) connected.", g->version, g->pid, g->uid);
		if (a->ops.ready)
			a->ops.ready(a->ops.ctx, g);
		return;
	case PROTO_ERROR:
		if (m->error.fixed.ref_type == PROTO_STATS) {
			log_warning("Agent in process %d refused its status page: %.*s", g->pid,
				    (int)m->error.fixed.text_len, m->error.text);
			return;
		}
		/* fallthrough */
	case PROTO_DONE:
	case PROTO_STOP:
		if (a->ops.message)
			a->ops.message(a->ops.ctx, g, m);
		return;
	case PROTO_BYE:
		agent_drop(a, g, "it said goodbye");
		return;
	default:
		log_warning("Agent in process %d sent a message only the daemon sends (type %d); "
			    "closing.",
			    g->pid, m->type);
		agent_drop(a, g, "protocol violation");
		return;
	}
}

static int on_agent_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct agent *g = userdata;
	static uint8_t buf[RECV_MAX];
	char err[PROTO_ERRMSG_SIZE];
	int fds[PROTO_MAX_FDS];
	struct proto_msg m;
	size_t nfds = 0;
	ssize_t n;

	n = proto_recv(fd, buf, sizeof(buf), fds, &nfds);
	/* Agents send no fds: whatever came is closed right away. */
	for (size_t i = 0; i < nfds; i++)
		close(fds[i]);
	if (n == 0) {
		agent_drop(g->owner, g, "connection closed");
		return 0;
	}
	if (n < 0) {
		log_warning_errno((int)n, "Agent in process %d: cannot receive: %m", g->pid);
		agent_drop(g->owner, g, "receive error");
		return 0;
	}
	if (proto_msg__decode(buf, (size_t)n, nfds, &m, err) < 0) {
		log_warning("Agent in process %d sent a malformed message: %s.", g->pid, err);
		agent_drop(g->owner, g, "malformed message");
		return 0;
	}
	if (!g->hello && m.type != PROTO_HELLO) {
		log_warning("Agent in process %d did not start with HELLO.", g->pid);
		agent_drop(g->owner, g, "protocol violation");
		return 0;
	}
	on_message(g->owner, g, &m);
	return 0;
}

/* Injected by us, or the agent library is mapped (LD_PRELOAD): anyone else is refused. */
bool agents_library_mapped(pid_t pid)
{
	char path[64], line[4096];
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	f = fopen(path, "re");
	while (f && !found && fgets(line, sizeof(line), f))
		found = strstr(line, "/" AGENT_LIBRARY_NAME "\n") != NULL;
	if (f)
		fclose(f);
	return found;
}

static bool may_connect(struct agents *a, pid_t pid, uint64_t *stop_ns)
{
	for (int i = 0; i < AGENTS_MAX_PENDING; i++) {
		if (a->pending[i] == pid) {
			a->pending[i] = 0;
			*stop_ns = a->stop_ns[i];
			return true;
		}
	}
	*stop_ns = 0;
	return agents_library_mapped(pid);
}

static int on_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct agents *a = userdata;
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct agent *g;
	uint64_t stop_ns;
	int c, r;

	c = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (c < 0)
		return 0;
	if (getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
		log_warning_errno(-errno, "Refusing an agent connection: no peer credentials: %m");
		close(c);
		return 0;
	}
	if (!may_connect(a, cred.pid, &stop_ns)) {
		log_warning("Refusing an agent connection from process %d (uid %u): not injected, "
			    "no agent library mapped.",
			    cred.pid, cred.uid);
		close(c);
		return 0;
	}
	g = calloc(1, sizeof(*g));
	if (!g) {
		close(c);
		return log_error_errno(-ENOMEM, "Out of memory.");
	}
	*g = (struct agent){ .owner = a, .pid = cred.pid, .uid = cred.uid, .gid = cred.gid, .fd = c,
			     .stat_fd = -1,
			     .connected_usec = realtime_usec(), .stop_ns = stop_ns };
	r = sd_event_add_io(a->event, &g->source, c, EPOLLIN, on_agent_io, g);
	if (r < 0) {
		close(c);
		free(g);
		return log_error_errno(r, "Failed to watch an agent connection: %m");
	}
	g->next = a->list;
	a->list = g;
	return 0;
}

int agents_start(struct agents *a, sd_event *event, const char *socket_path,
		 const char *library, const struct agents_ops *ops)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	char dir[sizeof(addr.sun_path)], *slash;
	int r;

	memset(a, 0, sizeof(*a));
	a->listen_fd = -1;
	a->event = event;
	if (ops)
		a->ops = *ops;
	if (strlen(socket_path) >= sizeof(addr.sun_path))
		return log_error_errno(-ENAMETOOLONG, "Agent socket path %s is too long.",
				       socket_path);
	snprintf(a->socket_path, sizeof(a->socket_path), "%s", socket_path);
	snprintf(a->library, sizeof(a->library), "%s", library);
	snprintf(dir, sizeof(dir), "%s", socket_path);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = 0;
		/* Agents of every user connect: the directory is searchable by all. */
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			return log_error_errno(-errno, "Failed to create %s: %m", dir);
	} else {
		snprintf(dir, sizeof(dir), "%s", slash ? "" : ".");
	}
	snprintf(a->stat_dir, sizeof(a->stat_dir), "%s/agents", dir);
	r = rundir_make_empty(a->stat_dir);
	if (r < 0)
		return log_error_errno(r, "Failed to create %s: %m", a->stat_dir);
	strcpy(addr.sun_path, socket_path);
	a->listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (a->listen_fd < 0)
		return log_error_errno(-errno, "Failed to create the agent socket: %m");
	unlink(socket_path);
	if (bind(a->listen_fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
	    chmod(socket_path, 0666) < 0 || listen(a->listen_fd, 64) < 0)
		return log_error_errno(-errno, "Failed to listen on %s: %m", socket_path);
	r = sd_event_add_io(event, &a->listen_source, a->listen_fd, EPOLLIN, on_accept, a);
	if (r < 0)
		return log_error_errno(r, "Failed to watch the agent socket: %m");
	log_info("Agents connect to %s.", socket_path);
	return 0;
}

/*
 * An agent hangs up once dormant, when its last runs have written what they
 * wrote: waits for that (up to timeout_ms over all), so that what they added
 * to shared maps is there when the daemon drains it for the last time.
 */
static void wait_hangups(struct agents *a, int timeout_ms)
{
	struct timespec start, now;
	static uint8_t buf[4096];

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		struct pollfd pfds[64];
		int n = 0, left;

		for (struct agent *g = a->list; g && n < 64; g = g->next)
			if (g->fd >= 0)
				pfds[n++] = (struct pollfd){ .fd = g->fd, .events = POLLIN };
		clock_gettime(CLOCK_MONOTONIC, &now);
		left = timeout_ms - (int)((now.tv_sec - start.tv_sec) * 1000 +
					  (now.tv_nsec - start.tv_nsec) / 1000000);
		if (!n || left <= 0 || poll(pfds, (nfds_t)n, left) <= 0)
			return;
		for (int i = 0; i < n; i++) {
			int fds[PROTO_MAX_FDS];
			size_t nfds;

			if (!pfds[i].revents || proto_recv(pfds[i].fd, buf, sizeof(buf), fds, &nfds) > 0)
				continue;
			for (struct agent *g = a->list; g; g = g->next)
				if (g->fd == pfds[i].fd) {
					close(g->fd);
					g->fd = -1;
				}
		}
	}
}

void agents_stop(struct agents *a)
{
	struct proto_msg bye = { .type = PROTO_BYE };

	/* Whoever listened is going away too. */
	a->ops = (struct agents_ops){ 0 };
	for (struct agent *g = a->list; g; g = g->next)
		send_msg(a, g, &bye);
	wait_hangups(a, AGENTS_STOP_WAIT_MS);
	while (a->list)
		agent_drop(a, a->list, "bpftimed is stopping");
	sd_event_source_unref(a->listen_source);
	a->listen_source = NULL;
	if (a->listen_fd >= 0) {
		close(a->listen_fd);
		unlink(a->socket_path);
		a->listen_fd = -1;
	}
}

int agents_attach(struct agents *a, pid_t pid, bool just_execd, bool *not_yet, char *err,
		  size_t err_size)
{
	char ierr[INJECT_ERRMSG_SIZE];
	struct inject_result res;
	int slot = -1, r;

	if (agents_find(a, pid)) {
		snprintf(err, err_size, "process %d already has an agent", pid);
		return -EEXIST;
	}
	for (int i = 0; i < AGENTS_MAX_PENDING && slot < 0; i++)
		if (!a->pending[i] || a->pending[i] == pid)
			slot = i;
	if (slot < 0) {
		snprintf(err, err_size, "too many injections waiting for their agent");
		return -EBUSY;
	}
	/* Pending before the call: the agent may connect before we return. */
	a->pending[slot] = pid;
	r = inject_library_call(pid, a->library, AGENT_ENTRY, a->socket_path,
				just_execd ? INJECT_AT_ENTRY : 0, &res, ierr);
	if (r < 0) {
		a->pending[slot] = 0;
		snprintf(err, err_size, "%s", ierr);
		if (not_yet)
			*not_yet = res.before_entry;
		return r;
	}
	a->stop_ns[slot] = res.stop_ns;
	log_info("Injected the agent into process %d%s (thread %d stopped %.2f ms).", pid,
		 res.at_entry ? " at its entry point" : "", res.tid, res.stop_ns / 1e6);
	return 0;
}

int agents_detach(struct agents *a, pid_t pid, char *err, size_t err_size)
{
	struct proto_msg bye = { .type = PROTO_BYE };
	struct agent *g = agents_find(a, pid);
	int r;

	if (!g) {
		snprintf(err, err_size, "process %d has no connected agent", pid);
		return -ENOENT;
	}
	r = send_msg(a, g, &bye);
	agent_drop(a, g, "detached");
	if (r < 0)
		snprintf(err, err_size, "could not tell the agent: %s", strerror(-r));
	return r;
}

// SPDX-License-Identifier: MIT
/*
 * The agent end to end, with this test as the daemon: a target started with
 * libbpftime-agent.so preloaded connects to our socket; we LOAD a program a
 * tool loaded into the kernel (libbpf, its ARRAY map sent as an fd) and
 * ATTACH it to a function of the target with a USDT semaphore; every call
 * the target makes is then counted in the kernel map by the agent and the
 * semaphore reads 1; after DETACH no more counting, and the semaphore is 0.
 * And the same while programs come and go under a target that never stops
 * calling: none is freed while a call runs it.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "agent-test.h"
#include "agentstat.h"
#include "proto.h"
#include "stopper.h"

static uint8_t buf[1 << 20];

struct target {
	pid_t pid;
	FILE *in, *out;
};

/* The target, as uid when not 0. */
static void start_target(struct target *t, const char *sock, uid_t uid)
{
	int in[2], out[2];

	cr_assert_eq(pipe2(in, O_CLOEXEC), 0);
	cr_assert_eq(pipe2(out, O_CLOEXEC), 0);
	t->pid = fork();
	cr_assert_geq(t->pid, 0);
	if (!t->pid) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		if (uid && (setresgid(uid, uid, uid) < 0 || setresuid(uid, uid, uid) < 0))
			_exit(126);
		setenv("LD_PRELOAD", AGENT_LIBRARY, 1);
		setenv("BPFTIME_AGENT_SOCKET", sock, 1);
		execl(CHANNEL_TARGET, CHANNEL_TARGET, (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	t->in = fdopen(in[1], "w");
	t->out = fdopen(out[0], "r");
}

static long call_target(struct target *t, long calls, unsigned int *semaphore)
{
	char line[64];
	long done = -1;

	fprintf(t->in, "%ld\n", calls);
	fflush(t->in);
	/* (the end of the line fscanf read the offset from comes first) */
	do
		cr_assert(fgets(line, sizeof(line), t->out), "the target died");
	while (line[0] == '\n');
	cr_assert_eq(sscanf(line, "done %ld %u", &done, semaphore), 2, "target said: %s", line);
	return done;
}

static void send_msg(int conn, struct proto_msg *m, const int *fds, size_t nfds)
{
	ssize_t n = proto_msg__encode(m, buf, sizeof(buf));

	cr_assert_gt(n, 0);
	cr_assert_eq(proto_send(conn, buf, (size_t)n, fds, nfds), 0);
}

/* The agent's next message within timeout_ms: its length, -EAGAIN when none came, or -errno. */
static ssize_t recv_reply(int conn, int *fds, size_t *nfds, int timeout_ms)
{
	struct pollfd p = { .fd = conn, .events = POLLIN };

	if (poll(&p, 1, timeout_ms) == 0)
		return -EAGAIN;
	return proto_recv(conn, buf, sizeof(buf), fds, nfds);
}

/* The agent answers only when something went wrong: nothing within 300 ms is success. */
static void expect_no_error(int conn, const char *what)
{
	char err[PROTO_ERRMSG_SIZE];
	struct proto_msg m;
	int fds[PROTO_MAX_FDS];
	size_t nfds;
	ssize_t n;

	n = recv_reply(conn, fds, &nfds, 300);
	if (n == -EAGAIN)
		return;
	cr_assert_gt(n, 0, "%s: the agent hung up (%zd)", what, n);
	cr_assert_eq(proto_msg__decode(buf, (size_t)n, nfds, &m, err), 0, "%s", err);
	cr_assert_neq(m.type, PROTO_ERROR, "%s refused: %.*s", what, (int)m.error.fixed.text_len,
		      m.error.text);
}

static uint64_t array_count(int map_fd)
{
	uint32_t key = 0;
	uint64_t v = 0;

	cr_assert_eq(bpf_map_lookup_elem(map_fd, &key, &v), 0);
	return v;
}

/* The channel from the daemon's side: our socket, the target connected to it. */
struct channel {
	struct sockaddr_un addr;
	int lfd, conn;
	struct target t;
	struct at_obj *obj;
	const struct bpf_insn *insns;
	size_t insn_cnt;
	int map_fd, tool_fd;
	uint32_t map_id;
	int lock_fd; /* the map's write-back lock, as the daemon makes it */
	char exe[4096];
	unsigned long long offset, sem_offset;
	unsigned long long push_offset, push_size;
};

static void channel_open(struct channel *c, uid_t uid)
{
	struct bpf_program *prog;
	char err[PROTO_ERRMSG_SIZE];
	struct proto_msg m;
	int fds[PROTO_MAX_FDS];
	size_t nfds;
	ssize_t n;

	c->obj = at_obj_load("bench");
	prog = bpf_object__find_program_by_name(c->obj->obj, "array_count");
	c->insns = bpf_program__insns(prog);
	c->insn_cnt = bpf_program__insn_cnt(prog);
	c->map_fd = at_map_fd(c->obj, "arr");
	{
		struct bpf_map_info info = { 0 };
		__u32 len = sizeof(info);

		cr_assert_eq(bpf_obj_get_info_by_fd(c->map_fd, &info, &len), 0);
		c->map_id = info.id;
	}
	c->lock_fd = at_map_lock(c->map_id);
	/* The fd number the program's lddw names, as a tool's program does. */
	c->tool_fd = -1;
	for (size_t i = 0; i + 1 < c->insn_cnt; i++)
		if (c->insns[i].code == (BPF_LD | BPF_IMM | BPF_DW) &&
		    c->insns[i].src_reg == BPF_PSEUDO_MAP_FD)
			c->tool_fd = c->insns[i].imm;
	cr_assert_geq(c->tool_fd, 0);

	c->addr = (struct sockaddr_un){ .sun_family = AF_UNIX };
	snprintf(c->addr.sun_path, sizeof(c->addr.sun_path), "/tmp/bpftime-channel-%d.sock",
		 getpid());
	unlink(c->addr.sun_path);
	c->lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	cr_assert_eq(bind(c->lfd, (struct sockaddr *)&c->addr, sizeof(c->addr)), 0);
	cr_assert_eq(listen(c->lfd, 1), 0);
	/* Any user may connect; the agent checks that we are root. */
	cr_assert_eq(chmod(c->addr.sun_path, 0666), 0);
	start_target(&c->t, c->addr.sun_path, uid);
	cr_assert_eq(fscanf(c->t.out, "offset %llu %llu %4095s", &c->offset, &c->sem_offset,
			    c->exe),
		     3);
	cr_assert_eq(fscanf(c->t.out, " push %llu %llu", &c->push_offset, &c->push_size), 2);
	c->conn = accept(c->lfd, NULL, NULL);
	cr_assert_geq(c->conn, 0);
	n = proto_recv(c->conn, buf, sizeof(buf), fds, &nfds);
	cr_assert_gt(n, 0);
	cr_assert_eq(proto_msg__decode(buf, (size_t)n, nfds, &m, err), 0, "%s", err);
	cr_assert_eq(m.type, PROTO_HELLO);
	cr_expect_eq(m.hello.pid, (uint32_t)c->t.pid);
}

static void channel_close(struct channel *c)
{
	int status;

	fclose(c->t.in);
	cr_assert_eq(waitpid(c->t.pid, &status, 0), c->t.pid);
	cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the target ended with status 0x%x",
		  status);
	fclose(c->t.out);
	close(c->conn);
	close(c->lfd);
	unlink(c->addr.sun_path);
	at_obj_free(c->obj);
}

/* LOAD: the program and its map, sent as an fd, with the map's lock. */
static void send_load(struct channel *c, uint32_t seq, uint32_t prog)
{
	struct proto_map map = { .id = c->map_id, .type = BPF_MAP_TYPE_ARRAY, .key_size = 4,
				 .value_size = 8, .max_entries = 1, .tool_fd = c->tool_fd,
				 .fd_index = 0, .lock_fd = 2 };
	struct proto_msg m = { .type = PROTO_LOAD, .seq = seq, .nfds = 2 };
	int fds[2] = { c->map_fd, c->lock_fd };

	m.load.fixed = (struct proto_load_fixed){
		.prog = prog, .prog_type = BPF_PROG_TYPE_KPROBE, .flags = PROTO_LOAD_JIT,
		.name = "array_count", .map_cnt = 1, .map_entry_len = sizeof(map),
		.insn_cnt = (uint32_t)c->insn_cnt, .ringbuf_prog_fd = PROTO_NO_FD,
		.perf_prog_fd = PROTO_NO_FD, .printk_prog_fd = PROTO_NO_FD,
		.cgroup_prog_fd = PROTO_NO_FD,
	};
	m.load.maps = (const uint8_t *)&map;
	m.load.insns = (const uint8_t *)c->insns;
	send_msg(c->conn, &m, fds, 2);
}

/*
 * ATTACH: the target's hk_lea (or hk_push, with its bounds), by file and
 * offset, with its original bytes.
 */
static void send_attach_to(struct channel *c, uint32_t seq, uint32_t attach, uint32_t prog,
			   bool push)
{
	struct proto_msg m = { .type = PROTO_ATTACH, .seq = seq };
	unsigned long long offset = push ? c->push_offset : c->offset;
	struct stat st;
	int f = open(c->exe, O_RDONLY);

	cr_assert_eq(fstat(f, &st), 0);
	m.attach.fixed = (struct proto_attach_fixed){
		.attach = attach, .prog = prog, .dev = st.st_dev, .ino = st.st_ino,
		.offset = offset, .kind = PROTO_PROBE_ENTRY,
		.path_len = (uint32_t)strlen(c->exe), .orig_len = 16,
		.ref_ctr_offset = push ? 0 : c->sem_offset,
		.func_offset = push ? offset : 0, .func_size = push ? c->push_size : 0,
	};
	cr_assert_eq(pread(f, m.attach.fixed.orig, 16, (off_t)offset), 16);
	close(f);
	m.attach.path = c->exe;
	send_msg(c->conn, &m, NULL, 0);
}

static void send_attach(struct channel *c, uint32_t seq, uint32_t attach, uint32_t prog)
{
	send_attach_to(c, seq, attach, prog, false);
}

static void send_id(struct channel *c, enum proto_type type, uint32_t seq, uint32_t id)
{
	struct proto_msg m = { .type = type, .seq = seq, .id = { .id = id } };

	send_msg(c->conn, &m, NULL, 0);
}

/* STATS: the agent's status page, made as the daemon makes it, in dir. */
static struct shm_agentstat *send_stat_page(struct channel *c, const char *dir)
{
	struct proto_msg m = { .type = PROTO_STATS, .seq = 1, .nfds = 1 };
	struct shm_agentstat *page;
	struct stat st;
	char path[128];
	int fd;

	cr_assert(mkdir(dir, 0755) == 0 || errno == EEXIST);
	fd = shm_agentstat__create(dir, c->t.pid, 65534, 65534);
	cr_assert_geq(fd, 0, "cannot make the status page: %s", strerror(-fd));
	page = shm_agentstat__map(fd);
	cr_assert_not_null(page, "cannot map the status page: %s", strerror(errno));
	snprintf(path, sizeof(path), "%s/%d", dir, c->t.pid);
	cr_assert_eq(stat(path, &st), 0);
	cr_expect_eq(st.st_mode & 07777, 0600, "status page mode %o", st.st_mode & 07777);
	cr_expect_eq(st.st_uid, 65534, "status page owned by %u", st.st_uid);
	m.stats = (struct proto_stats_fixed){ .size = sizeof(*page), .version = 1 };
	send_msg(c->conn, &m, &fd, 1);
	close(fd);
	return page;
}

static uint32_t page_state(const struct shm_agentstat *page)
{
	return __atomic_load_n(&page->state, __ATOMIC_RELAXED);
}

Test(agent_channel, load_attach_count_detach, .timeout = 60)
{
	struct shm_agentstat_reading r;
	struct shm_agentstat *page;
	char dir[64];
	struct channel c;
	unsigned int sem;

	channel_open(&c, 0);
	snprintf(dir, sizeof(dir), "/tmp/bpftime-channel-%d.stat", getpid());
	page = send_stat_page(&c, dir);
	expect_no_error(c.conn, "STATS");
	send_load(&c, 1, 1);
	expect_no_error(c.conn, "LOAD");
	send_attach(&c, 2, 7, 1);
	expect_no_error(c.conn, "ATTACH");
	cr_expect_eq(page->probes, 1);
	cr_expect_eq(page_state(page), SHM_AGENT_SERVING);

	cr_assert_eq(call_target(&c.t, 100000, &sem), 100000);
	cr_expect_eq(array_count(c.map_fd), 100000, "the agent counted %llu of 100000 calls",
		     (unsigned long long)array_count(c.map_fd));
	cr_expect_eq(sem, 1, "USDT semaphore while attached: %u", sem);
	/* What the daemon reads without asking: every call, and what they cost. */
	shm_agentstat__read(page, 7, &r);
	cr_expect_eq(r.hits, 100000, "status page: %llu hits of attachment 7",
		     (unsigned long long)r.hits);
	cr_expect_gt(r.ns, 0);
	cr_expect_eq(r.errors, 0);
	shm_agentstat__read(page, 0, &r);
	cr_expect_eq(r.hits, 100000, "status page: %llu hits in all", (unsigned long long)r.hits);

	/* DETACH: the calls go uncounted again. */
	send_id(&c, PROTO_DETACH, 3, 7);
	expect_no_error(c.conn, "DETACH");
	cr_assert_eq(call_target(&c.t, 5000, &sem), 5000);
	cr_expect_eq(array_count(c.map_fd), 100000);
	cr_expect_eq(sem, 0, "USDT semaphore after detach: %u", sem);
	cr_expect_eq(page->probes, 0);
	cr_expect_eq(page_state(page), SHM_AGENT_CONNECTED);
	shm_agentstat__read(page, 7, &r);
	cr_expect_eq(r.hits, 0, "a detached attachment still listed");

	/* BYE with a probe hooked: every probe out, the page says dormant. */
	send_attach(&c, 5, 8, 1);
	expect_no_error(c.conn, "ATTACH");
	cr_expect_eq(page_state(page), SHM_AGENT_SERVING);
	send_id(&c, PROTO_BYE, 4, 0);
	cr_assert_eq(call_target(&c.t, 10, &sem), 10, "the target runs on after BYE");
	for (int i = 0; i < 500 && page_state(page) != SHM_AGENT_DORMANT; i++)
		usleep(10000);
	cr_expect_eq(page_state(page), SHM_AGENT_DORMANT);
	cr_expect_eq(page->probes, 0);
	channel_close(&c);
	shm_agentstat__unmap(page);
	cr_expect_eq(shm_agentstat__unlink(dir, c.t.pid), 0);
	rmdir(dir);
}

/*
 * A target of another user: the map's lock the daemon made comes as an fd,
 * so its agent shares it with every other agent of the map, whoever runs
 * them.
 */
Test(agent_channel, another_users_target_shares_the_maps_lock, .timeout = 60)
{
	struct channel c;
	unsigned int sem;

	channel_open(&c, 65534);
	send_load(&c, 1, 1);
	expect_no_error(c.conn, "LOAD");
	send_attach(&c, 2, 7, 1);
	expect_no_error(c.conn, "ATTACH");
	cr_assert_eq(call_target(&c.t, 1000, &sem), 1000);
	cr_expect_eq(array_count(c.map_fd), 1000, "the agent counted %llu of 1000 calls",
		     (unsigned long long)array_count(c.map_fd));
	send_id(&c, PROTO_BYE, 3, 0);
	channel_close(&c);
}

/* A status page that is not one is refused with the reason; the agent serves on. */
Test(agent_channel, refuses_a_bad_status_page, .timeout = 60)
{
	struct proto_msg m = { .type = PROTO_STATS, .seq = 1, .nfds = 1 };
	char err[PROTO_ERRMSG_SIZE];
	struct proto_msg reply;
	int fds[PROTO_MAX_FDS];
	struct channel c;
	unsigned int sem;
	size_t nfds;
	ssize_t n;
	int fd;

	channel_open(&c, 0);
	fd = open("/dev/null", O_RDWR);
	m.stats = (struct proto_stats_fixed){ .size = sizeof(struct shm_agentstat), .version = 1 };
	send_msg(c.conn, &m, &fd, 1);
	close(fd);
	n = recv_reply(c.conn, fds, &nfds, 5000);
	cr_assert_gt(n, 0);
	cr_assert_eq(proto_msg__decode(buf, (size_t)n, nfds, &reply, err), 0, "%s", err);
	cr_assert_eq(reply.type, PROTO_ERROR);
	cr_expect_eq(reply.error.fixed.ref_type, PROTO_STATS);
	cr_expect(memmem(reply.error.text, reply.error.fixed.text_len, "status page", 11));
	send_load(&c, 1, 1);
	expect_no_error(c.conn, "LOAD");
	send_attach(&c, 2, 7, 1);
	expect_no_error(c.conn, "ATTACH");
	cr_assert_eq(call_target(&c.t, 1000, &sem), 1000);
	cr_expect_eq(array_count(c.map_fd), 1000);
	send_id(&c, PROTO_BYE, 4, 0);
	channel_close(&c);
}

/* The agent's next message, of type `type` (within 5 s). */
static struct proto_msg expect_msg(int conn, enum proto_type type)
{
	char err[PROTO_ERRMSG_SIZE];
	struct proto_msg m;
	int fds[PROTO_MAX_FDS];
	size_t nfds;
	ssize_t n;

	n = recv_reply(conn, fds, &nfds, 5000);
	cr_assert_gt(n, 0, "no message from the agent (%zd)", n);
	cr_assert_eq(proto_msg__decode(buf, (size_t)n, nfds, &m, err), 0, "%s", err);
	cr_assert_eq(m.type, type, "the agent sent type %d, not %d%s%.*s", m.type, type,
		     m.type == PROTO_ERROR ? ": " : "",
		     m.type == PROTO_ERROR ? (int)m.error.fixed.text_len : 0,
		     m.type == PROTO_ERROR ? m.error.text : "");
	return m;
}

static void send_stopped(struct channel *c, uint32_t attach, int err)
{
	struct proto_msg m = { .type = PROTO_STOPPED };

	m.stopped = (struct proto_stopped_fixed){ .attach = attach, .err = err };
	send_msg(c->conn, &m, NULL, 0);
}

/*
 * hk_push: the patch goes after the push, over several instructions. The
 * agent asks for its other threads to be stopped, as the daemon does with
 * ptrace; then it patches, says DONE, and every call counts. When the
 * threads cannot be stopped, it refuses the ATTACH and says why.
 */
Test(agent_channel, push_first_with_threads_stopped, .timeout = 60)
{
	char err[256];
	struct stopped held;
	struct proto_msg m;
	struct channel c;
	unsigned int sem;

	channel_open(&c, 0);
	send_load(&c, 1, 1);
	expect_msg(c.conn, PROTO_DONE);
	send_attach_to(&c, 2, 7, 1, true);
	m = expect_msg(c.conn, PROTO_STOP);
	cr_assert_eq(m.stop.attach, 7);
	cr_expect_geq(m.stop.hi - m.stop.lo, 5, "a patch of %llu bytes",
		      (unsigned long long)(m.stop.hi - m.stop.lo));
	cr_assert_eq(stopper_stop(c.t.pid, m.stop.tid, m.stop.lo, m.stop.hi, &held, err,
				  sizeof(err)),
		     0, "%s", err);
	cr_expect_eq(held.n, 1, "%zu threads stopped (the target's main thread)", held.n);
	send_stopped(&c, 7, 0);
	m = expect_msg(c.conn, PROTO_DONE);
	stopper_resume(&held);
	cr_expect_eq(m.done.ref_id, 7);

	cr_assert_eq(call_target(&c.t, 100000, &sem), 100000);
	cr_expect_eq(array_count(c.map_fd), 100000, "the agent counted %llu of 100000 calls",
		     (unsigned long long)array_count(c.map_fd));

	/* Out again (the jump stays, doing nothing): no more counting. */
	send_id(&c, PROTO_DETACH, 3, 7);
	expect_no_error(c.conn, "DETACH");
	cr_assert_eq(call_target(&c.t, 5000, &sem), 5000);
	cr_expect_eq(array_count(c.map_fd), 100000);

	/* The daemon could not stop them: refused, with the reason. */
	send_attach_to(&c, 4, 8, 1, true);
	expect_msg(c.conn, PROTO_STOP);
	send_stopped(&c, 8, EAGAIN);
	m = expect_msg(c.conn, PROTO_ERROR);
	cr_expect_eq(m.error.fixed.ref_id, 8);
	cr_expect(memmem(m.error.text, m.error.fixed.text_len, "could not stop", 14),
		  "the refusal says: %.*s", (int)m.error.fixed.text_len, m.error.text);
	cr_assert_eq(call_target(&c.t, 5000, &sem), 5000);
	cr_expect_eq(array_count(c.map_fd), 100000, "%llu after the refusal",
		     (unsigned long long)array_count(c.map_fd));

	send_id(&c, PROTO_BYE, 5, 0);
	channel_close(&c);
}

static bool target_done(struct target *t)
{
	struct pollfd p = { .fd = fileno(t->out), .events = POLLIN };

	return poll(&p, 1, 0) == 1;
}

/*
 * Programs attached, detached and unloaded, then the daemon gone, all while
 * the target calls the site as fast as it can: a program is freed only once
 * no call runs it any more, so the target finishes every call and exits 0.
 */
Test(agent_channel, churn_while_calling, .timeout = 120)
{
	const long calls = 500000000;
	uint32_t seq = 1;
	struct channel c;
	unsigned int sem;
	uint64_t before;
	int fds[PROTO_MAX_FDS];
	char line[64];
	size_t nfds;
	ssize_t n;
	int cycles = 0;
	long done;

	channel_open(&c, 0);
	before = array_count(c.map_fd);
	fprintf(c.t.in, "%ld\n", calls);
	fflush(c.t.in);
	while (cycles < 400 && !target_done(&c.t)) {
		uint32_t prog = (uint32_t)cycles + 1;

		send_load(&c, seq++, prog);
		expect_no_error(c.conn, "LOAD");
		send_attach(&c, seq++, prog, prog);
		expect_no_error(c.conn, "ATTACH");
		usleep(500);
		send_id(&c, PROTO_DETACH, seq++, prog);
		send_id(&c, PROTO_UNLOAD, seq++, prog);
		cycles++;
	}
	cr_expect_gt(array_count(c.map_fd), before, "no call was counted in %d cycles", cycles);
	/* The last program stays attached and the daemon goes away. */
	send_load(&c, seq++, 1000);
	expect_no_error(c.conn, "LOAD");
	send_attach(&c, seq++, 1000, 1000);
	expect_no_error(c.conn, "ATTACH");
	send_id(&c, PROTO_BYE, seq++, 0);
	/* Dormant once it hangs up. */
	do
		n = proto_recv(c.conn, buf, sizeof(buf), fds, &nfds);
	while (n > 0 || n == -EAGAIN);
	do
		cr_assert(fgets(line, sizeof(line), c.t.out), "the target died after %d cycles",
			  cycles);
	while (line[0] == '\n');
	cr_assert_eq(sscanf(line, "done %ld %u", &done, &sem), 2, "target said: %s", line);
	cr_expect_eq(done, calls);
	cr_assert_eq(call_target(&c.t, 1000, &sem), 1000, "the target runs on after BYE");
	cr_expect_eq(sem, 0, "USDT semaphore once dormant: %u", sem);
	channel_close(&c);
}

int main(int argc, char *argv[])
{
	return at_main(argc, argv);
}

// SPDX-License-Identifier: MIT
/*
 * The agent end to end, with this test as the daemon: a target started with
 * libbpftime-agent.so preloaded connects to our socket; we LOAD a program a
 * tool loaded into the kernel (libbpf, its ARRAY map sent as an fd) and
 * ATTACH it to a function of the target with a USDT semaphore; every call
 * the target makes is then counted in the kernel map by the agent and the
 * semaphore reads 1; after DETACH no more counting, and the semaphore is 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "agent-test.h"
#include "proto.h"

static uint8_t buf[1 << 20];

struct target {
	pid_t pid;
	FILE *in, *out;
};

static void start_target(struct target *t, const char *sock)
{
	int in[2], out[2];

	cr_assert_eq(pipe2(in, O_CLOEXEC), 0);
	cr_assert_eq(pipe2(out, O_CLOEXEC), 0);
	t->pid = fork();
	cr_assert_geq(t->pid, 0);
	if (!t->pid) {
		dup2(in[0], 0);
		dup2(out[1], 1);
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

/* The agent answers only when something went wrong: nothing within 300 ms is success. */
static void expect_no_error(int conn, const char *what)
{
	char err[PROTO_ERRMSG_SIZE];
	struct timeval tv = { .tv_usec = 300000 };
	struct proto_msg m;
	int fds[PROTO_MAX_FDS];
	size_t nfds;
	ssize_t n;

	setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	n = proto_recv(conn, buf, sizeof(buf), fds, &nfds);
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

Test(agent_channel, load_attach_count_detach, .timeout = 60)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct at_obj *o = at_obj_load("bench");
	struct bpf_program *prog = bpf_object__find_program_by_name(o->obj, "array_count");
	const struct bpf_insn *insns = bpf_program__insns(prog);
	size_t cnt = bpf_program__insn_cnt(prog);
	int map_fd = at_map_fd(o, "arr"), lfd, conn, tool_fd = -1;
	char exe[4096], err[PROTO_ERRMSG_SIZE];
	unsigned long long offset, sem_offset;
	unsigned int sem;
	struct proto_map map;
	struct proto_msg m;
	struct target t;
	struct stat st;
	size_t nfds;
	int fds[PROTO_MAX_FDS];
	ssize_t n;

	/* The fd number the program's lddw names, as a tool's program does. */
	for (size_t i = 0; i + 1 < cnt; i++)
		if (insns[i].code == (BPF_LD | BPF_IMM | BPF_DW) &&
		    insns[i].src_reg == BPF_PSEUDO_MAP_FD)
			tool_fd = insns[i].imm;
	cr_assert_geq(tool_fd, 0);

	snprintf(addr.sun_path, sizeof(addr.sun_path), "/tmp/bpftime-channel-%d.sock", getpid());
	unlink(addr.sun_path);
	lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	cr_assert_eq(bind(lfd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	cr_assert_eq(listen(lfd, 1), 0);
	start_target(&t, addr.sun_path);
	cr_assert_eq(fscanf(t.out, "offset %llu %llu %4095s", &offset, &sem_offset, exe), 3);
	conn = accept(lfd, NULL, NULL);
	cr_assert_geq(conn, 0);
	n = proto_recv(conn, buf, sizeof(buf), fds, &nfds);
	cr_assert_gt(n, 0);
	cr_assert_eq(proto_msg__decode(buf, (size_t)n, nfds, &m, err), 0, "%s", err);
	cr_assert_eq(m.type, PROTO_HELLO);
	cr_expect_eq(m.hello.pid, (uint32_t)t.pid);

	/* LOAD: the program and its map, sent as an fd. */
	map = (struct proto_map){ .id = 0, .type = BPF_MAP_TYPE_ARRAY, .key_size = 4,
				  .value_size = 8, .max_entries = 1, .tool_fd = tool_fd,
				  .fd_index = 0 };
	m = (struct proto_msg){ .type = PROTO_LOAD, .seq = 1, .nfds = 1 };
	m.load.fixed = (struct proto_load_fixed){
		.prog = 1, .prog_type = BPF_PROG_TYPE_KPROBE, .flags = PROTO_LOAD_JIT,
		.name = "array_count", .map_cnt = 1, .map_entry_len = sizeof(map),
		.insn_cnt = (uint32_t)cnt, .ringbuf_prog_fd = PROTO_NO_FD,
		.perf_prog_fd = PROTO_NO_FD, .printk_prog_fd = PROTO_NO_FD,
	};
	m.load.maps = (const uint8_t *)&map;
	m.load.insns = (const uint8_t *)insns;
	send_msg(conn, &m, &map_fd, 1);
	expect_no_error(conn, "LOAD");

	/* ATTACH: the target's hk_lea, by file and offset, with its original bytes. */
	cr_assert_eq(stat(exe, &st), 0);
	m = (struct proto_msg){ .type = PROTO_ATTACH, .seq = 2 };
	m.attach.fixed = (struct proto_attach_fixed){
		.attach = 7, .prog = 1, .dev = st.st_dev, .ino = st.st_ino, .offset = offset,
		.kind = PROTO_PROBE_ENTRY, .path_len = (uint32_t)strlen(exe), .orig_len = 16,
		.ref_ctr_offset = sem_offset,
	};
	{
		int f = open(exe, O_RDONLY);

		cr_assert_eq(pread(f, m.attach.fixed.orig, 16, (off_t)offset), 16);
		close(f);
	}
	m.attach.path = exe;
	send_msg(conn, &m, NULL, 0);
	expect_no_error(conn, "ATTACH");

	cr_assert_eq(call_target(&t, 100000, &sem), 100000);
	cr_expect_eq(array_count(map_fd), 100000, "the agent counted %llu of 100000 calls",
		     (unsigned long long)array_count(map_fd));
	cr_expect_eq(sem, 1, "USDT semaphore while attached: %u", sem);

	/* DETACH: the calls go uncounted again. */
	m = (struct proto_msg){ .type = PROTO_DETACH, .seq = 3, .id = { .id = 7 } };
	send_msg(conn, &m, NULL, 0);
	expect_no_error(conn, "DETACH");
	cr_assert_eq(call_target(&t, 5000, &sem), 5000);
	cr_expect_eq(array_count(map_fd), 100000);
	cr_expect_eq(sem, 0, "USDT semaphore after detach: %u", sem);

	m = (struct proto_msg){ .type = PROTO_BYE, .seq = 4 };
	send_msg(conn, &m, NULL, 0);
	cr_assert_eq(call_target(&t, 10, &sem), 10, "the target runs on after BYE");
	fclose(t.in);
	waitpid(t.pid, NULL, 0);
	close(conn);
	close(lfd);
	unlink(addr.sun_path);
	at_obj_free(o);
}

int main(int argc, char *argv[])
{
	return at_main(argc, argv);
}

// SPDX-License-Identifier: MIT
/*
 * The wire format: every type round-trips, every malformed field is refused
 * with a message naming it, newer and longer messages are read as far as we
 * know them, and fds travel over a real SOCK_SEQPACKET socket.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "proto.h"

static uint8_t buf[1 << 16];

static const uint64_t insns[] = { 0x00000000000000b7ULL, 0x0000000000000095ULL };
static const struct proto_map maps[2] = {
	{ .id = 7, .type = 6, .key_size = 4, .value_size = 8, .max_entries = 1, .tool_fd = 5,
	  .fd_index = 0 },
	{ .id = 8, .type = 1, .key_size = 8, .value_size = 8, .max_entries = 4096, .tool_fd = 6,
	  .fd_index = 1 },
};
static const char path[] = "/usr/bin/target";

static struct proto_msg load_msg(void)
{
	struct proto_msg m = { .type = PROTO_LOAD, .seq = 9, .nfds = 2 };

	m.load.fixed = (struct proto_load_fixed){
		.prog = 1, .kernel_id = 99, .prog_type = 2, .name = "count", .map_cnt = 2,
		.map_entry_len = sizeof(struct proto_map), .insn_cnt = 2,
		.ringbuf_prog_fd = PROTO_NO_FD, .perf_prog_fd = PROTO_NO_FD,
		.printk_prog_fd = PROTO_NO_FD, .cgroup_prog_fd = PROTO_NO_FD,
	};
	m.load.maps = (const uint8_t *)maps;
	m.load.insns = (const uint8_t *)insns;
	return m;
}

static struct proto_msg attach_msg(void)
{
	struct proto_msg m = { .type = PROTO_ATTACH, .seq = 3 };

	m.attach.fixed = (struct proto_attach_fixed){
		.attach = 4, .prog = 1, .dev = 0xfe00, .ino = 77, .offset = 0x1184,
		.func_offset = 0x1180, .func_size = 16, .kind = PROTO_PROBE_ENTRY,
		.path_len = sizeof(path) - 1, .orig_len = 5,
	};
	m.attach.path = path;
	return m;
}

static size_t encode(const struct proto_msg *m)
{
	ssize_t n = proto_msg__encode(m, buf, sizeof(buf));

	cr_assert_gt(n, 0, "encode: %zd", n);
	return (size_t)n;
}

/* Decoding must fail with a message that contains `why`. */
static void refused(size_t len, size_t nfds, const char *why)
{
	char err[PROTO_ERRMSG_SIZE] = "";
	struct proto_msg m;

	cr_expect_eq(proto_msg__decode(buf, len, nfds, &m, err), -EBADMSG, "accepted: want '%s'",
		     why);
	cr_expect(strstr(err, why), "message '%s' does not say '%s'", err, why);
}

static struct proto_hdr *hdr(void)
{
	return (struct proto_hdr *)buf;
}

Test(proto, every_type_round_trips, .timeout = 10)
{
	char err[PROTO_ERRMSG_SIZE];
	struct proto_msg in, out;
	struct proto_map map;
	size_t n;

	in = load_msg();
	n = encode(&in);
	cr_assert_eq(proto_msg__decode(buf, n, 2, &out, err), 0, "%s", err);
	cr_expect_eq(out.type, PROTO_LOAD);
	cr_expect_eq(out.seq, 9);
	cr_expect_str_eq(out.load.fixed.name, "count");
	cr_expect_eq(out.load.fixed.insn_cnt, 2);
	cr_expect(!memcmp(out.load.insns, insns, sizeof(insns)));
	proto_load__map(&out, 1, &map);
	cr_expect_eq(map.id, 8);
	cr_expect_eq(map.max_entries, 4096);

	in = attach_msg();
	n = encode(&in);
	cr_assert_eq(proto_msg__decode(buf, n, 0, &out, err), 0, "%s", err);
	cr_expect_eq(out.attach.fixed.offset, 0x1184);
	cr_expect(!memcmp(out.attach.path, path, sizeof(path) - 1));

	for (int t = PROTO_HELLO; t < PROTO__TYPE_MAX; t++) {
		if (t == PROTO_LOAD || t == PROTO_ATTACH)
			continue;
		in = (struct proto_msg){ .type = t, .seq = (uint32_t)t };
		if (t == PROTO_HELLO)
			strcpy(in.hello.version, "0.1.0");
		if (t == PROTO_ERROR) {
			in.error.fixed = (struct proto_error_fixed){ .err = EPERM,
								     .ref_type = PROTO_LOAD,
								     .text_len = 3 };
			in.error.text = "why";
		}
		if (t == PROTO_DONE)
			in.done = (struct proto_done_fixed){ .ref_type = PROTO_ATTACH, .ref_id = 4 };
		if (t == PROTO_STOP)
			in.stop = (struct proto_stop_fixed){ .attach = 4, .tid = 9, .lo = 0x1001,
							     .hi = 0x1006 };
		if (t == PROTO_STATS) {
			in.nfds = 1;
			in.stats = (struct proto_stats_fixed){ .size = 4096, .version = 1 };
		}
		n = encode(&in);
		cr_expect_eq(proto_msg__decode(buf, n, in.nfds, &out, err), 0, "type %d: %s", t,
			     err);
		cr_expect_eq(out.type, t);
		if (t == PROTO_STATS)
			cr_expect_eq(out.stats.size, 4096);
	}
}

Test(proto, stats_carries_exactly_its_page, .timeout = 10)
{
	struct proto_msg m = { .type = PROTO_STATS, .seq = 3, .nfds = 1 };
	size_t n = encode(&m);

	hdr()->nfds = 0;
	refused(n, 0, "STATS carries its page's fd, 0 fds came");
	hdr()->nfds = 2;
	refused(n, 2, "STATS carries its page's fd, 2 fds came");
}

Test(proto, header_checks, .timeout = 10)
{
	struct proto_msg m = attach_msg();
	size_t n = encode(&m);

	refused(10, 0, "shorter than its");
	hdr()->magic = 0x12345678;
	refused(n, 0, "bad magic");
	hdr()->magic = PROTO_MAGIC;
	hdr()->version = 2;
	refused(n, 0, "version 2");
	hdr()->version = PROTO_VERSION;
	refused(n - 1, 0, "header says");
	hdr()->type = 99;
	refused(n, 0, "unknown message type 99");
	hdr()->type = PROTO_ATTACH;
	refused(n, 1, "header says 0 fds");
	hdr()->fixed_len = 8;
	refused(n, 0, "fixed part of 8 bytes");
	hdr()->fixed_len = 0xffff;
	refused(n, 0, "fixed part of 65535 bytes");
}

Test(proto, load_checks, .timeout = 10)
{
	struct proto_msg m = load_msg();
	struct proto_load_fixed *f = (void *)(buf + sizeof(struct proto_hdr));
	struct proto_map *map;
	size_t n = encode(&m);

	map = (void *)(buf + sizeof(struct proto_hdr) + sizeof(*f));
	refused(n, 1, "header says 2 fds");
	f->map_cnt = 65;
	refused(n, 2, "65 maps");
	f->map_cnt = 2;
	f->map_entry_len = 4;
	refused(n, 2, "map entries of 4 bytes");
	f->map_entry_len = sizeof(struct proto_map);
	f->insn_cnt = 0;
	refused(n, 2, "0 instructions");
	f->insn_cnt = 1000001;
	refused(n, 2, "1000001 instructions");
	f->insn_cnt = 3;
	refused(n, 2, "need");
	f->insn_cnt = 2;
	map[1].fd_index = 2;
	refused(n, 2, "map 1 names fd 2");
	map[1].fd_index = 1;
	map[0].tool_fd = -1;
	refused(n, 2, "tool fd -1");
	map[0].tool_fd = 5;
	map[0].delta_fd = 3;
	refused(n, 2, "delta fd 2");
	map[0].delta_fd = 0;
	f->perf_prog_fd = 7;
	refused(n, 2, "helper program");
	f->perf_prog_fd = PROTO_NO_FD;
	f->cgroup_prog_fd = 2;
	refused(n, 2, "helper program");
	f->cgroup_prog_fd = PROTO_NO_FD;
	f->flags = 0x80;
	refused(n, 2, "unknown flags");
	f->flags = 0;
	memset(f->name, 'x', sizeof(f->name));
	refused(n, 2, "name is not NUL-terminated");
}

Test(proto, attach_checks, .timeout = 10)
{
	struct proto_msg m = attach_msg();
	struct proto_attach_fixed *f = (void *)(buf + sizeof(struct proto_hdr));
	size_t n = encode(&m);

	f->kind = 2;
	refused(n, 0, "unknown probe kind 2");
	f->kind = PROTO_PROBE_ENTRY;
	f->path_len = 0;
	refused(n, 0, "path of 0 bytes");
	f->path_len = 5000;
	refused(n, 0, "path of 5000 bytes");
	f->path_len = sizeof(path) - 1;
	buf[n - 3] = 0;
	refused(n, 0, "NUL byte");
	buf[n - 3] = 'e';
	f->orig_len = 33;
	refused(n, 0, "33 original bytes");
	f->orig_len = 5;
	f->offset = 0x2000;
	refused(n, 0, "outside its function");
	f->offset = 0x1184;
	f->prev_end = 0x1190;
	refused(n, 0, "overlap");
}

Test(proto, error_checks, .timeout = 10)
{
	struct proto_msg m = { .type = PROTO_ERROR };
	struct proto_error_fixed *f = (void *)(buf + sizeof(struct proto_hdr));
	size_t n;

	m.error.fixed = (struct proto_error_fixed){ .err = EPERM, .ref_type = PROTO_LOAD,
						    .text_len = 3 };
	m.error.text = "why";
	n = encode(&m);
	f->err = -1;
	refused(n, 0, "not a positive errno");
	f->err = EPERM;
	f->ref_type = 0;
	refused(n, 0, "unknown message type 0");
	f->ref_type = PROTO_LOAD;
	f->text_len = 4;
	refused(n, 0, "text of 4 bytes");
}

Test(proto, done_checks, .timeout = 10)
{
	struct proto_msg m = { .type = PROTO_DONE };
	struct proto_done_fixed *f = (void *)(buf + sizeof(struct proto_hdr));
	size_t n;

	m.done = (struct proto_done_fixed){ .ref_type = PROTO_LOAD, .ref_id = 7 };
	n = encode(&m);
	f->ref_type = PROTO_DETACH;
	refused(n, 0, "not LOAD or ATTACH");
}

Test(proto, stop_checks, .timeout = 10)
{
	struct proto_msg m = { .type = PROTO_STOP };
	struct proto_stop_fixed *f = (void *)(buf + sizeof(struct proto_hdr));
	struct proto_stopped_fixed *g = (void *)(buf + sizeof(struct proto_hdr));
	size_t n;

	m.stop = (struct proto_stop_fixed){ .attach = 3, .tid = 77, .lo = 0x4001, .hi = 0x4009 };
	n = encode(&m);
	f->tid = 0;
	refused(n, 0, "STOP: thread 0");
	f->tid = 77;
	f->hi = f->lo;
	refused(n, 0, "range");
	f->hi = f->lo + 65;
	refused(n, 0, "range");
	m = (struct proto_msg){ .type = PROTO_STOPPED };
	m.stopped = (struct proto_stopped_fixed){ .attach = 3, .err = 0 };
	n = encode(&m);
	g->err = -1;
	refused(n, 0, "not 0 or a positive errno");
}

Test(proto, newer_peers_are_read_as_far_as_known, .timeout = 10)
{
	char err[PROTO_ERRMSG_SIZE];
	struct proto_msg m = attach_msg(), out;
	struct proto_attach_fixed f = m.attach.fixed;
	struct proto_hdr h;
	size_t fixed = sizeof(f) + 16, n;

	/* A version-1 peer of the future: 16 more bytes of fixed part, and a trailing section. */
	h = (struct proto_hdr){ .magic = PROTO_MAGIC, .version = PROTO_VERSION,
				.type = PROTO_ATTACH, .fixed_len = (uint16_t)fixed };
	n = sizeof(h) + fixed + f.path_len + 8;
	h.len = (uint32_t)n;
	memset(buf, 0xab, sizeof(buf));
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), &f, sizeof(f));
	memcpy(buf + sizeof(h) + fixed, path, f.path_len);
	cr_assert_eq(proto_msg__decode(buf, n, 0, &out, err), 0, "%s", err);
	cr_expect_eq(out.attach.fixed.offset, 0x1184);
	cr_expect(!memcmp(out.attach.path, path, f.path_len));
}

Test(proto, fds_over_a_socket, .timeout = 10)
{
	struct proto_msg m = load_msg(), out;
	char err[PROTO_ERRMSG_SIZE];
	int sv[2], fds[2], got[PROTO_MAX_FDS];
	size_t n = encode(&m), nfds;
	ssize_t r;

	cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	fds[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
	fds[1] = open("/dev/zero", O_RDONLY | O_CLOEXEC);
	cr_assert_eq(proto_send(sv[0], buf, n, fds, 2), 0);
	memset(buf, 0, sizeof(buf));
	r = proto_recv(sv[1], buf, sizeof(buf), got, &nfds);
	cr_assert_eq(r, (ssize_t)n);
	cr_assert_eq(nfds, 2);
	cr_expect_eq(proto_msg__decode(buf, (size_t)r, nfds, &out, err), 0, "%s", err);
	cr_expect_geq(got[0], 0);
	cr_expect_eq(fcntl(got[1], F_GETFD) & FD_CLOEXEC, FD_CLOEXEC, "received fds are cloexec");
	close(got[0]);
	close(got[1]);

	/* A message cut by a small buffer is refused whole and its fds closed. */
	cr_assert_eq(proto_send(sv[0], buf, n, fds, 2), 0);
	r = proto_recv(sv[1], buf, 16, got, &nfds);
	cr_expect_eq(r, -EMSGSIZE);
	cr_expect_eq(nfds, 0);

	close(sv[0]);
	cr_expect_eq(proto_recv(sv[1], buf, sizeof(buf), got, &nfds), 0, "peer closed");
	close(sv[1]);
	close(fds[0]);
	close(fds[1]);
}

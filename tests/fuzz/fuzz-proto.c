// SPDX-License-Identifier: MIT
/*
 * Fuzz target of the wire-format decoder. Built two ways: with clang
 * -fsanitize=fuzzer as a libFuzzer binary (fuzz-proto, run by hand), and as
 * a replay program that runs every file of the committed corpus through the
 * same function (meson test), or writes the seed corpus (--seeds DIR).
 *
 * Input: byte 0 = how many fds "came" with the message (0-3), the rest is
 * the datagram. A decoded message is re-encoded and decoded again, and every
 * byte it points to is read, so ASan sees any out-of-bounds pointer.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile uint8_t sink;

static void touch(const void *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sink ^= ((const uint8_t *)p)[i];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t again[PROTO_MAX_MSG / 16];
	char err[PROTO_ERRMSG_SIZE];
	struct proto_msg m, m2;
	size_t nfds;
	ssize_t n;

	if (!size)
		return 0;
	nfds = data[0] % 4;
	if (proto_msg__decode(data + 1, size - 1, nfds, &m, err) < 0) {
		touch(err, strnlen(err, sizeof(err)));
		return 0;
	}
	switch (m.type) {
	case PROTO_LOAD:
		touch(m.load.maps, (size_t)m.load.fixed.map_cnt * m.load.fixed.map_entry_len);
		touch(m.load.insns, (size_t)m.load.fixed.insn_cnt * 8);
		/* The encoder writes v1 map entries: re-encode only those. */
		if (m.load.fixed.map_entry_len != sizeof(struct proto_map) && m.load.fixed.map_cnt)
			return 0;
		break;
	case PROTO_ATTACH:
		touch(m.attach.path, m.attach.fixed.path_len);
		break;
	case PROTO_ERROR:
		touch(m.error.text, m.error.fixed.text_len);
		break;
	default:
		break;
	}
	n = proto_msg__encode(&m, again, sizeof(again));
	if (n >= 0 && proto_msg__decode(again, (size_t)n, nfds, &m2, err) < 0)
		abort(); /* what we encode we must accept */
	return 0;
}

#ifndef FUZZING_ENGINE
static int write_seed(const char *dir, const char *name, const struct proto_msg *m)
{
	static uint8_t buf[65536];
	char path[4096];
	ssize_t n = proto_msg__encode(m, buf + 1, sizeof(buf) - 1);
	FILE *f;

	if (n < 0)
		return (int)n;
	buf[0] = (uint8_t)m->nfds;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(buf, 1, (size_t)n + 1, f) != (size_t)n + 1)
		return -errno;
	return fclose(f) ? -errno : 0;
}

/* One valid message of each type: the corpus libFuzzer mutates from. */
static int write_seeds(const char *dir)
{
	static const uint64_t insns[] = { 0x00000000000000b7ULL, 0x0000000000000095ULL };
	static const struct proto_map maps[2] = {
		{ .id = 7, .type = 6, .key_size = 4, .value_size = 8, .max_entries = 1,
		  .tool_fd = 5, .fd_index = 0 },
		{ .id = 8, .type = 1, .key_size = 8, .value_size = 8, .max_entries = 4096,
		  .tool_fd = 6, .fd_index = 1 },
	};
	static const char path[] = "/usr/bin/target";
	static const char text[] = "helper bpf_override_return is not supported";
	struct proto_msg m = { .type = PROTO_HELLO, .seq = 1 };
	int r = 0;

	m.hello = (struct proto_hello){ .pid = 42, .caps = PROTO_CAP_JIT, .max_msg = PROTO_MAX_MSG,
					.version = "0.1.0" };
	r |= write_seed(dir, "hello", &m);
	m = (struct proto_msg){ .type = PROTO_LOAD, .seq = 2, .nfds = 3 };
	m.load.fixed = (struct proto_load_fixed){ .prog = 1, .kernel_id = 99, .prog_type = 2,
						  .flags = PROTO_LOAD_JIT, .name = "count",
						  .map_cnt = 2, .map_entry_len = sizeof(maps[0]),
						  .insn_cnt = 2, .ringbuf_prog_fd = PROTO_NO_FD,
						  .perf_prog_fd = 2, .printk_prog_fd = PROTO_NO_FD,
						  .cgroup_prog_fd = PROTO_NO_FD };
	m.load.maps = (const uint8_t *)maps;
	m.load.insns = (const uint8_t *)insns;
	r |= write_seed(dir, "load", &m);
	m = (struct proto_msg){ .type = PROTO_ATTACH, .seq = 3 };
	m.attach.fixed = (struct proto_attach_fixed){
		.attach = 1, .prog = 1, .dev = 0xfe00, .ino = 1234, .offset = 0x1180,
		.func_offset = 0x1180, .func_size = 16, .prev_end = 0x1170, .next_start = 0x1190,
		.kind = PROTO_PROBE_RETURN, .path_len = sizeof(path) - 1, .orig_len = 4,
		.orig = { 0xf3, 0x0f, 0x1e, 0xfa },
	};
	m.attach.path = path;
	r |= write_seed(dir, "attach", &m);
	m = (struct proto_msg){ .type = PROTO_DETACH, .seq = 4, .id = { .id = 1 } };
	r |= write_seed(dir, "detach", &m);
	m.type = PROTO_UNLOAD;
	r |= write_seed(dir, "unload", &m);
	m = (struct proto_msg){ .type = PROTO_STATS, .seq = 5, .nfds = 1,
				.stats = { .size = 24640, .version = 1 } };
	r |= write_seed(dir, "stats", &m);
	m = (struct proto_msg){ .type = PROTO_ERROR, .seq = 6 };
	m.error.fixed = (struct proto_error_fixed){ .err = 95, .ref_type = PROTO_LOAD, .ref_id = 1,
						    .text_len = sizeof(text) - 1 };
	m.error.text = text;
	r |= write_seed(dir, "error", &m);
	m = (struct proto_msg){ .type = PROTO_BYE, .seq = 7 };
	r |= write_seed(dir, "bye", &m);
	return r ? 1 : 0;
}

static int replay(const char *dir)
{
	static uint8_t buf[PROTO_MAX_MSG / 16];
	struct dirent *de;
	int files = 0;
	DIR *d = opendir(dir);

	if (!d) {
		fprintf(stderr, "cannot open %s: %s\n", dir, strerror(errno));
		return 1;
	}
	while ((de = readdir(d))) {
		char path[4096];
		size_t n;
		FILE *f;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		f = fopen(path, "rb");
		if (!f)
			continue;
		n = fread(buf, 1, sizeof(buf), f);
		fclose(f);
		LLVMFuzzerTestOneInput(buf, n);
		files++;
	}
	closedir(d);
	printf("%d corpus files replayed\n", files);
	return files ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "--seeds"))
		return write_seeds(argv[2]);
	if (argc == 2)
		return replay(argv[1]);
	fprintf(stderr, "usage: fuzz-proto CORPUS_DIR | --seeds DIR\n");
	return 2;
}
#endif

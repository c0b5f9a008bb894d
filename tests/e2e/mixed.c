/* SPDX-License-Identifier: MIT */
/*
 * The mixed tool: a tracepoint on syscalls/sys_enter_write and a uprobe,
 * both counting into one BPF_MAP_TYPE_HASH (mixed.bpf.c).
 *
 *   e2e-mixed BINARY FUNCTION
 *
 * Attaches both (the uprobe to FUNCTION of BINARY in every process), prints
 * "ready", and at SIGINT or SIGTERM prints the map, one line per entry:
 *
 *   write PID FD COUNT
 *   call PID ARG COUNT
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "mixed.h"
#include "mixed.skel.h"

static int print_counts(int fd)
{
	struct mixed_key key, next;
	struct mixed_key *prev = NULL;
	__u64 value;
	int r;

	while ((r = bpf_map_get_next_key(fd, prev, &next)) == 0) {
		r = bpf_map_lookup_elem(fd, &next, &value);
		if (r < 0)
			return r;
		printf("%s %u %lld %llu\n", next.kind == MIXED_WRITE ? "write" : "call", next.pid,
		       (long long)next.value, (unsigned long long)value);
		key = next;
		prev = &key;
	}
	return r == -ENOENT ? 0 : r;
}

int main(int argc, char **argv)
{
	LIBBPF_OPTS(bpf_uprobe_opts, uopts);
	struct mixed_bpf *skel;
	struct bpf_link *link;
	sigset_t set;
	int sig, r;

	if (argc != 3) {
		fprintf(stderr, "usage: e2e-mixed BINARY FUNCTION\n");
		return 2;
	}
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, NULL);

	skel = mixed_bpf__open_and_load();
	if (!skel) {
		fprintf(stderr, "cannot load the BPF object: %s\n", strerror(errno));
		return 1;
	}
	r = mixed_bpf__attach(skel);
	if (r < 0) {
		fprintf(stderr, "cannot attach the tracepoint: %s\n", strerror(-r));
		goto out;
	}
	uopts.func_name = argv[2];
	link = bpf_program__attach_uprobe_opts(skel->progs.on_call, -1, argv[1], 0, &uopts);
	if (!link) {
		r = -errno;
		fprintf(stderr, "cannot attach to %s:%s: %s\n", argv[1], argv[2], strerror(-r));
		goto out;
	}
	skel->links.on_call = link;
	printf("ready\n");
	fflush(stdout);

	sigwait(&set, &sig);
	r = print_counts(bpf_map__fd(skel->maps.counts));
	if (r < 0)
		fprintf(stderr, "cannot read the map: %s\n", strerror(-r));
out:
	mixed_bpf__destroy(skel);
	return r < 0 ? 1 : 0;
}

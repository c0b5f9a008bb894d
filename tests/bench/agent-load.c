// SPDX-License-Identifier: MIT
/*
 * Loading a program of a libbpf object into the agent as the daemon will:
 * the maps its lddw instructions name, with their kernel fds and ids, their
 * write-back locks, and for a RINGBUF the output helper program. Shared by
 * the benchmarks.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include "agent-load.h"
#include "drain.skel.h"
#include "maplock.h"
#include "ringbuf-output.skel.h"

int bench_libbpf_quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	return level == LIBBPF_WARN ? vfprintf(stderr, fmt, ap) : 0;
}

static int delta_store(int map_fd, uint32_t value_size)
{
	struct drain_bpf *skel = drain_bpf__open();

	if (!skel || bpf_map__reuse_fd(skel->maps.target, map_fd))
		return -1;
	skel->rodata->value_words = value_size / 8;
	if (drain_bpf__load(skel) || drain_bpf__attach(skel)) {
		fprintf(stderr, "cannot load the drain program\n");
		exit(1);
	}
	return bpf_map__fd(skel->maps.deltas);
}

struct agent_prog *bench_agent_load(struct bpf_object *obj, const char *name, bool jit,
				    bool deltas)
{
	struct bpf_program *prog = bpf_object__find_program_by_name(obj, name);
	const struct bpf_insn *insns = bpf_program__insns(prog);
	size_t cnt = bpf_program__insn_cnt(prog), n = 0;
	struct agent_map_spec maps[8];
	int fds[8], ringbuf_prog = -1;
	char err[AGENT_ERRMSG_SIZE];
	struct agent_prog *p;
	int r;

	for (size_t i = 0; i + 1 < cnt; i++) {
		struct bpf_map_info info = { 0 };
		__u32 len = sizeof(info);
		bool seen = false;

		if (insns[i].code != (BPF_LD | BPF_IMM | BPF_DW))
			continue;
		if (insns[i].src_reg == BPF_PSEUDO_MAP_FD) {
			for (size_t k = 0; k < n; k++)
				seen |= fds[k] == insns[i].imm;
			if (!seen && !bpf_obj_get_info_by_fd(insns[i].imm, &info, &len)) {
				fds[n] = insns[i].imm;
				maps[n++] = (struct agent_map_spec){
					.fd = insns[i].imm,
					.id = info.id,
					.type = info.type,
					.key_size = info.key_size,
					.value_size = info.value_size,
					.max_entries = info.max_entries,
					.flags = info.map_flags,
					.lock_fd = shm_maplock__create(info.id),
				};
				if (deltas && (info.type == BPF_MAP_TYPE_HASH ||
					       info.type == BPF_MAP_TYPE_PERCPU_HASH ||
					       info.type == BPF_MAP_TYPE_ARRAY ||
					       info.type == BPF_MAP_TYPE_PERCPU_ARRAY) &&
				    !(info.map_flags & BPF_F_MMAPABLE))
					maps[n - 1].delta_fd = delta_store(insns[i].imm,
									   info.value_size);
				if (info.type == BPF_MAP_TYPE_RINGBUF) {
					struct ringbuf_output_bpf *skel =
						ringbuf_output_bpf__open();

					bpf_map__reuse_fd(skel->maps.rb, insns[i].imm);
					if (ringbuf_output_bpf__load(skel)) {
						fprintf(stderr, "cannot load ringbuf-output\n");
						exit(1);
					}
					ringbuf_prog = bpf_program__fd(skel->progs.ringbuf_output);
				}
			}
		}
		i++;
	}
	struct agent_prog_spec spec = {
		.insns = (const struct ebpf_insn *)insns,
		.insn_cnt = cnt,
		.maps = maps,
		.tool_map_fds = fds,
		.map_cnt = n,
		.ringbuf_output_prog_fd = ringbuf_prog,
		.perf_output_prog_fd = -1,
		.trace_printk_prog_fd = -1,
		.jit = jit,
	};
	r = agent_prog__load(&spec, &p, err);
	/* The agent maps the locks: their fds can go. */
	for (size_t k = 0; k < n; k++)
		if (maps[k].lock_fd >= 0)
			close(maps[k].lock_fd);
	if (r < 0) {
		fprintf(stderr, "%s: %s\n", name, err);
		exit(1);
	}
	return p;
}


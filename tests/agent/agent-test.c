// SPDX-License-Identifier: MIT
/* The agent test harness (agent-test.h). */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <linux/bpf.h>

#include "agent-test.h"
#include "maplock.h"
#include "cgroup-check.skel.h"
#include "drain.skel.h"
#include "perf-output.skel.h"
#include "ringbuf-output.skel.h"
#include "trace-printk.skel.h"

const char *at_missing(void)
{
	static char why[256];
	int r;

	if (geteuid() != 0)
		return "needs root (BPF programs and maps are created in the kernel)";
	r = libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_KPROBE, NULL);
	if (r <= 0) {
		snprintf(why, sizeof(why), "the kernel cannot load a kprobe program: %s",
			 r < 0 ? strerror(-r) : "not supported");
		return why;
	}
	r = libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, NULL);
	if (r <= 0)
		return "the kernel has no BPF ring buffers";
	return NULL;
}

int at_main(int argc, char *argv[])
{
	struct criterion_test_set *tests;
	const char *why = at_missing();
	bool tap = false;
	int result = 0;

	for (int i = 1; i < argc; i++)
		tap |= !strncmp(argv[i], "--tap", 5);
	if (why) {
		if (tap) {
			printf("1..0 # SKIP %s\n", why);
			return 0;
		}
		printf("SKIP: %s\n", why);
		return 77;
	}
	tests = criterion_initialize();
	if (criterion_handle_args(argc, argv, true))
		result = !criterion_run_all_tests(tests);
	criterion_finalize(tests);
	return result;
}

static int quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	return level == LIBBPF_WARN ? vfprintf(stderr, fmt, ap) : 0;
}

struct at_obj *at_obj_load(const char *name)
{
	struct at_obj *o = calloc(1, sizeof(*o));
	char path[512];
	int r;

	cr_assert_not_null(o);
	o->trace_prog_fd = -1;
	libbpf_set_print(quiet);
	snprintf(path, sizeof(path), "%s/%s.bpf.o", AGENT_PROGS_DIR, name);
	o->obj = bpf_object__open_file(path, NULL);
	cr_assert_not_null(o->obj, "cannot open %s: %s", path, strerror(errno));
	r = bpf_object__load(o->obj);
	cr_assert_eq(r, 0, "the kernel refused %s: %s", path, strerror(-r));
	return o;
}

void at_obj_free(struct at_obj *o)
{
	if (!o)
		return;
	for (int i = 0; i < o->nhelpers; i++)
		bpf_object__close(o->helpers[i]);
	for (int i = 0; i < o->ndrains; i++)
		drain_bpf__destroy(o->drains[i]);
	bpf_object__close(o->obj);
	free(o);
}

int at_map_lock(uint32_t map_id)
{
	static struct {
		uint32_t map_id;
		int fd;
	} locks[64];
	static int nlocks;

	for (int i = 0; i < nlocks; i++)
		if (locks[i].map_id == map_id)
			return locks[i].fd;
	cr_assert_lt(nlocks, 64);
	locks[nlocks].map_id = map_id;
	locks[nlocks].fd = shm_maplock__create(map_id);
	cr_assert_geq(locks[nlocks].fd, 0, "cannot make a map lock: %s",
		      strerror(-locks[nlocks].fd));
	return locks[nlocks++].fd;
}

int at_map_fd(struct at_obj *o, const char *name)
{
	struct bpf_map *map = bpf_object__find_map_by_name(o->obj, name);

	cr_assert_not_null(map, "no map %s", name);
	return bpf_map__fd(map);
}

int at_prog_fd(struct at_obj *o, const char *name)
{
	struct bpf_program *prog = bpf_object__find_program_by_name(o->obj, name);

	cr_assert_not_null(prog, "no program %s", name);
	return bpf_program__fd(prog);
}

/*
 * Opens skeleton NAME, gives its map MAP the tool's map_fd, loads it and
 * keeps its object in o (it outlives the skeleton); fd = its program PROG.
 */
#define LOAD_ONTO(o, NAME, MAP, PROG, map_fd, fd)                                               \
	do {                                                                                    \
		struct NAME *skel_ = NAME##__open();                                            \
		int r_;                                                                         \
                                                                                                \
		cr_assert_not_null(skel_);                                                      \
		r_ = bpf_map__reuse_fd(skel_->maps.MAP, map_fd);                                \
		cr_assert_eq(r_, 0, "reuse_fd: %s", strerror(-r_));                             \
		r_ = NAME##__load(skel_);                                                       \
		cr_assert_eq(r_, 0, "the kernel refused " #NAME ": %s", strerror(-r_));         \
		(o)->helpers[(o)->nhelpers++] = skel_->obj;                                     \
		(fd) = bpf_program__fd(skel_->progs.PROG);                                      \
		skel_->obj = NULL;                                                              \
		NAME##__destroy(skel_);                                                         \
	} while (0)

/* Loads a helper program onto the tool's output or cgroup map, as the daemon will. */
static int map_helper(struct at_obj *o, int map_fd, uint32_t type)
{
	int fd;

	cr_assert_lt(o->nhelpers, AT_MAX_HELPERS);
	if (type == BPF_MAP_TYPE_RINGBUF)
		LOAD_ONTO(o, ringbuf_output_bpf, rb, ringbuf_output, map_fd, fd);
	else if (type == BPF_MAP_TYPE_PERF_EVENT_ARRAY)
		LOAD_ONTO(o, perf_output_bpf, events, perf_output, map_fd, fd);
	else
		LOAD_ONTO(o, cgroup_check_bpf, cgroups, under_cgroup, map_fd, fd);
	return fd;
}

/* A delta array and drain program for the map, as the daemon makes them; the array's fd. */
static int delta_store(struct at_obj *o, int map_fd, uint32_t value_size, bool drain)
{
	struct drain_bpf *skel = drain_bpf__open();
	int r;

	cr_assert_not_null(skel);
	cr_assert_lt(o->ndrains, AT_MAX_HELPERS);
	r = bpf_map__reuse_fd(skel->maps.target, map_fd);
	cr_assert_eq(r, 0, "reuse_fd: %s", strerror(-r));
	skel->rodata->value_words = value_size / 8;
	r = drain_bpf__load(skel);
	cr_assert_eq(r, 0, "the kernel refused drain: %s", strerror(-r));
	if (drain) {
		r = drain_bpf__attach(skel);
		cr_assert_eq(r, 0, "cannot attach drain: %s", strerror(-r));
	}
	o->drains[o->ndrains++] = skel;
	return bpf_map__fd(skel->maps.deltas);
}

static bool takes_deltas(const struct bpf_map_info *info)
{
	return (info->type == BPF_MAP_TYPE_HASH || info->type == BPF_MAP_TYPE_PERCPU_HASH ||
		info->type == BPF_MAP_TYPE_ARRAY || info->type == BPF_MAP_TYPE_PERCPU_ARRAY) &&
	       !(info->map_flags & BPF_F_MMAPABLE);
}

static int trace_helper(struct at_obj *o)
{
	struct trace_printk_bpf *skel;
	int r;

	if (o->trace_prog_fd >= 0)
		return o->trace_prog_fd;
	cr_assert_lt(o->nhelpers, AT_MAX_HELPERS);
	skel = trace_printk_bpf__open();
	cr_assert_not_null(skel);
	r = trace_printk_bpf__load(skel);
	cr_assert_eq(r, 0, "the kernel refused trace-printk: %s", strerror(-r));
	o->trace_prog_fd = bpf_program__fd(skel->progs.trace_printk);
	o->helpers[o->nhelpers++] = skel->obj;
	skel->obj = NULL;
	trace_printk_bpf__destroy(skel);
	return o->trace_prog_fd;
}

#define AT_MAX_MAPS 32

int at_prog_try_load(struct at_obj *o, const char *name, unsigned int flags,
		     struct agent_prog **out, char err[AGENT_ERRMSG_SIZE])
{
	struct bpf_program *prog = bpf_object__find_program_by_name(o->obj, name);
	struct agent_map_spec maps[AT_MAX_MAPS];
	int tool_fds[AT_MAX_MAPS];
	const struct bpf_insn *insns;
	struct agent_prog_spec spec;
	size_t cnt, nmaps = 0;

	cr_assert_not_null(prog, "no program %s", name);
	insns = bpf_program__insns(prog);
	cnt = bpf_program__insn_cnt(prog);
	/* The maps the program names, in the order it first names them. */
	for (size_t i = 0; i + 1 < cnt; i++) {
		const struct bpf_insn *in = &insns[i];
		struct bpf_map_info info = { 0 };
		__u32 len = sizeof(info);
		bool seen = false;

		if (in->code != (BPF_LD | BPF_IMM | BPF_DW))
			continue;
		i++;
		if (in->src_reg != BPF_PSEUDO_MAP_FD && in->src_reg != BPF_PSEUDO_MAP_VALUE)
			continue;
		for (size_t k = 0; k < nmaps; k++)
			seen |= tool_fds[k] == in->imm;
		if (seen)
			continue;
		cr_assert_lt(nmaps, AT_MAX_MAPS);
		cr_assert_eq(bpf_obj_get_info_by_fd(in->imm, &info, &len), 0);
		tool_fds[nmaps] = in->imm;
		maps[nmaps] = (struct agent_map_spec){
			.fd = in->imm,
			.id = info.id,
			.type = info.type,
			.key_size = info.key_size,
			.value_size = info.value_size,
			.max_entries = info.max_entries,
			.flags = info.map_flags,
			.lock_fd = -1,
		};
		if (info.type == BPF_MAP_TYPE_RINGBUF || info.type == BPF_MAP_TYPE_PERF_EVENT_ARRAY ||
		    info.type == BPF_MAP_TYPE_CGROUP_ARRAY)
			maps[nmaps].output_prog_fd = map_helper(o, in->imm, info.type);
		else
			maps[nmaps].lock_fd = at_map_lock(info.id);
		if ((flags & AT_DELTAS) && takes_deltas(&info))
			maps[nmaps].delta_fd =
				delta_store(o, in->imm, info.value_size, !(flags & AT_UNDRAINED));
		nmaps++;
	}
	spec = (struct agent_prog_spec){
		.insns = (const struct ebpf_insn *)insns,
		.insn_cnt = cnt,
		.maps = maps,
		.tool_map_fds = tool_fds,
		.map_cnt = nmaps,
		.ringbuf_output_prog_fd = -1,
		.perf_output_prog_fd = -1,
		.trace_printk_prog_fd = (flags & AT_NO_TRACE_PROG) ? -1 : trace_helper(o),
		.jit = at_jit(),
	};
	return agent_prog__load(&spec, out, err);
}

struct agent_prog *at_prog_load(struct at_obj *o, const char *name)
{
	char err[AGENT_ERRMSG_SIZE];
	struct agent_prog *p;
	int r = at_prog_try_load(o, name, 0, &p, err);

	cr_assert_eq(r, 0, "the agent refused %s: %s", name, err);
	return p;
}

bool at_jit(void)
{
	const char *e = getenv("AGENT_TEST_ENGINE");

	return !e || strcmp(e, "interp");
}

uint64_t at_run(struct agent_prog *p, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
		uint64_t a5)
{
	struct pt_regs regs = {
		.rdi = a1,
		.rsi = a2,
		.rdx = a3,
		.rcx = a4,
		.r8 = a5,
		.rip = 0x401000,
		.rsp = (uintptr_t)__builtin_frame_address(0),
	};
	uint64_t ret = 0;
	int r = agent_prog__run(p, &regs, NULL, &ret);

	cr_assert_eq(r, 0, "agent_prog__run: %s", strerror(-r));
	return ret;
}

uint64_t at_run_ctx(struct agent_prog *p, const uint64_t *args, size_t n)
{
	uint64_t ctx[sizeof(struct pt_regs) / 8] = { 0 };
	uint64_t ret = 0;
	int r;

	cr_assert_leq(n, sizeof(ctx) / 8);
	memcpy(ctx, args, n * 8);
	r = agent_prog__run(p, ctx, NULL, &ret);
	cr_assert_eq(r, 0, "agent_prog__run: %s", strerror(-r));
	return ret;
}

uint32_t at_kernel_run(struct at_obj *o, const char *prog, const uint64_t *args, size_t n)
{
	LIBBPF_OPTS(bpf_test_run_opts, opts, .ctx_in = args, .ctx_size_in = (uint32_t)(n * 8));
	int r = bpf_prog_test_run_opts(at_prog_fd(o, prog), &opts);

	cr_assert_eq(r, 0, "BPF_PROG_TEST_RUN %s: %s", prog, strerror(-r));
	return opts.retval;
}

void at_pin_cpu(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	cr_assert_eq(sched_setaffinity(0, sizeof(set), &set), 0, "pin to CPU %d: %s", cpu,
		     strerror(errno));
}

int at_ncpus(void)
{
	return libbpf_num_possible_cpus();
}

// SPDX-License-Identifier: MIT
/*
 * A tool's program in the agent (prog.h): load checks everything that can be
 * refused (helpers, kfuncs, map types, map references, output programs) and
 * names what it refuses, then builds the VM; a run sets the thread's current
 * run for the helpers, executes, and writes the maps back.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helper-names.h"
#include "maplock.h"
#include "additive.h"
#include "prog-private.h"
#include "uaccess.h"

__thread struct agent_run *agent_cur_run __attribute__((tls_model("initial-exec")));
unsigned int agent_ncpus;

/* A run's scratch: at least this much, more for maps with large values. */
#define ARENA_MIN (1u << 20)

static int errf(char err[AGENT_ERRMSG_SIZE], int e, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int errf(char err[AGENT_ERRMSG_SIZE], int e, const char *fmt, ...)
{
	va_list ap;

	if (err) {
		va_start(ap, fmt);
		vsnprintf(err, AGENT_ERRMSG_SIZE, fmt, ap);
		va_end(ap);
	}
	errno = e;
	return -e;
}

/* The possible CPUs, as libbpf counts them: the highest in the list, plus one. */
static unsigned int possible_cpus(void)
{
	char buf[256], *p;
	unsigned int max = 0;
	ssize_t n;
	int fd;

	fd = open("/sys/devices/system/cpu/possible", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	for (p = buf; *p;) {
		unsigned long v = strtoul(p, &p, 10);

		if (v + 1 > max)
			max = (unsigned int)v + 1;
		if (*p == '-' || *p == ',')
			p++;
		else
			break;
	}
	return max;
}

static int process_init_result;
static pthread_once_t process_once = PTHREAD_ONCE_INIT;

static void process_init(void)
{
	agent_ncpus = possible_cpus();
	if (!agent_ncpus) {
		process_init_result = -ENOENT;
		return;
	}
	agent_helpers_init();
	process_init_result = agent_uaccess__init();
}

/* sched_getcpu() reads the rseq area glibc registers: no syscall, ~5 ns. */
int agent_run_cpu(struct agent_run *run)
{
	if (run->cpu < 0) {
		int cpu = sched_getcpu();

		run->cpu = cpu < 0 ? 0 : cpu;
	}
	return run->cpu;
}

bool agent_run_is_kernel(struct agent_run *run, uint64_t addr, uint64_t len)
{
	uintptr_t sp = (uintptr_t)__builtin_frame_address(0);

	if (len > UINT64_MAX - addr)
		return false;
	/* the VM's stack: above this frame, below agent_prog__run()'s */
	if (addr >= sp && addr + len <= run->stack_top)
		return true;
	if (run->regs && addr >= (uintptr_t)run->regs &&
	    addr + len <= (uintptr_t)run->regs + sizeof(struct pt_regs))
		return true;
	return agent_run_in_scratch(run, addr, len) || agent_maps_contain(run->prog, addr, len);
}

/* ---- load ---- */

static int map_index_by_fd(const struct agent_prog *prog, int32_t fd)
{
	for (size_t i = 0; i < prog->map_cnt; i++)
		if (prog->tool_map_fds[i] == fd)
			return (int)i;
	return -1;
}

static int resolve_lddw(void *user, unsigned int src, int32_t imm, int32_t next_imm,
			uint64_t *value)
{
	struct agent_prog *prog = user;
	int i;

	switch (src) {
	case EBPF_PSEUDO_MAP_FD:
	case EBPF_PSEUDO_MAP_VALUE:
		i = map_index_by_fd(prog, imm);
		break;
	case EBPF_PSEUDO_MAP_IDX:
	case EBPF_PSEUDO_MAP_IDX_VALUE:
		i = imm >= 0 && (size_t)imm < prog->map_cnt ? imm : -1;
		break;
	default:
		return -ENOTSUP;
	}
	if (i < 0)
		return -ENOENT;
	if (src == EBPF_PSEUDO_MAP_FD || src == EBPF_PSEUDO_MAP_IDX) {
		*value = (uintptr_t)&prog->maps[i];
		return 0;
	}
	if (!prog->maps[i].mem || (uint32_t)next_imm >= prog->maps[i].value_size)
		return -EINVAL;
	*value = (uintptr_t)prog->maps[i].mem + (uint32_t)next_imm;
	return 0;
}

static const char *helper_name(int32_t id, char buf[32])
{
	const char *name = ebpf_helper_name(id);

	if (name)
		snprintf(buf, 32, "bpf_%s", name);
	else
		snprintf(buf, 32, "helper %d", id);
	return buf;
}

/* Everything the VM would refuse only by number, and what we cannot run, with names. */
static int check_insns(const struct agent_prog *prog, const struct agent_prog_spec *spec,
		       char err[AGENT_ERRMSG_SIZE])
{
	char name[32];

	for (size_t pc = 0; pc < spec->insn_cnt; pc++) {
		const struct ebpf_insn *in = &spec->insns[pc];

		if (in->code == EBPF_OP_CALL && in->src == EBPF_PSEUDO_CALL_HELPER) {
			if (!agent_helper_supported(in->imm))
				return errf(
					err, EOPNOTSUPP,
					"insn %zu: helper %s (%d) is not supported by the agent",
					pc, helper_name(in->imm, name), in->imm);
			if ((in->imm == BPF_FUNC_trace_printk ||
			     in->imm == BPF_FUNC_trace_vprintk) &&
			    spec->trace_printk_prog_fd < 0)
				return errf(err, EOPNOTSUPP,
					    "insn %zu: %s needs the trace_printk helper program",
					    pc, helper_name(in->imm, name));
		} else if (in->code == EBPF_OP_CALL && in->src == EBPF_PSEUDO_CALL_KFUNC) {
			return errf(
				err, EOPNOTSUPP,
				"insn %zu: kfunc calls (btf id %d) are not supported by the agent",
				pc, in->imm);
		} else if (in->code == EBPF_OP_CALLX) {
			return errf(err, EOPNOTSUPP, "insn %zu: callx is not supported", pc);
		} else if (in->code == EBPF_OP_LDDW && pc + 1 < spec->insn_cnt) {
			int i = -1;

			switch (in->src) {
			case EBPF_PSEUDO_BTF_ID:
				return errf(err, EOPNOTSUPP,
					    "insn %zu: kernel symbol loads (btf id %d) are not "
					    "supported by the agent",
					    pc, in->imm);
			case EBPF_PSEUDO_MAP_FD:
			case EBPF_PSEUDO_MAP_VALUE:
				i = map_index_by_fd(prog, in->imm);
				if (i < 0)
					return errf(
						err, ENOENT,
						"insn %zu: map fd %d is not among the program's "
						"maps",
						pc, in->imm);
				break;
			case EBPF_PSEUDO_MAP_IDX:
			case EBPF_PSEUDO_MAP_IDX_VALUE:
				if (in->imm < 0 || (size_t)in->imm >= prog->map_cnt)
					return errf(err, ENOENT,
						    "insn %zu: map index %d is not among the "
						    "program's %zu maps",
						    pc, in->imm, prog->map_cnt);
				i = in->imm;
				break;
			}
			if ((in->src == EBPF_PSEUDO_MAP_VALUE ||
			     in->src == EBPF_PSEUDO_MAP_IDX_VALUE) &&
			    !prog->maps[i].mem)
				return errf(err, EOPNOTSUPP,
					    "insn %zu: direct value access to map %u (%s) needs a "
					    "BPF_F_MMAPABLE or BPF_F_RDONLY_PROG array",
					    pc, prog->maps[i].id,
					    agent_map_type_name(prog->maps[i].type));
			pc++;
		}
	}
	return 0;
}

static int cmp_lock(const void *a, const void *b)
{
	uint32_t x = shm_maplock__map_id(*(struct shm_maplock *const *)a);
	uint32_t y = shm_maplock__map_id(*(struct shm_maplock *const *)b);

	return x < y ? -1 : x > y;
}

/* The write-back locks, one per syscall map id, sorted by id: the order runs take them in. */
static int open_locks(struct agent_prog *prog, const struct agent_prog_spec *spec,
		      char err[AGENT_ERRMSG_SIZE])
{
	for (size_t i = 0; i < prog->map_cnt; i++) {
		struct agent_map *m = &prog->maps[i];
		bool seen = false;
		int r;

		if (!m->syscall)
			continue;
		for (size_t j = 0; j < i; j++)
			if (prog->maps[j].syscall && prog->maps[j].id == m->id)
				seen = true;
		if (seen)
			continue;
		if (prog->nlocks == AGENT_MAX_LOCKS)
			return errf(err, E2BIG, "more than %d maps reached through bpf()",
				    AGENT_MAX_LOCKS);
		r = agent_map_open_lock(m, spec->maps[i].lock_fd, err, AGENT_ERRMSG_SIZE);
		if (r < 0)
			return r;
		prog->locks[prog->nlocks++] = m->lock;
	}
	qsort(prog->locks, prog->nlocks, sizeof(prog->locks[0]), cmp_lock);
	return 0;
}

static size_t arena_size(const struct agent_prog *prog)
{
	size_t need = 0, sz;

	for (size_t i = 0; i < prog->map_cnt; i++) {
		const struct agent_map *m = &prog->maps[i];

		if (m->syscall)
			need += 8 * (m->key_size + 2 * (size_t)m->copy_size + 16);
	}
	sz = need > ARENA_MIN ? need : ARENA_MIN;
	return (sz + 4095) & ~(size_t)4095;
}

static int output_prog(const struct agent_map *m, const struct agent_prog_spec *spec)
{
	if (m->output_prog_fd >= 0)
		return m->output_prog_fd;
	if (m->type == BPF_MAP_TYPE_RINGBUF)
		return spec->ringbuf_output_prog_fd;
	return spec->perf_output_prog_fd;
}

/* A map with deltas keeps them only where this program, too, only adds to it. */
static void use_deltas_where_additive(struct agent_prog *prog, const struct agent_prog_spec *spec)
{
	uint32_t value_sizes[ADDITIVE_MAX_MAPS], key_sizes[ADDITIVE_MAX_MAPS];
	uint64_t additive = 0;
	bool any = false;

	for (size_t i = 0; i < prog->map_cnt; i++)
		any |= prog->maps[i].deltas != NULL;
	if (!any)
		return;
	if (prog->map_cnt <= ADDITIVE_MAX_MAPS) {
		for (size_t i = 0; i < prog->map_cnt; i++) {
			value_sizes[i] = prog->maps[i].value_size;
			key_sizes[i] = prog->maps[i].key_size;
		}
		additive = additive__maps(spec->insns, spec->insn_cnt, prog->tool_map_fds,
					  value_sizes, key_sizes, prog->map_cnt);
	}
	for (size_t i = 0; i < prog->map_cnt; i++)
		if (!(additive & (1ull << i)))
			agent_map_drop_deltas(&prog->maps[i]);
}

int agent_prog__load(const struct agent_prog_spec *spec, struct agent_prog **out,
		     char err[AGENT_ERRMSG_SIZE])
{
	struct agent_prog *prog;
	char name[32];
	int r;

	*out = NULL;
	if (err)
		err[0] = 0;
	if (!spec->insns || !spec->insn_cnt)
		return errf(err, EINVAL, "the program is empty");
	if (spec->map_cnt && (!spec->maps || !spec->tool_map_fds))
		return errf(err, EINVAL, "%zu maps but no map list", spec->map_cnt);
	pthread_once(&process_once, process_init);
	if (process_init_result < 0)
		return errf(err, -process_init_result, "cannot set up the agent: %s",
			    strerror(-process_init_result));
	/* the application may have replaced the fault handler since */
	r = agent_uaccess__init();
	if (r < 0)
		return errf(err, -r, "cannot install the fault handler: %s", strerror(-r));

	prog = calloc(1, sizeof(*prog));
	if (!prog)
		return errf(err, ENOMEM, "out of memory");
	prog->ringbuf_prog_fd = prog->perf_prog_fd = prog->trace_prog_fd = -1;
	prog->maps = calloc(spec->map_cnt ? spec->map_cnt : 1, sizeof(*prog->maps));
	prog->tool_map_fds = calloc(spec->map_cnt ? spec->map_cnt : 1, sizeof(int));
	if (!prog->maps || !prog->tool_map_fds) {
		r = errf(err, ENOMEM, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < spec->map_cnt; i++)
		prog->maps[i] =
			(struct agent_map){ .fd = -1, .lock_index = -1, .output_prog_fd = -1 };
	for (size_t i = 0; i < spec->map_cnt; i++) {
		r = agent_map_open(&prog->maps[i], &spec->maps[i], err, AGENT_ERRMSG_SIZE);
		if (r < 0)
			goto fail;
		prog->map_cnt = i + 1;
		prog->tool_map_fds[i] = spec->tool_map_fds[i];
	}
	prog->map_cnt = spec->map_cnt;
	for (size_t i = 0; i < prog->map_cnt; i++) {
		struct agent_map *m = &prog->maps[i];
		int fd;

		if (m->type != BPF_MAP_TYPE_RINGBUF && m->type != BPF_MAP_TYPE_PERF_EVENT_ARRAY)
			continue;
		fd = output_prog(m, spec);
		if (fd < 0) {
			r = errf(err, EOPNOTSUPP, "map %u (%s) has no output helper program", m->id,
				 agent_map_type_name(m->type));
			goto fail;
		}
		if (m->output_prog_fd < 0) {
			m->output_prog_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
			if (m->output_prog_fd < 0) {
				r = errf(err, errno, "output program fd %d: %s", fd,
					 strerror(errno));
				goto fail;
			}
		}
	}
	r = check_insns(prog, spec, err);
	if (r < 0)
		goto fail;
	use_deltas_where_additive(prog, spec);
	if (spec->trace_printk_prog_fd >= 0) {
		prog->trace_prog_fd = fcntl(spec->trace_printk_prog_fd, F_DUPFD_CLOEXEC, 3);
		if (prog->trace_prog_fd < 0) {
			r = errf(err, errno, "trace_printk program fd %d: %s",
				 spec->trace_printk_prog_fd, strerror(errno));
			goto fail;
		}
	}
	r = open_locks(prog, spec, err);
	if (r < 0)
		goto fail;
	for (size_t i = 0; i < prog->map_cnt; i++)
		for (size_t k = 0; k < prog->nlocks; k++)
			if (prog->maps[i].syscall &&
			    shm_maplock__map_id(prog->locks[k]) == prog->maps[i].id)
				prog->maps[i].lock_index = (int)k;

	prog->vm = vm__new();
	if (!prog->vm) {
		r = errf(err, errno, "cannot make a VM: %s", strerror(errno));
		goto fail;
	}
	for (size_t i = 0; i < agent_helper_cnt; i++) {
		r = vm__register_helper(prog->vm, agent_helpers[i].id,
					helper_name((int32_t)agent_helpers[i].id, name),
					agent_helpers[i].fn);
		if (r < 0) {
			r = errf(err, -r, "%s", vm__strerror(prog->vm));
			goto fail;
		}
	}
	vm__set_mem_check(prog->vm, vm_mem_allow_all, NULL);
	vm__set_lddw_resolver(prog->vm, resolve_lddw, prog);
	r = vm__set_jit(prog->vm, spec->jit);
	if (r == 0)
		r = vm__load(prog->vm, spec->insns, spec->insn_cnt);
	if (r < 0) {
		r = errf(err, -r, "%s", vm__strerror(prog->vm));
		goto fail;
	}
	prog->arena_size = arena_size(prog);
	r = agent_prog_scratch_init(prog);
	if (r < 0) {
		r = errf(err, -r, "cannot map the run scratch: %s", strerror(-r));
		goto fail;
	}
	*out = prog;
	return 0;
fail:
	agent_prog__free(prog);
	return r;
}

void agent_prog__flush_deltas(struct agent_prog *prog)
{
	for (size_t i = 0; i < prog->map_cnt; i++)
		agent_map_flush_deltas(&prog->maps[i]);
}

void agent_prog__free(struct agent_prog *prog)
{
	if (!prog)
		return;
	vm__free(prog->vm);
	agent_prog_scratch_free(prog);
	for (size_t i = 0; prog->maps && i < prog->map_cnt; i++)
		agent_map_close(&prog->maps[i]);
	if (prog->trace_prog_fd >= 0)
		close(prog->trace_prog_fd);
	free(prog->maps);
	free(prog->tool_map_fds);
	free(prog);
}

/* ---- run ---- */

int agent_prog__run(struct agent_prog *prog, void *regs, const struct agent_probe_info *info,
		    uint64_t *ret)
{
	struct agent_run run;
	int r;

	if (agent_cur_run) {
		__atomic_fetch_add(&prog->missed, 1, __ATOMIC_RELAXED);
		*ret = 0;
		return -EBUSY;
	}
	run.prog = prog;
	run.regs = regs;
	run.info = info;
	run.stack_top = (uintptr_t)__builtin_frame_address(0);
	run.cpu = -1;
	run.slot = NULL;
	run.held = 0;
	run.locked = false;
	run.nsignals = 0;
	agent_cur_run = &run;
	r = vm__exec(prog->vm, regs, regs ? sizeof(struct pt_regs) : 0, ret, NULL);
	if (run.slot || run.locked) {
		agent_run_writeback(&run);
		agent_run_release_slot(&run);
	}
	agent_cur_run = NULL;
	if (run.nsignals)
		agent_run_deliver_signals(&run);
	return r;
}

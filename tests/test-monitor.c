/* SPDX-License-Identifier: MIT */
/*
 * The kernel monitor (bpf/monitor.bpf.c) and its reader, against the real kernel and the real
 * bpftrace: what bpftrace does to attach a uprobe must come out of the ring buffer, complete and
 * in order. Needs root, kernel BTF, tracefs and bpftrace; without them it exits 77 (skip) and
 * says why. MONITOR_TARGET names the probed program (tests/monitor/target.c), set by meson.
 */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/bpf.h>
#include <linux/perf_event.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <criterion/criterion.h>

#include "monitor.h"

#define BPF_INSN_EXIT 0x95

/* ---- collecting records ---- */

struct collector {
	struct monitor_hdr **recs;
	size_t n, cap;
	uint64_t lost;
};

static int collect(void *ctx, const struct monitor_hdr *ev, size_t size)
{
	struct collector *c = ctx;
	struct monitor_hdr *copy;

	cr_assert_eq(ev->size, size);
	if (c->n == c->cap) {
		c->cap = c->cap ? 2 * c->cap : 1024;
		c->recs = realloc(c->recs, c->cap * sizeof(*c->recs));
		cr_assert_not_null(c->recs);
	}
	copy = malloc(size);
	cr_assert_not_null(copy);
	memcpy(copy, ev, size);
	c->recs[c->n++] = copy;
	return 0;
}

static void collect_lost(void *ctx, uint64_t first_seq, uint64_t cnt)
{
	struct collector *c = ctx;

	c->lost += cnt;
}

static void collector_free(struct collector *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->recs[i]);
	free(c->recs);
	*c = (struct collector){};
}

static struct monitor_reader *reader_new(struct collector *c)
{
	struct monitor_reader_opts opts = { .sz = sizeof(opts), .lost = collect_lost };
	struct monitor_reader *r = monitor_reader__new(collect, c, &opts);

	cr_assert_not_null(r, "monitor_reader__new: %s", strerror(errno));
	return r;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void pump(struct monitor_reader *r, double seconds)
{
	double end = now_s() + seconds;

	while (now_s() < end) {
		int n = monitor_reader__poll(r, 50);

		cr_assert_geq(n, 0, "poll: %s", strerror(-n));
	}
}

static const struct monitor_hdr *find_exit(const struct collector *c, pid_t pid)
{
	for (size_t i = 0; i < c->n; i++)
		if (c->recs[i]->type == MONITOR_EV_EXIT && c->recs[i]->pid == (uint32_t)pid)
			return c->recs[i];
	return NULL;
}

/* Polls until the exit of pid was reported (or the deadline). */
static void pump_until_exit(struct monitor_reader *r, struct collector *c, pid_t pid,
			    double seconds)
{
	double end = now_s() + seconds;

	while (now_s() < end && !find_exit(c, pid))
		cr_assert_geq(monitor_reader__poll(r, 50), 0);
	cr_assert_not_null(find_exit(c, pid), "no exit record for pid %d", pid);
}

/*
 * The instruction stream of a load, reassembled from its chunks (which must come from the
 * loading thread, in order, covering exactly insn_cnt); NULL if not complete.
 */
static uint64_t *assemble(const struct collector *c, const struct monitor_prog_load *load)
{
	uint64_t *insns = calloc(load->insn_cnt ? load->insn_cnt : 1, 8);
	uint32_t next = 0, have = 0;

	cr_assert_not_null(insns);
	for (size_t i = 0; i < c->n; i++) {
		const struct monitor_prog_insns *ch = (const void *)c->recs[i];

		if ((const void *)ch == (const void *)load)
			break;
		if (ch->hdr.type != MONITOR_EV_PROG_INSNS || ch->load_id != load->load_id)
			continue;
		cr_assert_eq(ch->hdr.tid, load->hdr.tid);
		cr_assert_eq(ch->chunk, next, "chunk %u out of order (expected %u)", ch->chunk,
			     next);
		cr_assert_eq(ch->insn_off, have);
		cr_assert_eq(ch->total_cnt, load->insn_cnt);
		cr_assert_leq(have + ch->insn_cnt, load->insn_cnt);
		memcpy(insns + have, ch->insns, ch->insn_cnt * 8ul);
		have += ch->insn_cnt;
		next++;
	}
	if (have != load->insn_cnt || next != load->chunk_cnt) {
		free(insns);
		return NULL;
	}
	return insns;
}

/* ---- ELF: where a function lives in its file ---- */

static uint64_t symbol_file_offset(const char *path, const char *name)
{
	uint64_t vaddr = 0, off = 0;
	Elf_Scn *scn = NULL;
	size_t nphdr;
	bool found = false;
	Elf *e;
	int fd;

	cr_assert_neq(elf_version(EV_CURRENT), EV_NONE);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
	e = elf_begin(fd, ELF_C_READ, NULL);
	cr_assert_not_null(e);

	while (!found && (scn = elf_nextscn(e, scn))) {
		GElf_Shdr sh;
		Elf_Data *d;

		if (!gelf_getshdr(scn, &sh) ||
		    (sh.sh_type != SHT_SYMTAB && sh.sh_type != SHT_DYNSYM))
			continue;
		d = elf_getdata(scn, NULL);
		for (size_t i = 0; d && sh.sh_entsize && i < sh.sh_size / sh.sh_entsize; i++) {
			GElf_Sym sym;
			const char *n;

			if (!gelf_getsym(d, i, &sym) || GELF_ST_TYPE(sym.st_info) != STT_FUNC)
				continue;
			n = elf_strptr(e, sh.sh_link, sym.st_name);
			if (n && !strcmp(n, name) && sym.st_value) {
				vaddr = sym.st_value;
				found = true;
				break;
			}
		}
	}
	cr_assert(found, "%s not in %s", name, path);

	cr_assert_eq(elf_getphdrnum(e, &nphdr), 0);
	found = false;
	for (size_t i = 0; i < nphdr; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(e, i, &ph) || ph.p_type != PT_LOAD)
			continue;
		if (vaddr >= ph.p_vaddr && vaddr < ph.p_vaddr + ph.p_memsz) {
			off = vaddr - (ph.p_vaddr - ph.p_offset);
			found = true;
			break;
		}
	}
	cr_assert(found, "no PT_LOAD holds %s", name);
	elf_end(e);
	close(fd);
	return off;
}

/* ---- processes ---- */

static pid_t spawn(char *const argv[], const char *out_path)
{
	pid_t pid = fork();

	cr_assert_geq(pid, 0);
	if (pid == 0) {
		if (out_path) {
			int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

			if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0)
				_exit(126);
		}
		execvp(argv[0], argv);
		_exit(127);
	}
	return pid;
}

static const char *target_path(void)
{
	static char path[PATH_MAX];
	const char *env = getenv("MONITOR_TARGET");

	cr_assert_not_null(env, "MONITOR_TARGET is not set");
	cr_assert_not_null(realpath(env, path), "%s: %s", env, strerror(errno));
	return path;
}

/* ---- bpftrace ---- */

static uint32_t uprobe_pmu_type(void)
{
	FILE *f = fopen("/sys/bus/event_source/devices/uprobe/type", "re");
	unsigned int type;

	cr_assert_not_null(f, "no uprobe PMU");
	cr_assert_eq(fscanf(f, "%u", &type), 1);
	fclose(f);
	return type;
}

/* The newest record of `type` from pid before index `before` matching pred, or NULL. */
#define FIND_BEFORE(c, before, T, typ, who, pred)                                              \
	({                                                                                     \
		const T *_hit = NULL;                                                          \
		for (size_t _i = (before); _i-- > 0;) {                                        \
			const T *e = (const void *)(c)->recs[_i];                              \
			if (e->hdr.type == (typ) && e->hdr.pid == (uint32_t)(who) && (pred)) { \
				_hit = e;                                                      \
				break;                                                         \
			}                                                                      \
		}                                                                              \
		_hit;                                                                          \
	})

Test(monitor, bpftrace_uprobe, .timeout = 60)
{
	const char *target = target_path();
	uint64_t want_off = symbol_file_offset(target, "monitor_target_fn");
	char prog[PATH_MAX + 128], out_path[] = "/tmp/test-monitor-bpftrace-XXXXXX";
	struct collector c = {};
	struct monitor_reader *r = reader_new(&c);
	const struct monitor_perf_open *perf = NULL;
	const struct monitor_perf_ioctl *set_bpf = NULL, *enable = NULL;
	const struct monitor_prog_load *load = NULL;
	const struct monitor_map_create *map = NULL;
	size_t set_bpf_at = 0, closes = 0, n_before_exit;
	bool closed_perf = false, closed_prog = false;
	uint64_t *insns;
	pid_t tpid, bpid;
	char out[4096] = {};
	int status, fd;

	fd = mkstemp(out_path);
	cr_assert_geq(fd, 0);
	close(fd);

	tpid = spawn((char *[]){ (char *)target, NULL }, NULL);
	snprintf(prog, sizeof(prog), "uprobe:%s:monitor_target_fn { @ = count(); }", target);
	bpid = spawn((char *[]){ "bpftrace", "-e", prog, NULL }, out_path);

	pump(r, 2.5);
	n_before_exit = c.n;
	kill(bpid, SIGINT);
	pump_until_exit(r, &c, bpid, 10);
	cr_assert_eq(waitpid(bpid, &status, 0), bpid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "bpftrace failed: 0x%x", status);
	pump(r, 0.2);
	kill(tpid, SIGTERM);
	waitpid(tpid, NULL, 0);

	/* The uprobe perf event, on the right file and offset. */
	for (size_t i = 0; i < c.n; i++) {
		const struct monitor_perf_open *e = (const void *)c.recs[i];

		if (e->hdr.type == MONITOR_EV_PERF_OPEN && e->hdr.pid == (uint32_t)bpid &&
		    e->kind == MONITOR_PERF_UPROBE && e->result >= 0) {
			cr_assert_null(perf, "one uprobe perf event expected");
			perf = e;
		}
	}
	cr_assert_not_null(perf, "no uprobe perf_event_open from bpftrace (pid %d)", bpid);
	cr_assert_str_eq(perf->path, target);
	cr_assert_eq(perf->offset, want_off, "offset 0x%llx, expected 0x%llx",
		     (unsigned long long)perf->offset, (unsigned long long)want_off);
	cr_assert_eq(perf->config2, want_off);
	cr_assert_eq(perf->flags & MONITOR_PERF_RETPROBE, 0);
	cr_assert_eq(perf->type, uprobe_pmu_type());

	/* SET_BPF then ENABLE on that fd. */
	for (size_t i = 0; i < c.n; i++) {
		const struct monitor_perf_ioctl *e = (const void *)c.recs[i];

		if (e->hdr.type != MONITOR_EV_PERF_IOCTL || e->hdr.pid != (uint32_t)bpid ||
		    e->fd != perf->result)
			continue;
		if (e->cmd == PERF_EVENT_IOC_SET_BPF && !set_bpf) {
			set_bpf = e;
			set_bpf_at = i;
		} else if (e->cmd == PERF_EVENT_IOC_ENABLE && set_bpf && !enable) {
			enable = e;
		}
	}
	cr_assert_not_null(set_bpf, "no PERF_EVENT_IOC_SET_BPF on fd %d", perf->result);
	cr_assert_eq(set_bpf->result, 0);
	cr_assert_not_null(enable, "no PERF_EVENT_IOC_ENABLE on fd %d after SET_BPF", perf->result);
	cr_assert_eq(enable->result, 0);

	/* The program given to SET_BPF: a kprobe-type load, with its whole instruction stream. */
	load = FIND_BEFORE(&c, set_bpf_at, struct monitor_prog_load, MONITOR_EV_PROG_LOAD, bpid,
			   e->result == (int32_t)set_bpf->arg);
	cr_assert_not_null(load, "no PROG_LOAD for fd %llu", (unsigned long long)set_bpf->arg);
	cr_assert_eq(load->prog_type, BPF_PROG_TYPE_KPROBE);
	cr_assert_gt(load->insn_cnt, 0);
	cr_assert(load->flags & MONITOR_PROG_INSNS_COMPLETE, "flags 0x%x", load->flags);
	cr_assert_str_eq(load->license, "GPL");
	insns = assemble(&c, load);
	cr_assert_not_null(insns, "chunks of load %llu incomplete",
			   (unsigned long long)load->load_id);
	cr_assert_eq(insns[load->insn_cnt - 1] & 0xff, BPF_INSN_EXIT);
	free(insns);

	/* count() without a key: a one-slot PERCPU_ARRAY. */
	map = FIND_BEFORE(&c, set_bpf_at, struct monitor_map_create, MONITOR_EV_MAP_CREATE, bpid,
			  e->map_type == BPF_MAP_TYPE_PERCPU_ARRAY && e->result >= 0);
	cr_assert_not_null(map, "no PERCPU_ARRAY map from bpftrace");
	cr_assert_eq(map->max_entries, 1);
	cr_assert_eq(map->value_size, 8);

	/*
	 * On the way out bpftrace (0.17) disables and closes its probe's perf event and program;
	 * their close() must be reported before the exit. (A tool that just exits would leave only
	 * the exit record, which the daemon handles the same way.)
	 */
	for (size_t i = n_before_exit; i < c.n; i++) {
		const struct monitor_close *e = (const void *)c.recs[i];

		if (e->hdr.type == MONITOR_EV_EXIT && e->hdr.pid == (uint32_t)bpid)
			break;
		if (e->hdr.type != MONITOR_EV_CLOSE || e->hdr.pid != (uint32_t)bpid)
			continue;
		closes++;
		closed_perf |= e->fd == perf->result;
		closed_prog |= e->fd == load->result;
	}
	cr_assert(closed_perf, "close of perf fd %d not reported before the exit", perf->result);
	cr_assert(closed_prog, "close of prog fd %d not reported before the exit", load->result);
	cr_log_info(
		"bpftrace pid %d: %zu records, prog %u insns in %u chunks, perf fd %d at 0x%llx, "
		"%zu tracked closes at exit",
		bpid, c.n, load->insn_cnt, load->chunk_cnt, perf->result,
		(unsigned long long)perf->offset, closes);

	/* The probe really fired: bpftrace printed a non-zero count. */
	fd = open(out_path, O_RDONLY);
	cr_assert_geq(fd, 0);
	cr_assert_gt(read(fd, out, sizeof(out) - 1), 0);
	close(fd);
	unlink(out_path);
	cr_assert_not_null(strstr(out, "@: "), "bpftrace printed: %s", out);
	cr_assert_gt(atol(strstr(out, "@: ") + 3), 0, "bpftrace printed: %s", out);

	cr_assert_eq(c.lost, 0);
	monitor_reader__free(r);
	collector_free(&c);
}

/* ---- programs loaded here ---- */

static struct bpf_insn *counting_prog(size_t n)
{
	struct bpf_insn *insns = calloc(n, sizeof(*insns));

	cr_assert_not_null(insns);
	insns[0] = (struct bpf_insn){ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 0, .imm = 0 };
	for (size_t i = 1; i < n - 1; i++)
		insns[i] = (struct bpf_insn){ .code = BPF_ALU64 | BPF_ADD | BPF_K, .imm = 1 };
	insns[n - 1] = (struct bpf_insn){ .code = BPF_JMP | BPF_EXIT };
	return insns;
}

/* Loads the program in a child (the reader ignores its own process), closes it, exits. */
static pid_t load_in_child(const struct bpf_insn *insns, size_t n, int *prog_fd)
{
	int pipefd[2], fd = -1, status;
	pid_t pid;

	cr_assert_eq(pipe(pipefd), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		LIBBPF_OPTS(bpf_prog_load_opts, o);

		fd = bpf_prog_load(BPF_PROG_TYPE_SOCKET_FILTER, "monitor_big", "GPL", insns, n, &o);
		if (write(pipefd[1], &fd, sizeof(fd)) != sizeof(fd))
			_exit(2);
		if (fd >= 0)
			close(fd);
		_exit(fd >= 0 ? 0 : 1);
	}
	close(pipefd[1]);
	cr_assert_eq(read(pipefd[0], &fd, sizeof(fd)), sizeof(fd));
	close(pipefd[0]);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "load of %zu insns failed: %d", n,
		  fd);
	*prog_fd = fd;
	return pid;
}

static void check_loaded_stream(size_t n, double *load_s)
{
	struct bpf_insn *insns = counting_prog(n);
	struct collector c = {};
	struct monitor_reader *r = reader_new(&c);
	const struct monitor_prog_load *load = NULL;
	bool closed = false;
	uint64_t *got;
	double t0;
	int fd;
	pid_t pid;

	t0 = now_s();
	pid = load_in_child(insns, n, &fd);
	if (load_s)
		*load_s = now_s() - t0;
	pump_until_exit(r, &c, pid, 30);

	for (size_t i = 0; i < c.n; i++) {
		const struct monitor_prog_load *e = (const void *)c.recs[i];

		if (e->hdr.type == MONITOR_EV_PROG_LOAD && e->hdr.pid == (uint32_t)pid) {
			cr_assert_null(load, "one load expected");
			load = e;
		}
		if (c.recs[i]->type == MONITOR_EV_CLOSE && c.recs[i]->pid == (uint32_t)pid &&
		    ((const struct monitor_close *)c.recs[i])->fd == fd)
			closed = true;
	}
	cr_assert_not_null(load, "no PROG_LOAD from pid %d", pid);
	cr_assert_eq(load->result, fd);
	cr_assert_eq(load->prog_type, BPF_PROG_TYPE_SOCKET_FILTER);
	cr_assert_str_eq(load->prog_name, "monitor_big");
	cr_assert_eq(load->insn_cnt, n);
	cr_assert(load->flags & MONITOR_PROG_INSNS_COMPLETE, "flags 0x%x", load->flags);
	cr_assert_eq(load->chunk_cnt, (n + MONITOR_INSNS_PER_CHUNK - 1) / MONITOR_INSNS_PER_CHUNK);
	got = assemble(&c, load);
	cr_assert_not_null(got);
	cr_assert_eq(memcmp(got, insns, n * sizeof(*insns)), 0, "instruction stream differs");
	cr_assert(closed, "close(%d) not reported", fd);
	cr_assert_eq(c.lost, 0);
	free(got);
	free(insns);
	monitor_reader__free(r);
	collector_free(&c);
}

Test(monitor, large_program, .timeout = 60)
{
	check_loaded_stream(10000, NULL);
}

/* The kernel's own limit: the largest program a privileged caller may load. */
Test(monitor, largest_program, .timeout = 120)
{
	double load_s;

	check_loaded_stream(MONITOR_MAX_INSNS, &load_s);
	cr_log_info("captured a %d-insn program (load + capture %.2f s)", MONITOR_MAX_INSNS,
		    load_s);
}

/* The reader's own process is never reported. */
Test(monitor, ignores_self, .timeout = 30)
{
	struct collector c = {};
	struct monitor_reader *r = reader_new(&c);
	int fd;

	fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "monitor_self", 4, 8, 1, NULL);
	cr_assert_geq(fd, 0);
	close(fd);
	pump(r, 0.3);
	for (size_t i = 0; i < c.n; i++)
		cr_assert_neq(c.recs[i]->pid, (uint32_t)getpid(), "own %s reported",
			      monitor_event_type_name(c.recs[i]->type));
	monitor_reader__free(r);
	collector_free(&c);
}

/* The program given to the links below (kprobe type; the attach type matters for uprobe_multi). */
static int load_ret0(enum bpf_attach_type expected)
{
	const struct bpf_insn insns[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 0, .imm = 0 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	LIBBPF_OPTS(bpf_prog_load_opts, o, .expected_attach_type = expected);

	return bpf_prog_load(BPF_PROG_TYPE_KPROBE, "monitor_link", "GPL", insns, 2, &o);
}

#define MONITOR_TEST_COOKIE 0x1234567890ull
#define BPF_TRACE_UPROBE_MULTI_ 48 /* not in Debian's 6.1 UAPI headers */

/* bpf_attr.link_create for BPF_TRACE_UPROBE_MULTI (6.6+), laid out by hand for the same reason. */
struct uprobe_multi_attr {
	__u32 prog_fd, target_fd, attach_type, flags;
	__u64 path, offsets, ref_ctr_offsets, cookies;
	__u32 cnt, um_flags, pid;
};

/*
 * What libbpf does for a uprobe (perf_event_open, then BPF_LINK_CREATE with BPF_PERF_EVENT and a
 * cookie), a uprobe_multi link, and a BTF load; in a child, whose fds are reported back.
 */
static pid_t link_in_child(const char *path, const uint64_t offs[2], int fds[4])
{
	int pipefd[2], status;
	pid_t pid;

	cr_assert_eq(pipe(pipefd), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		LIBBPF_OPTS(bpf_link_create_opts, lo, .perf_event.bpf_cookie = MONITOR_TEST_COOKIE);
		struct perf_event_attr pa = {
			.type = uprobe_pmu_type(),
			.size = sizeof(pa),
			.config = 1, /* uretprobe */
			.config1 = (uintptr_t)path,
			.config2 = offs[0],
		};
		uint64_t cookies[2] = { 7, 8 };
		struct uprobe_multi_attr ua = {
			.attach_type = BPF_TRACE_UPROBE_MULTI_,
			.path = (uintptr_t)path,
			.offsets = (uintptr_t)offs,
			.cookies = (uintptr_t)cookies,
			.cnt = 2,
		};
		struct btf *btf = btf__new_empty();
		int out[4];

		out[0] = syscall(__NR_perf_event_open, &pa, -1, 0, -1, PERF_FLAG_FD_CLOEXEC);
		out[1] = bpf_link_create(load_ret0(BPF_PERF_EVENT), out[0], BPF_PERF_EVENT, &lo);
		ua.prog_fd = load_ret0(BPF_TRACE_UPROBE_MULTI_);
		out[2] = syscall(__NR_bpf, BPF_LINK_CREATE, &ua, sizeof(ua));
		if (out[2] < 0)
			out[2] = -errno;
		out[3] = btf && btf__add_int(btf, "int", 4, BTF_INT_SIGNED) > 0 ?
				 btf__load_into_kernel(btf) :
				 -EINVAL;
		if (!out[3])
			out[3] = btf__fd(btf);
		if (write(pipefd[1], out, sizeof(out)) != sizeof(out))
			_exit(2);
		_exit(0);
	}
	close(pipefd[1]);
	cr_assert_eq(read(pipefd[0], fds, 4 * sizeof(int)), 4 * (ssize_t)sizeof(int));
	close(pipefd[0]);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	return pid;
}

Test(monitor, links_and_btf, .timeout = 60)
{
	const char *target = target_path();
	const uint64_t offs[2] = {
		symbol_file_offset(target, "monitor_target_fn"),
		symbol_file_offset(target, "main"),
	};
	const struct monitor_link_create *perf_link = NULL, *multi = NULL;
	const struct monitor_perf_open *perf = NULL;
	const struct monitor_btf_load *btf = NULL;
	struct collector c = {};
	struct monitor_reader *r = reader_new(&c);
	int fds[4];
	pid_t pid;

	pid = link_in_child(target, offs, fds);
	pump_until_exit(r, &c, pid, 10);
	cr_assert_geq(fds[0], 0, "perf_event_open: %s", strerror(errno));
	cr_assert_geq(fds[1], 0, "BPF_LINK_CREATE(BPF_PERF_EVENT): %d", fds[1]);
	cr_assert_geq(fds[3], 0, "BTF load: %d", fds[3]);

	for (size_t i = 0; i < c.n; i++) {
		const struct monitor_hdr *h = c.recs[i];
		const struct monitor_link_create *l = (const void *)h;

		if (h->pid != (uint32_t)pid)
			continue;
		if (h->type == MONITOR_EV_PERF_OPEN)
			perf = (const void *)h;
		else if (h->type == MONITOR_EV_BTF_LOAD)
			btf = (const void *)h;
		else if (h->type == MONITOR_EV_LINK_CREATE && l->attach_type == BPF_PERF_EVENT)
			perf_link = l;
		else if (h->type == MONITOR_EV_LINK_CREATE)
			multi = l;
	}

	cr_assert_not_null(perf);
	cr_assert_eq(perf->result, fds[0]);
	cr_assert_eq(perf->kind, MONITOR_PERF_UPROBE);
	cr_assert(perf->flags & MONITOR_PERF_RETPROBE);
	cr_assert_eq(perf->offset, offs[0]);
	cr_assert_str_eq(perf->path, target);
	cr_assert_eq(perf->open_flags, PERF_FLAG_FD_CLOEXEC);

	cr_assert_not_null(perf_link);
	cr_assert_eq(perf_link->result, fds[1]);
	cr_assert_eq(perf_link->target_fd, (uint32_t)fds[0]);
	cr_assert_eq(perf_link->bpf_cookie, MONITOR_TEST_COOKIE);

	cr_assert_not_null(multi);
	cr_log_info("uprobe_multi link: result %d", multi->result);
	cr_assert_eq(multi->result, fds[2]);
	cr_assert_eq(multi->attach_type, BPF_TRACE_UPROBE_MULTI_);
	cr_assert_eq(multi->flags & (MONITOR_LINK_UPROBE_MULTI | MONITOR_LINK_COOKIES |
				     MONITOR_LINK_REF_CTR | MONITOR_LINK_TRUNCATED),
		     MONITOR_LINK_UPROBE_MULTI | MONITOR_LINK_COOKIES);
	cr_assert_str_eq(multi->um_path, target);
	cr_assert_eq(multi->um_cnt, 2);
	cr_assert_eq(multi->um_captured, 2);
	cr_assert_eq(multi->tail[0], offs[0]);
	cr_assert_eq(multi->tail[1], offs[1]);
	cr_assert_eq(multi->tail[2], 7);
	cr_assert_eq(multi->tail[3], 8);

	cr_assert_not_null(btf);
	cr_assert_eq(btf->result, fds[3]);
	cr_assert_gt(btf->btf_size, 0);

	monitor_reader__free(r);
	collector_free(&c);
}

/* Above the configured limit: the load is reported as too large, with no chunks at all. */
Test(monitor, too_large_flagged, .timeout = 60)
{
	struct monitor_reader_opts opts = { .sz = sizeof(opts),
					    .lost = collect_lost,
					    .max_insns = 1000 };
	struct bpf_insn *insns = counting_prog(1001);
	const struct monitor_prog_load *load = NULL;
	struct collector c = {};
	struct monitor_reader *r = monitor_reader__new(collect, &c, &opts);
	int fd;
	pid_t pid;

	cr_assert_not_null(r, "%s", strerror(errno));
	pid = load_in_child(insns, 1001, &fd);
	pump_until_exit(r, &c, pid, 10);
	for (size_t i = 0; i < c.n; i++) {
		if (c.recs[i]->pid != (uint32_t)pid)
			continue;
		cr_assert_neq(c.recs[i]->type, MONITOR_EV_PROG_INSNS);
		if (c.recs[i]->type == MONITOR_EV_PROG_LOAD)
			load = (const void *)c.recs[i];
	}
	cr_assert_not_null(load);
	cr_assert_eq(load->insn_cnt, 1001);
	cr_assert_eq(load->chunk_cnt, 0);
	cr_assert_eq(load->flags & (MONITOR_PROG_TOO_LARGE | MONITOR_PROG_INSNS_COMPLETE),
		     MONITOR_PROG_TOO_LARGE);
	free(insns);
	monitor_reader__free(r);
	collector_free(&c);
}

/* ---- throughput and loss ---- */

struct counter {
	pid_t pid;
	uint64_t mine, all, lost;
};

static int count_ioctls(void *ctx, const struct monitor_hdr *ev, size_t size)
{
	struct counter *c = ctx;

	c->all++;
	if (ev->type == MONITOR_EV_PERF_IOCTL && ev->pid == (uint32_t)c->pid)
		c->mine++;
	return 0;
}

static void count_lost(void *ctx, uint64_t first_seq, uint64_t cnt)
{
	((struct counter *)ctx)->lost += cnt;
}

/* A child making n cheap monitored syscalls: PERF_EVENT_IOC_ENABLE on a bad fd. */
static pid_t ioctl_storm(long n)
{
	pid_t pid = fork();

	cr_assert_geq(pid, 0);
	if (pid == 0) {
		for (long i = 0; i < n; i++)
			ioctl(-1, PERF_EVENT_IOC_ENABLE, 0);
		_exit(0);
	}
	return pid;
}

Test(monitor, throughput, .timeout = 120)
{
	struct monitor_reader_opts opts = { .sz = sizeof(opts), .lost = count_lost };
	struct counter c = {};
	struct monitor_reader_stats st;
	struct monitor_reader *r = monitor_reader__new(count_ioctls, &c, &opts);
	const long n = 150000; /* 80 bytes each: fits the default 16 MiB ring */
	double t0, t;
	int got;

	cr_assert_not_null(r, "%s", strerror(errno));

	/* Reader alone: drain a ring filled while nobody read it. */
	c.pid = ioctl_storm(n);
	waitpid(c.pid, NULL, 0);
	t0 = now_s();
	got = monitor_reader__consume(r);
	t = now_s() - t0;
	cr_assert_geq(got, n);
	cr_assert_eq(c.mine, n, "%llu of %ld", (unsigned long long)c.mine, n);
	cr_log_info("reader: %d records drained in %.3f s: %.2f M records/s", got, t,
		    got / t / 1e6);

	/* Producer and reader together. */
	c.mine = 0;
	t0 = now_s();
	c.pid = ioctl_storm(1000000);
	while (waitpid(c.pid, NULL, WNOHANG) == 0)
		cr_assert_geq(monitor_reader__poll(r, 10), 0);
	cr_assert_geq(monitor_reader__consume(r), 0);
	t = now_s() - t0;
	cr_assert_eq(monitor_reader__stats(r, &st), 0);
	cr_log_info("live: %llu records in %.3f s: %.2f M records/s, %llu dropped",
		    (unsigned long long)c.mine, t, c.mine / t / 1e6,
		    (unsigned long long)st.dropped);
	cr_assert_eq(c.mine + st.dropped >= 1000000, true);
	cr_assert_eq(st.invalid, 0);
	monitor_reader__free(r);
}

/* A ring too small for a burst: every record the kernel dropped is reported lost, exactly. */
Test(monitor, loss_detected, .timeout = 60)
{
	struct monitor_reader_opts opts = { .sz = sizeof(opts),
					    .lost = count_lost,
					    .ringbuf_size = 64 << 10 };
	struct counter c = {};
	struct monitor_reader_stats st;
	struct monitor_reader *r = monitor_reader__new(count_ioctls, &c, &opts);
	const long n = 20000;
	pid_t late;

	cr_assert_not_null(r, "%s", strerror(errno));
	c.pid = ioctl_storm(n);
	waitpid(c.pid, NULL, 0);
	cr_assert_geq(monitor_reader__consume(r), 0);
	cr_assert_gt(monitor_reader__dropped(r), 0, "the burst fit: nothing to detect");
	cr_assert_lt(c.mine, n);

	/* Drops at the very end show as a gap only once a later record arrives. */
	late = ioctl_storm(1);
	waitpid(late, NULL, 0);
	cr_assert_geq(monitor_reader__poll(r, 100), 0);

	cr_assert_eq(monitor_reader__stats(r, &st), 0);
	cr_log_info("burst of %ld: %llu delivered, %llu dropped, %llu reported lost", n,
		    (unsigned long long)c.mine, (unsigned long long)st.dropped,
		    (unsigned long long)st.lost);
	cr_assert_eq(st.lost, st.dropped);
	cr_assert_eq(c.lost, st.lost);
	cr_assert_geq(c.mine + st.dropped, n);
	cr_assert_eq(st.invalid, 0);
	monitor_reader__free(r);
}

/* ---- the reader's bounds checks, on records made up here ---- */

Test(monitor, record_checks)
{
	union {
		struct monitor_prog_insns ch;
		struct monitor_link_create link;
		uint8_t buf[sizeof(struct monitor_link_create) + 3 * 8 * MONITOR_UPROBE_MULTI_MAX];
	} u;
	struct monitor_prog_load load = {
		.hdr = { .type = MONITOR_EV_PROG_LOAD, .size = sizeof(load), .seq = 1 },
		.insn_cnt = 1000,
		.chunk_cnt = 2,
		.flags = MONITOR_PROG_INSNS_COMPLETE,
	};
	struct monitor_close cl = {
		.hdr = { .type = MONITOR_EV_CLOSE, .size = sizeof(cl), .seq = 1, .comm = "x" },
	};

	cr_assert_eq(monitor_record_check(&cl, sizeof(cl)), 0);
	cr_assert_eq(monitor_record_check(&cl, sizeof(cl) - 1), -EBADMSG); /* size != length */
	cr_assert_eq(monitor_record_check(&cl, 8), -EBADMSG); /* shorter than a header */
	cl.hdr.type = MONITOR_EV_MAX;
	cr_assert_eq(monitor_record_check(&cl, sizeof(cl)), -EBADMSG); /* unknown type */
	cl.hdr.type = MONITOR_EV_CLOSE;
	memset(cl.hdr.comm, 'a', sizeof(cl.hdr.comm));
	cr_assert_eq(monitor_record_check(&cl, sizeof(cl)), -EBADMSG); /* comm not terminated */

	cr_assert_eq(monitor_record_check(&load, sizeof(load)), 0);
	load.chunk_cnt = 3; /* more chunks than 1000 insns need */
	cr_assert_eq(monitor_record_check(&load, sizeof(load)), -EBADMSG);
	load.chunk_cnt = 1; /* complete, yet short of a chunk */
	cr_assert_eq(monitor_record_check(&load, sizeof(load)), -EBADMSG);
	load.flags = 0;
	cr_assert_eq(monitor_record_check(&load, sizeof(load)), 0);
	memset(load.license, 'G', sizeof(load.license));
	cr_assert_eq(monitor_record_check(&load, sizeof(load)), -EBADMSG);

	memset(&u, 0, sizeof(u));
	u.ch.hdr = (struct monitor_hdr){ .type = MONITOR_EV_PROG_INSNS, .seq = 2 };
	u.ch.chunk = 1;
	u.ch.insn_off = MONITOR_INSNS_PER_CHUNK;
	u.ch.insn_cnt = 10;
	u.ch.total_cnt = MONITOR_INSNS_PER_CHUNK + 10;
	u.ch.hdr.size = sizeof(u.ch) + 10 * 8;
	cr_assert_eq(monitor_record_check(&u, u.ch.hdr.size), 0);
	u.ch.total_cnt--; /* runs past the program */
	cr_assert_eq(monitor_record_check(&u, u.ch.hdr.size), -EBADMSG);
	u.ch.total_cnt++;
	u.ch.insn_off++; /* not where chunk 1 starts */
	cr_assert_eq(monitor_record_check(&u, u.ch.hdr.size), -EBADMSG);
	u.ch.insn_off--;
	u.ch.insn_cnt = 11; /* more than the record holds */
	cr_assert_eq(monitor_record_check(&u, u.ch.hdr.size), -EBADMSG);
	u.ch.insn_cnt = MONITOR_INSNS_PER_CHUNK + 1;
	u.ch.hdr.size = sizeof(u.ch) + u.ch.insn_cnt * 8;
	cr_assert_eq(monitor_record_check(&u, u.ch.hdr.size), -EBADMSG);

	memset(&u, 0, sizeof(u));
	u.link.hdr = (struct monitor_hdr){ .type = MONITOR_EV_LINK_CREATE, .seq = 3 };
	u.link.flags = MONITOR_LINK_UPROBE_MULTI | MONITOR_LINK_COOKIES;
	u.link.um_cnt = 4;
	u.link.um_captured = 4;
	u.link.hdr.size = sizeof(u.link) + 2 * 4 * 8;
	cr_assert_eq(monitor_record_check(&u, u.link.hdr.size), 0);
	u.link.flags |= MONITOR_LINK_REF_CTR; /* a third array the record does not hold */
	cr_assert_eq(monitor_record_check(&u, u.link.hdr.size), -EBADMSG);
	u.link.flags &= ~MONITOR_LINK_REF_CTR;
	u.link.um_captured = 5; /* more than um_cnt */
	cr_assert_eq(monitor_record_check(&u, u.link.hdr.size), -EBADMSG);
	u.link.um_captured = 4;
	memset(u.link.um_path, '/', sizeof(u.link.um_path));
	cr_assert_eq(monitor_record_check(&u, u.link.hdr.size), -EBADMSG);
}

/* ---- skip when the machine cannot run this ---- */

static const char *missing_feature(void)
{
	static char why[256];
	struct stat st;

	if (geteuid() != 0)
		return "needs root";
	if (access("/sys/kernel/btf/vmlinux", R_OK))
		return "no kernel BTF (/sys/kernel/btf/vmlinux)";
	if (stat("/sys/kernel/tracing/events/syscalls/sys_enter_bpf", &st) &&
	    mount("nodev", "/sys/kernel/tracing", "tracefs", 0, NULL) && errno != EBUSY) {
		snprintf(why, sizeof(why), "cannot mount tracefs: %s", strerror(errno));
		return why;
	}
	if (stat("/sys/kernel/tracing/events/syscalls/sys_enter_bpf", &st))
		return "no syscall tracepoints (CONFIG_FTRACE_SYSCALLS)";
	if (system("command -v bpftrace >/dev/null 2>&1"))
		return "bpftrace is not installed";
	return NULL;
}

int main(int argc, char *argv[])
{
	struct criterion_test_set *tests;
	const char *why = missing_feature();
	int result = 0;

	if (why) {
		printf("SKIP: %s\n", why);
		return 77;
	}
	tests = criterion_initialize();
	if (criterion_handle_args(argc, argv, true))
		result = !criterion_run_all_tests(tests);
	criterion_finalize(tests);
	return result;
}

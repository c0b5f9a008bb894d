// SPDX-License-Identifier: MIT
/*
 * libbpftime-agent.so: the agent inside a traced process. Its one exported
 * symbol, bpftime_agent_main(socket), is called by the daemon right after it
 * injected the library (or from the constructor under LD_PRELOAD, when
 * $BPFTIME_AGENT_SOCKET is set). It connects to the daemon, checks that the
 * peer is root, says HELLO and serves the daemon's requests from its own
 * thread: LOAD (a program with the tool's map fds), ATTACH (a hook on a
 * probe site of a mapped file running that program), DETACH, UNLOAD, BYE.
 * LOAD and ATTACH are answered with DONE or ERROR. Its probes' hits are
 * counted in the status page the daemon hands it (STATS, shm/agentstat.h),
 * where the daemon reads them without asking. When the daemon goes
 * away every hook is taken out (the kernel's breakpoints put back) and
 * every program unloaded, and the agent sleeps until called again.
 *
 * Hooks whose patch spans several instructions need every thread stopped,
 * which only the daemon can do: those ATTACHes are refused with the reason
 * and the kernel keeps serving that probe.
 */
#include <errno.h>
#include <linux/bpf.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "agentstat.h"
#include "grace.h"
#include "hook.h"
#include "prog.h"
#include "proto.h"

#define MAX_PROGS 256
#define MAX_ATTACH SHM_AGENTSTAT_ATTACH
#define MAX_SITES SHM_AGENTSTAT_SITES
#define SITE_PROGS 16
#define RECV_MAX (PROTO_MAX_MSG)

struct loaded {
	uint32_t id; /* the daemon's handle; 0: free */
	struct agent_prog *prog;
	int fds[PROTO_MAX_MAPS + 3];
	int nfds;
};

/* The programs that run at a site, as the hook path sees them: never changed in place. */
struct site_progs {
	unsigned int n;
	struct {
		struct agent_prog *prog;
		uint32_t attach;
		uint64_t cookie;
		bool ret;
	} p[SITE_PROGS];
};

/*
 * One hooked address and the programs that run there. A change is written
 * into the buffer the hook path does not use, published, and waited out
 * (grace.h) before the next one, so readers never see a half-made list.
 * Its counters are those of the same index in the status page.
 */
struct site {
	uint64_t addr;
	struct hook *hook;
	struct site_progs buf[2];
	struct site_progs *live;
};
/* How long a change waits for threads still running the old programs. */
#define GRACE_TIMEOUT_NS 2000000000ULL

struct attachment {
	uint32_t id; /* 0: free */
	struct site *site;
	uint16_t *semaphore;
	/* Waiting for the daemon to stop the other threads; the ATTACH's seq. */
	bool stopping;
	uint32_t seq;
};

static struct {
	pthread_mutex_t lock;
	int sock;
	bool running;
	/*
	 * A grace period timed out once: a thread may still run any program,
	 * so none is freed any more (their memory and fds are kept).
	 */
	bool leaky;
	pthread_t thread;
	struct loaded progs[MAX_PROGS];
	struct attachment attach[MAX_ATTACH];
	struct site sites[MAX_SITES];
	/* Where the hook path counts: the daemon's page, or our own until it comes. */
	struct shm_agentstat *stat;
	bool stat_shared;
	uint32_t probes;
	uint8_t *buf;
} agent = { .lock = PTHREAD_MUTEX_INITIALIZER, .sock = -1 };

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void run_site(struct site *s, struct pt_regs *regs, bool ret)
{
	unsigned int grace = grace__enter();
	const struct site_progs *progs = __atomic_load_n(&s->live, __ATOMIC_ACQUIRE);
	struct agent_probe_info info = { .func_ip = s->addr };
	struct shm_agentstat_site *c =
		&__atomic_load_n(&agent.stat, __ATOMIC_RELAXED)->sites[s - agent.sites];
	/* A call is one hit, at its entry (where a return probe starts too). */
	uint64_t run = __atomic_fetch_add(ret ? &c->returns : &c->hits, 1, __ATOMIC_RELAXED);
	uint64_t start = run % SHM_AGENTSTAT_SAMPLE ? 0 : now_ns();
	uint64_t r0;

	for (unsigned int i = 0; i < progs->n; i++) {
		if (progs->p[i].ret != ret)
			continue;
		info.cookie = progs->p[i].cookie;
		if (agent_prog__run(progs->p[i].prog, regs, &info, &r0) < 0)
			__atomic_add_fetch(&c->errors, 1, __ATOMIC_RELAXED);
	}
	if (start) {
		__atomic_add_fetch(ret ? &c->ret_sampled_ns : &c->sampled_ns, now_ns() - start,
				   __ATOMIC_RELAXED);
		__atomic_add_fetch(ret ? &c->ret_samples : &c->samples, 1, __ATOMIC_RELAXED);
	}
	grace__exit(grace);
}

/*
 * What a hook's callbacks get: its site and the hook. A retired hook whose
 * jump stays in the code (one over several instructions) still calls back;
 * only the site's current hook runs its programs.
 */
struct hook_ref {
	struct site *site;
	struct hook *hook;
};

static void on_entry(void *user, struct pt_regs *regs)
{
	struct hook_ref *ref = user;

	if (__atomic_load_n(&ref->site->hook, __ATOMIC_ACQUIRE) == ref->hook)
		run_site(ref->site, regs, false);
}

static void on_return(void *user, struct pt_regs *regs)
{
	struct hook_ref *ref = user;

	if (__atomic_load_n(&ref->site->hook, __ATOMIC_ACQUIRE) == ref->hook)
		run_site(ref->site, regs, true);
}

static int reply_error(uint32_t seq, int err, enum proto_type ref, uint32_t id, const char *fmt,
		       ...) __attribute__((format(printf, 5, 6)));

static int reply_error(uint32_t seq, int err, enum proto_type ref, uint32_t id, const char *fmt,
		       ...)
{
	struct proto_msg m = { .type = PROTO_ERROR, .seq = seq };
	uint8_t out[PROTO_MAX_TEXT + 64];
	char text[PROTO_MAX_TEXT];
	va_list ap;
	ssize_t n;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	m.error.fixed = (struct proto_error_fixed){ .err = err > 0 ? err : EINVAL,
						    .ref_type = (uint16_t)ref, .ref_id = id,
						    .text_len = (uint32_t)strlen(text) };
	m.error.text = text;
	n = proto_msg__encode(&m, out, sizeof(out));
	return n < 0 ? (int)n : proto_send(agent.sock, out, (size_t)n, NULL, 0);
}

static void reply_done(uint32_t seq, enum proto_type ref, uint32_t id)
{
	struct proto_msg m = { .type = PROTO_DONE, .seq = seq };
	uint8_t out[64];
	ssize_t n;

	m.done = (struct proto_done_fixed){ .ref_type = (uint16_t)ref, .ref_id = id };
	n = proto_msg__encode(&m, out, sizeof(out));
	if (n > 0)
		proto_send(agent.sock, out, (size_t)n, NULL, 0);
}

static struct loaded *find_prog(uint32_t id)
{
	for (int i = 0; i < MAX_PROGS; i++)
		if (agent.progs[i].id == id)
			return &agent.progs[i];
	return NULL;
}

static void handle_load(const struct proto_msg *m, const int *fds, size_t nfds)
{
	const struct proto_load_fixed *f = &m->load.fixed;
	struct agent_map_spec specs[PROTO_MAX_MAPS];
	int tool_fds[PROTO_MAX_MAPS];
	struct agent_prog_spec spec = {
		.insn_cnt = f->insn_cnt,
		.maps = specs,
		.tool_map_fds = tool_fds,
		.map_cnt = f->map_cnt,
		.ringbuf_output_prog_fd = f->ringbuf_prog_fd == PROTO_NO_FD ? -1
									     : fds[f->ringbuf_prog_fd],
		.perf_output_prog_fd = f->perf_prog_fd == PROTO_NO_FD ? -1 : fds[f->perf_prog_fd],
		.trace_printk_prog_fd = f->printk_prog_fd == PROTO_NO_FD ? -1
									  : fds[f->printk_prog_fd],
		.jit = f->flags & PROTO_LOAD_JIT,
	};
	char err[AGENT_ERRMSG_SIZE];
	struct ebpf_insn *insns;
	struct loaded *slot;
	int r;

	if (find_prog(f->prog)) {
		reply_error(m->seq, EEXIST, PROTO_LOAD, f->prog, "program %u is already loaded",
			    f->prog);
		goto close_fds;
	}
	slot = find_prog(0);
	if (!slot) {
		reply_error(m->seq, ENOSPC, PROTO_LOAD, f->prog, "%d programs loaded already",
			    MAX_PROGS);
		goto close_fds;
	}
	for (uint32_t i = 0; i < f->map_cnt; i++) {
		struct proto_map pm;

		proto_load__map(m, i, &pm);
		specs[i] = (struct agent_map_spec){
			.fd = fds[pm.fd_index], .id = pm.id, .type = pm.type,
			.key_size = pm.key_size, .value_size = pm.value_size,
			.max_entries = pm.max_entries, .flags = pm.flags,
		};
		if (pm.type == BPF_MAP_TYPE_CGROUP_ARRAY && f->cgroup_prog_fd != PROTO_NO_FD)
			specs[i].output_prog_fd = fds[f->cgroup_prog_fd];
		if (pm.delta_fd)
			specs[i].delta_fd = fds[pm.delta_fd - 1];
		/* fd 0 may be a lock: a process with stdin closed gets it. */
		specs[i].lock_fd = pm.lock_fd ? fds[pm.lock_fd - 1] : -1;
		tool_fds[i] = pm.tool_fd;
	}
	/* The instructions may sit unaligned in the datagram. */
	insns = malloc((size_t)f->insn_cnt * sizeof(*insns));
	if (!insns) {
		reply_error(m->seq, ENOMEM, PROTO_LOAD, f->prog, "out of memory");
		goto close_fds;
	}
	memcpy(insns, m->load.insns, (size_t)f->insn_cnt * sizeof(*insns));
	spec.insns = insns;
	r = agent_prog__load(&spec, &slot->prog, err);
	free(insns);
	if (r < 0) {
		reply_error(m->seq, -r, PROTO_LOAD, f->prog, "%s", err);
		goto close_fds;
	}
	slot->id = f->prog;
	slot->nfds = (int)nfds;
	memcpy(slot->fds, fds, nfds * sizeof(int));
	reply_done(m->seq, PROTO_LOAD, f->prog);
	return;
close_fds:
	for (size_t i = 0; i < nfds; i++)
		close(fds[i]);
}

/*
 * Where a file offset of a mapped file is in this process: in an executable
 * mapping, or else a writable one (0: not mapped so).
 */
static uint64_t map_address(uint64_t dev, uint64_t ino, uint64_t offset, bool exec)
{
	char line[4096], perms[8];
	unsigned long long start, end, off, inode;
	unsigned int maj, min;
	uint64_t addr = 0;
	FILE *f = fopen("/proc/self/maps", "re");

	while (f && !addr && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%llx-%llx %7s %llx %x:%x %llu", &start, &end, perms, &off, &maj,
			   &min, &inode) != 7)
			continue;
		if (inode != ino || makedev(maj, min) != dev || (exec && perms[2] != 'x') ||
		    (!exec && perms[1] != 'w'))
			continue;
		if (offset >= off && offset < off + (end - start))
			addr = start + (offset - off);
	}
	if (f)
		fclose(f);
	return addr;
}

static struct site *get_site(uint64_t addr)
{
	struct site *free_site = NULL;

	for (int i = 0; i < MAX_SITES; i++) {
		if (agent.sites[i].addr == addr)
			return &agent.sites[i];
		if (!agent.sites[i].addr && !free_site)
			free_site = &agent.sites[i];
	}
	if (!free_site)
		return NULL;
	/* Field by field: a late thread of its last use may still look at it. */
	free_site->hook = NULL;
	free_site->buf[0].n = 0;
	__atomic_store_n(&free_site->live, &free_site->buf[0], __ATOMIC_RELEASE);
	memset(&agent.stat->sites[free_site - agent.sites], 0, sizeof(agent.stat->sites[0]));
	__atomic_store_n(&free_site->addr, addr, __ATOMIC_RELEASE);
	return free_site;
}

/* The buffer the hook path does not use, filled with the live list. */
static struct site_progs *site_next(struct site *s)
{
	struct site_progs *next = s->live == &s->buf[0] ? &s->buf[1] : &s->buf[0];

	*next = *s->live;
	return next;
}

/* Makes next the live list and waits until no thread runs the old one. */
static void site_publish(struct site *s, struct site_progs *next)
{
	__atomic_store_n(&s->live, next, __ATOMIC_RELEASE);
	if (!grace__wait(GRACE_TIMEOUT_NS))
		agent.leaky = true;
}

static int hook_site(struct site *s, const struct proto_attach_fixed *f, uint64_t addr,
		     char *err)
{
	/* Never freed: a retired hook keeps its trampoline, and the trampoline its ref. */
	struct hook_ref *ref = malloc(sizeof(*ref));
	struct hook_ops ops = { .entry = on_entry, .ret = on_return, .user = ref };
	struct hook_site hs = { .addr = addr, .orig_len = f->orig_len };
	uint64_t func = f->func_size ? map_address(f->dev, f->ino, f->func_offset, true) : 0;
	int r;

	memcpy(hs.orig, f->orig, f->orig_len);
	if (func) {
		hs.func_start = func;
		hs.func_end = func + f->func_size;
		hs.prev_end = f->prev_end ? func - (f->func_offset - f->prev_end) : 0;
		hs.next_start = f->next_start ? func + (f->next_start - f->func_offset) : 0;
	}
	if (!ref) {
		snprintf(err, HOOK_ERRMSG_SIZE, "out of memory");
		return -ENOMEM;
	}
	ref->site = s;
	ref->hook = hook__new(&hs, &ops, err);
	if (!ref->hook) {
		r = -errno;
		free(ref);
		return r;
	}
	__atomic_store_n(&s->hook, ref->hook, __ATOMIC_RELEASE);
	/* Returns are taken over only where a return probe is attached. */
	hook__set_return(s->hook, f->kind == PROTO_PROBE_RETURN);
	/* -EBUSY: several instructions change; the hook waits for the threads to stop. */
	r = hook__enable(s->hook, 0);
	if (r < 0 && r != -EBUSY) {
		snprintf(err, HOOK_ERRMSG_SIZE, "cannot patch 0x%llx: %s",
			 (unsigned long long)addr, strerror(-r));
		hook__free(s->hook);
		s->hook = NULL;
	}
	return r;
}

/* Asks the daemon to stop every thread but this one around a's patch. */
static int send_stop(const struct attachment *a)
{
	struct proto_msg m = { .type = PROTO_STOP };
	uint64_t lo = hook__patch_addr(a->site->hook);
	uint8_t out[128];
	ssize_t n;

	m.stop = (struct proto_stop_fixed){ .attach = a->id,
					    .tid = (int32_t)syscall(SYS_gettid),
					    .lo = lo,
					    .hi = lo + hook__patch_len(a->site->hook) };
	n = proto_msg__encode(&m, out, sizeof(out));
	return n < 0 ? (int)n : proto_send(agent.sock, out, (size_t)n, NULL, 0);
}

static void detach(struct attachment *a, unsigned int hook_flags);

/* The status page lists each attachment with its site, and how many there are. */
static void count_attachment(const struct attachment *a, bool in)
{
	struct shm_agentstat_attach *e = &agent.stat->attach[a - agent.attach];

	e->site = in ? (uint32_t)(a->site - agent.sites) : 0;
	__atomic_store_n(&e->id, in ? a->id : 0, __ATOMIC_RELEASE);
	agent.probes += in ? 1 : -1;
	agent.stat->probes = agent.probes;
	agent.stat->state = agent.probes ? SHM_AGENT_SERVING : SHM_AGENT_CONNECTED;
}

static void handle_attach(const struct proto_msg *m)
{
	const struct proto_attach_fixed *f = &m->attach.fixed;
	struct loaded *lp = find_prog(f->prog);
	struct attachment *a = NULL;
	char err[HOOK_ERRMSG_SIZE];
	struct site_progs *next;
	uint64_t addr;
	struct site *s;
	int r;

	for (int i = 0; i < MAX_ATTACH && !a; i++)
		if (!agent.attach[i].id)
			a = &agent.attach[i];
	if (!lp || !a) {
		reply_error(m->seq, lp ? ENOSPC : ENOENT, PROTO_ATTACH, f->attach,
			    lp ? "too many attachments" : "program %u is not loaded", f->prog);
		return;
	}
	addr = map_address(f->dev, f->ino, f->offset, true);
	if (!addr) {
		reply_error(m->seq, ENOENT, PROTO_ATTACH, f->attach,
			    "%.*s (offset 0x%llx) is not mapped executable here",
			    (int)f->path_len, m->attach.path, (unsigned long long)f->offset);
		return;
	}
	s = get_site(addr);
	if (!s || s->live->n == SITE_PROGS) {
		reply_error(m->seq, ENOSPC, PROTO_ATTACH, f->attach, "too many probes at 0x%llx",
			    (unsigned long long)addr);
		return;
	}
	if (f->ref_ctr_offset) {
		/*
		 * A USDT semaphore: the probe's users are counted in the process's
		 * data; as the kernel, only where that is writable (BCC passes 6).
		 */
		uint64_t sem = map_address(f->dev, f->ino, f->ref_ctr_offset, false);

		if (sem) {
			a->semaphore = (uint16_t *)sem;
			__atomic_add_fetch(a->semaphore, 1, __ATOMIC_RELAXED);
		}
	}
	/* The program first: from the moment the hook is in, every call runs it. */
	next = site_next(s);
	next->p[next->n].prog = lp->prog;
	next->p[next->n].attach = f->attach;
	next->p[next->n].cookie = f->cookie;
	next->p[next->n].ret = f->kind == PROTO_PROBE_RETURN;
	next->n++;
	site_publish(s, next);
	a->id = f->attach;
	a->site = s;
	count_attachment(a, true);
	if (s->hook) {
		if (f->kind == PROTO_PROBE_RETURN)
			hook__set_return(s->hook, true);
		/*
		 * A site hooked already: this attachment's uprobe put the kernel's
		 * breakpoint over the patch; every program there runs here now.
		 */
		hook__repair(s->hook, 0);
		reply_done(m->seq, PROTO_ATTACH, f->attach);
		return;
	}
	r = hook_site(s, f, addr, err);
	if (r == -EBUSY) {
		/* Several instructions change: the daemon stops every other thread first. */
		a->stopping = true;
		a->seq = m->seq;
		r = send_stop(a);
		if (r == 0)
			return;
		snprintf(err, sizeof(err), "cannot ask the daemon to stop the other threads: %s",
			 strerror(-r));
	}
	if (r < 0) {
		detach(a, 0);
		reply_error(m->seq, -r, PROTO_ATTACH, f->attach, "%s", err);
		return;
	}
	reply_done(m->seq, PROTO_ATTACH, f->attach);
}

/*
 * Takes one attachment out: its program stops running at the site. The last
 * one out unhooks; hook_flags say whether the kernel's breakpoint goes back.
 */
static void detach(struct attachment *a, unsigned int hook_flags)
{
	struct site *s = a->site;
	struct site_progs *next = site_next(s);
	bool returns = false;

	/* The last one out unhooks first: until then its program serves every call. */
	if (next->n == 1 && next->p[0].attach == a->id && s->hook) {
		hook__disable(s->hook, hook_flags);
		hook__free(s->hook);
		s->hook = NULL;
	}
	for (unsigned int i = 0; i < next->n; i++) {
		if (next->p[i].attach != a->id)
			continue;
		next->p[i] = next->p[--next->n];
		break;
	}
	site_publish(s, next);
	for (unsigned int i = 0; i < next->n; i++)
		returns |= next->p[i].ret;
	if (s->hook)
		hook__set_return(s->hook, returns);
	if (!next->n)
		s->addr = 0;
	if (a->semaphore)
		__atomic_sub_fetch(a->semaphore, 1, __ATOMIC_RELAXED);
	count_attachment(a, false);
	memset(a, 0, sizeof(*a));
}

/* A program on no site's list any more (detach waited its runs out). */
static void unload(struct loaded *lp)
{
	if (!agent.leaky) {
		agent_prog__free(lp->prog);
		for (int k = 0; k < lp->nfds; k++)
			close(lp->fds[k]);
	}
	memset(lp, 0, sizeof(*lp));
}

/*
 * Without a daemon the kernel must serve again wherever it still has its
 * uprobe; where it has not, the breakpoint costs one trap (text-patch.h).
 * When the daemon vanished (it did not say BYE), no drain program adds
 * what the runs added to additive maps: we do, through bpf().
 */
static void go_dormant(bool flush_deltas)
{
	for (int i = 0; i < MAX_ATTACH; i++)
		if (agent.attach[i].id)
			detach(&agent.attach[i], HOOK_F_KERNEL_BREAKPOINT);
	for (int i = 0; i < MAX_PROGS; i++) {
		if (!agent.progs[i].id)
			continue;
		if (flush_deltas && !agent.leaky)
			agent_prog__flush_deltas(agent.progs[i].prog);
		unload(&agent.progs[i]);
	}
	if (agent.stat)
		agent.stat->state = SHM_AGENT_DORMANT;
}

/*
 * The daemon's status page: counting moves there, before any probe is hooked
 * (STATS comes right after HELLO). A page the hook path may still count
 * into (a straggler of the leaky kind) stays mapped.
 */
static void handle_stats(const struct proto_msg *m, int fd)
{
	struct shm_agentstat *page = shm_agentstat__map(fd), *old;
	int err = errno;

	close(fd);
	if (!page) {
		reply_error(m->seq, err, PROTO_STATS, 0,
			    "cannot map the status page: %s; hits are not counted for the daemon",
			    strerror(err));
		return;
	}
	if (agent.probes) {
		shm_agentstat__unmap(page);
		reply_error(m->seq, EBUSY, PROTO_STATS, 0,
			    "a status page came with %u probes hooked", agent.probes);
		return;
	}
	old = agent.stat;
	__atomic_store_n(&agent.stat, page, __ATOMIC_RELEASE);
	agent.stat_shared = true;
	/* A straggler of an unhooked probe may still count into the old page. */
	if (!grace__wait(GRACE_TIMEOUT_NS))
		agent.leaky = true;
	if (!agent.leaky)
		shm_agentstat__unmap(old);
}

/* The other threads are stopped (or could not be): patch, and answer the ATTACH. */
static void handle_stopped(const struct proto_stopped_fixed *f)
{
	struct attachment *a = NULL;
	int r;

	for (int i = 0; i < MAX_ATTACH && !a; i++)
		if (agent.attach[i].id == f->attach && agent.attach[i].stopping)
			a = &agent.attach[i];
	/* Gone meanwhile: an answer all the same, so the threads go on. */
	if (!a) {
		reply_error(0, ENOENT, PROTO_ATTACH, f->attach, "attachment %u is gone", f->attach);
		return;
	}
	a->stopping = false;
	r = f->err ? -f->err : hook__enable(a->site->hook, HOOK_F_STOPPED);
	if (r == 0) {
		reply_done(a->seq, PROTO_ATTACH, a->id);
		return;
	}
	if (f->err)
		reply_error(a->seq, f->err, PROTO_ATTACH, a->id,
			    "the patch at 0x%llx spans several instructions and the daemon could "
			    "not stop the other threads (%s)",
			    (unsigned long long)hook__patch_addr(a->site->hook), strerror(f->err));
	else
		reply_error(a->seq, -r, PROTO_ATTACH, a->id,
			    "cannot patch 0x%llx with the other threads stopped: %s",
			    (unsigned long long)hook__patch_addr(a->site->hook), strerror(-r));
	detach(a, 0);
}

static void handle(const struct proto_msg *m, const int *fds, size_t nfds)
{
	switch (m->type) {
	case PROTO_LOAD:
		handle_load(m, fds, nfds);
		return;
	case PROTO_ATTACH:
		handle_attach(m);
		return;
	case PROTO_STOPPED:
		handle_stopped(&m->stopped);
		return;
	case PROTO_STATS:
		handle_stats(m, fds[0]);
		return;
	case PROTO_DETACH:
		for (int i = 0; i < MAX_ATTACH; i++)
			if (agent.attach[i].id == m->id.id)
				detach(&agent.attach[i],
				       (m->id.flags & PROTO_DETACH_KERNEL_BREAKPOINT)
					       ? HOOK_F_KERNEL_BREAKPOINT
					       : 0);
		return;
	case PROTO_UNLOAD:
		/* A program still attached somewhere stays until it is detached. */
		for (int i = 0; i < MAX_PROGS; i++) {
			struct loaded *lp = &agent.progs[i];
			bool used = false;

			if (lp->id != m->id.id)
				continue;
			for (int k = 0; k < MAX_SITES; k++)
				for (unsigned int j = 0; agent.sites[k].addr &&
							 j < agent.sites[k].live->n;
				     j++)
					used |= agent.sites[k].live->p[j].prog == lp->prog;
			if (used) {
				reply_error(m->seq, EBUSY, PROTO_UNLOAD, lp->id,
					    "program %u is still attached", lp->id);
				return;
			}
			unload(lp);
		}
		return;
	default:
		return;
	}
}

static void *serve(void *arg)
{
	char err[PROTO_ERRMSG_SIZE];
	int fds[PROTO_MAX_FDS];
	bool bye = false;
	struct proto_msg m;
	size_t nfds;
	ssize_t n;

	for (;;) {
		n = proto_recv(agent.sock, agent.buf, RECV_MAX, fds, &nfds);
		if (n <= 0)
			break; /* the daemon went away */
		if (proto_msg__decode(agent.buf, (size_t)n, nfds, &m, err) < 0) {
			for (size_t i = 0; i < nfds; i++)
				close(fds[i]);
			reply_error(0, EBADMSG, PROTO_HELLO, 0, "malformed message: %s", err);
			continue;
		}
		bye = m.type == PROTO_BYE;
		if (bye)
			break;
		pthread_mutex_lock(&agent.lock);
		handle(&m, fds, nfds);
		pthread_mutex_unlock(&agent.lock);
	}
	/* Dormant: no probe of ours runs any more; the kernel serves again. */
	pthread_mutex_lock(&agent.lock);
	go_dormant(!bye);
	close(agent.sock);
	agent.sock = -1;
	agent.running = false;
	pthread_mutex_unlock(&agent.lock);
	return NULL;
}

static int say_hello(void)
{
	struct proto_msg m = { .type = PROTO_HELLO, .seq = 1 };
	uint8_t out[256];
	ssize_t n;

	m.hello = (struct proto_hello){ .pid = (uint32_t)getpid(),
					.caps = PROTO_CAP_JIT | PROTO_CAP_RETURN_PROBES,
					.max_msg = PROTO_MAX_MSG };
	snprintf(m.hello.version, sizeof(m.hello.version), "%s", BPFTIMED_VERSION);
	n = proto_msg__encode(&m, out, sizeof(out));
	return n < 0 ? (int)n : proto_send(agent.sock, out, (size_t)n, NULL, 0);
}

__attribute__((visibility("default"))) int bpftime_agent_main(const char *socket_path);

/*
 * fork(): the child keeps the parent's hooks, programs and map fds, so it
 * is served from its first instruction on, but not its thread nor its
 * connection. Until the daemon calls bpftime_agent_main() in it, which
 * hands its sites back to the kernel and starts afresh.
 */
static void before_fork(void)
{
	pthread_mutex_lock(&agent.lock);
}

static void after_fork_parent(void)
{
	pthread_mutex_unlock(&agent.lock);
}

/* The child counts for itself: the parent's status page is the parent's. */
static void own_stat_page(void)
{
	void *copy;

	if (!agent.stat_shared)
		return;
	copy = mmap(NULL, sizeof(*agent.stat), PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (copy == MAP_FAILED)
		return;
	memcpy(copy, agent.stat, sizeof(*agent.stat));
	if (mremap(copy, sizeof(*agent.stat), sizeof(*agent.stat), MREMAP_MAYMOVE | MREMAP_FIXED,
		   agent.stat) == MAP_FAILED) {
		munmap(copy, sizeof(*agent.stat));
		return;
	}
	agent.stat_shared = false;
}

static void after_fork_child(void)
{
	pthread_mutex_init(&agent.lock, NULL);
	own_stat_page();
	grace__reset();
	if (agent.sock >= 0)
		close(agent.sock);
	agent.sock = -1;
	agent.running = false;
}

static void register_fork_handlers(void)
{
	pthread_atfork(before_fork, after_fork_parent, after_fork_child);
}

int bpftime_agent_main(const char *socket_path)
{
	static pthread_once_t fork_once = PTHREAD_ONCE_INIT;
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct ucred cred;
	socklen_t len = sizeof(cred);
	int r = 0;

	pthread_once(&fork_once, register_fork_handlers);
	pthread_mutex_lock(&agent.lock);
	if (agent.running)
		goto out;
	/* What a forked child inherited: the new daemon connection starts from nothing. */
	go_dormant(false);
	if (!socket_path || strlen(socket_path) >= sizeof(addr.sun_path)) {
		r = -EINVAL;
		goto out;
	}
	/*
	 * Mapped, not malloc()ed: pages are only used as messages need them,
	 * and no malloc debugging (MALLOC_PERTURB_ fills all 16 MiB, 45 ms)
	 * runs while the daemon holds this thread stopped.
	 */
	if (!agent.buf) {
		void *p = mmap(NULL, RECV_MAX, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

		if (p == MAP_FAILED) {
			r = -ENOMEM;
			goto out;
		}
		agent.buf = p;
	}
	if (!agent.stat) {
		void *p = mmap(NULL, sizeof(*agent.stat), PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (p == MAP_FAILED) {
			r = -ENOMEM;
			goto out;
		}
		agent.stat = p;
	}
	strcpy(addr.sun_path, socket_path);
	agent.sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (agent.sock < 0 || connect(agent.sock, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
	    getsockopt(agent.sock, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
		r = -errno;
		goto fail;
	}
	/* Only a root daemon may hand us programs. */
	if (cred.uid != 0) {
		r = -EPERM;
		goto fail;
	}
	r = say_hello();
	if (r == 0)
		r = -pthread_create(&agent.thread, NULL, serve, NULL);
	if (r < 0)
		goto fail;
	pthread_detach(agent.thread);
	agent.running = true;
	goto out;
fail:
	if (agent.sock >= 0)
		close(agent.sock);
	agent.sock = -1;
out:
	pthread_mutex_unlock(&agent.lock);
	return r;
}

/* LD_PRELOAD: the environment says where the daemon is. */
__attribute__((constructor)) static void preload(void)
{
	const char *socket_path = getenv("BPFTIME_AGENT_SOCKET");

	if (socket_path)
		bpftime_agent_main(socket_path);
}

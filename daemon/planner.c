// SPDX-License-Identifier: MIT
/* The offload planner (see planner.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "deltas.h"
#include "maplocks.h"
#include "log.h"
#include "outputs.h"
#include "planner.h"
#include "procscan.h"
#include "proto.h"
#include "stopper.h"

#define HELPER_TRACE_PRINTK 6
#define HELPER_TRACE_VPRINTK 177
/* Threads stopped for an agent's patch go on after this, answer or not. */
#define HOLD_MAX_USEC 1000000
/* Fds per map in a LOAD: its own, a delta array and a lock; one more for printk. */
#define MAPS_PER_LOAD ((PROTO_MAX_FDS - 1) / 3)
/* A newcomer is looked at this close to InjectDelaySec= after its exec (sd-event's default: 250 ms). */
#define NEWCOMER_ACCURACY_USEC 1000
/*
 * Looked at sooner than this after its exec and mapping nothing of ours, it
 * is looked at again then: its loader had not mapped its libraries yet.
 */
#define NEWCOMER_LIBS_USEC 50000

/* One uprobe attachment of a tool, as the planner follows it. */
struct plan_attach {
	struct plan_attach *next;
	uint32_t handle; /* the agents know it by this */
	pid_t tool;
	int perf_fd, link_fd;
	struct model_probe_site site;
	bool retprobe;
	int pid_filter;
	uint64_t cookie, ref_ctr_offset;
	struct model_prog *prog; /* a reference */
	char reason[PLANNER_REASON_LEN]; /* non-empty: the kernel serves it everywhere */
	uint64_t since_usec; /* CLOCK_MONOTONIC, when it appeared */
	bool live;
};

enum step {
	STEP_SENT, /* the request is on its way */
	STEP_DONE, /* the agent said DONE */
};

/* A program loaded into one agent. */
struct plan_load {
	struct plan_load *next;
	struct model_prog *prog; /* a reference */
	uint32_t handle;
	enum step step;
};

/* One attachment in one process. */
struct plan_serve {
	struct plan_serve *next;
	struct plan_attach *attach;
	bool sent; /* ATTACH sent; the agent serves it once done */
	enum step step;
	char reason[PLANNER_REASON_LEN]; /* kept in the kernel in this process, and why */
};

#define PROC_MAX_FILES 64

struct plan_proc {
	struct plan_proc *next;
	pid_t pid;
	uint64_t age_usec;
	/* When it exec'd while something was offloadable, and when to look at it (monotonic). */
	uint64_t exec_usec, look_usec;
	/* Files of offloadable attachments it maps executable (last scan). */
	struct {
		uint64_t dev, ino;
	} files[PROC_MAX_FILES];
	unsigned int nfiles;
	bool injected; /* we asked for an agent */
	bool refused;  /* a user detached it: no agent here */
	char reason[PLANNER_REASON_LEN]; /* no agent here, and why */
	struct plan_load *loads;
	struct plan_serve *serves;
	/* Its threads, stopped while its agent patches for attachment held_attach. */
	struct stopped held;
	uint32_t held_attach;
	uint64_t held_since_usec;
};

struct planner {
	sd_event *event;
	struct model *model;
	struct agents *agents;
	const struct config *config;
	struct outputs *outputs;
	struct deltas *deltas;
	struct maplocks *maplocks;
	sd_event_source *defer;
	sd_event_source *timer;
	sd_event_source *newcomers; /* when the next process that exec'd is due a look */
	bool rescan; /* the next reconciliation scans /proc */
	uint32_t next_handle;
	struct plan_attach *attachments;
	struct plan_proc *procs;
};

static uint64_t now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000ULL + (uint64_t)ts.tv_nsec / 1000;
}

static uint32_t new_handle(struct planner *p)
{
	if (++p->next_handle == 0)
		p->next_handle = 1;
	return p->next_handle;
}

/* ---- Processes ---- */

static struct plan_proc *proc_find(struct planner *p, pid_t pid)
{
	for (struct plan_proc *x = p->procs; x; x = x->next)
		if (x->pid == pid)
			return x;
	return NULL;
}

static struct plan_proc *proc_get(struct planner *p, pid_t pid)
{
	struct plan_proc *x = proc_find(p, pid);

	if (x)
		return x;
	x = calloc(1, sizeof(*x));
	if (!x)
		return NULL;
	x->pid = pid;
	x->next = p->procs;
	p->procs = x;
	return x;
}

static struct plan_serve *serve_find(struct plan_proc *x, const struct plan_attach *a)
{
	for (struct plan_serve *s = x->serves; s; s = s->next)
		if (s->attach == a)
			return s;
	return NULL;
}

static struct plan_serve *serve_get(struct plan_proc *x, struct plan_attach *a)
{
	struct plan_serve *s = serve_find(x, a);

	if (s)
		return s;
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->attach = a;
	s->next = x->serves;
	x->serves = s;
	return s;
}

static struct plan_load *load_find(struct plan_proc *x, const struct model_prog *prog)
{
	for (struct plan_load *l = x->loads; l; l = l->next)
		if (l->prog == prog)
			return l;
	return NULL;
}

static void serve_remove(struct plan_proc *x, struct plan_serve *s)
{
	for (struct plan_serve **pp = &x->serves; *pp; pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			free(s);
			return;
		}
	}
}

static void release_held(struct plan_proc *x)
{
	if (x->held.pid)
		stopper_resume(&x->held);
}

static void proc_forget_agent(struct plan_proc *x)
{
	release_held(x);
	while (x->loads) {
		struct plan_load *l = x->loads;

		x->loads = l->next;
		model_prog_unref(l->prog);
		free(l);
	}
	while (x->serves)
		serve_remove(x, x->serves);
	x->injected = false;
}

static void proc_remove(struct planner *p, struct plan_proc *x)
{
	for (struct plan_proc **pp = &p->procs; *pp; pp = &(*pp)->next) {
		if (*pp == x) {
			*pp = x->next;
			break;
		}
	}
	proc_forget_agent(x);
	free(x);
}

static struct agent *ready_agent(struct planner *p, pid_t pid)
{
	struct agent *g = agents_find(p->agents, pid);

	return g && g->hello ? g : NULL;
}

/* ---- Attachments from the model ---- */

static bool same_site(const struct model_probe_site *a, const struct model_probe_site *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->offset == b->offset;
}

static bool applies_to(const struct plan_attach *a, pid_t pid)
{
	return a->pid_filter < 0 || a->pid_filter == pid;
}

static bool prog_calls_printk(const struct model_prog *prog)
{
	for (uint32_t i = 0; i < prog->insn_cnt; i++) {
		const struct bpf_insn *in = &prog->insns[i];

		if (in->code == (BPF_JMP | BPF_CALL) && in->src_reg == 0 &&
		    (in->imm == HELPER_TRACE_PRINTK || in->imm == HELPER_TRACE_VPRINTK))
			return true;
	}
	return false;
}

/* Why an attachment cannot leave the kernel at all, or "" . */
static void judge(struct planner *p, struct plan_attach *a)
{
	const struct model_prog *prog = a->prog;

	a->reason[0] = 0;
	if (!a->site.dev && !a->site.ino)
		snprintf(a->reason, sizeof(a->reason), "the probed file could not be found");
	else if (!config_serves(p->config, a->site.path))
		snprintf(a->reason, sizeof(a->reason), "%.200s is not served (Serve=, Exclude=)",
			 a->site.path);
	else if (!prog->insns)
		snprintf(a->reason, sizeof(a->reason),
			 "the instructions of program %u were not captured (loaded before "
			 "bpftimed started)",
			 prog->id);
	else if (prog->type != BPF_PROG_TYPE_KPROBE)
		snprintf(a->reason, sizeof(a->reason), "program %u is of type %s, not kprobe",
			 prog->id, model_prog_type_name(prog->type));
	else if (!prog->maps_checked)
		snprintf(a->reason, sizeof(a->reason),
			 "the maps of program %u could not be matched to its instructions",
			 prog->id);
	else if (!a->site.orig_len)
		snprintf(a->reason, sizeof(a->reason), "cannot read %.200s at offset 0x%llx",
			 a->site.path, (unsigned long long)a->site.offset);
}

struct sweep_ctx {
	struct planner *p;
	bool added;
};

static int sweep_one(void *ctx, const struct model_attachment *m)
{
	struct sweep_ctx *c = ctx;
	struct planner *p = c->p;
	struct plan_attach *a;

	if (!m->enabled || !m->prog)
		return 0;
	for (a = p->attachments; a; a = a->next) {
		if (a->tool == m->tool->pid && a->perf_fd == m->perf_fd &&
		    a->link_fd == m->link_fd && same_site(&a->site, m->site) &&
		    a->retprobe == m->retprobe && a->prog == m->prog) {
			a->live = true;
			return 0;
		}
	}
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	*a = (struct plan_attach){
		.handle = new_handle(p),
		.tool = m->tool->pid,
		.perf_fd = m->perf_fd,
		.link_fd = m->link_fd,
		.site = *m->site,
		.retprobe = m->retprobe,
		.pid_filter = m->pid_filter,
		.cookie = m->cookie,
		.ref_ctr_offset = m->ref_ctr_offset,
		.prog = model_prog_ref((struct model_prog *)m->prog),
		.since_usec = now_usec(),
		.live = true,
	};
	judge(p, a);
	if (a->reason[0])
		log_info("Uprobe %s:0x%llx of %s[%d] stays in the kernel: %s.", a->site.path,
			 (unsigned long long)a->site.offset, m->tool->comm, a->tool, a->reason);
	a->next = p->attachments;
	p->attachments = a;
	c->added = true;
	return 0;
}

/* Whether the kernel keeps a uprobe at the site of a for process pid. */
static bool kernel_has_site(struct planner *p, const struct plan_attach *a, pid_t pid)
{
	for (struct plan_attach *b = p->attachments; b; b = b->next)
		if (b->live && same_site(&b->site, &a->site) && applies_to(b, pid))
			return true;
	return false;
}

static void send_detach(struct planner *p, struct plan_proc *x, struct plan_serve *s)
{
	struct agent *g = ready_agent(p, x->pid);
	struct proto_msg m = { .type = PROTO_DETACH };
	int r;

	if (!g || !s->sent)
		return;
	m.id = (struct proto_id_fixed){
		.id = s->attach->handle,
		.flags = kernel_has_site(p, s->attach, x->pid) ? PROTO_DETACH_KERNEL_BREAKPOINT
							       : 0,
	};
	r = agents_send(p->agents, g, &m, NULL, 0);
	/* A process that is gone took its hooks with it. */
	if (r < 0 && r != -EPIPE && r != -ECONNRESET)
		log_warning_errno(r, "Cannot detach uprobe %s:0x%llx in process %d: %m",
				  s->attach->site.path, (unsigned long long)s->attach->site.offset,
				  x->pid);
	s->sent = false;
}

/* Programs no attachment of the process needs any more leave its agent. */
static void unload_unused(struct planner *p, struct plan_proc *x)
{
	struct agent *g = ready_agent(p, x->pid);

	for (struct plan_load **pp = &x->loads; *pp;) {
		struct plan_load *l = *pp;
		bool used = false;

		for (struct plan_serve *s = x->serves; s; s = s->next)
			used |= s->attach->prog == l->prog && s->sent;
		if (used) {
			pp = &l->next;
			continue;
		}
		if (g) {
			struct proto_msg m = { .type = PROTO_UNLOAD };

			m.id.id = l->handle;
			(void)agents_send(p->agents, g, &m, NULL, 0);
		}
		*pp = l->next;
		model_prog_unref(l->prog);
		free(l);
	}
}

static void attach_free(struct plan_attach *a)
{
	model_prog_unref(a->prog);
	free(a);
}

/* Attachments the model no longer has: out of every agent first. */
static void remove_dead(struct planner *p)
{
	for (struct plan_attach **pp = &p->attachments; *pp;) {
		struct plan_attach *a = *pp;

		if (a->live) {
			pp = &a->next;
			continue;
		}
		*pp = a->next;
		for (struct plan_proc *x = p->procs; x; x = x->next) {
			struct plan_serve *s = serve_find(x, a);

			if (!s)
				continue;
			send_detach(p, x, s);
			serve_remove(x, s);
			unload_unused(p, x);
		}
		attach_free(a);
	}
}

/* ---- Which processes ---- */

static bool offloadable_file(struct planner *p, uint64_t dev, uint64_t ino)
{
	for (struct plan_attach *a = p->attachments; a; a = a->next)
		if (!a->reason[0] && a->site.dev == dev && a->site.ino == ino)
			return true;
	return false;
}

static bool scan_want_pid(void *ctx, pid_t pid)
{
	struct planner *p = ctx;

	return pid != 1 && pid != getpid() && !model_tool_find(p->model, pid);
}

static bool scan_want_file(void *ctx, uint64_t dev, uint64_t ino)
{
	return offloadable_file(ctx, dev, ino);
}

static void scan_found(void *ctx, pid_t pid, uint64_t age_usec, uint64_t dev, uint64_t ino)
{
	struct planner *p = ctx;
	struct plan_proc *x = proc_get(p, pid);

	if (!x || x->nfiles == PROC_MAX_FILES)
		return;
	x->files[x->nfiles].dev = dev;
	x->files[x->nfiles].ino = ino;
	x->nfiles++;
	/* The start time of /proc/PID/stat is the fork's: an exec we saw is later. */
	if (x->exec_usec && now_usec() - x->exec_usec < age_usec)
		age_usec = now_usec() - x->exec_usec;
	x->age_usec = age_usec;
}

static bool mapped_by(const struct plan_proc *x, const struct plan_attach *a)
{
	for (unsigned int i = 0; i < x->nfiles; i++)
		if (x->files[i].dev == a->site.dev && x->files[i].ino == a->site.ino)
			return true;
	return false;
}

static void rescan(struct planner *p)
{
	struct procscan_ops ops = { .want_pid = scan_want_pid,
				    .want_file = scan_want_file,
				    .found = scan_found,
				    .ctx = p };
	int r;

	for (struct plan_proc *x = p->procs; x; x = x->next)
		x->nfiles = 0;
	r = procscan_run(&ops);
	if (r < 0) {
		log_warning_errno(r, "Cannot scan processes: %m");
		return;
	}
	/* Gone, exec'd into something else, or a tool now: the kernel has them. */
	for (struct plan_proc **pp = &p->procs; *pp;) {
		struct plan_proc *x = *pp;

		/* Kept too: a user refused it, or it exec'd and awaits its look. */
		if (x->nfiles || ((x->refused || x->look_usec) && kill(x->pid, 0) == 0)) {
			pp = &x->next;
			continue;
		}
		for (struct plan_serve *s = x->serves; s; s = s->next)
			send_detach(p, x, s);
		unload_unused(p, x);
		proc_remove(p, x);
	}
}

/* ---- Hand-off in one process ---- */

static int send_load(struct planner *p, struct plan_proc *x, struct agent *g,
		     struct model_prog *prog, char *err, size_t err_size)
{
	struct proto_map maps[PROTO_MAX_MAPS];
	int fds[PROTO_MAX_FDS], nfds = 0, r = 0;
	uint64_t shared = 0; /* fds owned by outputs, deltas or maplocks, by index */
	struct proto_msg m = { .type = PROTO_LOAD };
	struct proto_load_fixed *f = &m.load.fixed;
	struct plan_load *l;

	/* Each map may come with a helper program, or a delta array and a lock; one printk. */
	if (prog->map_ref_cnt > MAPS_PER_LOAD) {
		snprintf(err, err_size, "program %u uses %u maps (at most %u)", prog->id,
			 prog->map_ref_cnt, MAPS_PER_LOAD);
		return -E2BIG;
	}
	*f = (struct proto_load_fixed){
		.kernel_id = prog->id,
		.prog_type = prog->type,
		.flags = p->config->jit ? PROTO_LOAD_JIT : 0,
		.map_cnt = prog->map_ref_cnt,
		.map_entry_len = sizeof(struct proto_map),
		.insn_cnt = prog->insn_cnt,
		.ringbuf_prog_fd = PROTO_NO_FD,
		.perf_prog_fd = PROTO_NO_FD,
		.printk_prog_fd = PROTO_NO_FD,
		.cgroup_prog_fd = PROTO_NO_FD,
	};
	memcpy(f->name, prog->name, sizeof(f->name));
	for (uint32_t i = 0; i < prog->map_ref_cnt && r >= 0; i++) {
		struct bpf_map_info info = { 0 };
		uint32_t len = sizeof(info);
		int fd = bpf_map_get_fd_by_id(prog->map_refs[i].id);

		if (fd < 0) {
			r = -errno;
			snprintf(err, err_size, "map %u of program %u is gone", prog->map_refs[i].id,
				 prog->id);
			break;
		}
		fds[nfds++] = fd;
		r = bpf_obj_get_info_by_fd(fd, &info, &len);
		if (r < 0) {
			snprintf(err, err_size, "map %u: %s", prog->map_refs[i].id, strerror(-r));
			break;
		}
		maps[i] = (struct proto_map){ .id = info.id,
					      .type = info.type,
					      .key_size = info.key_size,
					      .value_size = info.value_size,
					      .max_entries = info.max_entries,
					      .flags = info.map_flags,
					      .tool_fd = prog->map_refs[i].fd,
					      .fd_index = (uint32_t)nfds - 1 };
		if (info.type == BPF_MAP_TYPE_RINGBUF || info.type == BPF_MAP_TYPE_PERF_EVENT_ARRAY ||
		    info.type == BPF_MAP_TYPE_CGROUP_ARRAY) {
			uint32_t *slot = info.type == BPF_MAP_TYPE_RINGBUF ? &f->ringbuf_prog_fd
					 : info.type == BPF_MAP_TYPE_PERF_EVENT_ARRAY ? &f->perf_prog_fd
										     : &f->cgroup_prog_fd;
			int out;

			if (*slot != PROTO_NO_FD) {
				snprintf(err, err_size,
					 "program %u uses two %s maps; the agent serves one",
					 prog->id, model_map_type_name(info.type));
				r = -EOPNOTSUPP;
				break;
			}
			out = outputs_get(p->outputs, info.id, info.type, err, err_size);
			if (out < 0) {
				r = out;
				break;
			}
			*slot = (uint32_t)nfds;
			shared |= 1ull << nfds;
			fds[nfds++] = out;
		} else if (!(info.map_flags & BPF_F_MMAPABLE)) {
			char why[PLANNER_REASON_LEN];
			int dfd, lfd = maplocks_get(p->maplocks, info.id, err, err_size);

			if (lfd < 0) {
				r = lfd;
				break;
			}
			maps[i].lock_fd = (uint32_t)nfds + 1;
			shared |= 1ull << nfds;
			fds[nfds++] = lfd;
			dfd = deltas_get(p->deltas, p->model, fd, &info, why, sizeof(why));
			if (dfd >= 0) {
				maps[i].delta_fd = (uint32_t)nfds + 1;
				shared |= 1ull << nfds;
				fds[nfds++] = dfd;
			} else {
				log_debug("Map %u of program %u: through bpf(): %s.", info.id,
					  prog->id, why);
			}
		}
	}
	if (r >= 0 && prog_calls_printk(prog)) {
		int out = outputs_printk(p->outputs, err, err_size);

		if (out < 0)
			r = out;
		else {
			f->printk_prog_fd = (uint32_t)nfds;
			shared |= 1ull << nfds;
			fds[nfds++] = out;
		}
	}
	l = r >= 0 ? calloc(1, sizeof(*l)) : NULL;
	if (r >= 0 && !l) {
		snprintf(err, err_size, "out of memory");
		r = -ENOMEM;
	}
	if (r >= 0) {
		f->prog = l->handle = new_handle(p);
		m.load.maps = (const uint8_t *)maps;
		m.load.insns = (const uint8_t *)prog->insns;
		r = agents_send(p->agents, g, &m, fds, (size_t)nfds);
		if (r < 0) {
			snprintf(err, err_size, "cannot send program %u to the agent: %s", prog->id,
				 strerror(-r));
			free(l);
		} else {
			l->prog = model_prog_ref(prog);
			l->step = STEP_SENT;
			l->next = x->loads;
			x->loads = l;
		}
	}
	/* The map fds were ours; helper programs and delta arrays stay where they live. */
	for (int i = 0; i < nfds; i++)
		if (!(shared & (1ull << i)))
			close(fds[i]);
	return r < 0 ? r : 0;
}

static int send_attach(struct planner *p, struct agent *g, const struct plan_attach *a,
		       const struct plan_load *l)
{
	struct proto_msg m = { .type = PROTO_ATTACH };
	struct proto_attach_fixed *f = &m.attach.fixed;

	*f = (struct proto_attach_fixed){
		.attach = a->handle,
		.prog = l->handle,
		.dev = a->site.dev,
		.ino = a->site.ino,
		.offset = a->site.offset,
		.cookie = a->cookie,
		.ref_ctr_offset = a->ref_ctr_offset,
		.func_offset = a->site.func_offset,
		.func_size = a->site.func_size,
		.prev_end = a->site.prev_end,
		.next_start = a->site.next_start,
		.kind = a->retprobe ? PROTO_PROBE_RETURN : PROTO_PROBE_ENTRY,
		.path_len = (uint32_t)strlen(a->site.path),
		.orig_len = a->site.orig_len,
	};
	memcpy(f->orig, a->site.orig, a->site.orig_len);
	m.attach.path = a->site.path;
	return agents_send(p->agents, g, &m, NULL, 0);
}

/* Keeps every attachment of a site in the kernel for process x, with the reason. */
static void keep_site_in_kernel(struct planner *p, struct plan_proc *x,
				const struct plan_attach *site, const char *reason)
{
	for (struct plan_attach *b = p->attachments; b; b = b->next) {
		struct plan_serve *s;

		if (!same_site(&b->site, &site->site) || !applies_to(b, x->pid))
			continue;
		s = serve_get(x, b);
		if (!s)
			continue;
		send_detach(p, x, s);
		if (!s->reason[0])
			snprintf(s->reason, sizeof(s->reason), "%s", reason);
	}
	unload_unused(p, x);
}

/* Moves the site of a forward in process x, one step per call. */
static void hand_off_site(struct planner *p, struct plan_proc *x, struct agent *g,
			  const struct plan_attach *site)
{
	char err[PLANNER_REASON_LEN];
	bool all_loaded = true;

	for (struct plan_attach *b = p->attachments; b; b = b->next) {
		struct plan_serve *s;
		struct plan_load *l;
		int r;

		if (!same_site(&b->site, &site->site) || !applies_to(b, x->pid))
			continue;
		s = serve_find(x, b);
		if (s && s->reason[0])
			return; /* kept in the kernel already */
		if (b->reason[0]) {
			snprintf(err, sizeof(err), "uprobe of process %d at the same place: %.180s",
				 b->tool, b->reason);
			keep_site_in_kernel(p, x, site, err);
			return;
		}
		l = load_find(x, b->prog);
		if (!l) {
			r = send_load(p, x, g, b->prog, err, sizeof(err));
			if (r < 0) {
				keep_site_in_kernel(p, x, site, err);
				return;
			}
			l = x->loads;
		}
		all_loaded &= l->step == STEP_DONE;
	}
	if (!all_loaded)
		return;
	for (struct plan_attach *b = p->attachments; b; b = b->next) {
		struct plan_serve *s;
		int r;

		if (!same_site(&b->site, &site->site) || !applies_to(b, x->pid))
			continue;
		s = serve_get(x, b);
		if (!s)
			return;
		if (s->sent)
			continue;
		r = send_attach(p, g, b, load_find(x, b->prog));
		if (r < 0) {
			snprintf(err, sizeof(err), "cannot send the attachment to the agent: %s",
				 strerror(-r));
			keep_site_in_kernel(p, x, site, err);
			return;
		}
		s->sent = true;
		s->step = STEP_SENT;
	}
}

/* Whether x runs an offloadable attachment's file the attachment applies to. */
static bool proc_has_work(struct planner *p, const struct plan_proc *x)
{
	uint64_t delay = p->config->inject_delay_usec, now = now_usec();

	if (x->refused || x->reason[0] || x->age_usec < delay)
		return false;
	for (struct plan_attach *a = p->attachments; a; a = a->next)
		if (a->live && !a->reason[0] && applies_to(a, x->pid) && mapped_by(x, a) &&
		    now - a->since_usec >= delay)
			return true;
	return false;
}

/* Whether a is the first attachment of its site that applies to x. */
static bool first_at_site(struct planner *p, const struct plan_attach *a, pid_t pid)
{
	for (struct plan_attach *b = p->attachments; b != a; b = b->next)
		if (b->live && same_site(&b->site, &a->site) && applies_to(b, pid))
			return false;
	return true;
}

static void plan_proc(struct planner *p, struct plan_proc *x)
{
	char err[PLANNER_REASON_LEN];
	bool not_yet = false;
	struct agent *g;
	int r;

	if (!proc_has_work(p, x))
		return;
	g = ready_agent(p, x->pid);
	if (!g) {
		if (x->injected || agents_find(p->agents, x->pid))
			return; /* its HELLO brings us back */
		x->injected = true;
		/* One whose exec we saw may still be in its loader. */
		r = agents_attach(p->agents, x->pid, x->exec_usec != 0, &not_yet, err, sizeof(err));
		if (r < 0 && not_yet) {
			/* Not at its entry point in time: the next rescan injects it where it is. */
			log_info("Process %d: %s.", x->pid, err);
			x->injected = false;
			x->exec_usec = 0;
		} else if (r < 0 && r != -EEXIST) {
			snprintf(x->reason, sizeof(x->reason), "no agent: %.240s", err);
			log_warning("Process %d stays with the kernel: %s.", x->pid, x->reason);
		}
		return;
	}
	for (struct plan_attach *a = p->attachments; a; a = a->next)
		if (a->live && applies_to(a, x->pid) && mapped_by(x, a) &&
		    first_at_site(p, a, x->pid))
			hand_off_site(p, x, g, a);
}

/* Sites of x served by the agent where an attachment now stays in the kernel. */
static void give_back(struct planner *p, struct plan_proc *x)
{
	for (struct plan_serve *s = x->serves; s; s = s->next)
		if (s->sent && s->attach->reason[0])
			keep_site_in_kernel(p, x, s->attach, s->attach->reason);
}

/* ---- Reconciliation ---- */

static bool anything_offloadable(struct planner *p)
{
	for (struct plan_attach *a = p->attachments; a; a = a->next)
		if (!a->reason[0])
			return true;
	return false;
}

/* Helper programs and delta arrays stay while a program of an attachment names their map. */
static int map_in_use(void *ctx, uint32_t map_id)
{
	struct planner *p = ctx;

	for (struct plan_attach *a = p->attachments; a; a = a->next)
		for (uint32_t i = 0; i < a->prog->map_ref_cnt; i++)
			if (a->prog->map_refs[i].id == map_id)
				return 1;
	return 0;
}

static void reconcile(struct planner *p)
{
	struct sweep_ctx c = { .p = p };
	int r;

	for (struct plan_attach *a = p->attachments; a; a = a->next)
		a->live = false;
	r = model_for_each_attachment(p->model, sweep_one, &c);
	if (r < 0) {
		log_error_errno(r, "Cannot follow the uprobe attachments: %m");
		for (struct plan_attach *a = p->attachments; a; a = a->next)
			a->live = true;
		return;
	}
	remove_dead(p);
	outputs_release(p->outputs, map_in_use, p);
	deltas_release(p->deltas, map_in_use, p);
	maplocks_release(p->maplocks, map_in_use, p);
	if (c.added || p->rescan) {
		p->rescan = false;
		rescan(p);
	}
	for (struct plan_proc *x = p->procs; x; x = x->next) {
		if (x->held.pid && now_usec() - x->held_since_usec > HOLD_MAX_USEC) {
			log_warning("Process %d: its agent did not patch within %d ms; its threads "
				    "go on.",
				    x->pid, HOLD_MAX_USEC / 1000);
			release_held(x);
		}
		give_back(p, x);
		plan_proc(p, x);
	}
	(void)sd_event_source_set_enabled(p->timer, anything_offloadable(p) ? SD_EVENT_ON
									    : SD_EVENT_OFF);
}

static int on_defer(sd_event_source *s, void *userdata)
{
	reconcile(userdata);
	return sd_event_source_set_enabled(s, SD_EVENT_OFF);
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct planner *p = userdata;

	p->rescan = true;
	planner_kick(p);
	return sd_event_source_set_time_relative(s, PLANNER_RESCAN_USEC);
}

/* The newcomers' timer, to fire at `when` unless it fires sooner already. */
static void newcomers_at(struct planner *p, uint64_t when)
{
	uint64_t armed;

	if (sd_event_source_get_enabled(p->newcomers, NULL) > 0 &&
	    sd_event_source_get_time(p->newcomers, &armed) >= 0 && armed <= when)
		return;
	(void)sd_event_source_set_time(p->newcomers, when);
	(void)sd_event_source_set_enabled(p->newcomers, SD_EVENT_ONESHOT);
}

/* The newcomers due a look: their maps now, and a reconciliation. */
static int on_newcomers(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct planner *p = userdata;
	struct procscan_ops ops = { .want_pid = scan_want_pid,
				    .want_file = scan_want_file,
				    .found = scan_found,
				    .ctx = p };
	uint64_t now = now_usec();

	for (struct plan_proc *x = p->procs; x; x = x->next) {
		if (x->look_usec && x->look_usec <= now) {
			x->look_usec = 0;
			x->nfiles = 0;
			procscan_pid(&ops, x->pid);
			if (!x->nfiles && now - x->exec_usec < NEWCOMER_LIBS_USEC)
				x->look_usec = x->exec_usec + NEWCOMER_LIBS_USEC;
		}
		if (x->look_usec)
			newcomers_at(p, x->look_usec);
	}
	planner_kick(p);
	return 0;
}

void planner_exec(struct planner *p, pid_t pid)
{
	uint64_t now = now_usec();
	struct plan_proc *x;

	/* The new image has an agent already (a rescan beat this event to it). */
	if (!anything_offloadable(p) || !scan_want_pid(p, pid) || agents_library_mapped(pid))
		return;
	x = proc_get(p, pid);
	if (!x)
		return;
	/* A new image: whatever agent the old one had went with it. */
	proc_forget_agent(x);
	x->reason[0] = 0;
	x->nfiles = 0;
	x->exec_usec = now;
	x->look_usec = now + p->config->inject_delay_usec;
	newcomers_at(p, x->look_usec);
}

void planner_kick(struct planner *p)
{
	(void)sd_event_source_set_enabled(p->defer, SD_EVENT_ONESHOT);
}

/* ---- What the agents say ---- */

static void on_ready(void *ctx, struct agent *g)
{
	struct planner *p = ctx;
	struct plan_proc *x = proc_find(p, g->pid);

	/* A fresh connection knows nothing of what an older one had. */
	if (x)
		proc_forget_agent(x);
	if (x) {
		x->injected = true;
		/* Past its loader for good: a later injection is an ordinary one. */
		x->exec_usec = 0;
	}
	deltas_agent(p->deltas, g->pid, true);
	planner_kick(p);
}

static struct plan_serve *serve_by_handle(struct plan_proc *x, uint32_t handle)
{
	for (struct plan_serve *s = x->serves; s; s = s->next)
		if (s->attach->handle == handle)
			return s;
	return NULL;
}

static struct plan_load *load_by_handle(struct plan_proc *x, uint32_t handle)
{
	for (struct plan_load *l = x->loads; l; l = l->next)
		if (l->handle == handle)
			return l;
	return NULL;
}

static void on_done(struct planner *p, struct plan_proc *x, const struct proto_done_fixed *d)
{
	struct plan_serve *s;
	struct plan_load *l;

	if (d->ref_type == PROTO_LOAD && (l = load_by_handle(x, d->ref_id))) {
		l->step = STEP_DONE;
	} else if (d->ref_type == PROTO_ATTACH && (s = serve_by_handle(x, d->ref_id))) {
		s->step = STEP_DONE;
		log_info("Process %d: uprobe %s:0x%llx (%s) is served by its agent.", x->pid,
			 s->attach->site.path, (unsigned long long)s->attach->site.offset,
			 s->attach->site.symbol[0] ? s->attach->site.symbol : "?");
	}
}

static void on_error(struct planner *p, struct plan_proc *x, const struct proto_msg *m)
{
	const struct proto_error_fixed *e = &m->error.fixed;
	char reason[PLANNER_REASON_LEN];
	struct plan_serve *s;
	struct plan_load *l;

	snprintf(reason, sizeof(reason), "the agent refused it: %.*s", (int)e->text_len,
		 m->error.text);
	log_warning("Agent in process %d refused %s %u: %.*s (%s).", x->pid,
		    e->ref_type == PROTO_LOAD ? "program" : "request", e->ref_id, (int)e->text_len,
		    m->error.text, strerror(e->err));
	if (e->ref_type == PROTO_LOAD && (l = load_by_handle(x, e->ref_id))) {
		/* What one agent cannot run, none can: every site of the program stays. */
		for (struct plan_attach *a = p->attachments; a; a = a->next) {
			if (a->prog != l->prog || a->reason[0])
				continue;
			snprintf(a->reason, sizeof(a->reason), "%s", reason);
			for (struct plan_proc *y = p->procs; y; y = y->next)
				if (serve_find(y, a) || mapped_by(y, a))
					keep_site_in_kernel(p, y, a, reason);
		}
	} else if (e->ref_type == PROTO_ATTACH && (s = serve_by_handle(x, e->ref_id))) {
		s->sent = false;
		keep_site_in_kernel(p, x, s->attach, reason);
	}
}

/*
 * The agent's patch spans several instructions: every other thread of the
 * process stops until the agent answers the ATTACH (DONE or ERROR).
 */
static void on_stop(struct planner *p, struct plan_proc *x, struct agent *g,
		    const struct proto_stop_fixed *f)
{
	struct proto_msg m = { .type = PROTO_STOPPED };
	char err[256];
	int r;

	release_held(x);
	r = serve_by_handle(x, f->attach) ? stopper_stop(x->pid, f->tid, f->lo, f->hi, &x->held,
							 err, sizeof(err))
					  : -ENOENT;
	if (r == -ENOENT)
		snprintf(err, sizeof(err), "no attachment %u is being handed off", f->attach);
	if (r < 0)
		log_warning("Process %d: cannot stop its threads for a patch at 0x%llx: %s.", x->pid,
			    (unsigned long long)f->lo, err);
	x->held_attach = f->attach;
	x->held_since_usec = now_usec();
	m.stopped = (struct proto_stopped_fixed){ .attach = f->attach, .err = r < 0 ? -r : 0 };
	if (agents_send(p->agents, g, &m, NULL, 0) < 0)
		release_held(x);
}

static void on_message(void *ctx, struct agent *g, const struct proto_msg *m)
{
	struct planner *p = ctx;
	struct plan_proc *x = proc_find(p, g->pid);

	if (!x)
		return;
	if (m->type == PROTO_STOP) {
		on_stop(p, x, g, &m->stop);
		return;
	}
	/* The answer to the ATTACH the threads were stopped for: they go on. */
	if ((m->type == PROTO_DONE && m->done.ref_type == PROTO_ATTACH &&
	     m->done.ref_id == x->held_attach) ||
	    (m->type == PROTO_ERROR && m->error.fixed.ref_type == PROTO_ATTACH &&
	     m->error.fixed.ref_id == x->held_attach))
		release_held(x);
	if (m->type == PROTO_DONE)
		on_done(p, x, &m->done);
	else if (m->type == PROTO_ERROR)
		on_error(p, x, m);
	planner_kick(p);
}

static void on_gone(void *ctx, pid_t pid)
{
	struct planner *p = ctx;
	struct plan_proc *x = proc_find(p, pid);

	if (x)
		proc_forget_agent(x);
	deltas_agent(p->deltas, pid, false);
	/* An agent hangs up when its process exits: look before injecting again. */
	p->rescan = true;
	planner_kick(p);
}

static void on_unfit(void *ctx, pid_t pid, const char *why)
{
	struct plan_proc *x = proc_get(ctx, pid);

	if (x)
		snprintf(x->reason, sizeof(x->reason), "%s", why);
}

void planner_agents_ops(struct planner *p, struct agents_ops *ops)
{
	*ops = (struct agents_ops){ .ready = on_ready,
				    .message = on_message,
				    .gone = on_gone,
				    .unfit = on_unfit,
				    .ctx = p };
}

/* ---- Life cycle ---- */

int planner_new(struct planner **ret, sd_event *event, struct model *model,
		struct agents *agents, const struct config *config)
{
	struct planner *p = calloc(1, sizeof(*p));
	int r;

	if (!p)
		return -ENOMEM;
	*p = (struct planner){ .event = event, .model = model, .agents = agents,
			       .config = config, .outputs = outputs_new(),
			       .deltas = deltas_new(event), .maplocks = maplocks_new() };
	/* Handles unlike those of an earlier daemon an agent may still know. */
	if (getrandom(&p->next_handle, sizeof(p->next_handle), 0) < 0)
		p->next_handle = (uint32_t)time(NULL);
	r = p->outputs && p->deltas && p->maplocks ? 0 : -ENOMEM;
	if (r == 0)
		r = sd_event_add_defer(event, &p->defer, on_defer, p);
	if (r >= 0)
		r = sd_event_source_set_enabled(p->defer, SD_EVENT_OFF);
	if (r >= 0)
		r = sd_event_add_time_relative(event, &p->timer, CLOCK_MONOTONIC,
					       PLANNER_RESCAN_USEC, 0, on_timer, p);
	if (r >= 0)
		r = sd_event_source_set_enabled(p->timer, SD_EVENT_OFF);
	if (r >= 0)
		r = sd_event_add_time(event, &p->newcomers, CLOCK_MONOTONIC, 0,
				      NEWCOMER_ACCURACY_USEC, on_newcomers, p);
	if (r >= 0)
		r = sd_event_source_set_enabled(p->newcomers, SD_EVENT_OFF);
	if (r < 0) {
		planner_free(p);
		return r;
	}
	*ret = p;
	return 0;
}

void planner_free(struct planner *p)
{
	if (!p)
		return;
	while (p->procs)
		proc_remove(p, p->procs);
	while (p->attachments) {
		struct plan_attach *a = p->attachments;

		p->attachments = a->next;
		attach_free(a);
	}
	sd_event_source_unref(p->defer);
	sd_event_source_unref(p->timer);
	sd_event_source_unref(p->newcomers);
	outputs_free(p->outputs);
	maplocks_free(p->maplocks);
	/* After the agents: what they added last goes into the maps. */
	deltas_free(p->deltas);
	free(p);
}

void planner_stop(struct planner *p)
{
	for (struct plan_proc *x = p->procs; x; x = x->next) {
		for (struct plan_serve *s = x->serves; s; s = s->next)
			send_detach(p, x, s);
		unload_unused(p, x);
	}
}

void planner_reconfigure(struct planner *p)
{
	for (struct plan_attach *a = p->attachments; a; a = a->next)
		judge(p, a);
	for (struct plan_proc *x = p->procs; x; x = x->next) {
		x->reason[0] = 0;
		for (struct plan_serve *s = x->serves; s; s = s->next)
			s->reason[0] = 0;
	}
	p->rescan = true;
	planner_kick(p);
}

void planner_set_refused(struct planner *p, pid_t pid, bool refused)
{
	struct plan_proc *x = proc_get(p, pid);

	if (!x)
		return;
	x->refused = refused;
	if (refused)
		proc_forget_agent(x);
	else
		x->reason[0] = 0;
	planner_kick(p);
}

int planner_serving(struct planner *p, pid_t tool, int perf_fd, int link_fd, uint64_t offset,
		    const char **reason,
		    void (*fn)(void *ctx, const struct planner_serving *s), void *ctx)
{
	struct agent_status st;
	struct plan_attach *a;
	struct agent *g;
	int n = 0;

	*reason = "";
	for (a = p->attachments; a; a = a->next)
		if (a->tool == tool && a->perf_fd == perf_fd && a->link_fd == link_fd &&
		    a->site.offset == offset)
			break;
	if (!a)
		return 0;
	*reason = a->reason;
	for (struct plan_proc *x = p->procs; x; x = x->next) {
		struct plan_serve *s = serve_find(x, a);
		struct planner_serving v = { .pid = x->pid, .where = PLANNER_KERNEL, .reason = "" };

		if (!applies_to(a, x->pid) || (!mapped_by(x, a) && !s))
			continue;
		if (s && s->reason[0])
			v.reason = s->reason;
		else if (x->reason[0])
			v.reason = x->reason;
		else if (x->refused)
			v.reason = "a user detached its agent";
		else if (s && s->sent)
			v.where = s->step == STEP_DONE ? PLANNER_AGENT : PLANNER_PENDING;
		else if (!a->reason[0])
			v.where = PLANNER_PENDING;
		if (s && s->sent && (g = agents_find(p->agents, x->pid)) &&
		    agents_status(g, a->handle, &st) == 0) {
			v.hits = st.hits.hits;
			v.ns_per_hit = st.hits.hits ? st.hits.ns / st.hits.hits : 0;
		}
		fn(ctx, &v);
		n++;
	}
	return n;
}

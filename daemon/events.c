// SPDX-License-Identifier: MIT
/* From monitor records to the model (see events.h). */
#include <errno.h>
#include <linux/perf_event.h>
#include <stdlib.h>
#include <string.h>

#include "events.h"
#include "log.h"
#include "resolve.h"

#ifndef PERF_EVENT_IOC_SET_BPF
#define PERF_EVENT_IOC_SET_BPF _IOW('$', 8, __u32)
#endif
#ifndef PERF_FLAG_FD_CLOEXEC
#define PERF_FLAG_FD_CLOEXEC (1UL << 3)
#endif

void events_init(struct events *e, struct model *m)
{
	memset(e, 0, sizeof(*e));
	e->model = m;
}

static void pending_free(struct pending_load *p)
{
	free(p->insns);
	memset(p, 0, sizeof(*p));
}

void events_done(struct events *e)
{
	for (int i = 0; i < EVENTS_MAX_PENDING; i++)
		pending_free(&e->pending[i]);
}

static struct pending_load *pending_find(struct events *e, uint64_t load_id)
{
	for (int i = 0; i < EVENTS_MAX_PENDING; i++)
		if (e->pending[i].load_id == load_id)
			return &e->pending[i];
	return NULL;
}

static int on_chunk(struct events *e, const struct monitor_prog_insns *c)
{
	struct pending_load *p = pending_find(e, c->load_id);

	if (!p) {
		/* A free slot, or the oldest load (its PROG_LOAD record was lost). */
		p = &e->pending[0];
		for (int i = 0; i < EVENTS_MAX_PENDING; i++) {
			if (!e->pending[i].load_id) {
				p = &e->pending[i];
				break;
			}
			if (e->pending[i].load_id < p->load_id)
				p = &e->pending[i];
		}
		pending_free(p);
		p->insns = calloc(c->total_cnt, sizeof(*p->insns));
		if (!p->insns)
			return -ENOMEM;
		p->load_id = c->load_id;
		p->total = c->total_cnt;
	}
	if (c->total_cnt != p->total || c->insn_off > p->total ||
	    c->insn_cnt > p->total - c->insn_off)
		return -EBADMSG;
	memcpy(p->insns + c->insn_off, c->insns, (size_t)c->insn_cnt * sizeof(*p->insns));
	p->received += c->insn_cnt;
	return 0;
}

static struct model_tool *tool_of(struct events *e, const struct monitor_hdr *h)
{
	struct model_tool *t = model_tool_get(e->model, (pid_t)h->pid);

	if (t && !t->exe[0]) {
		memcpy(t->comm, h->comm, sizeof(t->comm));
		resolve_exe(t->pid, t->exe, sizeof(t->exe));
	}
	return t;
}

/*
 * The object a successful fd-creating call made, in its tool; NULL with
 * *r = 0 when there is none to add (a failed call, an fd the monitor could
 * not track), or with *r = -ENOMEM.
 */
static struct model_obj *new_object(struct events *e, const struct monitor_hdr *h, int result,
				    uint32_t flags, enum model_obj_kind kind, int *r)
{
	struct model_tool *t;
	struct model_obj *o;

	*r = 0;
	if (result < 0 || (flags & MONITOR_FD_UNTRACKED))
		return NULL;
	t = tool_of(e, h);
	o = t ? model_obj_add(e->model, t, result, kind) : NULL;
	if (!o)
		*r = -ENOMEM;
	return o;
}

static int on_prog_load(struct events *e, const struct monitor_prog_load *ev)
{
	struct pending_load *p = pending_find(e, ev->load_id);
	struct model_tool *t;
	struct model_obj *o;
	struct model_prog *prog;
	int r;

	if (ev->result < 0 || (ev->flags & MONITOR_FD_UNTRACKED)) {
		if (p)
			pending_free(p);
		return 0;
	}
	t = tool_of(e, &ev->hdr);
	prog = model_prog_new();
	if (!t || !prog) {
		model_prog_unref(prog);
		return -ENOMEM;
	}
	prog->type = ev->prog_type;
	prog->expected_attach_type = ev->expected_attach_type;
	prog->insn_cnt = ev->insn_cnt;
	memcpy(prog->name, ev->prog_name, sizeof(prog->name));
	snprintf(prog->license, sizeof(prog->license), "%s", ev->license);
	if (p && (ev->flags & MONITOR_PROG_INSNS_COMPLETE) && p->received == ev->insn_cnt &&
	    p->total == ev->insn_cnt) {
		prog->insns = p->insns;
		p->insns = NULL;
	}
	if (p)
		pending_free(p);
	if (!prog->insns)
		log_warning("%s[%u]: instructions of program fd %d (%s, %u insns) were not captured "
			    "(flags 0x%x); it can only stay in the kernel",
			    ev->hdr.comm, ev->hdr.pid, ev->result, ev->prog_name, ev->insn_cnt,
			    ev->flags);
	r = resolve_prog(t->pid, ev->result, prog);
	if (r < 0)
		log_debug_errno(r, "%s[%u]: cannot read program fd %d: %m", ev->hdr.comm, ev->hdr.pid,
				ev->result);
	o = model_obj_add(e->model, t, ev->result, MODEL_OBJ_PROG);
	if (!o) {
		model_prog_unref(prog);
		return -ENOMEM;
	}
	o->prog = prog;
	return 0;
}

static int on_map_create(struct events *e, const struct monitor_map_create *ev)
{
	struct model_obj *o;
	int r;

	o = new_object(e, &ev->hdr, ev->result, ev->flags, MODEL_OBJ_MAP, &r);
	if (!o)
		return r;
	r = resolve_map((pid_t)ev->hdr.pid, ev->result, &o->map);
	if (r < 0) {
		/* Gone already (closed or exited): what the tool asked for. */
		log_debug_errno(r, "%s[%u]: cannot read map fd %d: %m", ev->hdr.comm, ev->hdr.pid,
				ev->result);
		o->map = (struct model_map){
			.type = ev->map_type,
			.key_size = ev->key_size,
			.value_size = ev->value_size,
			.max_entries = ev->max_entries,
			.flags = ev->map_flags,
		};
		memcpy(o->map.name, ev->map_name, sizeof(o->map.name));
	}
	return 0;
}

static int on_btf_load(struct events *e, const struct monitor_btf_load *ev)
{
	int r;

	new_object(e, &ev->hdr, ev->result, ev->flags, MODEL_OBJ_BTF, &r);
	return r;
}

/* The program a tool refers to by fd, or one made from its kernel id alone. */
static struct model_prog *prog_of_fd(struct model_tool *t, int fd, uint32_t kernel_id)
{
	struct model_obj *o = model_obj_find(t, fd);
	struct model_prog *p;

	if (o && o->kind == MODEL_OBJ_PROG)
		return model_prog_ref(o->prog);
	p = model_prog_new();
	if (p)
		p->id = kernel_id;
	return p;
}

/*
 * A tracepoint perf event may be a uprobe made through tracefs uprobe_events
 * (BCC falls back to that when perf_event_open on the uprobe PMU is refused):
 * once a program runs on it the kernel says so.
 */
static void recognise_tracefs_uprobe(pid_t pid, struct model_obj *perf)
{
	uint32_t prog_id;

	if (perf->perf.kind == MODEL_PERF_TRACEPOINT &&
	    resolve_uprobe_perf(pid, perf->fd, &perf->perf.site, &perf->perf.retprobe, &prog_id))
		perf->perf.kind = MODEL_PERF_UPROBE;
}

static int on_link_create(struct events *e, const struct monitor_link_create *ev)
{
	struct model_tool *t;
	struct model_obj *o;
	uint32_t prog_id = 0;
	int r;

	o = new_object(e, &ev->hdr, ev->result, ev->flags, MODEL_OBJ_LINK, &r);
	if (!o)
		return r;
	t = model_tool_find(e->model, (pid_t)ev->hdr.pid);
	o->link.attach_type = ev->attach_type;
	o->link.cookie = ev->bpf_cookie;
	o->link.target_fd = (int)ev->target_fd;
	r = resolve_link(t->pid, ev->result, &o->link.id, &prog_id);
	if (r < 0)
		log_debug_errno(r, "%s[%u]: cannot read link fd %d: %m", ev->hdr.comm, ev->hdr.pid,
				ev->result);
	o->link.prog = prog_of_fd(t, (int)ev->prog_fd, prog_id);
	if (!o->link.prog)
		return -ENOMEM;
	if (ev->attach_type == BPF_PERF_EVENT) {
		struct model_obj *perf = model_obj_find(t, o->link.target_fd);

		if (perf && perf->kind == MODEL_OBJ_PERF)
			recognise_tracefs_uprobe(t->pid, perf);
	}

	if (ev->attach_type == MODEL_ATTACH_UPROBE_MULTI && (ev->flags & MONITOR_LINK_UPROBE_MULTI)) {
		if (ev->flags & MONITOR_LINK_TRUNCATED)
			log_warning("%s[%u]: uprobe_multi link with %u offsets, only %u captured",
				    ev->hdr.comm, ev->hdr.pid, ev->um_cnt, ev->um_captured);
		o->link.retprobe = ev->um_flags & MODEL_UPROBE_MULTI_RETURN;
		o->link.um_pid = (int)ev->um_pid;
		o->link.um_sites = calloc(ev->um_captured ? ev->um_captured : 1,
					  sizeof(*o->link.um_sites));
		if (!o->link.um_sites)
			return -ENOMEM;
		o->link.um_cnt = ev->um_captured;
		/* The tail starts with the offsets (ref_ctr offsets and cookies follow). */
		for (uint32_t i = 0; i < ev->um_captured; i++)
			resolve_probe_site(t->pid, ev->um_path, ev->tail[i], &o->link.um_sites[i]);
	}
	return 0;
}

static int on_perf_open(struct events *e, const struct monitor_perf_open *ev)
{
	pid_t pid = (pid_t)ev->hdr.pid;
	struct model_obj *o;
	int r;

	o = new_object(e, &ev->hdr, ev->result, ev->flags, MODEL_OBJ_PERF, &r);
	if (!o)
		return r;
	o->perf.kind = ev->kind == MONITOR_PERF_UPROBE	   ? MODEL_PERF_UPROBE
		       : ev->kind == MONITOR_PERF_TRACEPOINT ? MODEL_PERF_TRACEPOINT
							     : MODEL_PERF_OTHER;
	o->perf.target_pid = ev->target_pid;
	o->perf.cpu = ev->cpu;
	o->perf.config = ev->config;
	o->perf.cloexec = ev->open_flags & PERF_FLAG_FD_CLOEXEC;
	/* attr.disabled is bit 0 of the bit-field word */
	o->perf.enabled = !(ev->attr_bits & 1);
	if (o->perf.kind != MODEL_PERF_UPROBE)
		return 0;
	o->perf.retprobe = ev->flags & MONITOR_PERF_RETPROBE;
	o->perf.ref_ctr_offset = ev->ref_ctr_offset;
	if (ev->flags & MONITOR_PERF_PATH_FAULT) {
		log_warning("%s[%u]: uprobe perf event fd %d: its path could not be read",
			    ev->hdr.comm, ev->hdr.pid, ev->result);
		o->perf.site.offset = ev->offset;
		return 0;
	}
	r = resolve_probe_site(pid, ev->path, ev->offset, &o->perf.site);
	if (r < 0)
		log_warning_errno(r, "%s[%u]: uprobe on %s: cannot open the file: %m", ev->hdr.comm,
				  ev->hdr.pid, ev->path);
	return 0;
}

static int on_perf_ioctl(struct events *e, const struct monitor_perf_ioctl *ev)
{
	struct model_tool *t = model_tool_find(e->model, (pid_t)ev->hdr.pid);
	struct model_obj *o = t ? model_obj_find(t, ev->fd) : NULL;

	if (ev->result < 0)
		return 0;
	if (!o || o->kind != MODEL_OBJ_PERF) {
		e->ignored++;
		return 0;
	}
	switch (ev->cmd) {
	case PERF_EVENT_IOC_SET_BPF:
		model_prog_unref(o->perf.prog);
		o->perf.prog = prog_of_fd(t, (int)ev->arg, 0);
		if (!o->perf.prog)
			return -ENOMEM;
		if (!o->perf.prog->id)
			resolve_prog(t->pid, (int)ev->arg, o->perf.prog);
		recognise_tracefs_uprobe(t->pid, o);
		break;
	case PERF_EVENT_IOC_ENABLE:
		o->perf.enabled = true;
		break;
	case PERF_EVENT_IOC_DISABLE:
		o->perf.enabled = false;
		break;
	}
	e->model->generation++;
	return 0;
}

int events_apply(struct events *e, const struct monitor_hdr *ev, size_t size)
{
	e->applied++;
	switch (ev->type) {
	case MONITOR_EV_PROG_INSNS:
		return on_chunk(e, (const struct monitor_prog_insns *)ev);
	case MONITOR_EV_PROG_LOAD:
		return on_prog_load(e, (const struct monitor_prog_load *)ev);
	case MONITOR_EV_MAP_CREATE:
		return on_map_create(e, (const struct monitor_map_create *)ev);
	case MONITOR_EV_BTF_LOAD:
		return on_btf_load(e, (const struct monitor_btf_load *)ev);
	case MONITOR_EV_LINK_CREATE:
		return on_link_create(e, (const struct monitor_link_create *)ev);
	case MONITOR_EV_PERF_OPEN:
		return on_perf_open(e, (const struct monitor_perf_open *)ev);
	case MONITOR_EV_PERF_IOCTL:
		return on_perf_ioctl(e, (const struct monitor_perf_ioctl *)ev);
	case MONITOR_EV_CLOSE:
		model_obj_close(e->model, (pid_t)ev->pid, ((const struct monitor_close *)ev)->fd);
		return 0;
	case MONITOR_EV_EXEC:
		model_tool_exec(e->model, (pid_t)ev->pid);
		return 0;
	case MONITOR_EV_EXIT:
		model_tool_remove(e->model, (pid_t)ev->pid);
		return 0;
	default:
		/* fork: a child shares its parent's objects until exec; not tracked. */
		return 0;
	}
}

// SPDX-License-Identifier: MIT
/* The model of tools, their objects and attachments (see model.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

void model_init(struct model *m)
{
	memset(m, 0, sizeof(*m));
}

struct model_prog *model_prog_new(void)
{
	struct model_prog *p = calloc(1, sizeof(*p));

	if (p)
		p->refs = 1;
	return p;
}

struct model_prog *model_prog_ref(struct model_prog *p)
{
	if (p)
		p->refs++;
	return p;
}

void model_prog_unref(struct model_prog *p)
{
	if (!p || --p->refs)
		return;
	free(p->insns);
	free(p->map_ids);
	free(p->map_refs);
	free(p);
}

static void obj_free(struct model_obj *o)
{
	switch (o->kind) {
	case MODEL_OBJ_PROG:
		model_prog_unref(o->prog);
		break;
	case MODEL_OBJ_PERF:
		model_prog_unref(o->perf.prog);
		break;
	case MODEL_OBJ_LINK:
		model_prog_unref(o->link.prog);
		free(o->link.um_sites);
		break;
	default:
		break;
	}
	free(o);
}

static void tool_free(struct model_tool *t)
{
	while (t->objs) {
		struct model_obj *o = t->objs;

		t->objs = o->next;
		obj_free(o);
	}
	free(t);
}

void model_clear(struct model *m)
{
	while (m->tools) {
		struct model_tool *t = m->tools;

		m->tools = t->next;
		tool_free(t);
	}
	m->generation++;
}

struct model_tool *model_tool_find(const struct model *m, pid_t pid)
{
	for (struct model_tool *t = m->tools; t; t = t->next)
		if (t->pid == pid)
			return t;
	return NULL;
}

/* Tools are kept in pid order, so listings are stable. */
struct model_tool *model_tool_get(struct model *m, pid_t pid)
{
	struct model_tool **pp = &m->tools, *t;

	while (*pp && (*pp)->pid < pid)
		pp = &(*pp)->next;
	if (*pp && (*pp)->pid == pid)
		return *pp;
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->pid = pid;
	t->next = *pp;
	*pp = t;
	m->generation++;
	return t;
}

void model_tool_remove(struct model *m, pid_t pid)
{
	for (struct model_tool **pp = &m->tools; *pp; pp = &(*pp)->next) {
		if ((*pp)->pid == pid) {
			struct model_tool *t = *pp;

			*pp = t->next;
			tool_free(t);
			m->generation++;
			return;
		}
	}
}

struct model_obj *model_obj_find(const struct model_tool *t, int fd)
{
	for (struct model_obj *o = t->objs; o; o = o->next)
		if (o->fd == fd)
			return o;
	return NULL;
}

static void unlink_obj(struct model_tool *t, struct model_obj *victim)
{
	for (struct model_obj **pp = &t->objs; *pp; pp = &(*pp)->next) {
		if (*pp == victim) {
			*pp = victim->next;
			obj_free(victim);
			return;
		}
	}
}

/* Objects are kept in fd order within a tool. */
struct model_obj *model_obj_add(struct model *m, struct model_tool *t, int fd,
				enum model_obj_kind kind)
{
	struct model_obj **pp, *o, *old = model_obj_find(t, fd);

	if (old)
		unlink_obj(t, old);
	o = calloc(1, sizeof(*o));
	if (!o)
		return NULL;
	o->fd = fd;
	o->kind = kind;
	for (pp = &t->objs; *pp && (*pp)->fd < fd; pp = &(*pp)->next)
		;
	o->next = *pp;
	*pp = o;
	m->generation++;
	return o;
}

void model_obj_close(struct model *m, pid_t pid, int fd)
{
	struct model_tool *t = model_tool_find(m, pid);
	struct model_obj *o;

	if (!t)
		return;
	o = model_obj_find(t, fd);
	if (!o)
		return;
	unlink_obj(t, o);
	m->generation++;
	if (!t->objs)
		model_tool_remove(m, pid);
}

void model_tool_exec(struct model *m, pid_t pid)
{
	struct model_tool *t = model_tool_find(m, pid);
	struct model_obj **pp;

	if (!t)
		return;
	/* bpf() always returns close-on-exec fds; perf events say so in their flags. */
	for (pp = &t->objs; *pp;) {
		struct model_obj *o = *pp;

		if (o->kind != MODEL_OBJ_PERF || o->perf.cloexec) {
			*pp = o->next;
			obj_free(o);
		} else {
			pp = &o->next;
		}
	}
	m->generation++;
	if (!t->objs)
		model_tool_remove(m, pid);
}

/* The link that runs a program on this perf event, if any. */
static const struct model_obj *perf_link(const struct model_tool *t, int perf_fd)
{
	for (const struct model_obj *o = t->objs; o; o = o->next)
		if (o->kind == MODEL_OBJ_LINK && o->link.attach_type == BPF_PERF_EVENT &&
		    o->link.target_fd == perf_fd && o->link.prog)
			return o;
	return NULL;
}

int model_for_each_attachment(const struct model *m,
			      int (*fn)(void *ctx, const struct model_attachment *a), void *ctx)
{
	for (const struct model_tool *t = m->tools; t; t = t->next) {
		for (const struct model_obj *o = t->objs; o; o = o->next) {
			struct model_attachment a = { .tool = t, .perf_fd = -1, .link_fd = -1 };
			int r;

			if (o->kind == MODEL_OBJ_PERF && o->perf.kind == MODEL_PERF_UPROBE) {
				const struct model_obj *l = perf_link(t, o->fd);

				if (!o->perf.prog && !l)
					continue;
				a.site = &o->perf.site;
				a.retprobe = o->perf.retprobe;
				a.pid_filter = o->perf.target_pid;
				a.ref_ctr_offset = o->perf.ref_ctr_offset;
				a.prog = l ? l->link.prog : o->perf.prog;
				a.cookie = l ? l->link.cookie : 0;
				a.enabled = o->perf.enabled;
				a.via = l ? "link" : "perf_event";
				a.perf_fd = o->fd;
				a.link_fd = l ? l->fd : -1;
				r = fn(ctx, &a);
				if (r < 0)
					return r;
			} else if (o->kind == MODEL_OBJ_LINK &&
				   o->link.attach_type == MODEL_ATTACH_UPROBE_MULTI) {
				for (uint32_t i = 0; i < o->link.um_cnt; i++) {
					a.site = &o->link.um_sites[i];
					a.retprobe = o->link.retprobe;
					a.pid_filter = o->link.um_pid ? o->link.um_pid : -1;
					a.prog = o->link.prog;
					a.enabled = true;
					a.via = "uprobe_multi";
					a.link_fd = o->fd;
					r = fn(ctx, &a);
					if (r < 0)
						return r;
				}
			}
		}
	}
	return 0;
}

const char *model_prog_type_name(uint32_t type)
{
	static const char *const names[] = {
		[BPF_PROG_TYPE_SOCKET_FILTER] = "socket_filter",
		[BPF_PROG_TYPE_KPROBE] = "kprobe",
		[BPF_PROG_TYPE_SCHED_CLS] = "sched_cls",
		[BPF_PROG_TYPE_SCHED_ACT] = "sched_act",
		[BPF_PROG_TYPE_TRACEPOINT] = "tracepoint",
		[BPF_PROG_TYPE_XDP] = "xdp",
		[BPF_PROG_TYPE_PERF_EVENT] = "perf_event",
		[BPF_PROG_TYPE_CGROUP_SKB] = "cgroup_skb",
		[BPF_PROG_TYPE_RAW_TRACEPOINT] = "raw_tracepoint",
		[BPF_PROG_TYPE_TRACING] = "tracing",
		[BPF_PROG_TYPE_STRUCT_OPS] = "struct_ops",
		[BPF_PROG_TYPE_EXT] = "ext",
		[BPF_PROG_TYPE_LSM] = "lsm",
		[BPF_PROG_TYPE_SYSCALL] = "syscall",
	};

	return type < sizeof(names) / sizeof(names[0]) && names[type] ? names[type] : "other";
}

const char *model_map_type_name(uint32_t type)
{
	static const char *const names[] = {
		[BPF_MAP_TYPE_HASH] = "hash",
		[BPF_MAP_TYPE_ARRAY] = "array",
		[BPF_MAP_TYPE_PROG_ARRAY] = "prog_array",
		[BPF_MAP_TYPE_PERF_EVENT_ARRAY] = "perf_event_array",
		[BPF_MAP_TYPE_PERCPU_HASH] = "percpu_hash",
		[BPF_MAP_TYPE_PERCPU_ARRAY] = "percpu_array",
		[BPF_MAP_TYPE_STACK_TRACE] = "stack_trace",
		[BPF_MAP_TYPE_LRU_HASH] = "lru_hash",
		[BPF_MAP_TYPE_LRU_PERCPU_HASH] = "lru_percpu_hash",
		[BPF_MAP_TYPE_RINGBUF] = "ringbuf",
		[BPF_MAP_TYPE_USER_RINGBUF] = "user_ringbuf",
	};

	return type < sizeof(names) / sizeof(names[0]) && names[type] ? names[type] : "other";
}

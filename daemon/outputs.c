// SPDX-License-Identifier: MIT
/* Helper programs, one per tool output or cgroup map (see outputs.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include "cgroup-check.skel.h"
#include "outputs.h"
#include "perf-output.skel.h"
#include "ringbuf-output.skel.h"
#include "trace-printk.skel.h"

struct output {
	struct output *next;
	uint32_t map_id;
	void *skel;
	void (*destroy)(void *skel);
	int prog_fd;
};

struct outputs {
	struct output *list;
	struct trace_printk_bpf *printk;
};

struct outputs *outputs_new(void)
{
	return calloc(1, sizeof(struct outputs));
}

void outputs_free(struct outputs *o)
{
	if (!o)
		return;
	while (o->list) {
		struct output *x = o->list;

		o->list = x->next;
		x->destroy(x->skel);
		free(x);
	}
	trace_printk_bpf__destroy(o->printk);
	free(o);
}

/*
 * For skeleton NAME, whose map MAP takes the tool's map and whose one
 * program is PROG: NAME_into(x, map_fd) opens and loads it into x.
 */
#define HELPER_SKELETON(NAME, MAP, PROG)                                  \
	static void NAME##_destroy(void *skel)                            \
	{                                                                 \
		NAME##__destroy(skel);                                    \
	}                                                                 \
                                                                          \
	static int NAME##_into(struct output *x, int map_fd)              \
	{                                                                 \
		struct NAME *s = NAME##__open();                          \
		int r;                                                    \
                                                                          \
		if (!s)                                                   \
			return -errno;                                    \
		x->skel = s;                                              \
		x->destroy = NAME##_destroy;                              \
		r = bpf_map__reuse_fd(s->maps.MAP, map_fd);               \
		if (r == 0)                                               \
			r = NAME##__load(s);                              \
		x->prog_fd = bpf_program__fd(s->progs.PROG);              \
		return r;                                                 \
	}

HELPER_SKELETON(ringbuf_output_bpf, rb, ringbuf_output)
HELPER_SKELETON(perf_output_bpf, events, perf_output)
HELPER_SKELETON(cgroup_check_bpf, cgroups, under_cgroup)

int outputs_get(struct outputs *o, uint32_t map_id, uint32_t map_type, char *err, size_t err_size)
{
	struct output *x;
	int map_fd, r;

	for (x = o->list; x; x = x->next)
		if (x->map_id == map_id)
			return x->prog_fd;
	if (map_type != BPF_MAP_TYPE_RINGBUF && map_type != BPF_MAP_TYPE_PERF_EVENT_ARRAY &&
	    map_type != BPF_MAP_TYPE_CGROUP_ARRAY) {
		snprintf(err, err_size, "map %u has no helper program (type %u)", map_id, map_type);
		return -EINVAL;
	}
	map_fd = bpf_map_get_fd_by_id(map_id);
	if (map_fd < 0) {
		snprintf(err, err_size, "map %u is gone: %s", map_id, strerror(errno));
		return -errno;
	}
	x = calloc(1, sizeof(*x));
	if (!x) {
		close(map_fd);
		snprintf(err, err_size, "out of memory");
		return -ENOMEM;
	}
	x->map_id = map_id;
	r = map_type == BPF_MAP_TYPE_RINGBUF	     ? ringbuf_output_bpf_into(x, map_fd)
	    : map_type == BPF_MAP_TYPE_PERF_EVENT_ARRAY ? perf_output_bpf_into(x, map_fd)
							: cgroup_check_bpf_into(x, map_fd);
	close(map_fd);
	if (r < 0) {
		snprintf(err, err_size, "cannot load the helper program for map %u: %s", map_id,
			 strerror(-r));
		if (x->skel)
			x->destroy(x->skel);
		free(x);
		return r;
	}
	x->next = o->list;
	o->list = x;
	return x->prog_fd;
}

int outputs_printk(struct outputs *o, char *err, size_t err_size)
{
	int r;

	if (o->printk)
		return bpf_program__fd(o->printk->progs.trace_printk);
	o->printk = trace_printk_bpf__open_and_load();
	if (!o->printk) {
		r = -errno;
		snprintf(err, err_size, "cannot load the trace_printk helper: %s", strerror(-r));
		return r;
	}
	return bpf_program__fd(o->printk->progs.trace_printk);
}

void outputs_release(struct outputs *o, int (*keep)(void *ctx, uint32_t map_id), void *ctx)
{
	for (struct output **pp = &o->list; *pp;) {
		struct output *x = *pp;

		if (keep(ctx, x->map_id)) {
			pp = &x->next;
			continue;
		}
		*pp = x->next;
		x->destroy(x->skel);
		free(x);
	}
}

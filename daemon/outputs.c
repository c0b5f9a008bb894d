// SPDX-License-Identifier: MIT
/* Output helper programs, one per tool output map (see outputs.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

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

static void destroy_ringbuf(void *s)
{
	ringbuf_output_bpf__destroy(s);
}

static void destroy_perf(void *s)
{
	perf_output_bpf__destroy(s);
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

/* Loads skel with its one map (`map`) replaced by the tool's map. */
static int load_for_map(struct output *x, struct bpf_map *map, int map_fd,
			int (*load)(void *skel), struct bpf_program *prog, char *err,
			size_t err_size)
{
	int r = bpf_map__reuse_fd(map, map_fd);

	if (r == 0)
		r = load(x->skel);
	if (r < 0) {
		snprintf(err, err_size, "cannot load the output helper for map %u: %s", x->map_id,
			 strerror(-r));
		return r;
	}
	x->prog_fd = bpf_program__fd(prog);
	return 0;
}

static int load_ringbuf(void *s)
{
	return ringbuf_output_bpf__load(s);
}

static int load_perf(void *s)
{
	return perf_output_bpf__load(s);
}

int outputs_get(struct outputs *o, uint32_t map_id, uint32_t map_type, char *err, size_t err_size)
{
	struct output *x;
	int map_fd, r;

	for (x = o->list; x; x = x->next)
		if (x->map_id == map_id)
			return x->prog_fd;
	if (map_type != BPF_MAP_TYPE_RINGBUF && map_type != BPF_MAP_TYPE_PERF_EVENT_ARRAY) {
		snprintf(err, err_size, "map %u is not an output map (type %u)", map_id, map_type);
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
	if (map_type == BPF_MAP_TYPE_RINGBUF) {
		struct ringbuf_output_bpf *s = ringbuf_output_bpf__open();

		x->skel = s;
		x->destroy = destroy_ringbuf;
		r = s ? load_for_map(x, s->maps.rb, map_fd, load_ringbuf, s->progs.ringbuf_output,
				     err, err_size)
		      : -errno;
	} else {
		struct perf_output_bpf *s = perf_output_bpf__open();

		x->skel = s;
		x->destroy = destroy_perf;
		r = s ? load_for_map(x, s->maps.events, map_fd, load_perf, s->progs.perf_output, err,
				     err_size)
		      : -errno;
	}
	close(map_fd);
	if (r < 0) {
		if (!x->skel)
			snprintf(err, err_size, "cannot open the output helper: %s", strerror(-r));
		else
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

// SPDX-License-Identifier: MIT
/* Delta stores of additive maps and their drain programs (see deltas.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include "additive.h"
#include "delta.h"
#include "deltas.h"
#include "drain.skel.h"
#include "log.h"

struct store {
	struct store *next;
	uint32_t map_id;
	struct drain_bpf *skel;
};

struct deltas {
	struct store *list;
	sd_event_source *timer;
	int agents_fd; /* every drain program's "agents" */
};

static void drain_one(struct store *s)
{
	LIBBPF_OPTS(bpf_test_run_opts, opts);

	if (bpf_prog_test_run_opts(bpf_program__fd(s->skel->progs.drain_now), &opts) < 0)
		log_warning("Cannot drain the deltas of map %u: %m.", s->map_id);
}

void deltas_drain(struct deltas *d)
{
	for (struct store *s = d->list; s; s = s->next)
		drain_one(s);
}

static int on_timer(sd_event_source *src, uint64_t usec, void *userdata)
{
	struct deltas *d = userdata;

	deltas_drain(d);
	sd_event_source_set_time_relative(src, DELTAS_PERIOD_USEC);
	return sd_event_source_set_enabled(src, d->list ? SD_EVENT_ON : SD_EVENT_OFF);
}

struct deltas *deltas_new(sd_event *event)
{
	struct deltas *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->agents_fd = bpf_map_create(BPF_MAP_TYPE_HASH, "bpftimed_agents", sizeof(uint32_t),
				      sizeof(uint8_t), 4096, NULL);
	/* Our own commands (an agent leaving is a delete) must not make agents forget keys. */
	if (d->agents_fd >= 0)
		deltas_agent(d, getpid(), true);
	if (d->agents_fd < 0 ||
	    sd_event_add_time_relative(event, &d->timer, CLOCK_MONOTONIC, DELTAS_PERIOD_USEC, 0,
				       on_timer, d) < 0 ||
	    sd_event_source_set_enabled(d->timer, SD_EVENT_OFF) < 0) {
		sd_event_source_unref(d->timer);
		if (d->agents_fd >= 0)
			close(d->agents_fd);
		free(d);
		return NULL;
	}
	return d;
}

static void store_free(struct store *s)
{
	drain_one(s);
	drain_bpf__destroy(s->skel);
	free(s);
}

void deltas_free(struct deltas *d)
{
	if (!d)
		return;
	while (d->list) {
		struct store *s = d->list;

		d->list = s->next;
		store_free(s);
	}
	sd_event_source_unref(d->timer);
	close(d->agents_fd);
	free(d);
}

void deltas_agent(struct deltas *d, pid_t pid, bool connected)
{
	uint32_t key = (uint32_t)pid;
	uint8_t one = 1;

	if (connected)
		bpf_map_update_elem(d->agents_fd, &key, &one, BPF_ANY);
	else
		bpf_map_delete_elem(d->agents_fd, &key);
}

void deltas_release(struct deltas *d, int (*keep)(void *ctx, uint32_t map_id), void *ctx)
{
	for (struct store **pp = &d->list; *pp;) {
		struct store *s = *pp;

		if (keep(ctx, s->map_id)) {
			pp = &s->next;
			continue;
		}
		*pp = s->next;
		store_free(s);
	}
}

static int map_info(uint32_t id, struct bpf_map_info *info)
{
	uint32_t len = sizeof(*info);
	int fd = bpf_map_get_fd_by_id(id), r;

	if (fd < 0)
		return -errno;
	memset(info, 0, sizeof(*info));
	r = bpf_obj_get_info_by_fd(fd, info, &len);
	close(fd);
	return r;
}

/* Whether prog only adds to map_id: 1, 0 (why says how), or -errno. */
static int prog_adds_only(const struct model_tool *t, const struct model_prog *prog,
			  uint32_t map_id, char *why, size_t why_size)
{
	uint32_t value_sizes[ADDITIVE_MAX_MAPS], key_sizes[ADDITIVE_MAX_MAPS];
	int fds[ADDITIVE_MAX_MAPS], at = -1;
	bool listed = false;
	uint64_t mask;

	for (uint32_t i = 0; i < prog->map_cnt; i++)
		listed |= prog->map_ids[i] == map_id;
	for (uint32_t i = 0; i < prog->map_ref_cnt; i++)
		if (prog->map_refs[i].id == map_id)
			at = (int)i;
	if (!listed && at < 0)
		return 1;
	if (at < 0 || !prog->insns || prog->map_ref_cnt > ADDITIVE_MAX_MAPS) {
		snprintf(why, why_size, "program %u of %s[%d] uses it in a way we cannot read",
			 prog->id, t->comm, t->pid);
		return 0;
	}
	for (uint32_t i = 0; i < prog->map_ref_cnt; i++) {
		struct bpf_map_info info;
		int r = map_info(prog->map_refs[i].id, &info);

		if (r < 0)
			return r;
		fds[i] = prog->map_refs[i].fd;
		value_sizes[i] = info.value_size;
		key_sizes[i] = info.key_size;
	}
	mask = additive__maps((const struct ebpf_insn *)prog->insns, prog->insn_cnt, fds,
			      value_sizes, key_sizes, prog->map_ref_cnt);
	if (mask & (1ull << at))
		return 1;
	snprintf(why, why_size, "program %u (%s) of %s[%d] does more than add to it", prog->id,
		 prog->name, t->comm, t->pid);
	return 0;
}

static int qualifies(const struct model *m, uint32_t map_id, const struct bpf_map_info *info,
		     char *why, size_t why_size)
{
	if (info->type != BPF_MAP_TYPE_HASH && info->type != BPF_MAP_TYPE_PERCPU_HASH &&
	    info->type != BPF_MAP_TYPE_ARRAY && info->type != BPF_MAP_TYPE_PERCPU_ARRAY) {
		snprintf(why, why_size, "%s maps are read and written through bpf()",
			 model_map_type_name(info->type));
		return 0;
	}
	if ((info->map_flags & BPF_F_MMAPABLE) || info->key_size > BPFTIMED_DELTA_KEY_MAX ||
	    info->value_size % 8 || info->value_size > BPFTIMED_DELTA_WORDS * 8) {
		snprintf(why, why_size, "key %u bytes, value %u bytes, flags 0x%x: no deltas",
			 info->key_size, info->value_size, info->map_flags);
		return 0;
	}
	for (const struct model_tool *t = m->tools; t; t = t->next)
		for (const struct model_obj *o = t->objs; o; o = o->next) {
			int r;

			if (o->kind != MODEL_OBJ_PROG)
				continue;
			r = prog_adds_only(t, o->prog, map_id, why, why_size);
			if (r <= 0)
				return r;
		}
	return 1;
}

int deltas_get(struct deltas *d, const struct model *m, int map_fd,
	       const struct bpf_map_info *info, char *why, size_t why_size)
{
	struct store *s;
	int r;

	for (s = d->list; s; s = s->next)
		if (s->map_id == info->id)
			return bpf_map__fd(s->skel->maps.deltas);
	r = qualifies(m, info->id, info, why, why_size);
	if (r <= 0)
		return r < 0 ? r : -EOPNOTSUPP;
	s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(why, why_size, "out of memory");
		return -ENOMEM;
	}
	s->map_id = info->id;
	s->skel = drain_bpf__open();
	r = s->skel ? bpf_map__reuse_fd(s->skel->maps.target, map_fd) : -errno;
	if (r == 0)
		r = bpf_map__reuse_fd(s->skel->maps.agents, d->agents_fd);
	if (r == 0) {
		s->skel->rodata->value_words = info->value_size / 8;
		r = drain_bpf__load(s->skel);
	}
	if (r == 0)
		r = drain_bpf__attach(s->skel);
	if (r < 0) {
		snprintf(why, why_size, "cannot load the drain program of map %u: %s", info->id,
			 strerror(-r));
		drain_bpf__destroy(s->skel);
		free(s);
		return r;
	}
	s->next = d->list;
	d->list = s;
	sd_event_source_set_enabled(d->timer, SD_EVENT_ON);
	return bpf_map__fd(s->skel->maps.deltas);
}

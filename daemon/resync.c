// SPDX-License-Identifier: MIT
/* The model rebuilt from /proc (see resync.h). */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "resolve.h"
#include "resync.h"

/* An old object to carry over: same fd, same kind, same kernel id. */
static struct model_prog *old_prog(const struct model_tool *old, uint32_t id)
{
	for (const struct model_obj *o = old ? old->objs : NULL; o; o = o->next)
		if (o->kind == MODEL_OBJ_PROG && o->prog->id == id)
			return o->prog;
	return NULL;
}

/* A program of the tool by kernel id: the one the model had, or read from the kernel. */
static struct model_prog *prog_by_id(const struct model_tool *old, const struct model_tool *t,
				     uint32_t id)
{
	struct model_prog *p = old_prog(t, id);

	if (!p)
		p = old_prog(old, id);
	if (p)
		return model_prog_ref(p);
	p = model_prog_new();
	if (p)
		resolve_prog_by_id(id, p);
	return p;
}

static unsigned int fdinfo_u32(pid_t pid, int fd, const char *key)
{
	char path[64], line[256];
	size_t klen = strlen(key);
	unsigned int v = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", pid, fd);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, klen) && line[klen] == ':') {
			v = (unsigned int)strtoul(line + klen + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

static int add_prog(struct model *m, struct model_tool *t, const struct model_tool *old, int fd)
{
	uint32_t id = fdinfo_u32(t->pid, fd, "prog_id");
	struct model_prog *p = old_prog(old, id);
	struct model_obj *o;

	if (p) {
		p = model_prog_ref(p);
	} else {
		p = model_prog_new();
		if (!p)
			return -ENOMEM;
		resolve_prog(t->pid, fd, p);
	}
	o = model_obj_add(m, t, fd, MODEL_OBJ_PROG);
	if (!o) {
		model_prog_unref(p);
		return -ENOMEM;
	}
	o->prog = p;
	return 0;
}

static int add_map(struct model *m, struct model_tool *t, int fd)
{
	struct model_obj *o = model_obj_add(m, t, fd, MODEL_OBJ_MAP);

	return o ? resolve_map(t->pid, fd, &o->map) : -ENOMEM;
}

static int add_link(struct model *m, struct model_tool *t, const struct model_tool *old, int fd)
{
	struct model_obj *o = model_obj_add(m, t, fd, MODEL_OBJ_LINK);
	uint32_t prog_id = 0;

	if (!o)
		return -ENOMEM;
	o->link.target_fd = -1;
	resolve_link(t->pid, fd, &o->link.id, &prog_id);
	o->link.prog = prog_by_id(old, t, prog_id);
	return o->link.prog ? 0 : -ENOMEM;
}

static int add_perf(struct model *m, struct model_tool *t, const struct model_tool *old, int fd)
{
	struct model_obj *o = model_obj_add(m, t, fd, MODEL_OBJ_PERF);
	uint32_t prog_id = 0;

	if (!o)
		return -ENOMEM;
	o->perf.kind = MODEL_PERF_OTHER;
	o->perf.target_pid = -1;
	o->perf.cpu = -1;
	/* What we cannot read back we assume: enabled, close-on-exec (libbpf, bpftrace, BCC). */
	o->perf.enabled = true;
	o->perf.cloexec = true;
	if (!resolve_uprobe_perf(t->pid, fd, &o->perf.site, &o->perf.retprobe, &prog_id))
		return 0;
	o->perf.kind = MODEL_PERF_UPROBE;
	/* The program may come from a link; the link then holds it as well. */
	o->perf.prog = prog_by_id(old, t, prog_id);
	return o->perf.prog ? 0 : -ENOMEM;
}

static void read_comm(struct model_tool *t)
{
	char path[64];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/comm", t->pid);
	f = fopen(path, "re");
	if (f) {
		if (fgets(t->comm, sizeof(t->comm), f))
			t->comm[strcspn(t->comm, "\n")] = 0;
		fclose(f);
	}
	resolve_exe(t->pid, t->exe, sizeof(t->exe));
}

int resync_process(struct model *m, pid_t pid)
{
	struct model_tool *old = NULL, *t;
	struct model_tool **pp;
	char path[64], target[64];
	struct dirent *de;
	DIR *dir;
	int r = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	dir = opendir(path);
	/* Detach what the model had, rebuild, then drop the old objects. */
	for (pp = &m->tools; *pp; pp = &(*pp)->next) {
		if ((*pp)->pid == pid) {
			old = *pp;
			*pp = old->next;
			break;
		}
	}
	if (!dir) {
		r = errno == ENOENT ? 0 : -errno;
		goto out;
	}
	t = model_tool_get(m, pid);
	if (!t) {
		r = -ENOMEM;
		goto out;
	}
	if (old)
		memcpy(t->comm, old->comm, sizeof(t->comm));
	while (r == 0 && (de = readdir(dir))) {
		int fd = atoi(de->d_name);
		ssize_t n;

		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, fd);
		n = readlink(path, target, sizeof(target) - 1);
		if (n < 0)
			continue;
		target[n] = 0;
		if (!strcmp(target, "anon_inode:bpf-prog"))
			r = add_prog(m, t, old, fd);
		else if (!strcmp(target, "anon_inode:bpf-map"))
			r = add_map(m, t, fd);
		else if (!strcmp(target, "anon_inode:bpf_link"))
			r = add_link(m, t, old, fd);
		else if (!strcmp(target, "anon_inode:[perf_event]"))
			r = add_perf(m, t, old, fd);
		else if (!strcmp(target, "anon_inode:btf"))
			r = model_obj_add(m, t, fd, MODEL_OBJ_BTF) ? 0 : -ENOMEM;
		/* A map or program that vanished while we looked is not an error. */
		if (r == -ENOENT || r == -EBADF)
			r = 0;
	}
	closedir(dir);
	if (!t->objs)
		model_tool_remove(m, pid);
	else if (!t->comm[0])
		read_comm(t);
out:
	if (old) {
		/* model_clear frees the detached tool like any list of tools */
		struct model detached = { .tools = old };

		old->next = NULL;
		model_clear(&detached);
	}
	m->generation++;
	return r;
}

int resync_all(struct model *m, pid_t self)
{
	struct dirent *de;
	int found = 0;
	DIR *dir = opendir("/proc");

	if (!dir)
		return -errno;
	while ((de = readdir(dir))) {
		pid_t pid = atoi(de->d_name);

		if (pid <= 0 || pid == self)
			continue;
		if (resync_process(m, pid) == 0 && model_tool_find(m, pid))
			found++;
	}
	closedir(dir);
	/* Tools the model had that /proc no longer shows. */
	for (struct model_tool *t = m->tools, *next; t; t = next) {
		char p[32];

		next = t->next;
		snprintf(p, sizeof(p), "/proc/%d", t->pid);
		if (access(p, F_OK) < 0)
			model_tool_remove(m, t->pid);
	}
	return found;
}

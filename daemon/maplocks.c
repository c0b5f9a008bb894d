// SPDX-License-Identifier: MIT
/* The maps' write-back locks the daemon makes for the agents (see maplocks.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "maplock.h"
#include "maplocks.h"

struct maplock_entry {
	struct maplock_entry *next;
	uint32_t map_id;
	int fd;
};

struct maplocks {
	struct maplock_entry *list;
};

static void drop(struct maplock_entry *e)
{
	close(e->fd);
	free(e);
}

struct maplocks *maplocks_new(void)
{
	return calloc(1, sizeof(struct maplocks));
}

void maplocks_free(struct maplocks *l)
{
	if (!l)
		return;
	while (l->list) {
		struct maplock_entry *e = l->list;

		l->list = e->next;
		drop(e);
	}
	free(l);
}

int maplocks_get(struct maplocks *l, uint32_t map_id, char *err, size_t err_size)
{
	struct maplock_entry *e;
	int fd;

	for (e = l->list; e; e = e->next)
		if (e->map_id == map_id)
			return e->fd;
	e = malloc(sizeof(*e));
	if (!e) {
		snprintf(err, err_size, "out of memory");
		return -ENOMEM;
	}
	fd = shm_maplock__create(map_id);
	if (fd < 0) {
		snprintf(err, err_size, "cannot make the write-back lock of map %u: %s", map_id,
			 strerror(-fd));
		free(e);
		return fd;
	}
	*e = (struct maplock_entry){ .next = l->list, .map_id = map_id, .fd = fd };
	l->list = e;
	return fd;
}

/* Whether the kernel still has map_id (when in doubt, it has). */
static int map_exists(uint32_t map_id)
{
	int fd = bpf_map_get_fd_by_id(map_id);

	if (fd >= 0)
		close(fd);
	return fd >= 0 || errno != ENOENT;
}

void maplocks_release(struct maplocks *l, int (*keep)(void *ctx, uint32_t map_id), void *ctx)
{
	for (struct maplock_entry **pp = &l->list; *pp;) {
		struct maplock_entry *e = *pp;

		if (keep(ctx, e->map_id) || map_exists(e->map_id)) {
			pp = &e->next;
			continue;
		}
		*pp = e->next;
		drop(e);
	}
}

// SPDX-License-Identifier: MIT
/*
 * The map write-back lock (maplock.h). A new lock file is written and
 * initialised under a temporary name, then linked to its final name, so an
 * opener never sees a half-made mutex; two creators racing both end up with
 * the one that was linked first.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "maplock.h"

#define MAPLOCK_MAGIC 0x6b4c4d42u /* "BMLk" */
#define MAPLOCK_VERSION 1

struct maplock_file {
	uint32_t magic;
	uint32_t version;
	uint32_t map_id;
	uint32_t size;
	pthread_mutex_t mutex;
};

struct shm_maplock {
	struct maplock_file *f;
	uint32_t map_id;
};

static int lock_path(char *buf, size_t sz, const char *dir, uint32_t map_id)
{
	int n = snprintf(buf, sz, "%s/bpftimed-maplock-%u", dir, map_id);

	return n < 0 || (size_t)n >= sz ? -ENAMETOOLONG : 0;
}

static struct maplock_file *map_file(int fd)
{
	struct maplock_file *f;
	struct stat st;

	if (fstat(fd, &st) < 0)
		return NULL;
	if ((size_t)st.st_size < sizeof(*f)) {
		errno = EBADMSG;
		return NULL;
	}
	f = mmap(NULL, sizeof(*f), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (f == MAP_FAILED)
		return NULL;
	if (f->magic != MAPLOCK_MAGIC || f->version != MAPLOCK_VERSION || f->size != sizeof(*f)) {
		munmap(f, sizeof(*f));
		errno = EBADMSG;
		return NULL;
	}
	return f;
}

static struct shm_maplock *wrap(struct maplock_file *f)
{
	struct shm_maplock *l = malloc(sizeof(*l));

	if (!l) {
		munmap(f, sizeof(*f));
		errno = ENOMEM;
		return NULL;
	}
	l->f = f;
	l->map_id = f->map_id;
	return l;
}

struct shm_maplock *shm_maplock__open_fd(int fd)
{
	struct maplock_file *f = map_file(fd);

	return f ? wrap(f) : NULL;
}

/* Writes a fresh lock file under a temporary name and links it to path. */
static int create(const char *path, uint32_t map_id)
{
	pthread_mutexattr_t attr;
	struct maplock_file *f;
	char tmp[PATH_MAX];
	int fd, r = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.%d.%lx", path, getpid(),
		     (unsigned long)pthread_self()) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (fchmod(fd, 0600) < 0 || ftruncate(fd, sizeof(*f)) < 0) {
		r = -errno;
		goto out;
	}
	f = mmap(NULL, sizeof(*f), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (f == MAP_FAILED) {
		r = -errno;
		goto out;
	}
	/* The mutex is initialised in place: a pthread mutex must not be copied. */
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
	r = -pthread_mutex_init(&f->mutex, &attr);
	pthread_mutexattr_destroy(&attr);
	f->map_id = map_id;
	f->size = sizeof(*f);
	f->version = MAPLOCK_VERSION;
	f->magic = MAPLOCK_MAGIC;
	munmap(f, sizeof(*f));
	if (r == 0 && link(tmp, path) < 0 && errno != EEXIST)
		r = -errno;
out:
	unlink(tmp);
	close(fd);
	return r;
}

int shm_maplock__open_file(const char *dir, uint32_t map_id)
{
	struct maplock_file *f;
	char path[PATH_MAX];
	int fd, r;

	r = lock_path(path, sizeof(path), dir, map_id);
	if (r < 0)
		return r;
	fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		r = create(path, map_id);
		if (r < 0)
			return r;
		fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	}
	if (fd < 0)
		return -errno;
	/* Checked now: whoever maps it later must find the lock of this map. */
	f = map_file(fd);
	if (!f || f->map_id != map_id) {
		r = f ? -EBADMSG : -errno;
		if (f)
			munmap(f, sizeof(*f));
		close(fd);
		return r;
	}
	munmap(f, sizeof(*f));
	return fd;
}

void shm_maplock__close(struct shm_maplock *l)
{
	if (!l)
		return;
	munmap(l->f, sizeof(*l->f));
	free(l);
}

int shm_maplock__lock(struct shm_maplock *l, uint64_t timeout_ns)
{
	struct timespec ts;
	int r;

	r = pthread_mutex_trylock(&l->f->mutex);
	if (r == EBUSY) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += (time_t)(timeout_ns / 1000000000u);
		ts.tv_nsec += (long)(timeout_ns % 1000000000u);
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		r = pthread_mutex_clocklock(&l->f->mutex, CLOCK_MONOTONIC, &ts);
	}
	if (r == EOWNERDEAD) {
		pthread_mutex_consistent(&l->f->mutex);
		return 1;
	}
	return -r;
}

void shm_maplock__unlock(struct shm_maplock *l)
{
	pthread_mutex_unlock(&l->f->mutex);
}

uint32_t shm_maplock__map_id(const struct shm_maplock *l)
{
	return l->map_id;
}

int shm_maplock__unlink(const char *dir, uint32_t map_id)
{
	char path[PATH_MAX];
	int r = lock_path(path, sizeof(path), dir, map_id);

	if (r < 0)
		return r;
	return unlink(path) < 0 ? -errno : 0;
}

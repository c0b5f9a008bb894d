// SPDX-License-Identifier: MIT
/*
 * The map write-back lock (maplock.h): a sealed memfd holding a robust,
 * process-shared mutex, initialised before anyone else can see it.
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

int shm_maplock__create(uint32_t map_id)
{
	pthread_mutexattr_t attr;
	struct maplock_file *f;
	int fd, r;

	fd = memfd_create("bpftimed-maplock", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, sizeof(*f)) < 0)
		goto fail;
	f = mmap(NULL, sizeof(*f), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (f == MAP_FAILED)
		goto fail;
	/* The mutex is initialised in place: a pthread mutex must not be copied. */
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
	r = pthread_mutex_init(&f->mutex, &attr);
	pthread_mutexattr_destroy(&attr);
	f->map_id = map_id;
	f->size = sizeof(*f);
	f->version = MAPLOCK_VERSION;
	f->magic = MAPLOCK_MAGIC;
	munmap(f, sizeof(*f));
	if (r) {
		errno = r;
		goto fail;
	}
	/* Its size is fixed for good: no holder can make the others fault. */
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
		goto fail;
	return fd;
fail:
	r = -errno;
	close(fd);
	return r;
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

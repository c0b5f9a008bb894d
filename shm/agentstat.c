// SPDX-License-Identifier: MIT
/* The status page of one agent (agentstat.h). */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agentstat.h"

#define AGENTSTAT_MAGIC 0x74534742u /* "BGSt" */
#define AGENTSTAT_VERSION 1

static int page_path(char *buf, size_t sz, const char *dir, pid_t pid)
{
	int n = snprintf(buf, sz, "%s/%d", dir, (int)pid);

	return n < 0 || (size_t)n >= sz ? -ENAMETOOLONG : 0;
}

int shm_agentstat__create(const char *dir, pid_t pid, uid_t uid, gid_t gid)
{
	struct shm_agentstat head = { .magic = AGENTSTAT_MAGIC,
				      .version = AGENTSTAT_VERSION,
				      .size = sizeof(struct shm_agentstat),
				      .pid = (int32_t)pid,
				      .state = SHM_AGENT_CONNECTED };
	size_t head_len = offsetof(struct shm_agentstat, sites);
	char path[4096];
	int fd, r;

	r = page_path(path, sizeof(path), dir, pid);
	if (r < 0)
		return r;
	/* A page left by an earlier process of that pid is stale. */
	(void)unlink(path);
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (fchown(fd, uid, gid) < 0 || ftruncate(fd, sizeof(struct shm_agentstat)) < 0)
		goto fail;
	if (pwrite(fd, &head, head_len, 0) != (ssize_t)head_len) {
		errno = errno ? errno : EIO;
		goto fail;
	}
	return fd;
fail:
	r = -errno;
	(void)unlink(path);
	close(fd);
	return r;
}

struct shm_agentstat *shm_agentstat__map(int fd)
{
	struct shm_agentstat *p;
	struct stat st;

	if (fstat(fd, &st) < 0)
		return NULL;
	if (!S_ISREG(st.st_mode) || (size_t)st.st_size != sizeof(*p)) {
		errno = EBADMSG;
		return NULL;
	}
	p = mmap(NULL, sizeof(*p), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return NULL;
	if (p->magic != AGENTSTAT_MAGIC || p->version != AGENTSTAT_VERSION ||
	    p->size != sizeof(*p)) {
		munmap(p, sizeof(*p));
		errno = EBADMSG;
		return NULL;
	}
	return p;
}

int shm_agentstat__load(int fd, struct shm_agentstat *copy)
{
	ssize_t n = pread(fd, copy, sizeof(*copy), 0);

	if (n < 0)
		return -errno;
	if (n != (ssize_t)sizeof(*copy) || copy->magic != AGENTSTAT_MAGIC ||
	    copy->version != AGENTSTAT_VERSION || copy->size != sizeof(*copy))
		return -EIO;
	return 0;
}

void shm_agentstat__unmap(struct shm_agentstat *page)
{
	if (page)
		munmap(page, sizeof(*page));
}

int shm_agentstat__unlink(const char *dir, pid_t pid)
{
	char path[4096];
	int r = page_path(path, sizeof(path), dir, pid);

	if (r < 0)
		return r;
	return unlink(path) < 0 ? -errno : 0;
}

static uint64_t load(const uint64_t *v)
{
	return __atomic_load_n(v, __ATOMIC_RELAXED);
}

/* A site's calls, and the time they cost estimated from the timed runs. */
static void read_site(const struct shm_agentstat_site *s, struct shm_agentstat_reading *out)
{
	uint64_t hits = load(&s->hits), returns = load(&s->returns);
	uint64_t samples = load(&s->samples), ret_samples = load(&s->ret_samples);

	out->hits += hits;
	out->errors += load(&s->errors);
	if (samples)
		out->ns += load(&s->sampled_ns) / samples * hits;
	if (ret_samples)
		out->ns += load(&s->ret_sampled_ns) / ret_samples * returns;
}

void shm_agentstat__read(const struct shm_agentstat *page, uint32_t attach,
			 struct shm_agentstat_reading *out)
{
	*out = (struct shm_agentstat_reading){ 0 };
	if (!attach) {
		for (unsigned int i = 0; i < SHM_AGENTSTAT_SITES; i++)
			read_site(&page->sites[i], out);
		return;
	}
	for (unsigned int i = 0; i < SHM_AGENTSTAT_ATTACH; i++) {
		uint32_t site;

		/* The id is published after its site. */
		if (__atomic_load_n(&page->attach[i].id, __ATOMIC_ACQUIRE) != attach)
			continue;
		site = __atomic_load_n(&page->attach[i].site, __ATOMIC_RELAXED);
		if (site < SHM_AGENTSTAT_SITES)
			read_site(&page->sites[site], out);
		return;
	}
}

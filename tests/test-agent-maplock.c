// SPDX-License-Identifier: MIT
/*
 * The map write-back lock (shm/maplock.h): one lock per map id shared by
 * every holder of its file in every process, safe to create from many
 * processes at once, and a holder that dies does not wedge the others.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "maplock.h"

static char dir[64];

static void make_dir(void)
{
	strcpy(dir, "/tmp/maplock-test-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void remove_dir(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_expect_eq(system(cmd), 0);
}

TestSuite(agent_maplock, .init = make_dir, .fini = remove_dir, .timeout = 60);

/* As the daemon makes it and an agent maps it. */
static struct shm_maplock *open_lock(uint32_t map_id)
{
	int fd = shm_maplock__open_file(dir, map_id);
	struct shm_maplock *l;

	if (fd < 0) {
		errno = -fd;
		return NULL;
	}
	l = shm_maplock__open_fd(fd);
	close(fd);
	return l;
}

struct holder {
	struct shm_maplock *l;
	int r;
};

static void *try_lock(void *arg)
{
	struct holder *h = arg;

	h->r = shm_maplock__lock(h->l, 50 * 1000000ull);
	if (h->r >= 0)
		shm_maplock__unlock(h->l);
	return NULL;
}

Test(agent_maplock, handles_share_one_lock)
{
	struct shm_maplock *a = open_lock(7), *b = open_lock(7);
	struct shm_maplock *other = open_lock(8);
	struct holder h = { b, 0 };
	pthread_t t;

	cr_assert_not_null(a);
	cr_assert_not_null(b);
	cr_assert_not_null(other);
	cr_expect_eq(shm_maplock__map_id(a), 7);
	cr_assert_eq(shm_maplock__lock(a, 1000000000ull), 0);
	/* The same map through another handle waits, then gives up. */
	pthread_create(&t, NULL, try_lock, &h);
	pthread_join(t, NULL);
	cr_expect_eq(h.r, -ETIMEDOUT);
	/* Another map's lock is free. */
	h.l = other;
	pthread_create(&t, NULL, try_lock, &h);
	pthread_join(t, NULL);
	cr_expect_eq(h.r, 0);
	shm_maplock__unlock(a);
	h.l = b;
	pthread_create(&t, NULL, try_lock, &h);
	pthread_join(t, NULL);
	cr_expect_eq(h.r, 0);
	shm_maplock__close(a);
	shm_maplock__close(b);
	shm_maplock__close(other);
}

Test(agent_maplock, dead_holder_does_not_wedge)
{
	struct shm_maplock *l = open_lock(9);
	pid_t child;
	int status;

	cr_assert_not_null(l);
	child = fork();
	cr_assert_geq(child, 0);
	if (child == 0) {
		struct shm_maplock *c = open_lock(9);

		_exit(c && shm_maplock__lock(c, 1000000000ull) == 0 ? 0 : 1);
		/* dies holding it */
	}
	cr_assert_eq(waitpid(child, &status, 0), child);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	cr_expect_eq(shm_maplock__lock(l, 1000000000ull), 1, "the next locker learns of the death");
	shm_maplock__unlock(l);
	cr_expect_eq(shm_maplock__lock(l, 1000000000ull), 0, "and then it is an ordinary lock");
	shm_maplock__unlock(l);
	shm_maplock__close(l);
}

Test(agent_maplock, created_by_many_processes_at_once)
{
	uint64_t *counter =
		mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	pid_t kids[8];

	cr_assert_neq(counter, MAP_FAILED);
	for (int i = 0; i < 8; i++) {
		kids[i] = fork();
		cr_assert_geq(kids[i], 0);
		if (kids[i] == 0) {
			struct shm_maplock *l = open_lock(42);

			if (!l)
				_exit(2);
			for (int k = 0; k < 2000; k++) {
				if (shm_maplock__lock(l, 5000000000ull) < 0)
					_exit(3);
				/* a read-modify-write that only the lock makes exact */
				uint64_t v = *(volatile uint64_t *)counter;

				__asm__ volatile("" ::: "memory");
				*(volatile uint64_t *)counter = v + 1;
				shm_maplock__unlock(l);
			}
			_exit(0);
		}
	}
	for (int i = 0; i < 8; i++) {
		int status;

		cr_assert_eq(waitpid(kids[i], &status, 0), kids[i]);
		cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %d: %d", i,
			  WEXITSTATUS(status));
	}
	cr_expect_eq(*counter, 8 * 2000);
	cr_expect_eq(shm_maplock__unlink(dir, 42), 0);
}

Test(agent_maplock, open_fd_and_bad_files)
{
	char path[128], five[128];
	struct shm_maplock *l;
	int fd;

	l = open_lock(5);
	cr_assert_not_null(l);
	shm_maplock__close(l);
	snprintf(path, sizeof(path), "%s/bpftimed-maplock-5", dir);
	fd = open(path, O_RDWR);
	cr_assert_geq(fd, 0);
	l = shm_maplock__open_fd(fd);
	cr_expect_not_null(l);
	cr_expect_eq(shm_maplock__map_id(l), 5);
	shm_maplock__close(l);
	close(fd);

	/* Not a lock file: refused, not trusted. */
	snprintf(path, sizeof(path), "%s/bpftimed-maplock-6", dir);
	fd = open(path, O_RDWR | O_CREAT, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, 4096), 0);
	close(fd);
	cr_expect_null(open_lock(6));
	cr_expect_eq(errno, EBADMSG);

	/* Nor is a symbolic link to one: the daemon never follows one. */
	snprintf(path, sizeof(path), "%s/bpftimed-maplock-7", dir);
	cr_assert_eq(symlink("bpftimed-maplock-5", path), 0);
	cr_expect_eq(shm_maplock__open_file(dir, 7), -ELOOP);
	/* Nor is the lock file of another map. */
	snprintf(path, sizeof(path), "%s/bpftimed-maplock-8", dir);
	snprintf(five, sizeof(five), "%s/bpftimed-maplock-5", dir);
	cr_assert_eq(link(five, path), 0);
	cr_expect_eq(shm_maplock__open_file(dir, 8), -EBADMSG);
}

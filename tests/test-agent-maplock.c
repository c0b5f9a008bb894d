// SPDX-License-Identifier: MIT
/*
 * The map write-back lock (shm/maplock.h): one lock shared by every holder
 * of its fd in every process, exact under contention from many processes, a
 * holder that dies does not wedge the others, and no holder can resize it.
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

/* Made as the daemon makes it, mapped as an agent maps it. */
static struct shm_maplock *open_lock(int fd)
{
	cr_assert_geq(fd, 0, "cannot make a lock: %s", strerror(-fd));
	return shm_maplock__open_fd(fd);
}

TestSuite(agent_maplock, .timeout = 60);

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
	int fd7 = shm_maplock__create(7), fd8 = shm_maplock__create(8);
	struct shm_maplock *a = open_lock(fd7), *b = open_lock(fd7);
	struct shm_maplock *other = open_lock(fd8);
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
	close(fd7);
	close(fd8);
}

Test(agent_maplock, dead_holder_does_not_wedge)
{
	int fd = shm_maplock__create(9);
	struct shm_maplock *l = open_lock(fd);
	pid_t child;
	int status;

	cr_assert_not_null(l);
	child = fork();
	cr_assert_geq(child, 0);
	if (child == 0) {
		struct shm_maplock *c = shm_maplock__open_fd(fd);

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
	close(fd);
}

Test(agent_maplock, exact_under_many_processes)
{
	uint64_t *counter =
		mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	int fd = shm_maplock__create(42);
	pid_t kids[8];

	cr_assert_geq(fd, 0);
	cr_assert_neq(counter, MAP_FAILED);
	for (int i = 0; i < 8; i++) {
		kids[i] = fork();
		cr_assert_geq(kids[i], 0);
		if (kids[i] == 0) {
			struct shm_maplock *l = shm_maplock__open_fd(fd);

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
	close(fd);
}

Test(agent_maplock, open_fd_and_bad_files)
{
	int fd = shm_maplock__create(5), other;
	struct shm_maplock *l;

	l = open_lock(fd);
	cr_assert_not_null(l);
	cr_expect_eq(shm_maplock__map_id(l), 5);
	/* Sealed: no holder can shrink or grow it under the others. */
	cr_expect_eq(ftruncate(fd, 0), -1);
	cr_expect_eq(errno, EPERM);
	cr_expect_eq(ftruncate(fd, 1 << 20), -1);
	cr_expect_eq(errno, EPERM);
	cr_expect_eq(shm_maplock__lock(l, 1000000000ull), 0);
	shm_maplock__unlock(l);
	shm_maplock__close(l);
	close(fd);

	/* Not a lock: refused, not trusted. */
	other = memfd_create("not-a-lock", MFD_CLOEXEC);
	cr_assert_geq(other, 0);
	cr_assert_eq(ftruncate(other, 4096), 0);
	cr_expect_null(shm_maplock__open_fd(other));
	cr_expect_eq(errno, EBADMSG);
	close(other);
}

// SPDX-License-Identifier: MIT
/*
 * Grace periods as SRCU has them: two counters of open sections and an
 * index saying which one new sections count in. A wait drains the idle
 * counter (sections that read the index just before an earlier flip), flips
 * the index, and drains the counter that was current: new sections count
 * in the other one, so it empties however busy the site is. Every access is
 * sequentially consistent: a section whose enter the waiter did not see
 * reads the site after the waiter unpublished what it frees.
 */
#include <sched.h>
#include <time.h>

#include "grace.h"

static struct {
	unsigned int idx;
	/* One cache line each: the hot path writes them from every thread. */
	struct {
		unsigned long n;
	} __attribute__((aligned(64))) open[2];
} grace;

unsigned int grace__enter(void)
{
	unsigned int idx = __atomic_load_n(&grace.idx, __ATOMIC_SEQ_CST) & 1;

	__atomic_fetch_add(&grace.open[idx].n, 1, __ATOMIC_SEQ_CST);
	return idx;
}

void grace__exit(unsigned int idx)
{
	__atomic_fetch_sub(&grace.open[idx].n, 1, __ATOMIC_SEQ_CST);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static bool drain(unsigned int idx, uint64_t deadline)
{
	while (__atomic_load_n(&grace.open[idx].n, __ATOMIC_SEQ_CST)) {
		if (now_ns() > deadline)
			return false;
		sched_yield();
	}
	return true;
}

bool grace__wait(uint64_t timeout_ns)
{
	uint64_t deadline = now_ns() + timeout_ns;
	unsigned int cur = __atomic_load_n(&grace.idx, __ATOMIC_SEQ_CST) & 1;

	if (!drain(cur ^ 1, deadline))
		return false;
	__atomic_store_n(&grace.idx, cur ^ 1, __ATOMIC_SEQ_CST);
	return drain(cur, deadline);
}

void grace__reset(void)
{
	grace.idx = 0;
	grace.open[0].n = 0;
	grace.open[1].n = 0;
}

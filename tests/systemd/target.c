// SPDX-License-Identifier: MIT
/*
 * A process to put a uprobe on inside the test container: calls
 * bpftimed_test_probe() every 10 ms until it is killed.
 */
#include <time.h>

__attribute__((noinline)) int bpftimed_test_probe(int n);

__attribute__((noinline)) int bpftimed_test_probe(int n)
{
	__asm__ volatile("" ::: "memory");
	return n + 1;
}

int main(void)
{
	const struct timespec tick = { .tv_nsec = 10 * 1000 * 1000 };
	volatile int n = 0;

	for (;;) {
		n = bpftimed_test_probe(n);
		nanosleep(&tick, NULL);
	}
}

/* SPDX-License-Identifier: MIT */
/*
 * A process for the daemon's end-to-end tests to probe: calls tgt_add() and
 * tgt_mul() about once a millisecond until SIGTERM/SIGINT or until the
 * number of seconds given as its argument (default 60) has passed. Both are
 * real, separate symbols (noinline, external linkage) so the test can compute
 * their file offsets from the ELF symbol table.
 */
#include <signal.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int tgt_add(int a, int b);
int tgt_mul(int a, int b);

static volatile sig_atomic_t stop;

__attribute__((noinline)) int tgt_add(int a, int b)
{
	/* Keeps the call from being folded away. */
	__asm__ volatile("" : "+r"(a));
	return a + b;
}

__attribute__((noinline)) int tgt_mul(int a, int b)
{
	__asm__ volatile("" : "+r"(a));
	return a * b;
}

static void on_signal(int sig)
{
	stop = 1;
}

int main(int argc, char **argv)
{
	long seconds = argc > 1 ? strtol(argv[1], NULL, 10) : 60;
	time_t end = time(NULL) + seconds;
	volatile int sink = 0;

	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	for (int i = 0; !stop && time(NULL) < end; i++) {
		sink += tgt_add(i, 1);
		sink += tgt_mul(i, 3);
		usleep(1000);
	}
	return sink == 42;
}

// SPDX-License-Identifier: MIT
/*
 * The process tools/bench-offload probes. offload_lea is built by gcc with
 * -O2 -fcf-protection=none: its first instruction is an 8-byte lea, which
 * the kernel single-steps and the agent hooks in place. offload_endbr
 * (offload-endbr.S) starts with endbr64 instead.
 *
 *   offload-target lea|endbr CALLS
 *
 * Prints "ready", waits for a byte on stdin (the go signal: the tool has
 * attached and the daemon handed off), calls the function CALLS times with
 * (i, CALLS - i), prints "N calls/s" for that loop and exits at the end
 * of stdin (the agent, meanwhile, still reports its counters).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

long offload_lea(long a, long b);
long offload_endbr(long a, long b);

__attribute__((noipa)) long offload_lea(long a, long b)
{
	return a + b + 0x1000;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	long (*fn)(long, long);
	volatile long sink = 0;
	long calls;
	double t0;

	if (argc != 3 || (strcmp(argv[1], "lea") && strcmp(argv[1], "endbr")) ||
	    (calls = atol(argv[2])) <= 0) {
		fprintf(stderr, "usage: offload-target lea|endbr CALLS\n");
		return 2;
	}
	fn = strcmp(argv[1], "lea") ? offload_endbr : offload_lea;
	printf("ready\n");
	fflush(stdout);
	if (getchar() == EOF)
		return 1;
	t0 = now();
	for (long i = 0; i < calls; i++)
		sink += fn(i, calls - i);
	printf("%.0f calls/s\n", (double)calls / (now() - t0));
	fflush(stdout);
	while (getchar() != EOF)
		;
	return 0;
}

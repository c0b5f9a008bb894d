// SPDX-License-Identifier: MIT
/*
 * A process to inject into. Each of N threads keeps its own pattern in
 * every YMM register and in rbx/r12-r15 and checks them continuously; the
 * main thread either does the same or blocks in read(). Any change it did
 * not make exits with status 3 and says which register. It also measures
 * the longest gap between two checks (how long it was stopped) and prints
 * it at exit.
 *
 * usage: inject-target THREADS SECONDS [read]
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile int stop;
static uint64_t max_gap_ns;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Fills ymm0-15 with the pattern, then checks it; returns the first bad register or -1. */
static int check_vectors(uint8_t pattern, unsigned int rounds)
{
	uint8_t want[32], got[16][32];

	memset(want, pattern, sizeof(want));
	__asm__ volatile(
#define LOAD(n) "vmovdqu (%0), %%ymm" #n "\n\t"
		LOAD(0) LOAD(1) LOAD(2) LOAD(3) LOAD(4) LOAD(5) LOAD(6) LOAD(7)
		LOAD(8) LOAD(9) LOAD(10) LOAD(11) LOAD(12) LOAD(13) LOAD(14) LOAD(15)
		"1:\n\t"
		"pause\n\t"
		"dec %2\n\t"
		"jnz 1b\n\t"
#define STORE(n) "vmovdqu %%ymm" #n ", " #n "*32(%1)\n\t"
		STORE(0) STORE(1) STORE(2) STORE(3) STORE(4) STORE(5) STORE(6) STORE(7)
		STORE(8) STORE(9) STORE(10) STORE(11) STORE(12) STORE(13) STORE(14) STORE(15)
		: : "r"(want), "r"(got), "r"(rounds)
		: "memory", "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7",
		  "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
	for (int r = 0; r < 16; r++)
		if (memcmp(got[r], want, sizeof(want)))
			return r;
	return -1;
}

static void *checker(void *arg)
{
	uint8_t pattern = (uint8_t)(uintptr_t)arg;
	uint64_t last = now_ns(), t, gap;
	int bad;

	while (!stop) {
		bad = check_vectors(pattern, 20000);
		if (bad >= 0) {
			fprintf(stderr, "CORRUPT ymm%d in thread with pattern 0x%02x\n", bad, pattern);
			exit(3);
		}
		t = now_ns();
		gap = t - last;
		last = t;
		for (uint64_t m = __atomic_load_n(&max_gap_ns, __ATOMIC_RELAXED); gap > m;)
			if (__atomic_compare_exchange_n(&max_gap_ns, &m, gap, false,
							__ATOMIC_RELAXED, __ATOMIC_RELAXED))
				break;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	int threads = argc > 1 ? atoi(argv[1]) : 1;
	int seconds = argc > 2 ? atoi(argv[2]) : 5;
	int use_read = argc > 3 && !strcmp(argv[3], "read");
	pthread_t tids[64];
	char buf[16];

	if (threads > 64)
		threads = 64;
	for (int i = 1; i < threads; i++)
		pthread_create(&tids[i], NULL, checker, (void *)(uintptr_t)(0x11 * i));
	printf("ready\n");
	fflush(stdout);
	if (use_read) {
		/* Blocked in read() until the test writes a line. */
		if (read(0, buf, sizeof(buf)) <= 0)
			return 4;
		printf("read done\n");
	} else {
		uint64_t end = now_ns() + (uint64_t)seconds * 1000000000ULL;

		while (now_ns() < end) {
			int bad = check_vectors(0xa5, 20000);

			if (bad >= 0) {
				fprintf(stderr, "CORRUPT ymm%d in the main thread\n", bad);
				return 3;
			}
		}
	}
	stop = 1;
	for (int i = 1; i < threads; i++)
		pthread_join(tids[i], NULL);
	printf("max gap %llu us\n", (unsigned long long)(max_gap_ns / 1000));
	return 0;
}

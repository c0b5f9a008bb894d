// SPDX-License-Identifier: MIT
/*
 * A process for the agent channel test, started with the agent preloaded.
 * It prints the file offsets of hk_lea and of a USDT semaphore (in .probes,
 * where sys/sdt.h puts them) and the path of its executable, then the file
 * offset and size of hk_push, then for each line "N" on stdin calls hk_lea
 * and hk_push N times each and prints "done N SEMAPHORE".
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "self-offset.h"

extern int hk_lea(int);
extern int hk_push(int);
extern char hk_push_end[];

/* A USDT semaphore: the tracer counts itself in while attached. */
unsigned short bpftime_tick_semaphore __attribute__((section(".probes"), used));

int main(void)
{
	char line[64], exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	volatile int sink = 0;

	exe[n > 0 ? n : 0] = 0;
	printf("offset %llu %llu %s\n", (unsigned long long)self_file_offset(hk_lea),
	       (unsigned long long)self_file_offset(&bpftime_tick_semaphore), exe);
	printf("push %llu %llu\n", (unsigned long long)self_file_offset(hk_push),
	       (unsigned long long)(hk_push_end - (char *)hk_push));
	fflush(stdout);
	while (fgets(line, sizeof(line), stdin)) {
		long calls = atol(line);

		for (long i = 0; i < calls; i++)
			sink += hk_lea((int)i) + hk_push((int)i);
		printf("done %ld %u\n", calls, *(volatile unsigned short *)&bpftime_tick_semaphore);
		fflush(stdout);
	}
	return 0;
}

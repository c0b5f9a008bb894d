// SPDX-License-Identifier: MIT
/*
 * A library whose constructor takes its time ($INJECT_SLOW_MS, 300 ms by
 * default): the target can die during dlopen, or be held in its loader.
 * With $INJECT_SLOW_FORK_MS it forks that far in; the child goes on
 * starting the program at once.
 */
#include <stdlib.h>
#include <unistd.h>

static int env_ms(const char *name, int fallback)
{
	const char *v = getenv(name);

	return v ? atoi(v) : fallback;
}

__attribute__((constructor)) static void slow(void)
{
	int total = env_ms("INJECT_SLOW_MS", 300), at = env_ms("INJECT_SLOW_FORK_MS", -1);

	if (at >= 0 && at < total) {
		usleep((useconds_t)at * 1000);
		if (fork() == 0)
			return;
		total -= at;
	}
	usleep((useconds_t)total * 1000);
}

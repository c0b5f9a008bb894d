// SPDX-License-Identifier: MIT
/*
 * A library whose constructor takes its time ($INJECT_SLOW_MS, 300 ms by
 * default): the target can die during dlopen, or be held in its loader.
 */
#include <stdlib.h>
#include <unistd.h>

__attribute__((constructor)) static void slow(void)
{
	const char *ms = getenv("INJECT_SLOW_MS");

	usleep((useconds_t)(ms ? atoi(ms) : 300) * 1000);
}

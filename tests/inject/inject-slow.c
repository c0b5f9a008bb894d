// SPDX-License-Identifier: MIT
/* A library whose constructor takes its time: the target can die during dlopen. */
#include <unistd.h>

__attribute__((constructor)) static void slow(void)
{
	usleep(300000);
}

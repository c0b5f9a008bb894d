// SPDX-License-Identifier: MIT
/*
 * The library the inject tests load into their targets: its constructor
 * clobbers vector registers on purpose (as dlopen itself does), so a
 * target that sees its own XMM/YMM values change proves we did not restore
 * them.
 */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

__attribute__((constructor)) static void clobber(void)
{
	__asm__ volatile("vpcmpeqb %%ymm0, %%ymm0, %%ymm0\n\t"
			 "vpcmpeqb %%ymm7, %%ymm7, %%ymm7\n\t"
			 "vpcmpeqb %%ymm15, %%ymm15, %%ymm15" ::: "xmm0", "xmm7", "xmm15");
}

int inject_probe_entry(const char *arg);

/* An entry point as the agent has one: writes "called PID" to the file arg names. */
int inject_probe_entry(const char *arg)
{
	char line[32];
	int fd = open(arg, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int n = snprintf(line, sizeof(line), "called %d\n", (int)getpid());

	if (fd < 0)
		return -1;
	if (write(fd, line, (size_t)n) != n) {
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

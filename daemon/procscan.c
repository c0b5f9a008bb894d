// SPDX-License-Identifier: MIT
/* One pass over /proc (see procscan.h). */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "procscan.h"

#define MAX_FILES_PER_PROC 256

/* Microseconds since the process started, from field 22 of /proc/PID/stat. */
static uint64_t age_usec(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long start = 0;
	long hz = sysconf(_SC_CLK_TCK);
	struct timespec now;
	uint64_t now_us, start_us;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	/* comm may hold spaces and parentheses: fields count from the last ')'. */
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d "
				"%*d %*d %llu",
			 &start) != 1 || hz <= 0)
		return 0;
	clock_gettime(CLOCK_BOOTTIME, &now);
	now_us = (uint64_t)now.tv_sec * 1000000ULL + (uint64_t)now.tv_nsec / 1000;
	start_us = start * 1000000ULL / (uint64_t)hz;

	return now_us > start_us ? now_us - start_us : 0;
}

void procscan_pid(const struct procscan_ops *ops, pid_t pid)
{
	struct {
		uint64_t dev, ino;
	} seen[MAX_FILES_PER_PROC];
	char path[64], line[4096], perms[8];
	unsigned long long ino;
	unsigned int maj, min, nseen = 0;
	uint64_t age = UINT64_MAX;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	f = fopen(path, "re");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		bool dup = false;
		uint64_t dev;

		if (sscanf(line, "%*x-%*x %7s %*x %x:%x %llu", perms, &maj, &min, &ino) != 4 ||
		    !ino || perms[2] != 'x')
			continue;
		dev = makedev(maj, min);
		for (unsigned int i = 0; i < nseen; i++)
			dup |= seen[i].dev == dev && seen[i].ino == ino;
		if (dup || !ops->want_file(ops->ctx, dev, ino))
			continue;
		if (nseen < MAX_FILES_PER_PROC)
			seen[nseen++] = (typeof(seen[0])){ dev, ino };
		if (age == UINT64_MAX)
			age = age_usec(pid);
		ops->found(ops->ctx, pid, age, dev, ino);
	}
	fclose(f);
}

int procscan_run(const struct procscan_ops *ops)
{
	DIR *d = opendir("/proc");
	struct dirent *de;

	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		pid_t pid;

		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		pid = (pid_t)atoi(de->d_name);
		if (pid > 0 && ops->want_pid(ops->ctx, pid))
			procscan_pid(ops, pid);
	}
	closedir(d);
	return 0;
}

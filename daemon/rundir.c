// SPDX-License-Identifier: MIT
/* The daemon's directories below its runtime directory (see rundir.h). */
#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rundir.h"

int rundir_make_empty(const char *path)
{
	struct dirent *de;
	DIR *d;

	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return -errno;
	d = opendir(path);
	if (!d)
		return -errno;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			(void)unlinkat(dirfd(d), de->d_name, 0);
	closedir(d);
	return 0;
}

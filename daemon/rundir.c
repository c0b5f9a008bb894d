// SPDX-License-Identifier: MIT
/* The daemon's directories below its runtime directory (see rundir.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rundir.h"

int rundir_make_empty(const char *path)
{
	struct dirent *de;
	struct stat st;
	DIR *d;
	int fd;

	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return -errno;
	/* Ours, not a link someone planted to have us empty another directory. */
	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || st.st_uid != geteuid() || (st.st_mode & 022)) {
		close(fd);
		return -EPERM;
	}
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			(void)unlinkat(dirfd(d), de->d_name, 0);
	closedir(d);
	return 0;
}

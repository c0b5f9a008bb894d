// SPDX-License-Identifier: MIT
/* The daemon's log (see log.h). */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

static int max_level = LOG_INFO;
static bool to_journal;

void log_setup(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	/* stderr is the journal when its device:inode is what systemd announced. */
	to_journal = js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && fstat(STDERR_FILENO, &st) == 0 &&
		     st.st_dev == dev && st.st_ino == ino;
}

void log_set_max_level(int level)
{
	max_level = level;
}

int log_get_max_level(void)
{
	return max_level;
}

int log_level_from_string(const char *s)
{
	static const char *const names[] = { "emerg", "alert", "crit",	 "err",
					     "warning", "notice", "info", "debug" };
	char *end;
	long n;

	for (int i = 0; i < 8; i++)
		if (!strcasecmp(s, names[i]))
			return i;
	if (!strcasecmp(s, "error"))
		return LOG_ERR;
	n = strtol(s, &end, 10);
	return *s && !*end && n >= 0 && n <= 7 ? (int)n : -1;
}

static void log_va(int level, int error, const char *fmt, va_list ap)
{
	char buf[2048], *m;
	int saved = errno;

	if (level > max_level)
		return;
	/* %m prints the error we were given, not whatever errno happens to be. */
	errno = error < 0 ? -error : error;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	m = buf + strlen(buf);
	while (m > buf && m[-1] == '\n')
		*--m = 0;
	if (to_journal)
		fprintf(stderr, "<%d>%s\n", level, buf);
	else
		fprintf(stderr, "%s\n", buf);
	errno = saved;
}

int log_internal(int level, int error, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_va(level, error, fmt, ap);
	va_end(ap);
	return error < 0 ? error : -error;
}

int log_libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	static const int map[] = {
		[LIBBPF_WARN] = LOG_WARNING, [LIBBPF_INFO] = LOG_INFO, [LIBBPF_DEBUG] = LOG_DEBUG
	};

	/* libbpf starts its own messages with "libbpf: ". */
	log_va(level <= LIBBPF_DEBUG ? map[level] : LOG_DEBUG, 0, fmt, ap);
	return 0;
}

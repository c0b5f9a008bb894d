/* SPDX-License-Identifier: MIT */
/*
 * bpftimed's configuration: /etc/bpftimed.conf, then the drop-ins
 * /etc/bpftimed.conf.d/ *.conf in file name order, in systemd's INI style
 * (see bpftimed.conf(5)). Later assignments override earlier ones; an empty
 * assignment resets a key to its default.
 *
 * Contract:
 *  - config_load() reads everything or nothing: on the first bad line it
 *    returns -EINVAL (or the errno of a file it could not read), writes
 *    "file:line: reason" into err and leaves *ret untouched, so a reload can
 *    keep the config in force.
 *  - A missing main file or drop-in directory is not an error: defaults.
 *  - Nothing here logs; functions return -errno.
 */
#ifndef BPFTIMED_CONFIG_H
#define BPFTIMED_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CONFIG_ERR_LEN 512
/* A process or uprobe younger than this stays with the kernel: short-lived ones cost no injection. */
#define CONFIG_DEFAULT_INJECT_DELAY_USEC 200000ULL

struct config {
	/* Globs of binaries to serve; empty: every binary. NULL-terminated. */
	char **serve;
	/* Globs of binaries never to serve, whatever Serve= says. NULL-terminated. */
	char **exclude;
	/* How long a uprobe must stay attached, and a process run, before it gets an agent. */
	uint64_t inject_delay_usec;
	/* Run offloaded programs on the x86-64 JIT (true) or the interpreter. */
	bool jit;
	/* Maximum syslog priority logged, or -1 when LogLevel= is not set. */
	int log_level;
	/* Files read, in order (the main file only when it exists). NULL-terminated. */
	char **files;
};

/* Fills c with the defaults (everything served, 200 ms delay, JIT on, no log level). */
int config_init(struct config *c);
void config_done(struct config *c);

/* Reads path and path.d/ *.conf into *ret (initialised here). See the contract above. */
int config_load(const char *path, struct config *ret, char *err, size_t err_size);

/* Applies one file's text to c; name is what error messages call it. */
int config_parse(struct config *c, FILE *f, const char *name, char *err, size_t err_size);

/* Whether a binary at this absolute path is served: matches Serve= and no Exclude=. */
bool config_serves(const struct config *c, const char *path);

/* "500ms", "2s", "1min 30s", "1.5s", "0"; a bare number is seconds. -EINVAL, -ERANGE. */
int config_parse_timespan(const char *s, uint64_t *ret_usec);
/* systemd's booleans: 1/yes/y/true/t/on and 0/no/n/false/f/off. */
int config_parse_boolean(const char *s);

#endif

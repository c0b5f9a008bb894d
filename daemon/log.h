/* SPDX-License-Identifier: MIT */
/*
 * The daemon's log, systemd style: one line per message on stderr, with a
 * "<N>" syslog priority prefix when $JOURNAL_STREAM says stderr is the
 * journal. log_*_errno() return the negative errno they were given, so
 * "return log_error_errno(r, "Failed to ...: %m");" reads as in systemd; %m
 * prints that errno. libbpf's own messages go through log_libbpf_print().
 */
#ifndef BPFTIMED_LOG_H
#define BPFTIMED_LOG_H

#include <stdarg.h>
#include <syslog.h>

#include <bpf/libbpf.h>

/* Reads $JOURNAL_STREAM and sets the maximum priority shown (LOG_INFO default). */
void log_setup(void);
void log_set_max_level(int level);
int log_get_max_level(void);
/* "debug", "info", "notice", "warning", "err"/"error", "crit"... or a number; -1 if unknown. */
int log_level_from_string(const char *s);

/* Logs at level; error (a negative errno or 0) is what %m prints. Returns error. */
int log_internal(int level, int error, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

int log_libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap);

#define log_debug(...) log_internal(LOG_DEBUG, 0, __VA_ARGS__)
#define log_info(...) log_internal(LOG_INFO, 0, __VA_ARGS__)
#define log_notice(...) log_internal(LOG_NOTICE, 0, __VA_ARGS__)
#define log_warning(...) log_internal(LOG_WARNING, 0, __VA_ARGS__)
#define log_error(...) log_internal(LOG_ERR, 0, __VA_ARGS__)
#define log_debug_errno(e, ...) log_internal(LOG_DEBUG, (e), __VA_ARGS__)
#define log_info_errno(e, ...) log_internal(LOG_INFO, (e), __VA_ARGS__)
#define log_warning_errno(e, ...) log_internal(LOG_WARNING, (e), __VA_ARGS__)
#define log_error_errno(e, ...) log_internal(LOG_ERR, (e), __VA_ARGS__)

#endif

/* SPDX-License-Identifier: MIT */
/*
 * monitor_reader: loads and attaches the kernel monitor (monitor.bpf.c) and hands its records
 * (monitor-events.h) to a callback.
 *
 * Contract:
 * - Every record given to the callback has been bounds-checked: hdr.size equals the ring-buffer
 *   sample length and fits its type, strings are NUL-terminated, chunk and tail counts match the
 *   size. Records that fail are not delivered; they are counted (stats.invalid).
 * - Records arrive in ring order, which keeps the order of each thread.
 * - A PROG_LOAD keeps MONITOR_PROG_INSNS_COMPLETE only if the reader delivered all its chunks, in
 *   order; otherwise MONITOR_PROG_INSNS_LOST is set instead.
 * - Lost records are detected from gaps in the sequence numbers and from the kernel-side drop
 *   counter, and reported through opts->lost (first missing seq, count).
 * - Functions return -errno (and set errno); monitor_reader__new returns NULL with errno set.
 *   Nothing is logged; libbpf's own messages go to opts->print, or nowhere.
 * - Not thread-safe: one thread consumes.
 */
#ifndef BPFTIMED_MONITOR_H
#define BPFTIMED_MONITOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <bpf/libbpf.h>

#include "monitor-events.h"

struct monitor_reader;

/* Returning < 0 stops monitor_reader__consume(), which returns that value. */
typedef int (*monitor_event_fn)(void *ctx, const struct monitor_hdr *ev, size_t size);
typedef void (*monitor_lost_fn)(void *ctx, uint64_t first_seq, uint64_t cnt);

struct monitor_reader_opts {
	size_t sz; /* sizeof(struct monitor_reader_opts) */
	monitor_lost_fn lost;
	/* Process whose activity is ignored: 0 means the caller's own, -1 nobody. */
	pid_t self_tgid;
	/* Ring buffer size in bytes, a power of two multiple of the page size; 0: 16 MiB. */
	uint32_t ringbuf_size;
	/* Largest program whose instructions are copied; 0: MONITOR_MAX_INSNS (kernel limit). */
	uint32_t max_insns;
	/* libbpf's messages while loading; NULL: discarded. */
	libbpf_print_fn_t print;
};
#define monitor_reader_opts__last_field print

struct monitor_reader_stats {
	uint64_t delivered; /* records given to the callback */
	uint64_t invalid; /* records that failed the bounds checks */
	uint64_t lost; /* sequence numbers declared missing */
	uint64_t late; /* records that arrived after their seq was declared missing */
	uint64_t dropped; /* records the kernel side could not write (its counter) */
};

struct monitor_reader *monitor_reader__new(monitor_event_fn cb, void *ctx,
					   const struct monitor_reader_opts *opts);
void monitor_reader__free(struct monitor_reader *r);

/* An epoll fd that becomes readable when records are waiting (for sd-event). */
int monitor_reader__fd(const struct monitor_reader *r);
/* Delivers every waiting record; returns how many, or -errno. */
int monitor_reader__consume(struct monitor_reader *r);
/* Waits up to timeout_ms for records, then delivers them; returns how many, or -errno. */
int monitor_reader__poll(struct monitor_reader *r, int timeout_ms);

/* Records the kernel side could not write into the ring buffer so far. */
uint64_t monitor_reader__dropped(const struct monitor_reader *r);
int monitor_reader__stats(const struct monitor_reader *r, struct monitor_reader_stats *stats);

/*
 * Adds or removes an fd whose close() the monitor reports, for objects learnt other than through
 * the monitor (resynchronisation from /proc).
 */
int monitor_reader__track_fd(struct monitor_reader *r, pid_t tgid, int fd, bool cloexec);
int monitor_reader__untrack_fd(struct monitor_reader *r, pid_t tgid, int fd);

/* 0 if a ring-buffer record passes the reader's bounds checks, else -EBADMSG (for fuzzing). */
int monitor_record_check(const void *data, size_t len);

/* Human-readable name of a MONITOR_EV_* type, "?" if unknown. */
const char *monitor_event_type_name(uint32_t type);

#endif

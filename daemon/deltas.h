/* SPDX-License-Identifier: MIT */
/*
 * Where agents put what they add to a map that every program using it only
 * adds to (agent/additive.h): per such kernel map, a delta array
 * (bpf/delta.h) that agents map, and the drain program (bpf/drain.bpf.c)
 * that adds the deltas into the map before every bpf() map command and
 * whenever asked — every DELTAS_PERIOD_USEC, and before a store goes.
 *
 * Contract: deltas_get() makes a map's store on first use and returns its
 * array's fd (owned here) until deltas_release() drains and drops stores of
 * maps no longer named. A map gets no store (-EOPNOTSUPP, the reason in
 * why) when its type, key or value does not fit bpf/delta.h, or when a
 * program of the model uses it for more than adding (or cannot be read).
 * Whether the map qualifies is decided once, when its store is made.
 */
#ifndef BPFTIMED_DELTAS_H
#define BPFTIMED_DELTAS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <linux/bpf.h>
#include <systemd/sd-event.h>

#include "model.h"

#define DELTAS_PERIOD_USEC 100000

struct deltas;

struct deltas *deltas_new(sd_event *event);
/* Drains every store, then drops them. */
void deltas_free(struct deltas *d);

/* map_fd and info: the kernel map (the fd stays the caller's). */
int deltas_get(struct deltas *d, const struct model *m, int map_fd,
	       const struct bpf_map_info *info, char *why, size_t why_size);
/* Processes with an agent: their own map commands do not drain (nor do the daemon's). */
void deltas_agent(struct deltas *d, pid_t pid, bool connected);
/* Adds every pending delta into its map now. */
void deltas_drain(struct deltas *d);
/* Drains and drops the stores of maps for which keep(ctx, map_id) is false. */
void deltas_release(struct deltas *d, int (*keep)(void *ctx, uint32_t map_id), void *ctx);

#endif

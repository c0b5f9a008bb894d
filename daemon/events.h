/* SPDX-License-Identifier: MIT */
/*
 * Applies the kernel monitor's records to the model: program loads (with
 * their instruction chunks reassembled), maps, BTF, links, perf events and
 * their ioctls, closes, exec and exit. Records arrive bounds-checked from the
 * monitor reader; what they reference is resolved through resolve.h.
 */
#ifndef BPFTIMED_EVENTS_H
#define BPFTIMED_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"
#include "monitor-events.h"

/* Program loads whose chunks are arriving; one per loading thread is typical. */
#define EVENTS_MAX_PENDING 32

struct pending_load {
	uint64_t load_id; /* 0: free */
	uint32_t total;
	uint32_t received;
	struct bpf_insn *insns;
};

struct events {
	struct model *model;
	struct pending_load pending[EVENTS_MAX_PENDING];
	uint64_t applied;
	uint64_t ignored; /* records about objects we never saw created */
};

void events_init(struct events *e, struct model *m);
void events_done(struct events *e);

/* Applies one record; returns 0, or -errno on a failure the caller should log. */
int events_apply(struct events *e, const struct monitor_hdr *ev, size_t size);

#endif

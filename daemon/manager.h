/* SPDX-License-Identifier: MIT */
/*
 * The daemon: one sd-event loop that consumes the kernel monitor into the
 * model, resynchronises from /proc when records were lost, serves the D-Bus
 * API and stops on SIGTERM/SIGINT.
 */
#ifndef BPFTIMED_MANAGER_H
#define BPFTIMED_MANAGER_H

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "events.h"
#include "model.h"
#include "monitor.h"

struct manager {
	sd_event *event;
	sd_bus *bus;
	sd_bus_slot *bus_slot;
	struct monitor_reader *monitor;
	sd_event_source *monitor_source;
	sd_event_source *resync_source;
	struct model model;
	struct events events;
	uint64_t lost_records;
	uint64_t resyncs;
};

int manager_new(struct manager **ret);
void manager_free(struct manager *m);
/* Attaches the monitor, learns the tools already running, takes the bus name. */
int manager_startup(struct manager *m);
int manager_run(struct manager *m);

/* The D-Bus API (bus.c). */
int bus_setup(struct manager *m);

#endif

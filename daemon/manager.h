/* SPDX-License-Identifier: MIT */
/*
 * The daemon: one sd-event loop that consumes the kernel monitor into the
 * model, resynchronises from /proc when records were lost, serves the D-Bus
 * API, reloads its configuration on SIGHUP and Reload(), keeps systemd's
 * watchdog fed, tells systemd what it sees (STATUS=) and stops on
 * SIGTERM/SIGINT.
 */
#ifndef BPFTIMED_MANAGER_H
#define BPFTIMED_MANAGER_H

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "agents.h"
#include "config.h"
#include "events.h"
#include "model.h"
#include "monitor.h"
#include "planner.h"

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

	/* The agents: their socket and the library injected into targets. */
	struct agents agents;
	const char *agent_socket;
	const char *agent_library;
	/* Which attachments the agents serve, where. */
	struct planner *planner;

	/* The configuration in force, where it comes from, and --log-level. */
	struct config config;
	const char *config_path;
	int log_level_override; /* -1: none, LogLevel= decides */

	/* Once per loop iteration: what changed in the model since the last one. */
	sd_event_source *post_source;
	uint64_t seen_generation;
	uint64_t attachments_hash;
	char status[128];
};

/* config_path: the main configuration file (drop-ins in config_path.d/). */
int manager_new(struct manager **ret, const char *config_path, int log_level_override);
void manager_free(struct manager *m);
/* Attaches the monitor, learns the tools already running, takes the bus name. */
int manager_startup(struct manager *m);
/* Reads the configuration at startup; an error is logged as "file:line: reason". */
int manager_load_config(struct manager *m);
int manager_run(struct manager *m);
/*
 * Reads the configuration again; on any error keeps the one in force and
 * writes "file:line: reason" into err. Tells systemd (RELOADING=1, READY=1).
 */
int manager_reload(struct manager *m, char *err, size_t err_size);

/* The D-Bus API (bus.c). */
int bus_setup(struct manager *m);
/* Signals that the attachment list changed (AttachmentsChanged, PropertiesChanged). */
int bus_emit_attachments_changed(struct manager *m);
/* Signals the configuration properties after a reload. */
int bus_emit_config_changed(struct manager *m);

#endif

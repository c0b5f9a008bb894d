// SPDX-License-Identifier: MIT
/* The daemon's event loop (see manager.h). */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "log.h"
#include "manager.h"
#include "resync.h"

int manager_new(struct manager **ret)
{
	struct manager *m = calloc(1, sizeof(*m));
	int r;

	if (!m)
		return log_error_errno(-ENOMEM, "Out of memory.");
	model_init(&m->model);
	events_init(&m->events, &m->model);
	r = sd_event_default(&m->event);
	if (r < 0) {
		free(m);
		return log_error_errno(r, "Failed to allocate the event loop: %m");
	}
	*ret = m;
	return 0;
}

void manager_free(struct manager *m)
{
	if (!m)
		return;
	sd_event_source_unref(m->resync_source);
	sd_event_source_unref(m->monitor_source);
	monitor_reader__free(m->monitor);
	sd_bus_slot_unref(m->bus_slot);
	sd_bus_flush_close_unref(m->bus);
	events_done(&m->events);
	model_clear(&m->model);
	sd_event_unref(m->event);
	free(m);
}

static int on_monitor_event(void *ctx, const struct monitor_hdr *ev, size_t size)
{
	struct manager *m = ctx;
	int r = events_apply(&m->events, ev, size);

	if (r < 0)
		log_warning_errno(r, "Failed to apply %s record of %s[%u]: %m",
				  monitor_event_type_name(ev->type), ev->comm, ev->pid);
	return 0;
}

static int on_resync(sd_event_source *s, void *userdata)
{
	struct manager *m = userdata;
	int r;

	r = resync_all(&m->model, getpid());
	if (r < 0)
		return log_error_errno(r, "Failed to resynchronise from /proc: %m");
	m->resyncs++;
	log_info("Resynchronised from /proc after lost records: %d tools.", r);
	return sd_event_source_set_enabled(s, SD_EVENT_OFF);
}

static void on_monitor_lost(void *ctx, uint64_t first_seq, uint64_t cnt)
{
	struct manager *m = ctx;

	m->lost_records += cnt;
	log_warning("Lost %llu monitor records from #%llu; resynchronising from /proc.",
		    (unsigned long long)cnt, (unsigned long long)first_seq);
	sd_event_source_set_enabled(m->resync_source, SD_EVENT_ONESHOT);
}

static int on_monitor_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct manager *m = userdata;
	int r = monitor_reader__consume(m->monitor);

	if (r < 0)
		return log_error_errno(r, "Failed to read the kernel monitor: %m");
	return 0;
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
	struct manager *m = userdata;

	log_info("Received SIG%s, stopping.", sigabbrev_np((int)si->ssi_signo));
	(void)sd_notify(false, "STOPPING=1");
	return sd_event_exit(m->event, 0);
}

int manager_startup(struct manager *m)
{
	struct monitor_reader_opts opts = {
		.sz = sizeof(opts),
		.lost = on_monitor_lost,
		.print = log_libbpf_print,
	};
	sigset_t mask;
	int r;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	r = sd_event_add_signal(m->event, NULL, SIGTERM, on_signal, m);
	if (r >= 0)
		r = sd_event_add_signal(m->event, NULL, SIGINT, on_signal, m);
	if (r < 0)
		return log_error_errno(r, "Failed to watch signals: %m");

	/* Resynchronisation is deferred and coalesced: many losses, one rescan. */
	r = sd_event_add_defer(m->event, &m->resync_source, on_resync, m);
	if (r < 0)
		return log_error_errno(r, "Failed to allocate the resync source: %m");
	sd_event_source_set_enabled(m->resync_source, SD_EVENT_OFF);

	libbpf_set_print(log_libbpf_print);
	m->monitor = monitor_reader__new(on_monitor_event, m, &opts);
	if (!m->monitor)
		return log_error_errno(-errno, "Failed to load the kernel monitor: %m");
	r = sd_event_add_io(m->event, &m->monitor_source, monitor_reader__fd(m->monitor), EPOLLIN,
			    on_monitor_io, m);
	if (r < 0)
		return log_error_errno(r, "Failed to watch the kernel monitor: %m");

	/* The monitor is attached first, so nothing created from now on is missed. */
	r = resync_all(&m->model, getpid());
	if (r < 0)
		return log_error_errno(r, "Failed to scan running tools: %m");
	log_info("Monitor attached; %d eBPF tools already running.", r);

	return bus_setup(m);
}

int manager_run(struct manager *m)
{
	int r;

	(void)sd_notify(false, "READY=1\nSTATUS=Watching eBPF tools.");
	r = sd_event_loop(m->event);
	if (r < 0)
		return log_error_errno(r, "Event loop failed: %m");
	return 0;
}

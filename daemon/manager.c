// SPDX-License-Identifier: MIT
/* The daemon's event loop (see manager.h). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "log.h"
#include "manager.h"
#include "resync.h"

int manager_new(struct manager **ret, const char *config_path, int log_level_override)
{
	struct manager *m = calloc(1, sizeof(*m));
	int r;

	if (!m)
		return log_error_errno(-ENOMEM, "Out of memory.");
	config_init(&m->config);
	m->config_path = config_path;
	m->log_level_override = log_level_override;
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
	/* Hooks out and the kernel's breakpoints back before the agents hear BYE. */
	if (m->planner)
		planner_stop(m->planner);
	agents_stop(&m->agents);
	planner_free(m->planner);
	sd_event_source_unref(m->post_source);
	sd_event_source_unref(m->resync_source);
	sd_event_source_unref(m->monitor_source);
	monitor_reader__free(m->monitor);
	sd_bus_slot_unref(m->bus_slot);
	sd_bus_flush_close_unref(m->bus);
	events_done(&m->events);
	model_clear(&m->model);
	config_done(&m->config);
	sd_event_unref(m->event);
	free(m);
}

/* ---- What changed in one loop iteration ---- */

static int count_one(void *ctx, const struct model_attachment *a)
{
	(*(size_t *)ctx)++;
	return 0;
}

#define FNV_OFFSET 0xcbf29ce484222325ULL

/* FNV-1a over what identifies an attachment and what ListAttachments() shows of it. */
static void hash_bytes(uint64_t *h, const void *p, size_t n)
{
	for (const unsigned char *b = p; n--; b++)
		*h = (*h ^ *b) * 0x100000001b3ULL;
}

static int hash_attachment(void *ctx, const struct model_attachment *a)
{
	uint64_t *h = ctx;
	uint32_t prog_id = a->prog ? a->prog->id : 0;
	int32_t pid = a->tool->pid;

	hash_bytes(h, &pid, sizeof(pid));
	hash_bytes(h, &a->perf_fd, sizeof(a->perf_fd));
	hash_bytes(h, &a->link_fd, sizeof(a->link_fd));
	hash_bytes(h, a->site->path, strlen(a->site->path) + 1);
	hash_bytes(h, &a->site->dev, sizeof(a->site->dev));
	hash_bytes(h, &a->site->ino, sizeof(a->site->ino));
	hash_bytes(h, &a->site->offset, sizeof(a->site->offset));
	hash_bytes(h, a->site->symbol, strlen(a->site->symbol) + 1);
	hash_bytes(h, &a->retprobe, sizeof(a->retprobe));
	hash_bytes(h, &a->enabled, sizeof(a->enabled));
	hash_bytes(h, &a->pid_filter, sizeof(a->pid_filter));
	hash_bytes(h, &a->cookie, sizeof(a->cookie));
	hash_bytes(h, &prog_id, sizeof(prog_id));
	hash_bytes(h, a->via, strlen(a->via) + 1);
	hash_bytes(h, a->tool->comm, strlen(a->tool->comm) + 1);
	return 0;
}

/* ---- Configuration ---- */

static const char *level_name(int level)
{
	static const char *const names[] = { "emerg",	"alert",  "crit", "err",
					     "warning", "notice", "info", "debug" };

	return level >= 0 && level < 8 ? names[level] : "info";
}

static void format_globs(char *const *globs, const char *none, char *buf, size_t size)
{
	size_t n = 0;

	buf[0] = 0;
	for (size_t i = 0; globs && globs[i] && n < size; i++)
		n += (size_t)snprintf(buf + n, size - n, "%s%s", i ? " " : "", globs[i]);
	if (!globs || !globs[0])
		snprintf(buf, size, "%s", none);
}

/* Puts the configuration in force: the log level now; the rest is read where it is used. */
static void apply_config(struct manager *m)
{
	char serve[256], exclude[256];
	size_t nfiles = 0;

	if (m->log_level_override >= 0)
		log_set_max_level(m->log_level_override);
	else
		log_set_max_level(m->config.log_level >= 0 ? m->config.log_level : LOG_INFO);
	while (m->config.files && m->config.files[nfiles])
		nfiles++;
	format_globs(m->config.serve, "(every binary)", serve, sizeof(serve));
	format_globs(m->config.exclude, "(none)", exclude, sizeof(exclude));
	log_info("Configuration from %s (%zu file%s read): Serve=%s Exclude=%s "
		 "InjectDelaySec=%llums JIT=%s LogLevel=%s.",
		 m->config_path, nfiles, nfiles == 1 ? "" : "s", serve, exclude,
		 (unsigned long long)(m->config.inject_delay_usec / 1000),
		 m->config.jit ? "yes" : "no", level_name(log_get_max_level()));
}

int manager_load_config(struct manager *m)
{
	char err[CONFIG_ERR_LEN];
	struct config c;
	int r;

	r = config_load(m->config_path, &c, err, sizeof(err));
	if (r < 0)
		return log_error_errno(r, "Failed to load the configuration: %s", err);
	config_done(&m->config);
	m->config = c;
	apply_config(m);
	return 0;
}

/* "Watching N tools: ..." for systemd's STATUS=; also what STATUS= goes back to after a reload. */
static void format_status(struct manager *m, char *buf, size_t size)
{
	size_t tools = 0, progs = 0, maps = 0, attachments = 0;

	for (const struct model_tool *t = m->model.tools; t; t = t->next) {
		tools++;
		for (const struct model_obj *o = t->objs; o; o = o->next) {
			progs += o->kind == MODEL_OBJ_PROG;
			maps += o->kind == MODEL_OBJ_MAP;
		}
	}
	(void)model_for_each_attachment(&m->model, count_one, &attachments);
	snprintf(buf, size,
		 "Watching %zu eBPF tool%s: %zu program%s, %zu map%s, %zu uprobe attachment%s.",
		 tools, tools == 1 ? "" : "s", progs, progs == 1 ? "" : "s", maps,
		 maps == 1 ? "" : "s", attachments, attachments == 1 ? "" : "s");
}

int manager_reload(struct manager *m, char *err, size_t err_size)
{
	struct timespec ts;
	struct config c;
	int r;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	/* systemd holds the unit in "reloading" until READY=1 (MONOTONIC_USEC: systemd >= 253). */
	(void)sd_notifyf(
		false, "RELOADING=1\nSTATUS=Reloading the configuration.\nMONOTONIC_USEC=%llu",
		(unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000);
	r = config_load(m->config_path, &c, err, err_size);
	if (r < 0) {
		log_error_errno(
			r, "Failed to reload the configuration, keeping the one in force: %s", err);
	} else {
		config_done(&m->config);
		m->config = c;
		apply_config(m);
		(void)bus_emit_config_changed(m);
		planner_reconfigure(m->planner);
	}
	format_status(m, m->status, sizeof(m->status));
	(void)sd_notifyf(false, "READY=1\nSTATUS=%s", m->status);
	return r;
}

/*
 * Runs after every loop iteration that dispatched something. The model's
 * generation says whether anything changed; a burst of monitor records gives
 * one AttachmentsChanged signal and one STATUS= line, not one per record.
 */
static int on_post(sd_event_source *s, void *userdata)
{
	struct manager *m = userdata;
	uint64_t h = FNV_OFFSET;
	char status[sizeof(m->status)];

	if (m->model.generation == m->seen_generation)
		return 0;
	m->seen_generation = m->model.generation;
	planner_kick(m->planner);
	(void)model_for_each_attachment(&m->model, hash_attachment, &h);
	if (h != m->attachments_hash) {
		m->attachments_hash = h;
		(void)bus_emit_attachments_changed(m);
	}
	format_status(m, status, sizeof(status));
	if (strcmp(status, m->status)) {
		memcpy(m->status, status, sizeof(status));
		(void)sd_notifyf(false, "STATUS=%s", m->status);
	}
	return 0;
}

static int on_monitor_event(void *ctx, const struct monitor_hdr *ev, size_t size)
{
	struct manager *m = ctx;
	int r = events_apply(&m->events, ev, size);

	if (r < 0)
		log_warning_errno(r, "Failed to apply %s record of %s[%u]: %m",
				  monitor_event_type_name(ev->type), ev->comm, ev->pid);
	else if (ev->type == MONITOR_EV_EXEC && m->planner)
		planner_exec(m->planner, (pid_t)ev->pid);
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

static int on_sighup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
	char err[CONFIG_ERR_LEN];

	log_info("Received SIGHUP, reloading the configuration.");
	(void)manager_reload(userdata, err, sizeof(err));
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
	struct agents_ops ops;
	sigset_t mask;
	int r;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	r = sd_event_add_signal(m->event, NULL, SIGTERM, on_signal, m);
	if (r >= 0)
		r = sd_event_add_signal(m->event, NULL, SIGINT, on_signal, m);
	if (r >= 0)
		r = sd_event_add_signal(m->event, NULL, SIGHUP, on_sighup, m);
	if (r < 0)
		return log_error_errno(r, "Failed to watch signals: %m");

	/* WATCHDOG=1 at half of WatchdogSec=, from the loop itself: a stuck loop gets restarted. */
	r = sd_event_set_watchdog(m->event, true);
	if (r < 0)
		return log_error_errno(r, "Failed to enable the watchdog: %m");
	if (r > 0)
		log_debug("Watchdog enabled.");

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

	r = planner_new(&m->planner, m->event, &m->model, &m->agents, &m->config);
	if (r < 0)
		return log_error_errno(r, "Failed to set up the offload planner: %m");
	planner_agents_ops(m->planner, &ops);
	r = agents_start(&m->agents, m->event, m->agent_socket, m->agent_library, &ops);
	if (r < 0)
		return r;

	r = bus_setup(m);
	if (r < 0)
		return r;

	r = sd_event_add_post(m->event, &m->post_source, on_post, m);
	if (r < 0)
		return log_error_errno(r, "Failed to allocate the post source: %m");
	/* The model as scanned is the baseline: signals are for changes after it. */
	m->seen_generation = m->model.generation;
	m->attachments_hash = FNV_OFFSET;
	(void)model_for_each_attachment(&m->model, hash_attachment, &m->attachments_hash);
	format_status(m, m->status, sizeof(m->status));
	/* Tools already running: their uprobes are offloaded like new ones. */
	planner_kick(m->planner);
	return 0;
}

int manager_run(struct manager *m)
{
	int r;

	(void)sd_notifyf(false, "READY=1\nSTATUS=%s", m->status);
	r = sd_event_loop(m->event);
	if (r < 0)
		return log_error_errno(r, "Event loop failed: %m");
	return 0;
}

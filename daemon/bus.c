// SPDX-License-Identifier: MIT
/*
 * The D-Bus API: org.bpftime.bpftimed1 at /org/bpftime/bpftimed1, interface
 * org.bpftime.bpftimed1.Manager. The List* methods and the properties read
 * the model and the configuration and are open to everyone (the D-Bus policy
 * lets anyone call them); methods that change state (Reload) are for root
 * only, checked here as well as by the policy. The Tools and Attachments
 * properties hold what ListTools() and ListAttachments() return;
 * ListServing() says, per attachment and process, who serves it and why;
 * AttachmentsChanged carries the new list whenever it changes.
 */
#include <errno.h>
#include <string.h>

#include "log.h"
#include "manager.h"

#define BUS_NAME "org.bpftime.bpftimed1"
#define BUS_PATH "/org/bpftime/bpftimed1"
#define BUS_INTERFACE "org.bpftime.bpftimed1.Manager"
#define BUS_ERROR_INVALID_CONFIG "org.bpftime.bpftimed1.InvalidConfiguration"

#define TOOL_SIG "(issuuu)"
#define PROGRAM_SIG "(iiusssubaub)"
#define MAP_SIG "(iiussuuuu)"
#define AGENT_SIG "(iusuttsuttt)"
#define ATTACHMENT_FIELDS "issstttstittussuaubsiisstt"
#define ATTACHMENT_SIG "(" ATTACHMENT_FIELDS ")"
#define SERVING_SIG "(iiitsisstt)"

static void count_tool(const struct model_tool *t, uint32_t *progs, uint32_t *maps)
{
	*progs = *maps = 0;
	for (const struct model_obj *o = t->objs; o; o = o->next) {
		*progs += o->kind == MODEL_OBJ_PROG;
		*maps += o->kind == MODEL_OBJ_MAP;
	}
}

struct count_ctx {
	const struct model_tool *tool;
	uint32_t n;
};

static int count_attachment(void *ctx, const struct model_attachment *a)
{
	struct count_ctx *c = ctx;

	c->n += a->tool == c->tool;
	return 0;
}

static int append_tools(sd_bus_message *reply, struct manager *m)
{
	int r = sd_bus_message_open_container(reply, 'a', TOOL_SIG);

	for (const struct model_tool *t = m->model.tools; r >= 0 && t; t = t->next) {
		struct count_ctx c = { .tool = t };
		uint32_t progs, maps;

		count_tool(t, &progs, &maps);
		model_for_each_attachment(&m->model, count_attachment, &c);
		r = sd_bus_message_append(reply, TOOL_SIG, (int32_t)t->pid, t->comm, t->exe, progs,
					  maps, c.n);
	}
	return r < 0 ? r : sd_bus_message_close_container(reply);
}

static int append_map_ids(sd_bus_message *reply, const struct model_prog *p)
{
	return sd_bus_message_append_array(reply, 'u', p && p->map_ids ? p->map_ids : NULL,
					   p ? p->map_cnt * sizeof(uint32_t) : 0);
}

static int append_programs(sd_bus_message *reply, struct manager *m)
{
	int r = sd_bus_message_open_container(reply, 'a', PROGRAM_SIG);

	for (const struct model_tool *t = m->model.tools; r >= 0 && t; t = t->next) {
		for (const struct model_obj *o = t->objs; r >= 0 && o; o = o->next) {
			const struct model_prog *p = o->prog;

			if (o->kind != MODEL_OBJ_PROG)
				continue;
			r = sd_bus_message_open_container(reply, 'r', "iiusssuba" "ub");
			if (r >= 0)
				r = sd_bus_message_append(reply, "iiusssub", (int32_t)t->pid,
							  (int32_t)o->fd, p->id,
							  model_prog_type_name(p->type), p->name,
							  t->comm, p->insn_cnt, p->insns != NULL);
			if (r >= 0)
				r = append_map_ids(reply, p);
			if (r >= 0)
				r = sd_bus_message_append(reply, "b", p->maps_checked);
			if (r >= 0)
				r = sd_bus_message_close_container(reply);
		}
	}
	return r < 0 ? r : sd_bus_message_close_container(reply);
}

static int append_maps(sd_bus_message *reply, struct manager *m)
{
	int r = sd_bus_message_open_container(reply, 'a', MAP_SIG);

	for (const struct model_tool *t = m->model.tools; r >= 0 && t; t = t->next)
		for (const struct model_obj *o = t->objs; r >= 0 && o; o = o->next)
			if (o->kind == MODEL_OBJ_MAP)
				r = sd_bus_message_append(reply, MAP_SIG, (int32_t)t->pid,
							  (int32_t)o->fd, o->map.id,
							  model_map_type_name(o->map.type), o->map.name,
							  o->map.key_size, o->map.value_size,
							  o->map.max_entries, o->map.flags);
	return r < 0 ? r : sd_bus_message_close_container(reply);
}

/* Where one attachment is served, summed over the processes it applies to. */
struct served_sum {
	unsigned int agent, pending, kernel;
	const char *reason;
	uint64_t hits, ns;
};

static void sum_serving(void *ctx, const struct planner_serving *v)
{
	struct served_sum *sum = ctx;

	sum->agent += v->where == PLANNER_AGENT;
	sum->pending += v->where == PLANNER_PENDING;
	sum->kernel += v->where == PLANNER_KERNEL;
	if (v->where == PLANNER_KERNEL && !sum->reason[0])
		sum->reason = v->reason;
	sum->hits += v->hits;
	sum->ns += v->hits * v->ns_per_hit;
}

struct attach_ctx {
	sd_bus_message *reply;
	struct manager *m;
};

static int append_attachment(void *ctx, const struct model_attachment *a)
{
	struct attach_ctx *c = ctx;
	sd_bus_message *reply = c->reply;
	const struct model_prog *p = a->prog;
	struct served_sum sum = { .reason = "" };
	char served[64];
	const char *reason;
	int r;

	planner_serving(c->m->planner, a->tool->pid, a->perf_fd, a->link_fd, a->site->offset,
			&reason, sum_serving, &sum);
	if (reason[0])
		sum.reason = reason;
	snprintf(served, sizeof(served), "agent %u, kernel %u%s", sum.agent,
		 sum.kernel + sum.pending, sum.pending ? " (handing off)" : "");
	r = sd_bus_message_open_container(reply, 'r', ATTACHMENT_FIELDS);
	if (r >= 0)
		r = sd_bus_message_append(reply, "issstttstittussu", (int32_t)a->tool->pid,
					  a->tool->comm, a->retprobe ? "uretprobe" : "uprobe",
					  a->site->path, a->site->dev, a->site->ino, a->site->offset,
					  a->site->symbol, a->site->symbol_offset, (int32_t)a->pid_filter,
					  a->ref_ctr_offset, a->cookie, p ? p->id : 0,
					  p ? p->name : "", p ? model_prog_type_name(p->type) : "",
					  p ? p->insn_cnt : 0);
	if (r >= 0)
		r = append_map_ids(reply, p);
	if (r >= 0)
		r = sd_bus_message_append(reply, "bsiisstt", a->enabled, a->via,
					  (int32_t)a->perf_fd, (int32_t)a->link_fd, served,
					  sum.reason, sum.hits, sum.hits ? sum.ns / sum.hits : 0);
	if (r >= 0)
		r = sd_bus_message_close_container(reply);
	return r;
}

static int append_attachments(sd_bus_message *reply, struct manager *m)
{
	struct attach_ctx c = { .reply = reply, .m = m };
	int r = sd_bus_message_open_container(reply, 'a', ATTACHMENT_SIG);

	if (r >= 0)
		r = model_for_each_attachment(&m->model, append_attachment, &c);
	return r < 0 ? r : sd_bus_message_close_container(reply);
}

/* Per attachment and process: who serves it, why the kernel, how fast. */
struct serving_ctx {
	sd_bus_message *reply;
	const struct model_attachment *a;
	int r;
};

static const char *where_name(enum planner_where w)
{
	return w == PLANNER_AGENT ? "agent" : w == PLANNER_PENDING ? "handing-off" : "kernel";
}

static void append_one_serving(void *ctx, const struct planner_serving *v)
{
	struct serving_ctx *c = ctx;

	if (c->r >= 0)
		c->r = sd_bus_message_append(c->reply, SERVING_SIG, (int32_t)c->a->tool->pid,
					     (int32_t)c->a->perf_fd, (int32_t)c->a->link_fd,
					     c->a->site->offset, c->a->site->symbol,
					     (int32_t)v->pid, where_name(v->where), v->reason,
					     v->hits, v->ns_per_hit);
}

static int serving_of(void *ctx, const struct model_attachment *a)
{
	struct attach_ctx *ac = ctx;
	struct serving_ctx c = { .reply = ac->reply, .a = a };
	const char *reason;

	planner_serving(ac->m->planner, a->tool->pid, a->perf_fd, a->link_fd, a->site->offset,
			&reason, append_one_serving, &c);
	return c.r;
}

static int append_serving(sd_bus_message *reply, struct manager *m)
{
	struct attach_ctx c = { .reply = reply, .m = m };
	int r = sd_bus_message_open_container(reply, 'a', SERVING_SIG);

	if (r >= 0)
		r = model_for_each_attachment(&m->model, serving_of, &c);
	return r < 0 ? r : sd_bus_message_close_container(reply);
}

typedef int (*append_fn)(sd_bus_message *reply, struct manager *m);

static int reply_with(sd_bus_message *call, struct manager *m, append_fn fn)
{
	sd_bus_message *reply = NULL;
	int r;

	r = sd_bus_message_new_method_return(call, &reply);
	if (r >= 0)
		r = fn(reply, m);
	if (r >= 0)
		r = sd_bus_send(NULL, reply, NULL);
	sd_bus_message_unref(reply);
	return r;
}

static int method_list_tools(sd_bus_message *call, void *userdata, sd_bus_error *error)
{
	return reply_with(call, userdata, append_tools);
}

static int method_list_programs(sd_bus_message *call, void *userdata, sd_bus_error *error)
{
	return reply_with(call, userdata, append_programs);
}

static int method_list_maps(sd_bus_message *call, void *userdata, sd_bus_error *error)
{
	return reply_with(call, userdata, append_maps);
}

static int method_list_attachments(sd_bus_message *call, void *userdata, sd_bus_error *error)
{
	return reply_with(call, userdata, append_attachments);
}

static int method_list_serving(sd_bus_message *call, void *userdata, sd_bus_error *error)
{
	return reply_with(call, userdata, append_serving);
}

/* Root only: the policy file already says so; a looser local policy must not open it up. */
static int check_root(sd_bus_message *call, const char *what, sd_bus_error *error)
{
	int r = sd_bus_query_sender_privilege(call, -1);

	if (r < 0)
		return r;
	if (r == 0) {
		const char *sender = sd_bus_message_get_sender(call);

		log_notice("Refused to %s for %s: not root.", what, sender ? sender : "?");
		return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
					 "Only root may %s bpftimed.", what);
	}
	return 0;
}

static const char *agent_state_name(uint32_t state)
{
	switch (state) {
	case SHM_AGENT_CONNECTED:
		return "connected";
	case SHM_AGENT_SERVING:
		return "serving";
	case SHM_AGENT_DORMANT:
		return "dormant";
	default:
		return "unknown";
	}
}

static int append_agents(sd_bus_message *reply, const struct agents *a)
{
	int r = sd_bus_message_open_container(reply, 'a', AGENT_SIG);

	for (const struct agent *g = a->list; r >= 0 && g; g = g->next) {
		struct agent_status st = { .state = SHM_AGENT_CONNECTED };
		bool known = agents_status(g, 0, &st) == 0;

		r = sd_bus_message_append(reply, AGENT_SIG, (int32_t)g->pid, (uint32_t)g->uid,
					  g->version, g->caps, g->connected_usec, g->stop_ns,
					  known ? agent_state_name(st.state) : "unknown", st.probes,
					  st.hits.hits, st.hits.hits ? st.hits.ns / st.hits.hits : 0,
					  st.hits.errors);
	}
	return r < 0 ? r : sd_bus_message_close_container(reply);
}

static int method_list_agents(sd_bus_message *call, void *userdata, sd_bus_error *error)
{
	struct manager *m = userdata;
	sd_bus_message *reply = NULL;
	int r;

	r = sd_bus_message_new_method_return(call, &reply);
	if (r >= 0)
		r = append_agents(reply, &m->agents);
	if (r >= 0)
		r = sd_bus_send(NULL, reply, NULL);
	sd_bus_message_unref(reply);
	return r;
}

static int method_attach_detach(sd_bus_message *call, void *userdata, sd_bus_error *error)
{
	struct manager *m = userdata;
	bool attach = !strcmp(sd_bus_message_get_member(call), "Attach");
	char err[1024];
	int32_t pid;
	int r;

	r = check_root(call, attach ? "attach an agent to" : "detach an agent from", error);
	if (r < 0)
		return r;
	r = sd_bus_message_read(call, "i", &pid);
	if (r < 0)
		return r;
	if (pid <= 0)
		return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "%d is not a pid", pid);
	/* The planner neither injects where a user detached nor holds back where one attached. */
	planner_set_refused(m->planner, pid, !attach);
	r = attach ? agents_attach(&m->agents, pid, false, NULL, err, sizeof(err))
		   : agents_detach(&m->agents, pid, err, sizeof(err));
	if (r < 0) {
		log_warning("%s of process %d failed: %s", attach ? "Attach" : "Detach", pid, err);
		return sd_bus_error_set_errnof(error, -r, "%s", err);
	}
	return sd_bus_reply_method_return(call, NULL);
}

static int method_reload(sd_bus_message *call, void *userdata, sd_bus_error *error)
{
	struct manager *m = userdata;
	char err[CONFIG_ERR_LEN];
	const char *sender;
	int r;

	r = check_root(call, "reload", error);
	if (r < 0)
		return r;
	sender = sd_bus_message_get_sender(call);
	log_info("Reload requested over D-Bus by %s.", sender ? sender : "?");
	r = manager_reload(m, err, sizeof(err));
	if (r == -EINVAL)
		return sd_bus_error_setf(error, BUS_ERROR_INVALID_CONFIG, "%s", err);
	if (r < 0)
		return sd_bus_error_set_errnof(error, -r, "%s", err);
	return sd_bus_reply_method_return(call, NULL);
}

static int append_strv(sd_bus_message *reply, char *const *l)
{
	static char *const empty[] = { NULL };

	return sd_bus_message_append_strv(reply, (char **)(l ? l : empty));
}

static int property_get_config(sd_bus *bus, const char *path, const char *interface,
			       const char *property, sd_bus_message *reply, void *userdata,
			       sd_bus_error *error)
{
	static const char *const levels[] = { "emerg",	 "alert",  "crit", "err",
					      "warning", "notice", "info", "debug" };
	const struct config *c = &((struct manager *)userdata)->config;
	int level;

	if (!strcmp(property, "Serve"))
		return append_strv(reply, c->serve);
	if (!strcmp(property, "Exclude"))
		return append_strv(reply, c->exclude);
	if (!strcmp(property, "InjectDelayUSec"))
		return sd_bus_message_append(reply, "t", c->inject_delay_usec);
	if (!strcmp(property, "JIT"))
		return sd_bus_message_append(reply, "b", c->jit);
	if (!strcmp(property, "LogLevel")) {
		level = log_get_max_level();
		return sd_bus_message_append(reply, "s",
					     level >= 0 && level < 8 ? levels[level] : "info");
	}
	if (!strcmp(property, "ConfigurationFiles"))
		return append_strv(reply, c->files);
	return sd_bus_error_setf(error, SD_BUS_ERROR_UNKNOWN_PROPERTY, "No property %s", property);
}

static int property_get(sd_bus *bus, const char *path, const char *interface,
			const char *property, sd_bus_message *reply, void *userdata,
			sd_bus_error *error)
{
	struct manager *m = userdata;

	if (!strcmp(property, "Version"))
		return sd_bus_message_append(reply, "s", BPFTIMED_VERSION);
	if (!strcmp(property, "Tools"))
		return append_tools(reply, m);
	if (!strcmp(property, "Attachments"))
		return append_attachments(reply, m);
	return sd_bus_error_setf(error, SD_BUS_ERROR_UNKNOWN_PROPERTY, "No property %s", property);
}

#define CONFIG_PROPERTY(name, sig) \
	SD_BUS_PROPERTY(name, sig, property_get_config, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE)

/*
 * Methods marked UNPRIVILEGED: sd-bus would otherwise require CAP_SYS_ADMIN of
 * every caller on the system bus. Reading is open; Reload checks for root itself.
 */
static const sd_bus_vtable manager_vtable[] = {
	SD_BUS_VTABLE_START(0),
	SD_BUS_PROPERTY("Version", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_PROPERTY("Tools", "a" TOOL_SIG, property_get, 0, 0),
	SD_BUS_PROPERTY("Attachments", "a" ATTACHMENT_SIG, property_get, 0,
			SD_BUS_VTABLE_PROPERTY_EMITS_INVALIDATION),
	CONFIG_PROPERTY("Serve", "as"),
	CONFIG_PROPERTY("Exclude", "as"),
	CONFIG_PROPERTY("InjectDelayUSec", "t"),
	CONFIG_PROPERTY("JIT", "b"),
	CONFIG_PROPERTY("LogLevel", "s"),
	CONFIG_PROPERTY("ConfigurationFiles", "as"),
	SD_BUS_METHOD_WITH_ARGS("ListTools", SD_BUS_NO_ARGS, SD_BUS_RESULT("a" TOOL_SIG, tools),
				method_list_tools, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_ARGS("ListPrograms", SD_BUS_NO_ARGS,
				SD_BUS_RESULT("a" PROGRAM_SIG, programs), method_list_programs,
				SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_ARGS("ListMaps", SD_BUS_NO_ARGS, SD_BUS_RESULT("a" MAP_SIG, maps),
				method_list_maps, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_ARGS("ListAttachments", SD_BUS_NO_ARGS,
				SD_BUS_RESULT("a" ATTACHMENT_SIG, attachments),
				method_list_attachments, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_ARGS("ListServing", SD_BUS_NO_ARGS,
				SD_BUS_RESULT("a" SERVING_SIG, serving), method_list_serving,
				SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_ARGS("Reload", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_reload,
				SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_ARGS("ListAgents", SD_BUS_NO_ARGS, SD_BUS_RESULT("a" AGENT_SIG, agents),
				method_list_agents, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_ARGS("Attach", SD_BUS_ARGS("i", pid), SD_BUS_NO_RESULT,
				method_attach_detach, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_ARGS("Detach", SD_BUS_ARGS("i", pid), SD_BUS_NO_RESULT,
				method_attach_detach, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_SIGNAL_WITH_ARGS("AttachmentsChanged", SD_BUS_ARGS("a" ATTACHMENT_SIG, attachments),
				0),
	SD_BUS_VTABLE_END,
};

int bus_emit_attachments_changed(struct manager *m)
{
	sd_bus_message *msg = NULL;
	int r;

	if (!m->bus)
		return 0;
	r = sd_bus_message_new_signal(m->bus, &msg, BUS_PATH, BUS_INTERFACE, "AttachmentsChanged");
	if (r >= 0)
		r = append_attachments(msg, m);
	if (r >= 0)
		r = sd_bus_send(m->bus, msg, NULL);
	sd_bus_message_unref(msg);
	if (r >= 0)
		r = sd_bus_emit_properties_changed(m->bus, BUS_PATH, BUS_INTERFACE, "Attachments",
						   NULL);
	if (r < 0)
		return log_warning_errno(r, "Failed to signal AttachmentsChanged: %m");
	return 0;
}

int bus_emit_config_changed(struct manager *m)
{
	int r;

	if (!m->bus)
		return 0;
	r = sd_bus_emit_properties_changed(m->bus, BUS_PATH, BUS_INTERFACE, "Serve", "Exclude",
					   "InjectDelayUSec", "JIT", "LogLevel",
					   "ConfigurationFiles", NULL);
	if (r < 0)
		return log_warning_errno(r, "Failed to signal the new configuration: %m");
	return 0;
}

int bus_setup(struct manager *m)
{
	int r;

	r = sd_bus_open_system(&m->bus);
	if (r < 0)
		return log_error_errno(r, "Failed to connect to the system bus: %m");
	r = sd_bus_add_object_vtable(m->bus, &m->bus_slot, BUS_PATH, BUS_INTERFACE,
				     manager_vtable, m);
	if (r < 0)
		return log_error_errno(r, "Failed to add the D-Bus object: %m");
	r = sd_bus_request_name(m->bus, BUS_NAME, 0);
	if (r < 0)
		return log_error_errno(r, "Failed to take the bus name " BUS_NAME ": %m");
	r = sd_bus_attach_event(m->bus, m->event, SD_EVENT_PRIORITY_NORMAL);
	if (r < 0)
		return log_error_errno(r, "Failed to attach the bus to the event loop: %m");
	log_info("Serving D-Bus as " BUS_NAME ".");
	return 0;
}

// SPDX-License-Identifier: MIT
/*
 * bpftimectl: ask bpftimed what it sees, over its D-Bus API.
 *
 *   bpftimectl status [-j]
 *   bpftimectl list [tools|programs|maps|agents|attachments|serving] [-j]
 *
 * Text tables or JSON (-j/--json, snake_case keys, the same data). Exit codes:
 * 0 ok, 1 error, 2 usage, 3 bpftimed is not running (status, as systemctl).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <systemd/sd-bus.h>

#define BUS_NAME "org.bpftime.bpftimed1"
#define BUS_PATH "/org/bpftime/bpftimed1"
#define BUS_INTERFACE "org.bpftime.bpftimed1.Manager"

#define EXIT_NOT_RUNNING 3
#define MAX_FIELDS 28

static bool json;

/* One listing: the D-Bus method, the struct's fields and which show as columns. */
struct field {
	const char *key;
	char type; /* D-Bus basic type, 'A' for au, 'T' for t holding CLOCK_REALTIME us */
	const char *column; /* NULL: JSON only */
};

struct listing {
	const char *name;
	const char *method;
	const char *signature; /* of one struct, without parentheses */
	struct field fields[MAX_FIELDS];
};

static const struct listing listings[] = {
	{ "tools", "ListTools", "issuuu", {
		{ "pid", 'i', "PID" }, { "comm", 's', "COMM" }, { "exe", 's', "EXE" },
		{ "programs", 'u', "PROGS" }, { "maps", 'u', "MAPS" },
		{ "attachments", 'u', "ATTACH" },
	} },
	{ "programs", "ListPrograms", "iiusssubaub", {
		{ "pid", 'i', "PID" }, { "fd", 'i', "FD" }, { "id", 'u', "ID" },
		{ "type", 's', "TYPE" }, { "name", 's', "NAME" }, { "comm", 's', "COMM" },
		{ "insn_cnt", 'u', "INSNS" }, { "insns_captured", 'b', "CAPTURED" },
		{ "map_ids", 'A', "MAPS" }, { "maps_checked", 'b', NULL },
	} },
	{ "maps", "ListMaps", "iiussuuuu", {
		{ "pid", 'i', "PID" }, { "fd", 'i', "FD" }, { "id", 'u', "ID" },
		{ "type", 's', "TYPE" }, { "name", 's', "NAME" }, { "key_size", 'u', "KEY" },
		{ "value_size", 'u', "VALUE" }, { "max_entries", 'u', "ENTRIES" },
		{ "flags", 'u', "FLAGS" },
	} },
	{ "agents", "ListAgents", "iusuttsuttt", {
		{ "pid", 'i', "PID" }, { "uid", 'u', "UID" }, { "version", 's', "VERSION" },
		{ "caps", 'u', NULL }, { "connected_usec", 'T', "INJECTED" },
		{ "stop_ns", 't', "STOP(ns)" }, { "state", 's', "STATE" },
		{ "probes", 'u', "PROBES" }, { "hits", 't', "HITS" },
		{ "ns_per_hit", 't', "NS/HIT" }, { "errors", 't', "ERRORS" },
	} },
	{ "attachments", "ListAttachments", "issstttstittussuaubsiisstt", {
		{ "pid", 'i', "PID" }, { "comm", 's', "COMM" }, { "kind", 's', "KIND" },
		{ "path", 's', "PATH" }, { "dev", 't', NULL }, { "ino", 't', NULL },
		{ "offset", 't', "OFFSET" }, { "symbol", 's', "SYMBOL" },
		{ "symbol_offset", 't', NULL }, { "pid_filter", 'i', "FILTER" },
		{ "ref_ctr_offset", 't', NULL }, { "cookie", 't', NULL },
		{ "prog_id", 'u', "PROG" }, { "prog_name", 's', "NAME" },
		{ "prog_type", 's', NULL }, { "insn_cnt", 'u', "INSNS" },
		{ "map_ids", 'A', "MAPS" }, { "enabled", 'b', "ON" }, { "via", 's', "VIA" },
		{ "perf_fd", 'i', NULL }, { "link_fd", 'i', NULL },
		{ "served", 's', "SERVED" }, { "reason", 's', NULL }, { "hits", 't', "HITS" },
		{ "ns_per_hit", 't', "NS/HIT" },
	} },
	{ "serving", "ListServing", "iiitsisstt", {
		{ "tool_pid", 'i', "TOOL" }, { "perf_fd", 'i', NULL }, { "link_fd", 'i', NULL },
		{ "offset", 't', "OFFSET" }, { "symbol", 's', "SYMBOL" }, { "pid", 'i', "PID" },
		{ "served_by", 's', "SERVED-BY" }, { "reason", 's', "REASON" },
		{ "hits", 't', "HITS" }, { "ns_per_hit", 't', "NS/HIT" },
	} },
};

struct value {
	char type;
	union {
		int64_t i;
		uint64_t u;
		bool b;
		char *s;
	};
	uint32_t *ids;
	size_t nids;
};

static int error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int error(const char *fmt, ...)
{
	va_list ap;
	char msg[512];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (json) {
		printf("{\"error\": \"");
		for (const char *p = msg; *p; p++)
			printf(*p == '"' || *p == '\\' ? "\\%c" : "%c", *p);
		printf("\"}\n");
	} else {
		fprintf(stderr, "Error: %s\n", msg);
	}
	return 1;
}

static void json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static int read_value(sd_bus_message *m, char type, struct value *v)
{
	const void *ids;
	size_t len;
	int32_t i32;
	uint32_t u32;
	int b, r;

	v->type = type;
	switch (type) {
	case 'i':
		r = sd_bus_message_read_basic(m, 'i', &i32);
		v->i = i32;
		return r;
	case 'u':
		r = sd_bus_message_read_basic(m, 'u', &u32);
		v->u = u32;
		return r;
	case 't':
	case 'T':
		return sd_bus_message_read_basic(m, 't', &v->u);
	case 'b':
		r = sd_bus_message_read_basic(m, 'b', &b);
		v->b = b;
		return r;
	case 's':
		return sd_bus_message_read_basic(m, 's', &v->s);
	case 'A':
		r = sd_bus_message_read_array(m, 'u', &ids, &len);
		if (r < 0)
			return r;
		v->nids = len / sizeof(uint32_t);
		v->ids = malloc(len ? len : 1);
		if (!v->ids)
			return -ENOMEM;
		memcpy(v->ids, ids, len);
		return 1;
	}
	return -EINVAL;
}

/* Local time to the millisecond, as journalctl prints it. */
static void format_time(uint64_t usec, char *buf, size_t size)
{
	time_t sec = (time_t)(usec / 1000000);
	struct tm tm;
	size_t n;

	if (!localtime_r(&sec, &tm) || !(n = strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm))) {
		snprintf(buf, size, "%" PRIu64, usec);
		return;
	}
	snprintf(buf + n, size - n, ".%03u", (unsigned int)(usec / 1000 % 1000));
}

static void format_value(const struct value *v, char *buf, size_t size)
{
	size_t n = 0;

	switch (v->type) {
	case 'i':
		snprintf(buf, size, "%" PRId64, v->i);
		return;
	case 'u':
	case 't':
		snprintf(buf, size, "%" PRIu64, v->u);
		return;
	case 'T':
		format_time(v->u, buf, size);
		return;
	case 'b':
		snprintf(buf, size, "%s", v->b ? "yes" : "no");
		return;
	case 's':
		snprintf(buf, size, "%s", *v->s ? v->s : "-");
		return;
	}
	buf[0] = 0;
	for (size_t k = 0; k < v->nids && n < size; k++)
		n += (size_t)snprintf(buf + n, size - n, "%s%u", k ? "," : "", v->ids[k]);
	if (!v->nids)
		snprintf(buf, size, "-");
}

static void print_json_value(const struct value *v)
{
	switch (v->type) {
	case 'i':
		printf("%" PRId64, v->i);
		return;
	case 'u':
	case 't':
	case 'T':
		printf("%" PRIu64, v->u);
		return;
	case 'b':
		printf("%s", v->b ? "true" : "false");
		return;
	case 's':
		json_string(v->s);
		return;
	}
	putchar('[');
	for (size_t k = 0; k < v->nids; k++)
		printf("%s%u", k ? ", " : "", v->ids[k]);
	putchar(']');
}

struct table {
	size_t nrows, nfields;
	struct value (*rows)[MAX_FIELDS];
};

static void table_free(struct table *t)
{
	for (size_t r = 0; r < t->nrows; r++)
		for (size_t f = 0; f < t->nfields; f++)
			free(t->rows[r][f].ids);
	free(t->rows);
}

static int read_table(sd_bus_message *reply, const struct listing *l, struct table *t)
{
	char sig[64];
	int r;

	memset(t, 0, sizeof(*t));
	t->nfields = 0;
	for (const char *p = l->signature; *p; p++)
		t->nfields += *p != 'a';
	snprintf(sig, sizeof(sig), "(%s)", l->signature);
	r = sd_bus_message_enter_container(reply, 'a', sig);
	if (r < 0)
		return r;
	while ((r = sd_bus_message_enter_container(reply, 'r', l->signature)) > 0) {
		void *grown = realloc(t->rows, (t->nrows + 1) * sizeof(*t->rows));

		if (!grown)
			return -ENOMEM;
		t->rows = grown;
		memset(t->rows[t->nrows], 0, sizeof(t->rows[0]));
		for (size_t f = 0; f < t->nfields; f++) {
			r = read_value(reply, l->fields[f].type, &t->rows[t->nrows][f]);
			if (r < 0)
				return r;
		}
		t->nrows++;
		r = sd_bus_message_exit_container(reply);
		if (r < 0)
			return r;
	}
	if (r < 0)
		return r;
	return sd_bus_message_exit_container(reply);
}

static void print_json_table(const struct listing *l, const struct table *t)
{
	printf("[");
	for (size_t r = 0; r < t->nrows; r++) {
		printf("%s\n  {", r ? "," : "");
		for (size_t f = 0; f < t->nfields; f++) {
			printf("%s\"%s\": ", f ? ", " : "", l->fields[f].key);
			print_json_value(&t->rows[r][f]);
		}
		printf("}");
	}
	printf("%s]\n", t->nrows ? "\n" : "");
}

static void print_text_table(const struct listing *l, const struct table *t)
{
	size_t width[MAX_FIELDS] = { 0 };
	char cell[512];

	for (size_t f = 0; f < t->nfields; f++) {
		if (!l->fields[f].column)
			continue;
		width[f] = strlen(l->fields[f].column);
		for (size_t r = 0; r < t->nrows; r++) {
			format_value(&t->rows[r][f], cell, sizeof(cell));
			if (strlen(cell) > width[f])
				width[f] = strlen(cell);
		}
	}
	for (size_t f = 0; f < t->nfields; f++)
		if (l->fields[f].column)
			printf("%-*s ", (int)width[f], l->fields[f].column);
	printf("\n");
	for (size_t r = 0; r < t->nrows; r++) {
		for (size_t f = 0; f < t->nfields; f++) {
			if (!l->fields[f].column)
				continue;
			format_value(&t->rows[r][f], cell, sizeof(cell));
			printf("%-*s ", (int)width[f], cell);
		}
		printf("\n");
	}
	printf("\n%zu %s listed.\n", t->nrows, l->name);
}

/* Calls a method of bpftimed; a missing daemon is -ESRCH. */
static int call(sd_bus *bus, const char *method, sd_bus_message **reply, sd_bus_error *err)
{
	int r = sd_bus_call_method(bus, BUS_NAME, BUS_PATH, BUS_INTERFACE, method, err, reply, "");

	if (r < 0 && (sd_bus_error_has_name(err, SD_BUS_ERROR_SERVICE_UNKNOWN) ||
		      sd_bus_error_has_name(err, SD_BUS_ERROR_NAME_HAS_NO_OWNER)))
		return -ESRCH;
	return r;
}

static int open_bus(sd_bus **bus)
{
	int r = sd_bus_open_system(bus);

	return r < 0 ? -ESRCH : 0;
}

static int do_list(sd_bus *bus, const char *what)
{
	const struct listing *l = NULL;
	sd_bus_error err = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	struct table t;
	int r;

	for (size_t i = 0; i < sizeof(listings) / sizeof(listings[0]); i++)
		if (!strcmp(listings[i].name, what))
			l = &listings[i];
	if (!l) {
		error("unknown listing '%s' (tools, programs, maps, agents, attachments, serving)",
		      what);
		return 2;
	}
	r = call(bus, l->method, &reply, &err);
	if (r == -ESRCH) {
		sd_bus_error_free(&err);
		error("bpftimed is not running");
		return EXIT_NOT_RUNNING;
	}
	if (r < 0) {
		r = error("%s failed: %s", l->method, err.message ? err.message : strerror(-r));
		sd_bus_error_free(&err);
		return r;
	}
	r = read_table(reply, l, &t);
	if (r < 0) {
		table_free(&t);
		sd_bus_message_unref(reply);
		return error("cannot read the reply to %s: %s", l->method, strerror(-r));
	}
	if (json)
		print_json_table(l, &t);
	else
		print_text_table(l, &t);
	table_free(&t);
	sd_bus_message_unref(reply);
	return 0;
}

static int do_status(sd_bus *bus)
{
	sd_bus_error err = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	char *version = NULL;
	size_t counts[4] = { 0 };
	int r;

	r = sd_bus_get_property_string(bus, BUS_NAME, BUS_PATH, BUS_INTERFACE, "Version", &err,
				       &version);
	if (r < 0) {
		bool down = sd_bus_error_has_name(&err, SD_BUS_ERROR_SERVICE_UNKNOWN) ||
			    sd_bus_error_has_name(&err, SD_BUS_ERROR_NAME_HAS_NO_OWNER);

		sd_bus_error_free(&err);
		if (json)
			printf("{\"running\": false}\n");
		else
			printf("bpftimed is not running.\n");
		return down ? EXIT_NOT_RUNNING : error("cannot reach bpftimed: %s", strerror(-r));
	}
	for (size_t i = 0; i < 4; i++) {
		/* tools, programs, maps, and attachments (after agents in the table) */
		const struct listing *l = &listings[i == 3 ? 4 : i];
		struct table t;

		r = call(bus, l->method, &reply, &err);
		if (r >= 0 && read_table(reply, l, &t) >= 0)
			counts[i] = t.nrows;
		if (r >= 0)
			table_free(&t);
		sd_bus_message_unref(reply);
		reply = NULL;
		sd_bus_error_free(&err);
	}
	if (json)
		printf("{\"running\": true, \"version\": \"%s\", \"tools\": %zu, \"programs\": %zu, "
		       "\"maps\": %zu, \"attachments\": %zu}\n",
		       version, counts[0], counts[1], counts[2], counts[3]);
	else
		printf("bpftimed %s is running: %zu tools, %zu programs, %zu maps, %zu uprobe "
		       "attachments.\n",
		       version, counts[0], counts[1], counts[2], counts[3]);
	free(version);
	return 0;
}

/* Attach or Detach an agent: root only, checked by bpftimed. */
static int do_agent(sd_bus *bus, const char *method, const char *pid_arg)
{
	sd_bus_error err = SD_BUS_ERROR_NULL;
	char *end;
	long pid = strtol(pid_arg, &end, 10);
	int r;

	if (*end || pid <= 0 || pid > INT32_MAX)
		return error("'%s' is not a pid", pid_arg);
	r = sd_bus_call_method(bus, BUS_NAME, BUS_PATH, BUS_INTERFACE, method, &err, NULL, "i",
			       (int32_t)pid);
	if (r < 0) {
		if (sd_bus_error_has_name(&err, SD_BUS_ERROR_SERVICE_UNKNOWN) ||
		    sd_bus_error_has_name(&err, SD_BUS_ERROR_NAME_HAS_NO_OWNER)) {
			sd_bus_error_free(&err);
			error("bpftimed is not running");
			return EXIT_NOT_RUNNING;
		}
		r = error("%s %ld: %s", method, pid, err.message ? err.message : strerror(-r));
		sd_bus_error_free(&err);
		return r;
	}
	if (json)
		printf("{\"pid\": %ld, \"%s\": true}\n", pid,
		       !strcmp(method, "Attach") ? "attached" : "detached");
	return 0;
}

static int usage(FILE *out)
{
	fprintf(out, "Usage: bpftimectl [-j|--json] COMMAND\n\n"
		     "  status                          is bpftimed running, and what it sees\n"
		     "  list [tools|programs|maps|agents|attachments|serving]\n"
		     "                                  what bpftimed sees (default: attachments)\n"
		     "  attach PID                      inject the agent into a process (root)\n"
		     "  detach PID                      send its agent to sleep (root)\n");
	return out == stdout ? 0 : 2;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	sd_bus *bus = NULL;
	int c, r;

	while ((c = getopt_long(argc, argv, "+jh", opts, NULL)) != -1) {
		if (c == 'j')
			json = true;
		else if (c == 'h')
			return usage(stdout);
		else
			return usage(stderr);
	}
	/* Options may follow the command too (bpftimectl list -j). */
	for (int i = optind; i < argc; i++) {
		if (!strcmp(argv[i], "-j") || !strcmp(argv[i], "--json")) {
			json = true;
			memmove(&argv[i], &argv[i + 1], (size_t)(argc - i - 1) * sizeof(*argv));
			argc--;
			i--;
		}
	}
	if (optind >= argc)
		return usage(stderr);
	if (open_bus(&bus) < 0) {
		if (!strcmp(argv[optind], "status")) {
			printf(json ? "{\"running\": false}\n" : "bpftimed is not running.\n");
			return EXIT_NOT_RUNNING;
		}
		return error("cannot connect to the system bus");
	}
	if (!strcmp(argv[optind], "status") && optind + 1 == argc)
		r = do_status(bus);
	else if (!strcmp(argv[optind], "attach") && optind + 2 == argc)
		r = do_agent(bus, "Attach", argv[optind + 1]);
	else if (!strcmp(argv[optind], "detach") && optind + 2 == argc)
		r = do_agent(bus, "Detach", argv[optind + 1]);
	else if (!strcmp(argv[optind], "list") && optind + 2 >= argc)
		r = do_list(bus, optind + 1 < argc ? argv[optind + 1] : "attachments");
	else
		r = usage(stderr);
	sd_bus_flush_close_unref(bus);
	return r;
}

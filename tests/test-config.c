// SPDX-License-Identifier: MIT
/* bpftimed.conf parsing: good files, bad lines, drop-ins, and all-or-nothing loads. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "config.h"

static char err[CONFIG_ERR_LEN];

/* Parses text into a fresh config (caller frees with config_done). */
static int parse(const char *text, struct config *c)
{
	FILE *f = fmemopen((void *)text, strlen(text), "r");
	int r;

	cr_assert_not_null(f);
	config_init(c);
	err[0] = 0;
	r = config_parse(c, f, "test.conf", err, sizeof(err));
	fclose(f);
	return r;
}

static size_t strv_len(char **l)
{
	size_t n = 0;

	while (l && l[n])
		n++;
	return n;
}

/* A scratch directory with files written into it; removed by teardown. */
static char dir[64];

static void write_file(const char *name, const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "we");
	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	fputs(text, f);
	fclose(f);
}

static void setup_dir(void)
{
	snprintf(dir, sizeof(dir), "/tmp/test-config-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void teardown_dir(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

Test(config, defaults, .timeout = 10)
{
	struct config c;

	config_init(&c);
	cr_assert_null(c.serve);
	cr_assert_null(c.exclude);
	cr_assert_eq(c.inject_delay_usec, CONFIG_DEFAULT_INJECT_DELAY_USEC);
	cr_assert(c.jit);
	cr_assert_eq(c.log_level, -1);
	cr_assert(config_serves(&c, "/usr/bin/anything"));
	config_done(&c);
}

Test(config, full_file, .timeout = 10)
{
	struct config c;
	int r = parse("# a comment\n"
		      "; another\n"
		      "\n"
		      "[Service]\n"
		      "Serve=/usr/bin/* libc.so.6\n"
		      "  Serve = \"/opt/my app/bin/*\"  \n"
		      "Exclude=*/libssl.so.*\n"
		      "InjectDelaySec=500ms\n"
		      "JIT=no\n"
		      "LogLevel=debug\n"
		      "[X-Vendor]\n"
		      "Whatever=is ignored\n",
		      &c);

	cr_assert_eq(r, 0, "%s", err);
	cr_assert_eq(strv_len(c.serve), 3);
	cr_assert_str_eq(c.serve[0], "/usr/bin/*");
	cr_assert_str_eq(c.serve[1], "libc.so.6");
	cr_assert_str_eq(c.serve[2], "/opt/my app/bin/*");
	cr_assert_eq(strv_len(c.exclude), 1);
	cr_assert_eq(c.inject_delay_usec, 500000);
	cr_assert_not(c.jit);
	cr_assert_eq(c.log_level, LOG_DEBUG);
	config_done(&c);
}

Test(config, empty_assignment_resets, .timeout = 10)
{
	struct config c;
	int r = parse("[Service]\n"
		      "Serve=/a/* /b/*\n"
		      "Serve=\n"
		      "Serve=/c/*\n"
		      "Exclude=x\n"
		      "Exclude=\n"
		      "InjectDelaySec=2s\n"
		      "InjectDelaySec=\n"
		      "JIT=off\n"
		      "JIT=\n"
		      "LogLevel=err\n"
		      "LogLevel=\n",
		      &c);

	cr_assert_eq(r, 0, "%s", err);
	cr_assert_eq(strv_len(c.serve), 1);
	cr_assert_str_eq(c.serve[0], "/c/*");
	cr_assert_null(c.exclude);
	cr_assert_eq(c.inject_delay_usec, CONFIG_DEFAULT_INJECT_DELAY_USEC);
	cr_assert(c.jit);
	cr_assert_eq(c.log_level, -1);
	config_done(&c);
}

Test(config, continuation, .timeout = 10)
{
	struct config c;
	int r = parse("[Service]\n"
		      "Serve=/a/* \\\n"
		      "# comments inside a continuation are skipped\n"
		      "      /b/*\n"
		      "JIT=yes\n",
		      &c);

	cr_assert_eq(r, 0, "%s", err);
	cr_assert_eq(strv_len(c.serve), 2);
	cr_assert_str_eq(c.serve[1], "/b/*");
	config_done(&c);
}

Test(config, timespans, .timeout = 10)
{
	static const struct {
		const char *s;
		uint64_t usec;
	} good[] = {
		{ "0", 0 },
		{ "2", 2000000 },
		{ "2s", 2000000 },
		{ "500ms", 500000 },
		{ "1.5s", 1500000 },
		{ "1min 30s", 90000000 },
		{ "1min30s", 90000000 },
		{ "250us", 250 },
		{ "3 h", 10800000000ULL },
		{ "1d", 86400000000ULL },
		{ "0.0001s", 100 },
		{ " 10 msec ", 10000 },
	};
	static const char *const bad[] = {
		"", "s", "abc", "5 parsecs", "1..5s", "-1s", "99999999999999999999s", "1s.5", "2 3x"
	};
	uint64_t v;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		cr_assert_eq(config_parse_timespan(good[i].s, &v), 0, "\"%s\"", good[i].s);
		cr_assert_eq(v, good[i].usec, "\"%s\": %llu", good[i].s, (unsigned long long)v);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_lt(config_parse_timespan(bad[i], &v), 0, "\"%s\" accepted", bad[i]);
	cr_assert_eq(config_parse_timespan("99999999999999999999s", &v), -ERANGE);
}

Test(config, booleans, .timeout = 10)
{
	static const char *const yes[] = { "1", "yes", "Y", "true", "t", "on", "ON" };
	static const char *const no[] = { "0", "no", "n", "FALSE", "f", "off" };

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		cr_assert_eq(config_parse_boolean(yes[i]), 1, "%s", yes[i]);
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		cr_assert_eq(config_parse_boolean(no[i]), 0, "%s", no[i]);
	cr_assert_eq(config_parse_boolean("maybe"), -EINVAL);
	cr_assert_eq(config_parse_boolean(""), -EINVAL);
}

/* Each bad input fails with this exact "file:line: reason". */
Test(config, bad_lines, .timeout = 10)
{
	static const struct {
		const char *text;
		const char *msg;
	} cases[] = {
		{ "Serve=/x\n", "test.conf:1: assignment \"Serve=\" outside of a section" },
		{ "[Service]\nFoo=1\n", "test.conf:2: unknown key \"Foo\" in section [Service]" },
		{ "[Unit]\nJIT=1\n", "test.conf:1: unknown section [Unit]" },
		{ "[Service\n", "test.conf:1: invalid section header \"[Service\"" },
		{ "[]\n", "test.conf:1: invalid section header \"[]\"" },
		{ "[Service]\n\nJIT\n", "test.conf:3: missing '=' in \"JIT\"" },
		{ "[Service]\n=yes\n", "test.conf:2: assignment without a key" },
		{ "[Service]\nJIT=perhaps\n", "test.conf:2: JIT=: invalid boolean \"perhaps\"" },
		{ "[Service]\nInjectDelaySec=soon\n",
		  "test.conf:2: InjectDelaySec=: invalid time span \"soon\"" },
		{ "[Service]\nInjectDelaySec=99999999999999999999s\n",
		  "test.conf:2: InjectDelaySec=: out of range time span \"99999999999999999999s\"" },
		{ "[Service]\nLogLevel=loud\n",
		  "test.conf:2: LogLevel=: unknown log level \"loud\"" },
		{ "[Service]\nServe=usr/bin/*\n",
		  "test.conf:2: Serve=: pattern with a '/' must be absolute or start with '*': "
		  "\"usr/bin/*\"" },
		{ "[Service]\nExclude=\"/a b\n",
		  "test.conf:2: Exclude=: unbalanced quotes or trailing '\\'" },
		{ "[Service]\nServe=/a \\\n",
		  "test.conf:2: line continues past the end of the file" },
		{ "[Service]\r\nJIT=1\r\nJIT=2\r\n", "test.conf:3: JIT=: invalid boolean \"2\"" },
	};
	struct config c;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cr_assert_eq(parse(cases[i].text, &c), -EINVAL, "case %zu accepted", i);
		cr_assert_str_eq(err, cases[i].msg, "case %zu", i);
		config_done(&c);
	}
}

Test(config, nul_byte, .timeout = 10)
{
	static const char text[] = "[Service]\nJIT=1\0x\n";
	struct config c;
	FILE *f = fmemopen((void *)text, sizeof(text) - 1, "r");

	config_init(&c);
	cr_assert_eq(config_parse(&c, f, "nul.conf", err, sizeof(err)), -EINVAL);
	cr_assert_str_eq(err, "nul.conf:2: NUL byte in line");
	fclose(f);
	config_done(&c);
}

Test(config, serves, .timeout = 10)
{
	struct config c;

	cr_assert_eq(parse("[Service]\n"
			   "Serve=/usr/bin/* libc.so.6 *.so\n"
			   "Exclude=*/libssl.so /usr/bin/ssh\n",
			   &c),
		     0, "%s", err);
	cr_assert(config_serves(&c, "/usr/bin/bash"));
	cr_assert(config_serves(&c, "/usr/bin/sub/dir/tool"), "'*' matches across '/'");
	cr_assert(config_serves(&c, "/lib/x86_64-linux-gnu/libc.so.6"));
	cr_assert(config_serves(&c, "/opt/lib/libfoo.so"));
	cr_assert_not(config_serves(&c, "/opt/lib/libssl.so"));
	cr_assert_not(config_serves(&c, "/usr/bin/ssh"));
	cr_assert_not(config_serves(&c, "/usr/sbin/nginx"));
	cr_assert_not(config_serves(&c, "/opt/libc.so.6.bak"));
	config_done(&c);

	cr_assert_eq(parse("[Service]\nExclude=bash\n", &c), 0, "%s", err);
	cr_assert_not(config_serves(&c, "/usr/bin/bash"));
	cr_assert(config_serves(&c, "/usr/bin/dash"));
	config_done(&c);
}

Test(config, load_missing_is_defaults, .init = setup_dir, .fini = teardown_dir, .timeout = 10)
{
	char path[128];
	struct config c;

	snprintf(path, sizeof(path), "%s/none.conf", dir);
	cr_assert_eq(config_load(path, &c, err, sizeof(err)), 0, "%s", err);
	cr_assert_null(c.files);
	cr_assert(c.jit);
	config_done(&c);
}

Test(config, load_dropins_in_order, .init = setup_dir, .fini = teardown_dir, .timeout = 10)
{
	char path[128], sub[160];
	struct config c;

	snprintf(path, sizeof(path), "%s/bpftimed.conf", dir);
	snprintf(sub, sizeof(sub), "%s.d", path);
	cr_assert_eq(mkdir(sub, 0755), 0);
	write_file("bpftimed.conf", "[Service]\nJIT=no\nLogLevel=info\nServe=/main/*\n");
	/* Name order, not creation order; only *.conf; the last assignment wins. */
	write_file("bpftimed.conf.d/20-b.conf", "[Service]\nLogLevel=debug\nServe=/b/*\n");
	write_file("bpftimed.conf.d/10-a.conf", "[Service]\nLogLevel=warning\nJIT=yes\n");
	write_file("bpftimed.conf.d/30-c.conf.disabled", "[Service]\nJIT=no\n");
	write_file("bpftimed.conf.d/README", "not a drop-in\n");
	write_file("bpftimed.conf.d/40-reset.conf", "[Service]\nInjectDelaySec=1min\n");

	cr_assert_eq(config_load(path, &c, err, sizeof(err)), 0, "%s", err);
	cr_assert(c.jit);
	cr_assert_eq(c.log_level, LOG_DEBUG);
	cr_assert_eq(c.inject_delay_usec, 60000000);
	cr_assert_eq(strv_len(c.serve), 2);
	cr_assert_str_eq(c.serve[0], "/main/*");
	cr_assert_str_eq(c.serve[1], "/b/*");
	cr_assert_eq(strv_len(c.files), 4);
	cr_assert(strstr(c.files[0], "/bpftimed.conf"));
	cr_assert(strstr(c.files[1], "10-a.conf"));
	cr_assert(strstr(c.files[2], "20-b.conf"));
	cr_assert(strstr(c.files[3], "40-reset.conf"));
	config_done(&c);
}

/* A bad drop-in refuses the whole load and leaves the caller's config as it was. */
Test(config, load_all_or_nothing, .init = setup_dir, .fini = teardown_dir, .timeout = 10)
{
	char path[128], sub[160], want[256];
	struct config old, c;

	snprintf(path, sizeof(path), "%s/bpftimed.conf", dir);
	snprintf(sub, sizeof(sub), "%s.d", path);
	cr_assert_eq(mkdir(sub, 0755), 0);
	write_file("bpftimed.conf", "[Service]\nJIT=no\n");
	cr_assert_eq(config_load(path, &old, err, sizeof(err)), 0, "%s", err);
	cr_assert_not(old.jit);

	write_file("bpftimed.conf", "[Service]\nJIT=yes\nLogLevel=debug\n");
	write_file("bpftimed.conf.d/50-bad.conf", "[Service]\n# fine so far\nInjectDelaySec=2x\n");
	c = old;
	cr_assert_eq(config_load(path, &c, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want),
		 "%s/bpftimed.conf.d/50-bad.conf:3: InjectDelaySec=: invalid time span \"2x\"",
		 dir);
	cr_assert_str_eq(err, want);
	/* Untouched: same values, same allocations. */
	cr_assert_eq(memcmp(&c, &old, sizeof(c)), 0);
	cr_assert_not(c.jit);
	config_done(&old);
}

Test(config, load_unreadable, .init = setup_dir, .fini = teardown_dir, .timeout = 10)
{
	char path[128];
	struct config c;

	/* A directory where the file should be cannot be read as one. */
	snprintf(path, sizeof(path), "%s/isdir.conf", dir);
	cr_assert_eq(mkdir(path, 0755), 0);
	cr_assert_lt(config_load(path, &c, err, sizeof(err)), 0);
	cr_assert(strstr(err, "isdir.conf"), "%s", err);
}

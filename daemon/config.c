// SPDX-License-Identifier: MIT
/* bpftimed's configuration files (see config.h). */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "log.h"

#define DEFAULT_JIT true

/* A growable NULL-terminated list of strings. */
static int strv_push(char ***l, char *s)
{
	size_t n = 0;
	char **grown;

	while (*l && (*l)[n])
		n++;
	grown = realloc(*l, (n + 2) * sizeof(char *));
	if (!grown)
		return -ENOMEM;
	grown[n] = s;
	grown[n + 1] = NULL;
	*l = grown;
	return 0;
}

static void strv_free(char **l)
{
	for (size_t i = 0; l && l[i]; i++)
		free(l[i]);
	free(l);
}

int config_init(struct config *c)
{
	memset(c, 0, sizeof(*c));
	c->jit = DEFAULT_JIT;
	c->inject_delay_usec = CONFIG_DEFAULT_INJECT_DELAY_USEC;
	c->log_level = -1;
	return 0;
}

void config_done(struct config *c)
{
	if (!c)
		return;
	strv_free(c->serve);
	strv_free(c->exclude);
	strv_free(c->files);
	config_init(c);
}

int config_parse_boolean(const char *s)
{
	static const char *const yes[] = { "1", "yes", "y", "true", "t", "on" };
	static const char *const no[] = { "0", "no", "n", "false", "f", "off" };

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (!strcasecmp(s, yes[i]))
			return 1;
		if (!strcasecmp(s, no[i]))
			return 0;
	}
	return -EINVAL;
}

static const struct {
	const char *name;
	uint64_t usec;
} time_units[] = {
	{ "usec", 1 },
	{ "us", 1 },
	{ "\xc2\xb5s", 1 }, /* µs */
	{ "msec", 1000 },
	{ "ms", 1000 },
	{ "seconds", 1000000 },
	{ "second", 1000000 },
	{ "sec", 1000000 },
	{ "s", 1000000 },
	{ "minutes", 60000000 },
	{ "minute", 60000000 },
	{ "min", 60000000 },
	{ "m", 60000000 },
	{ "hours", 3600000000ULL },
	{ "hour", 3600000000ULL },
	{ "hr", 3600000000ULL },
	{ "h", 3600000000ULL },
	{ "days", 86400000000ULL },
	{ "day", 86400000000ULL },
	{ "d", 86400000000ULL },
};

/* One "1.5s" component at *p; advances *p past it and any spaces after. */
static int parse_time_component(const char **p, uint64_t *ret)
{
	const char *s = *p, *unit;
	uint64_t whole = 0, mult = 1000000, frac = 0, scale = 1;
	size_t unit_len, best = 0;
	bool digits = false;

	for (; isdigit((unsigned char)*s); s++) {
		if (whole > (UINT64_MAX - 9) / 10)
			return -ERANGE;
		whole = whole * 10 + (uint64_t)(*s - '0');
		digits = true;
	}
	if (*s == '.') {
		/* Beyond a microsecond's precision the digits are read and dropped. */
		for (s++; isdigit((unsigned char)*s); s++) {
			if (scale < 1000000000000ULL) {
				frac = frac * 10 + (uint64_t)(*s - '0');
				scale *= 10;
			}
			digits = true;
		}
	}
	if (!digits)
		return -EINVAL;
	while (*s == ' ' || *s == '\t')
		s++;
	unit = s;
	while (*s && *s != ' ' && *s != '\t' && !isdigit((unsigned char)*s) && *s != '.')
		s++;
	unit_len = (size_t)(s - unit);
	/* "1min30s" runs on after a unit; after a bare number only a blank or the end may. */
	if (*s == '.' || (!unit_len && *s && *s != ' ' && *s != '\t'))
		return -EINVAL;
	if (unit_len) {
		for (size_t i = 0; i < sizeof(time_units) / sizeof(time_units[0]); i++) {
			if (strlen(time_units[i].name) == unit_len &&
			    !strncmp(time_units[i].name, unit, unit_len)) {
				mult = time_units[i].usec;
				best = 1;
				break;
			}
		}
		if (!best)
			return -EINVAL;
	}
	if (whole > UINT64_MAX / mult)
		return -ERANGE;
	*ret = whole * mult;
	/* frac/scale of a unit, rounded down to whole microseconds. */
	if (frac) {
		uint64_t f = (uint64_t)((long double)frac * (long double)mult / (long double)scale);

		if (*ret > UINT64_MAX - f)
			return -ERANGE;
		*ret += f;
	}
	while (*s == ' ' || *s == '\t')
		s++;
	*p = s;
	return 0;
}

int config_parse_timespan(const char *s, uint64_t *ret_usec)
{
	uint64_t total = 0, part;
	int r;

	while (*s == ' ' || *s == '\t')
		s++;
	if (!*s)
		return -EINVAL;
	while (*s) {
		r = parse_time_component(&s, &part);
		if (r < 0)
			return r;
		if (total > UINT64_MAX - part)
			return -ERANGE;
		total += part;
	}
	*ret_usec = total;
	return 0;
}

/* The error of one line, "name:line: reason"; returns -EINVAL. */
static int line_error(char *err, size_t err_size, const char *name, unsigned int line,
		      const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int line_error(char *err, size_t err_size, const char *name, unsigned int line,
		      const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!err || !err_size)
		return -EINVAL;
	n = snprintf(err, err_size, "%s:%u: ", name, line);
	if (n >= 0 && (size_t)n < err_size) {
		va_start(ap, fmt);
		vsnprintf(err + n, err_size - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/*
 * Splits a value into words on blanks; "double" and 'single' quotes keep
 * blanks, a backslash outside single quotes takes the next character as is.
 * Returns the number of words, -EINVAL on an unterminated quote or a
 * trailing backslash.
 */
static int split_words(const char *s, char ***ret)
{
	char **words = NULL, *w = NULL;
	size_t len = 0;
	int n = 0, r;

	for (;;) {
		char quote = 0;

		while (*s == ' ' || *s == '\t')
			s++;
		if (!*s)
			break;
		w = malloc(strlen(s) + 1);
		if (!w) {
			r = -ENOMEM;
			goto fail;
		}
		len = 0;
		for (; *s && (quote || (*s != ' ' && *s != '\t')); s++) {
			if (quote && *s == quote) {
				quote = 0;
			} else if (!quote && (*s == '"' || *s == '\'')) {
				quote = *s;
			} else if (*s == '\\' && quote != '\'') {
				if (!s[1]) {
					r = -EINVAL;
					goto fail;
				}
				w[len++] = *++s;
			} else {
				w[len++] = *s;
			}
		}
		if (quote) {
			r = -EINVAL;
			goto fail;
		}
		w[len] = 0;
		r = strv_push(&words, w);
		if (r < 0)
			goto fail;
		w = NULL;
		n++;
	}
	*ret = words;
	return n;
fail:
	free(w);
	strv_free(words);
	return r;
}

/* Serve=/Exclude= patterns: an absolute path glob, a glob starting with '*', or a file name. */
static const char *pattern_problem(const char *p)
{
	if (!*p)
		return "empty pattern";
	for (const char *s = p; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return "control character in pattern";
	if (strchr(p, '/') && p[0] != '/' && p[0] != '*')
		return "pattern with a '/' must be absolute or start with '*'";
	return NULL;
}

static int assign_globs(char ***list, const char *key, const char *value, char *err,
			size_t err_size, const char *name, unsigned int line)
{
	char **words = NULL;
	const char *why;
	int n, r = 0;

	if (!*value) {
		strv_free(*list);
		*list = NULL;
		return 0;
	}
	n = split_words(value, &words);
	if (n == -ENOMEM)
		return -ENOMEM;
	if (n < 0)
		return line_error(err, err_size, name, line,
				  "%s=: unbalanced quotes or trailing '\\'", key);
	for (int i = 0; i < n; i++) {
		why = pattern_problem(words[i]);
		if (why) {
			r = line_error(err, err_size, name, line, "%s=: %s: \"%s\"", key, why,
				       words[i]);
			strv_free(words);
			return r;
		}
	}
	for (int i = 0; i < n; i++) {
		r = strv_push(list, words[i]);
		if (r < 0) {
			/* words[0..i-1] now belong to *list. */
			for (int k = i; k < n; k++)
				free(words[k]);
			free(words);
			return r;
		}
	}
	free(words);
	return 0;
}

static int assign(struct config *c, const char *key, const char *value, char *err, size_t err_size,
		  const char *name, unsigned int line)
{
	int r;

	if (!strcmp(key, "Serve"))
		return assign_globs(&c->serve, key, value, err, err_size, name, line);
	if (!strcmp(key, "Exclude"))
		return assign_globs(&c->exclude, key, value, err, err_size, name, line);
	if (!strcmp(key, "InjectDelaySec")) {
		uint64_t usec;

		if (!*value) {
			c->inject_delay_usec = CONFIG_DEFAULT_INJECT_DELAY_USEC;
			return 0;
		}
		r = config_parse_timespan(value, &usec);
		if (r < 0)
			return line_error(err, err_size, name, line,
					  "InjectDelaySec=: %s time span \"%s\"",
					  r == -ERANGE ? "out of range" : "invalid", value);
		c->inject_delay_usec = usec;
		return 0;
	}
	if (!strcmp(key, "JIT")) {
		if (!*value) {
			c->jit = DEFAULT_JIT;
			return 0;
		}
		r = config_parse_boolean(value);
		if (r < 0)
			return line_error(err, err_size, name, line, "JIT=: invalid boolean \"%s\"",
					  value);
		c->jit = r;
		return 0;
	}
	if (!strcmp(key, "LogLevel")) {
		if (!*value) {
			c->log_level = -1;
			return 0;
		}
		r = log_level_from_string(value);
		if (r < 0)
			return line_error(err, err_size, name, line,
					  "LogLevel=: unknown log level \"%s\"", value);
		c->log_level = r;
		return 0;
	}
	return line_error(err, err_size, name, line, "unknown key \"%s\" in section [Service]",
			  key);
}

static char *strip(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = 0;
	return s;
}

enum section {
	SECTION_NONE,
	SECTION_SERVICE,
	SECTION_IGNORED, /* [X-...]: for other programs, as in systemd */
};

int config_parse(struct config *c, FILE *f, const char *name, char *err, size_t err_size)
{
	enum section section = SECTION_NONE;
	char *buf = NULL, *joined = NULL;
	size_t cap = 0, joined_len = 0;
	unsigned int line = 0, first_line = 0;
	ssize_t n;
	int r = 0;

	while ((n = getline(&buf, &cap, f)) >= 0) {
		char *l, *eq, *key, *value, *t, *grown;
		size_t len;

		line++;
		if (strlen(buf) != (size_t)n) {
			r = line_error(err, err_size, name, line, "NUL byte in line");
			goto out;
		}
		len = (size_t)n;
		while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
			buf[--len] = 0;
		/* Comments never continue, and are skipped inside a continuation (systemd). */
		for (t = buf; *t == ' ' || *t == '\t'; t++)
			;
		if (*t == '#' || *t == ';' || (!joined && !*t))
			continue;
		if (!joined)
			first_line = line;
		grown = realloc(joined, joined_len + len + 1);
		if (!grown) {
			r = -ENOMEM;
			goto out;
		}
		joined = grown;
		memcpy(joined + joined_len, buf, len + 1);
		joined_len += len;
		/* A line ending in a backslash continues on the next one. */
		if (joined_len && joined[joined_len - 1] == '\\') {
			joined[joined_len - 1] = ' ';
			continue;
		}

		l = strip(joined);
		if (!*l)
			goto next;
		if (*l == '[') {
			size_t ll = strlen(l);

			if (l[ll - 1] != ']' || ll < 3) {
				r = line_error(err, err_size, name, first_line,
					       "invalid section header \"%s\"", l);
				goto out;
			}
			l[ll - 1] = 0;
			if (!strcmp(l + 1, "Service")) {
				section = SECTION_SERVICE;
			} else if (!strncmp(l + 1, "X-", 2)) {
				section = SECTION_IGNORED;
			} else {
				r = line_error(err, err_size, name, first_line,
					       "unknown section [%s]", l + 1);
				goto out;
			}
			goto next;
		}
		eq = strchr(l, '=');
		if (!eq) {
			r = line_error(err, err_size, name, first_line, "missing '=' in \"%s\"", l);
			goto out;
		}
		*eq = 0;
		key = strip(l);
		value = strip(eq + 1);
		if (!*key) {
			r = line_error(err, err_size, name, first_line, "assignment without a key");
			goto out;
		}
		if (section == SECTION_NONE) {
			r = line_error(err, err_size, name, first_line,
				       "assignment \"%s=\" outside of a section", key);
			goto out;
		}
		if (section == SECTION_SERVICE) {
			r = assign(c, key, value, err, err_size, name, first_line);
			if (r < 0)
				goto out;
		}
next:
		free(joined);
		joined = NULL;
		joined_len = 0;
	}
	if (ferror(f)) {
		r = errno ? -errno : -EIO;
		snprintf(err, err_size, "%s: read failed: %s", name, strerror(-r));
		goto out;
	}
	/* A continuation at the end of the file ends there. */
	if (joined && *strip(joined))
		r = line_error(err, err_size, name, first_line,
			       "line continues past the end of the file");
out:
	free(buf);
	free(joined);
	return r;
}

static int parse_file(struct config *c, const char *path, bool missing_ok, char *err,
		      size_t err_size)
{
	FILE *f = fopen(path, "re");
	char *copy;
	int r;

	if (!f) {
		r = -errno;
		if (missing_ok && r == -ENOENT)
			return 0;
		snprintf(err, err_size, "%s: %s", path, strerror(-r));
		return r;
	}
	r = config_parse(c, f, path, err, err_size);
	fclose(f);
	if (r < 0)
		return r;
	copy = strdup(path);
	if (!copy)
		return -ENOMEM;
	r = strv_push(&c->files, copy);
	if (r < 0)
		free(copy);
	return r;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The drop-ins of dir, "*.conf" only, sorted by name; a missing directory has none. */
static int list_dropins(const char *dir, char ***ret, size_t *ret_n, char *err, size_t err_size)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char **names = NULL;
	size_t n = 0;
	int r = 0;

	*ret = NULL;
	*ret_n = 0;
	if (!d) {
		if (errno == ENOENT || errno == ENOTDIR)
			return 0;
		r = -errno;
		snprintf(err, err_size, "%s: %s", dir, strerror(-r));
		return r;
	}
	while ((errno = 0, de = readdir(d))) {
		size_t len = strlen(de->d_name);
		char *copy;

		if (de->d_name[0] == '.' || len < 6 || strcmp(de->d_name + len - 5, ".conf"))
			continue;
		copy = strdup(de->d_name);
		if (!copy || strv_push(&names, copy) < 0) {
			free(copy);
			r = -ENOMEM;
			goto out;
		}
		n++;
	}
	if (errno) {
		r = -errno;
		snprintf(err, err_size, "%s: %s", dir, strerror(-r));
		goto out;
	}
	if (n)
		qsort(names, n, sizeof(*names), cmp_names);
	*ret = names;
	*ret_n = n;
	names = NULL;
out:
	strv_free(names);
	closedir(d);
	return r;
}

int config_load(const char *path, struct config *ret, char *err, size_t err_size)
{
	struct config c;
	char **names = NULL, *dir = NULL, *file = NULL;
	size_t n = 0;
	int r;

	if (err && err_size)
		err[0] = 0;
	config_init(&c);
	r = parse_file(&c, path, true, err, err_size);
	if (r < 0)
		goto out;
	if (asprintf(&dir, "%s.d", path) < 0) {
		dir = NULL;
		r = -ENOMEM;
		goto out;
	}
	r = list_dropins(dir, &names, &n, err, err_size);
	if (r < 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		if (asprintf(&file, "%s/%s", dir, names[i]) < 0) {
			file = NULL;
			r = -ENOMEM;
			goto out;
		}
		/* A drop-in that vanished since the listing is no error. */
		r = parse_file(&c, file, true, err, err_size);
		free(file);
		file = NULL;
		if (r < 0)
			goto out;
	}
	*ret = c;
	config_init(&c);
out:
	if (r == -ENOMEM && err && err_size)
		snprintf(err, err_size, "%s: out of memory", path);
	config_done(&c);
	strv_free(names);
	free(dir);
	return r;
}

static bool matches(char *const *globs, const char *path)
{
	const char *base = strrchr(path, '/');

	base = base ? base + 1 : path;
	for (size_t i = 0; globs && globs[i]; i++)
		if (!fnmatch(globs[i], strchr(globs[i], '/') ? path : base, 0))
			return true;
	return false;
}

bool config_serves(const struct config *c, const char *path)
{
	if (c->serve && !matches(c->serve, path))
		return false;
	return !matches(c->exclude, path);
}

// SPDX-License-Identifier: MIT
/* Parser of the conformance corpus data files (see testdata.h). */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testdata.h"

enum section { SEC_NONE, SEC_ASM, SEC_RAW, SEC_MEM, SEC_RESULT, SEC_ERROR, SEC_MAP, SEC_OTHER };

struct parser {
	struct test_data *td;
	unsigned int line;
	char *err;
	size_t asm_len;
	size_t raw_cap, mem_cap;
	char *last_result;
	char *last_error;
};

static int fail(struct parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(struct parser *p, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(p->err, TESTDATA_ERRMSG_SIZE, "line %u: ", p->line);

	va_start(ap, fmt);
	vsnprintf(p->err + n, TESTDATA_ERRMSG_SIZE - (size_t)n, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static enum section section_of(const char *name)
{
	static const struct {
		const char *name;
		enum section sec;
	} names[] = {
		{ "asm", SEC_ASM },	  { "raw", SEC_RAW },	  { "mem", SEC_MEM },
		{ "result", SEC_RESULT }, { "error", SEC_ERROR }, { "map", SEC_MAP },
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(names[i].name, name))
			return names[i].sec;
	return SEC_OTHER;
}

static char *trim(char *s)
{
	char *end;

	while (isspace((unsigned char)*s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = 0;
	return s;
}

static int append_asm(struct parser *p, const char *line)
{
	size_t len = strlen(line);
	char *n = realloc(p->td->asm_text, p->asm_len + len + 2);

	if (!n)
		return -ENOMEM;
	memcpy(n + p->asm_len, line, len);
	n[p->asm_len + len] = '\n';
	n[p->asm_len + len + 1] = 0;
	p->asm_len += len + 1;
	p->td->asm_text = n;
	return 0;
}

static int parse_u64(const char *s, uint64_t *v)
{
	char *end;

	errno = 0;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		*v = strtoull(s + 2, &end, 16);
	else
		*v = strtoull(s, &end, 10);
	return *s && !*end && !errno ? 0 : -1;
}

static int add_raw(struct parser *p, char *line)
{
	struct test_data *td = p->td;
	uint64_t w;

	for (char *tok = strtok(line, " \t"); tok; tok = strtok(NULL, " \t")) {
		if (parse_u64(tok, &w) < 0)
			return fail(p, "'%s' is not a 64-bit instruction word", tok);
		if (td->raw_cnt == p->raw_cap) {
			size_t cap = p->raw_cap ? p->raw_cap * 2 : 16;
			struct ebpf_insn *n = realloc(td->raw, cap * sizeof(*n));

			if (!n)
				return -ENOMEM;
			td->raw = n;
			p->raw_cap = cap;
		}
		td->raw[td->raw_cnt++] = (struct ebpf_insn){
			.code = (uint8_t)w,
			.dst = (w >> 8) & 0xf,
			.src = (w >> 12) & 0xf,
			.off = (int16_t)(uint16_t)(w >> 16),
			.imm = (int32_t)(uint32_t)(w >> 32),
		};
	}
	return 0;
}

static int add_mem(struct parser *p, char *line)
{
	struct test_data *td = p->td;
	unsigned long b;
	char *end;

	for (char *tok = strtok(line, " \t"); tok; tok = strtok(NULL, " \t")) {
		b = strtoul(tok, &end, 16);
		if (*end || b > 0xff || end - tok > 2)
			return fail(p, "'%s' is not a hex byte", tok);
		if (td->mem_len == p->mem_cap) {
			size_t cap = p->mem_cap ? p->mem_cap * 2 : 64;
			uint8_t *n = realloc(td->mem, cap);

			if (!n)
				return -ENOMEM;
			td->mem = n;
			p->mem_cap = cap;
		}
		td->mem[td->mem_len++] = (uint8_t)b;
	}
	return 0;
}

static int add_map(struct parser *p, char *line)
{
	struct testdata_map *m;
	char name[64];

	if (p->td->map_cnt == TESTDATA_MAX_MAPS)
		return fail(p, "more than %d maps", TESTDATA_MAX_MAPS);
	m = &p->td->maps[p->td->map_cnt];
	if (sscanf(line, "%63s %u %u %u %u", name, &m->type, &m->key_size, &m->value_size,
		   &m->max_entries) != 5)
		return fail(p, "a map line is: name type key_size value_size max_entries");
	strcpy(m->name, name);
	p->td->map_cnt++;
	return 0;
}

int testdata__parse(const char *text, struct test_data *td, char err[TESTDATA_ERRMSG_SIZE])
{
	struct parser p = { .td = td, .err = err };
	enum section sec = SEC_NONE;
	char *copy = strdup(text), *line, *next, *s;
	int r = 0;

	memset(td, 0, sizeof(*td));
	err[0] = 0;
	if (!copy)
		return -ENOMEM;
	for (line = copy; line && r == 0; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		p.line++;
		if (!strncmp(line, "--", 2)) {
			sec = section_of(trim(line + 2));
			if (sec == SEC_ERROR)
				td->has_error = true;
			continue;
		}
		if (sec == SEC_ASM) {
			r = append_asm(&p, line);
			continue;
		}
		if (sec == SEC_MAP || sec == SEC_RAW || sec == SEC_MEM) {
			/* Comments are allowed in these sections, as in -- asm. */
			s = strchr(line, '#');
			if (s)
				*s = 0;
		}
		s = trim(line);
		if (!*s)
			continue;
		switch (sec) {
		case SEC_RAW:
			r = add_raw(&p, s);
			break;
		case SEC_MEM:
			r = add_mem(&p, s);
			break;
		case SEC_MAP:
			r = add_map(&p, s);
			break;
		case SEC_RESULT:
			p.last_result = s;
			break;
		case SEC_ERROR:
			p.last_error = s;
			break;
		default:
			break;
		}
	}
	if (r == 0 && p.last_result) {
		td->has_result = true;
		if (parse_u64(p.last_result, &td->result) < 0)
			r = fail(&p, "result '%s' is not a number", p.last_result);
	}
	if (r == 0 && p.last_error) {
		td->error = strdup(p.last_error);
		if (!td->error)
			r = -ENOMEM;
	}
	if (r == 0 && !td->asm_text && !td->raw_cnt)
		r = fail(&p, "no -- asm or -- raw section");
	if (r == 0 && !td->has_result && !td->has_error)
		r = fail(&p, "no -- result or -- error section");
	free(copy);
	if (r < 0) {
		if (r == -ENOMEM && !err[0])
			snprintf(err, TESTDATA_ERRMSG_SIZE, "out of memory");
		testdata__free(td);
	}
	return r;
}

void testdata__free(struct test_data *td)
{
	free(td->asm_text);
	free(td->raw);
	free(td->mem);
	free(td->error);
	memset(td, 0, sizeof(*td));
}

int testdata__read_file(const char *path, char **text, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL, *n;
	size_t cap = 0, used = 0, got;

	if (!f)
		return -errno;
	do {
		if (cap - used < 4096) {
			cap = cap ? cap * 2 : 8192;
			n = realloc(buf, cap + 1);
			if (!n) {
				free(buf);
				fclose(f);
				return -ENOMEM;
			}
			buf = n;
		}
		got = fread(buf + used, 1, cap - used, f);
		used += got;
	} while (got > 0);
	if (ferror(f)) {
		free(buf);
		fclose(f);
		return -EIO;
	}
	fclose(f);
	buf[used] = 0;
	*text = buf;
	*len = used;
	return 0;
}

// SPDX-License-Identifier: MIT
/* The data-file runner behind "bpftime-vm run" and "conformance". */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "asm.h"
#include "conformance.h"
#include "testmaps.h"
#include "vm.h"

/* The corpus's helper 5: returns its argument; 0 makes the program stop. */
#define UNWIND_HELPER 5

static uint64_t unwind(uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4, uint64_t r5)
{
	return r1;
}

int conformance__run(const struct test_data *td, bool jit, uint64_t *r0,
		     char msg[RUN_ERRMSG_SIZE])
{
	const char *names[TESTDATA_MAX_MAPS];
	struct asm_maps maps = { .names = names, .cnt = td->map_cnt };
	struct ebpf_insn *insns = td->raw, *assembled = NULL;
	size_t cnt = td->raw_cnt;
	char asm_err[ASM_ERRMSG_SIZE];
	struct testmaps *tmaps = NULL;
	struct vm_fault fault;
	struct vm *vm = NULL;
	uint8_t *mem = NULL;
	int r;

	for (size_t i = 0; i < td->map_cnt; i++)
		names[i] = td->maps[i].name;
	if (!cnt) {
		r = asm__assemble(td->asm_text, &maps, &assembled, &cnt, asm_err);
		if (r < 0) {
			snprintf(msg, RUN_ERRMSG_SIZE, "assembly failed: %s", asm_err);
			return r;
		}
		insns = assembled;
	}

	vm = vm__new();
	tmaps = testmaps__new(td);
	if (!vm || !tmaps) {
		r = -errno;
		snprintf(msg, RUN_ERRMSG_SIZE, "cannot create the VM and its maps: %s",
			 strerror(errno));
		goto out;
	}
	r = vm__set_jit(vm, jit);
	if (r == 0)
		r = vm__register_helper(vm, UNWIND_HELPER, "unwind", unwind);
	if (r == 0)
		r = vm__set_unwind_helper(vm, UNWIND_HELPER);
	if (r == 0 && td->map_cnt)
		r = testmaps__attach(tmaps, vm);
	if (r == 0)
		r = vm__load(vm, insns, cnt);
	if (r < 0) {
		snprintf(msg, RUN_ERRMSG_SIZE, "load failed: %s", vm__strerror(vm));
		goto out;
	}

	if (td->mem_len) {
		mem = malloc(td->mem_len);
		if (!mem) {
			r = -ENOMEM;
			snprintf(msg, RUN_ERRMSG_SIZE, "out of memory");
			goto out;
		}
		memcpy(mem, td->mem, td->mem_len);
	}
	r = vm__exec(vm, mem, td->mem_len, r0, &fault);
	if (r < 0)
		snprintf(msg, RUN_ERRMSG_SIZE, "run failed: %s", fault.msg);
out:
	free(mem);
	vm__free(vm);
	testmaps__free(tmaps);
	free(assembled);
	return r;
}

bool conformance__check(const char *name, const char *text, bool jit, FILE *out)
{
	char err[TESTDATA_ERRMSG_SIZE], msg[RUN_ERRMSG_SIZE];
	struct test_data td;
	bool pass = false;
	uint64_t r0 = 0;
	int r;

	r = testdata__parse(text, &td, err);
	if (r < 0) {
		fprintf(out, "FAIL %s: bad data file: %s\n", name, err);
		return false;
	}
	r = conformance__run(&td, jit, &r0, msg);
	if (td.has_error && r < 0) {
		pass = true;
		fprintf(out, "PASS %s\n", name);
	} else if (td.has_error) {
		fprintf(out, "FAIL %s: expected an error%s%s%s, got 0x%" PRIx64 "\n", name,
			td.error ? " (\"" : "", td.error ? td.error : "", td.error ? "\")" : "",
			r0);
	} else if (r < 0) {
		fprintf(out, "FAIL %s: expected 0x%" PRIx64 ", got %s\n", name, td.result, msg);
	} else if (r0 != td.result) {
		fprintf(out, "FAIL %s: expected 0x%" PRIx64 ", got 0x%" PRIx64 "\n", name,
			td.result, r0);
	} else {
		pass = true;
		fprintf(out, "PASS %s\n", name);
	}
	testdata__free(&td);
	return pass;
}

struct counts {
	int passed, failed;
	bool jit;
};

static bool has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n >= k && !strcmp(s + n - k, suffix);
}

static void check_file(const char *path, struct counts *c, FILE *out)
{
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	char name[256];
	size_t len;
	char *text;
	int r;

	len = strlen(base) - (has_suffix(base, ".data") ? strlen(".data") : 0);
	snprintf(name, sizeof(name), "%.*s", (int)len, base);
	r = testdata__read_file(path, &text, &len);
	if (r < 0) {
		fprintf(out, "FAIL %s: cannot read %s: %s\n", name, path, strerror(-r));
		c->failed++;
		return;
	}
	if (conformance__check(name, text, c->jit, out))
		c->passed++;
	else
		c->failed++;
	free(text);
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static void check_path(const char *path, struct counts *c, FILE *out)
{
	struct dirent **entries;
	struct stat st;
	char child[4096];
	int n;

	if (stat(path, &st) < 0) {
		fprintf(out, "FAIL %s: %s\n", path, strerror(errno));
		c->failed++;
		return;
	}
	if (!S_ISDIR(st.st_mode)) {
		check_file(path, c, out);
		return;
	}
	n = scandir(path, &entries, NULL, by_name);
	if (n < 0) {
		fprintf(out, "FAIL %s: %s\n", path, strerror(errno));
		c->failed++;
		return;
	}
	for (int i = 0; i < n; i++) {
		const char *e = entries[i]->d_name;

		snprintf(child, sizeof(child), "%s/%s", path, e);
		if (e[0] != '.' && (has_suffix(e, ".data") ||
				    (stat(child, &st) == 0 && S_ISDIR(st.st_mode))))
			check_path(child, c, out);
		free(entries[i]);
	}
	free(entries);
}

int conformance__run_paths(char *const *paths, int npaths, bool jit, FILE *out)
{
	struct counts c = { .jit = jit };

	for (int i = 0; i < npaths; i++)
		check_path(paths[i], &c, out);
	fprintf(out, "%d passed, %d failed\n", c.passed, c.failed);
	return c.failed;
}

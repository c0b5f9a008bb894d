// SPDX-License-Identifier: MIT
/*
 * bpftime-vm: assemble, disassemble and run eBPF programs on bpftimed's VM,
 * and check the VM against the conformance corpus.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "asm.h"
#include "conformance.h"
#include "fuzzdiff.h"
#include "testdata.h"
#include "vm-bench.h"
#include "vm.h"

static int usage(FILE *out)
{
	fprintf(out,
		"Usage: bpftime-vm COMMAND [OPTIONS] ...\n"
		"\n"
		"  asm FILE [-o OUT]             assemble FILE; write instructions to OUT\n"
		"                                (binary) or print them as 64-bit words\n"
		"  disasm FILE                   disassemble a binary or word-list FILE\n"
		"  run [--interp|--jit] FILE     run a data file (or plain assembly) and\n"
		"                                print r0\n"
		"  conformance [--interp|--jit] PATH...\n"
		"                                check .data files (directories searched)\n"
		"  selftest                      check the VM on built-in programs\n"
		"  fuzz-diff [--count N] [--seed S]\n"
		"                                compare JIT and interpreter on N random\n"
		"                                programs (default 10000, seed 1)\n"
		"  bench                         time the benchmark programs: interpreter,\n"
		"                                JIT and native code side by side\n"
		"  help                          show this text\n");
	return out == stdout ? 0 : 2;
}

static int error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "Error: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

/* Parses [--interp|--jit] before the operands; the JIT is the default where there is one. */
static int engine_options(int argc, char **argv, bool *jit)
{
	static const struct option opts[] = {
		{ "interp", no_argument, NULL, 'i' },
		{ "jit", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

#if defined(__x86_64__)
	*jit = true;
#else
	*jit = false;
#endif
	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c != 'i' && c != 'j')
			return -1;
		*jit = c == 'j';
	}
	return 0;
}

static int read_text(const char *path, char **text, size_t *len)
{
	int r = testdata__read_file(path, text, len);

	if (r < 0)
		return error("cannot read %s: %s", path, strerror(-r));
	return 0;
}

static int do_asm(int argc, char **argv)
{
	const char *out_path = NULL;
	char err[ASM_ERRMSG_SIZE], *text;
	struct ebpf_insn *insns;
	size_t len, cnt;
	FILE *out;
	int c, r;

	optind = 1;
	while ((c = getopt(argc, argv, "o:")) != -1) {
		if (c != 'o')
			return usage(stderr);
		out_path = optarg;
	}
	if (optind != argc - 1)
		return usage(stderr);
	if (read_text(argv[optind], &text, &len))
		return 1;
	r = asm__assemble(text, NULL, &insns, &cnt, err);
	free(text);
	if (r < 0)
		return error("%s: %s", argv[optind], err);
	if (!out_path) {
		for (size_t i = 0; i < cnt; i++) {
			const struct ebpf_insn *in = &insns[i];

			printf("0x%016" PRIx64 "\n",
			       in->code | (uint64_t)in->dst << 8 | (uint64_t)in->src << 12 |
				       (uint64_t)(uint16_t)in->off << 16 |
				       (uint64_t)(uint32_t)in->imm << 32);
		}
		free(insns);
		return 0;
	}
	out = fopen(out_path, "wb");
	if (!out || fwrite(insns, sizeof(*insns), cnt, out) != cnt || fclose(out)) {
		free(insns);
		return error("cannot write %s: %s", out_path, strerror(errno));
	}
	free(insns);
	return 0;
}

/* A text file of instruction words (as "asm" prints) or raw binary instructions. */
static int load_insns(const char *path, struct ebpf_insn **insns, size_t *cnt)
{
	char err[TESTDATA_ERRMSG_SIZE], *text, *section;
	struct test_data td;
	size_t len;
	bool binary = false;

	if (read_text(path, &text, &len))
		return 1;
	for (size_t i = 0; i < len; i++)
		if (!text[i] || ((unsigned char)text[i] >= 0x80))
			binary = true;
	if (binary) {
		if (len % sizeof(struct ebpf_insn)) {
			free(text);
			return error("%s: %zu bytes is not a whole number of instructions", path,
				     len);
		}
		*insns = (struct ebpf_insn *)text;
		*cnt = len / sizeof(struct ebpf_insn);
		return 0;
	}
	section = malloc(len + sizeof("-- raw\n-- result\n0\n"));
	if (!section) {
		free(text);
		return error("out of memory");
	}
	sprintf(section, "-- raw\n%s\n-- result\n0\n", text);
	free(text);
	if (testdata__parse(section, &td, err) < 0) {
		free(section);
		return error("%s: %s", path, err);
	}
	free(section);
	*insns = td.raw;
	*cnt = td.raw_cnt;
	td.raw = NULL;
	testdata__free(&td);
	return 0;
}

static int do_disasm(int argc, char **argv)
{
	struct ebpf_insn *insns;
	size_t cnt;

	if (argc != 2)
		return usage(stderr);
	if (load_insns(argv[1], &insns, &cnt))
		return 1;
	asm__disassemble(stdout, insns, cnt);
	free(insns);
	return 0;
}

static int do_run(int argc, char **argv)
{
	char err[TESTDATA_ERRMSG_SIZE], msg[RUN_ERRMSG_SIZE], *text, *data;
	struct test_data td;
	uint64_t r0;
	size_t len;
	bool jit;
	int r;

	if (engine_options(argc, argv, &jit) < 0 || optind != argc - 1)
		return usage(stderr);
	if (read_text(argv[optind], &text, &len))
		return 1;
	/* A file without sections is plain assembly. */
	data = text;
	if (strncmp(text, "--", 2) && !strstr(text, "\n--")) {
		data = malloc(len + sizeof("-- asm\n\n-- result\n0\n"));
		if (!data) {
			free(text);
			return error("out of memory");
		}
		sprintf(data, "-- asm\n%s\n-- result\n0\n", text);
	}
	r = testdata__parse(data, &td, err);
	if (data != text)
		free(data);
	free(text);
	if (r < 0)
		return error("%s: %s", argv[optind], err);
	r = conformance__run(&td, jit, &r0, msg);
	testdata__free(&td);
	if (r < 0)
		return error("%s: %s", argv[optind], msg);
	printf("0x%" PRIx64 "\n", r0);
	return 0;
}

static int do_conformance(int argc, char **argv)
{
	bool jit;

	if (engine_options(argc, argv, &jit) < 0 || optind >= argc)
		return usage(stderr);
	return conformance__run_paths(argv + optind, argc - optind, jit, stdout) ? 1 : 0;
}

/* Programs whose results pin down the ISA's corner cases. */
static const struct {
	const char *name;
	const char *text;
} selftests[] = {
	{ "div64-by-zero", "-- asm\nmov %r0, 7\nmov %r1, 0\ndiv %r0, %r1\nexit\n-- result\n0\n" },
	{ "mod32-by-zero-zero-extends",
	  "-- asm\nlddw %r0, 0x100000005\nmov %r1, 0\nmod32 %r0, %r1\nexit\n-- result\n5\n" },
	{ "sdiv64-intmin-by-minus-one",
	  "-- asm\nlddw %r0, 0x8000000000000000\nsdiv %r0, -1\nexit\n"
	  "-- result\n0x8000000000000000\n" },
	{ "smod32-intmin-by-minus-one",
	  "-- asm\nmov32 %r0, 0x80000000\nsmod32 %r0, -1\nexit\n-- result\n0\n" },
	{ "lsh64-masks-count", "-- asm\nmov %r0, 1\nmov %r1, 65\nlsh %r0, %r1\nexit\n-- result\n2\n" },
	{ "arsh32-zero-extends",
	  "-- asm\nmov32 %r0, 0x80000000\narsh32 %r0, 4\nexit\n-- result\n0xf8000000\n" },
	{ "le16-truncates", "-- asm\nlddw %r0, 0x1122334455667788\nle16 %r0\nexit\n-- result\n0x7788\n" },
	{ "bswap32", "-- asm\nmov32 %r0, 0x11223344\nbswap32 %r0\nexit\n-- result\n0x44332211\n" },
	{ "movsx8-64", "-- asm\nmov %r1, 0x80\nmovsx864 %r0, %r1\nexit\n-- result\n0xffffffffffffff80\n" },
	{ "ldxsh", "-- asm\nldxsh %r0, [%r1+1]\nexit\n-- mem\n00 01 80\n-- result\n0xffffffffffff8001\n" },
	{ "xchg-returns-old",
	  "-- asm\nstdw [%r10-8], 3\nmov %r1, 9\nlock xchg [%r10-8], %r1\nldxdw %r0, [%r10-8]\n"
	  "lsh %r0, 8\nor %r0, %r1\nexit\n-- result\n0x903\n" },
	{ "cmpxchg32", "-- asm\nstw [%r10-4], 5\nmov %r0, 5\nmov %r1, 6\nlock cmpxchg32 [%r10-4], %r1\n"
		       "ldxw %r0, [%r10-4]\nexit\n-- result\n6\n" },
	{ "call-local-frames",
	  "-- asm\nstdw [%r10-8], 1\ncall local f\nldxdw %r0, [%r10-8]\nexit\n"
	  "f:\nstdw [%r10-8], 2\nexit\n-- result\n1\n" },
	{ "ja32", "-- asm\nmov %r0, 1\nja32 +1\nmov %r0, 2\nexit\n-- result\n1\n" },
	{ "stack-out-of-frame-refused", "-- asm\nstdw [%r10+8], 1\nexit\n-- error\n" },
	{ "wild-pointer-faults", "-- asm\nmov %r1, 4096\nldxdw %r0, [%r1]\nexit\n-- error\n" },
};

/* Every built-in program on the interpreter and, where there is one, the JIT. */
static int do_selftest(int argc, char **argv)
{
	int n = (int)(sizeof(selftests) / sizeof(selftests[0]));
	int failed = 0, total = 0;
	char name[128];

	if (argc != 1)
		return usage(stderr);
	for (int jit = 0; jit <= 1; jit++) {
#if !defined(__x86_64__)
		if (jit)
			break;
#endif
		for (int i = 0; i < n; i++, total++) {
			snprintf(name, sizeof(name), "%s-%s", jit ? "jit" : "interp",
				 selftests[i].name);
			if (!conformance__check(name, selftests[i].text, jit, stdout))
				failed++;
		}
	}
	printf("%d passed, %d failed\n", total - failed, failed);
	return failed ? 1 : 0;
}

static int do_fuzz_diff(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "count", required_argument, NULL, 'c' },
		{ "seed", required_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t count = 10000, seed = 1;
	char *end;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c != 'c' && c != 's')
			return usage(stderr);
		errno = 0;
		*(c == 'c' ? &count : &seed) = strtoull(optarg, &end, 0);
		if (*end || errno || !*optarg)
			return error("'%s' is not a number", optarg);
	}
	if (optind != argc)
		return usage(stderr);
#if !defined(__x86_64__)
	return error("there is no JIT on this architecture");
#endif
	return fuzzdiff__run(count, seed, stdout) ? 1 : 0;
}

static int do_bench(int argc, char **argv)
{
	if (argc != 1)
		return usage(stderr);
	return bench__run(stdout) ? 1 : 0;
}

static int do_help(int argc, char **argv)
{
	return usage(stdout);
}

static const struct cmd {
	const char *name;
	int (*fn)(int argc, char **argv);
} cmds[] = {
	{ "asm", do_asm },	     { "disasm", do_disasm },	  { "run", do_run },
	{ "conformance", do_conformance }, { "selftest", do_selftest }, { "fuzz-diff", do_fuzz_diff },
	{ "bench", do_bench },	{ "help", do_help },
};

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage(stderr);
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (!strcmp(argv[1], cmds[i].name))
			return cmds[i].fn(argc - 1, argv + 1);
	error("unknown command '%s'", argv[1]);
	return usage(stderr);
}

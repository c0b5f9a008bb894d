/* SPDX-License-Identifier: MIT */
/*
 * The conformance corpus data file: "-- NAME" lines start sections.
 *   -- asm     program text (see asm.h)
 *   -- raw     64-bit instruction words, wins over -- asm
 *   -- mem     hex bytes; the program gets r1 = a copy, r2 = its length
 *   -- result  expected r0 (hex with 0x, else decimal; the last line counts)
 *   -- error   the program is expected to be refused or to fault; the text,
 *              if any, is the other VM's message and is shown, not compared
 *   -- map     "name type key_size value_size max_entries" lines
 * Every other section (-- c, -- no register offset, ...) is ignored.
 */
#ifndef BPFTIME_TESTDATA_H
#define BPFTIME_TESTDATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ebpf.h"

#define TESTDATA_MAX_MAPS 16
#define TESTDATA_ERRMSG_SIZE 256

struct testdata_map {
	char name[64];
	uint32_t type, key_size, value_size, max_entries;
};

struct test_data {
	char *asm_text;
	struct ebpf_insn *raw;
	size_t raw_cnt;
	uint8_t *mem;
	size_t mem_len;
	bool has_result;
	uint64_t result;
	bool has_error;
	char *error;
	struct testdata_map maps[TESTDATA_MAX_MAPS];
	size_t map_cnt;
};

/* Parses a data file. Returns 0 or -EINVAL with "line N: reason" in err. */
int testdata__parse(const char *text, struct test_data *td, char err[TESTDATA_ERRMSG_SIZE]);
void testdata__free(struct test_data *td);

/* Reads a whole file into a NUL-terminated malloc'ed buffer; -errno on error. */
int testdata__read_file(const char *path, char **text, size_t *len);

#endif

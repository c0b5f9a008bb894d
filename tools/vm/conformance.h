/* SPDX-License-Identifier: MIT */
/*
 * Running corpus data files on the VM: one program (run), or many files
 * checked against their expected result or error (conformance), printing
 * "PASS name" / "FAIL name: expected ..., got ..." and a closing
 * "N passed, N failed" line.
 */
#ifndef BPFTIME_CONFORMANCE_H
#define BPFTIME_CONFORMANCE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "testdata.h"

#define RUN_ERRMSG_SIZE 512

/*
 * Assembles (or takes the raw words of), loads and runs the program of td with
 * a copy of its memory, JIT-compiled or interpreted. Returns 0 with r0 set, or a negative errno with the
 * reason (assembly, load or run time) in msg.
 */
int conformance__run(const struct test_data *td, bool jit, uint64_t *r0,
		     char msg[RUN_ERRMSG_SIZE]);

/* Checks one data file given as text; prints its PASS/FAIL line to out. */
bool conformance__check(const char *name, const char *text, bool jit, FILE *out);

/*
 * Checks every .data file among paths (directories are searched recursively,
 * in name order), prints one line per file and the closing counts line.
 * Returns the number of failures.
 */
int conformance__run_paths(char *const *paths, int npaths, bool jit, FILE *out);

#endif

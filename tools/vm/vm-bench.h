/* SPDX-License-Identifier: MIT */
/*
 * The VM benchmark behind "bpftime-vm bench": ns per run of each program of
 * tests/bench on the interpreter, the JIT and natively, with their ratios
 * and the JIT's compile time. A benchmark that prints figures, not a test.
 */
#ifndef BPFTIME_VM_BENCH_H
#define BPFTIME_VM_BENCH_H

#include <stdio.h>

/* Prints the table; returns the number of programs that failed or disagreed. */
int bench__run(FILE *out);

#endif

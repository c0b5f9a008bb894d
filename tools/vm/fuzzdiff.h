/* SPDX-License-Identifier: MIT */
/*
 * Differential testing of the JIT against the interpreter on random valid
 * programs (see fuzzdiff.c for their shape). Deterministic for a seed.
 */
#ifndef BPFTIME_FUZZDIFF_H
#define BPFTIME_FUZZDIFF_H

#include <stdint.h>
#include <stdio.h>

/*
 * Runs count programs from seed on both engines; prints the first few
 * differences with their disassembly and a closing summary line. Returns the
 * number of programs whose r0, memory or error differed.
 */
uint64_t fuzzdiff__run(uint64_t count, uint64_t seed, FILE *out);

#endif

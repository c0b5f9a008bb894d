/* SPDX-License-Identifier: MIT */
/*
 * Which of a program's maps it only adds to. A map is additive for a
 * program when, on every path through it, each 8-byte word the program
 * writes into the map's values is the word it looked up (same key, 64-bit
 * loads and adds only) plus an amount computed without reading the map —
 * or that amount alone, where the lookup found nothing and the program
 * creates the element with map_update_elem() — and nothing else it does
 * (branches, helper arguments, other stores, its return value) depends on
 * a value of the map. bpftrace's count(), sum() and hist(), BCC's
 * increment() and lock_xadd are; min(), max(), assignments and deletes are
 * not.
 *
 * Running such a program as if every value it finds were zero, and adding
 * what it writes to the kernel's values, gives the kernel's results: the
 * agent does that with per-key deltas (bpf/delta.h) instead of a
 * read-modify-write through bpf() per hit.
 *
 * Contract: additive__maps() looks at the instructions only (as the kernel
 * verified them); maps are those the lddw instructions name by fd, in
 * map_fds order. It returns the mask of additive maps (bit i: map_fds[i]),
 * never more than it can prove: a program too large to walk every path of,
 * or using bpf-to-bpf calls, tail calls or callbacks, has none.
 */
#ifndef BPFTIME_AGENT_ADDITIVE_H
#define BPFTIME_AGENT_ADDITIVE_H

#include <stddef.h>
#include <stdint.h>

#include "ebpf.h"

#define ADDITIVE_MAX_MAPS 64

/* value_sizes[i]: the value size of map i (a multiple of 8 to be additive). */
uint64_t additive__maps(const struct ebpf_insn *insns, size_t insn_cnt, const int *map_fds,
			const uint32_t *value_sizes, const uint32_t *key_sizes, size_t map_cnt);

#endif

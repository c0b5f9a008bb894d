/* SPDX-License-Identifier: MIT */
/* The file offset of an address of this executable (for kernel uprobes on ourselves). */
#ifndef BPFTIME_TESTS_SELF_OFFSET_H
#define BPFTIME_TESTS_SELF_OFFSET_H

#include <stdint.h>

/* Through the PT_LOAD headers of the main program; 0 when addr is not in it. */
uint64_t self_file_offset(const void *addr);

#endif

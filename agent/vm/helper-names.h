/* SPDX-License-Identifier: MIT */
/*
 * The kernel's helper names by id (BPF_FUNC_*, without the "bpf_" prefix),
 * from the UAPI's own list so they never drift: for messages that name a
 * helper, and for the assembler.
 */
#ifndef BPFTIME_HELPER_NAMES_H
#define BPFTIME_HELPER_NAMES_H

/* The name of helper id, or NULL when the UAPI list has no such id. */
const char *ebpf_helper_name(int id);
/* The id of a helper named with or without "bpf_", or -1. */
int ebpf_helper_id(const char *name);

#endif

/* SPDX-License-Identifier: MIT */
/* The key of the mixed tool's map, shared by its BPF side and its loader. */
#ifndef MIXED_H
#define MIXED_H

enum { MIXED_WRITE = 1, MIXED_CALL = 2 };

struct mixed_key {
	__u32 kind;
	__u32 pid;
	__s64 value; /* the fd written to, or the call's second argument */
};

#endif

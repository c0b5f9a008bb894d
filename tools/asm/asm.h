/* SPDX-License-Identifier: MIT */
/*
 * The eBPF assembler and disassembler of the conformance corpus syntax:
 *
 *   mov32 %r0, 1            ldxh %r0, [%r1+2]       lock fetch add [%r1], %r2
 *   lddw %r0, 0x1122...     jne %r1, 0x10, label    call local f / call 5 / call %r2
 *
 * Registers are written %rN or rN; immediates are decimal or 0x hex and are
 * truncated to the field's width as the corpus expects; jump targets are labels
 * ("name:" on its own line, plus the implicit label "exit" for the first exit)
 * or +N/-N relative to the next instruction. "#" starts a comment.
 * disasm output reassembles to the same instructions.
 */
#ifndef BPFTIME_ASM_H
#define BPFTIME_ASM_H

#include <stddef.h>
#include <stdio.h>

#include "ebpf.h"

#define ASM_ERRMSG_SIZE 256

/* A map named in the program text as map_by_fd(NAME): lddw src 1, imm = index. */
struct asm_maps {
	const char *const *names;
	size_t cnt;
};

/*
 * Assembles text into a malloc'ed instruction array. Returns 0, or -EINVAL
 * with "line N: reason" in err.
 */
int asm__assemble(const char *text, const struct asm_maps *maps, struct ebpf_insn **insns,
		  size_t *insn_cnt, char err[ASM_ERRMSG_SIZE]);

/* Kernel helper id for "bpf_NAME" or "NAME" (e.g. map_lookup_elem), or -1. */
int asm__helper_id(const char *name);
/* Kernel helper name without the bpf_ prefix, or NULL. */
const char *asm__helper_name(int id);

/* Writes one line per instruction (an lddw takes two slots and one line). */
void asm__disassemble(FILE *out, const struct ebpf_insn *insns, size_t insn_cnt);

/* Formats the instruction at insns[0] (and insns[1] for lddw) into buf. */
void asm__format_insn(const struct ebpf_insn *insns, size_t avail, char *buf, size_t size);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * The eBPF instruction encoding of RFC 9669 (ISA v1-v4) plus the kernel's
 * pseudo forms. Self-contained on purpose: Debian's UAPI headers are 6.1 and
 * lack v4 (sign-extending loads, signed division, ja32), and the agent must
 * not depend on the installed kernel headers to know the ISA.
 */
#ifndef BPFTIME_EBPF_H
#define BPFTIME_EBPF_H

#include <stdint.h>

struct ebpf_insn {
	uint8_t code;
	uint8_t dst : 4;
	uint8_t src : 4;
	int16_t off;
	int32_t imm;
};

_Static_assert(sizeof(struct ebpf_insn) == 8, "eBPF instructions are 64 bits");

#define EBPF_STACK_SIZE 512
#define EBPF_NR_REGS 11
#define EBPF_REG_FP 10

/* Instruction classes (low 3 bits). */
#define EBPF_CLASS(code) ((code) & 0x07)
#define EBPF_CLS_LD 0x00
#define EBPF_CLS_LDX 0x01
#define EBPF_CLS_ST 0x02
#define EBPF_CLS_STX 0x03
#define EBPF_CLS_ALU 0x04
#define EBPF_CLS_JMP 0x05
#define EBPF_CLS_JMP32 0x06
#define EBPF_CLS_ALU64 0x07

/* Arithmetic and jump instructions: operation (high 4 bits) and source bit. */
#define EBPF_OP(code) ((code) & 0xf0)
#define EBPF_SRC(code) ((code) & 0x08)
#define EBPF_K 0x00
#define EBPF_X 0x08

#define EBPF_ADD 0x00
#define EBPF_SUB 0x10
#define EBPF_MUL 0x20
#define EBPF_DIV 0x30
#define EBPF_OR 0x40
#define EBPF_AND 0x50
#define EBPF_LSH 0x60
#define EBPF_RSH 0x70
#define EBPF_NEG 0x80
#define EBPF_MOD 0x90
#define EBPF_XOR 0xa0
#define EBPF_MOV 0xb0
#define EBPF_ARSH 0xc0
#define EBPF_END 0xd0

/* EBPF_END source bit: byte order to convert to (ALU), or bswap (ALU64). */
#define EBPF_TO_LE 0x00
#define EBPF_TO_BE 0x08

#define EBPF_JA 0x00
#define EBPF_JEQ 0x10
#define EBPF_JGT 0x20
#define EBPF_JGE 0x30
#define EBPF_JSET 0x40
#define EBPF_JNE 0x50
#define EBPF_JSGT 0x60
#define EBPF_JSGE 0x70
#define EBPF_CALL 0x80
#define EBPF_EXIT 0x90
#define EBPF_JLT 0xa0
#define EBPF_JLE 0xb0
#define EBPF_JSLT 0xc0
#define EBPF_JSLE 0xd0

/* Load and store instructions: mode (high 3 bits) and size. */
#define EBPF_MODE(code) ((code) & 0xe0)
#define EBPF_SIZE(code) ((code) & 0x18)
#define EBPF_IMM 0x00
#define EBPF_ABS 0x20
#define EBPF_IND 0x40
#define EBPF_MEM 0x60
#define EBPF_MEMSX 0x80
#define EBPF_ATOMIC 0xc0

#define EBPF_W 0x00
#define EBPF_H 0x08
#define EBPF_B 0x10
#define EBPF_DW 0x18

/* Atomic operations (imm of EBPF_ATOMIC stores). */
#define EBPF_FETCH 0x01
#define EBPF_XCHG (0xe0 | EBPF_FETCH)
#define EBPF_CMPXCHG (0xf0 | EBPF_FETCH)
#define EBPF_LOAD_ACQ 0x100
#define EBPF_STORE_REL 0x110

/* Source of a call instruction (src register field). */
#define EBPF_PSEUDO_CALL_HELPER 0
#define EBPF_PSEUDO_CALL_LOCAL 1
#define EBPF_PSEUDO_CALL_KFUNC 2

/* Source of a 64-bit immediate load (lddw, src register field). */
#define EBPF_PSEUDO_IMM64 0
#define EBPF_PSEUDO_MAP_FD 1
#define EBPF_PSEUDO_MAP_VALUE 2
#define EBPF_PSEUDO_BTF_ID 3
#define EBPF_PSEUDO_FUNC 4
#define EBPF_PSEUDO_MAP_IDX 5
#define EBPF_PSEUDO_MAP_IDX_VALUE 6

/* Opcodes that are whole instructions rather than a class plus fields. */
#define EBPF_OP_LDDW (EBPF_CLS_LD | EBPF_IMM | EBPF_DW)
#define EBPF_OP_CALL (EBPF_CLS_JMP | EBPF_CALL)
#define EBPF_OP_CALLX (EBPF_CLS_JMP | EBPF_CALL | EBPF_X)
#define EBPF_OP_EXIT (EBPF_CLS_JMP | EBPF_EXIT)
#define EBPF_OP_JA (EBPF_CLS_JMP | EBPF_JA)
#define EBPF_OP_JA32 (EBPF_CLS_JMP32 | EBPF_JA)

#endif

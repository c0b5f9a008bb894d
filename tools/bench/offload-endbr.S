/* SPDX-License-Identifier: MIT */
/*
 * long offload_endbr(long a, long b): a + b + 0x1000, with endbr64 first
 * (gcc would put endbr64 in front of every function, or none). The int3
 * padding before it, whatever the linker puts ahead of this file, holds
 * the agent's 5-byte jump.
 */
	.text
	.p2align 4, 0xcc
	.fill 16, 1, 0xcc
	.globl offload_endbr
	.type offload_endbr, @function
offload_endbr:
	endbr64
	lea 0x1000(%rdi,%rsi), %rax
	ret
	.size offload_endbr, . - offload_endbr

	.section .note.GNU-stack, "", @progbits

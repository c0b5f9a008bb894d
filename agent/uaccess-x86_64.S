/* SPDX-License-Identifier: MIT */
/*
 * The copy routines of uaccess.h. Every instruction between
 * agent_uaccess_text_start and agent_uaccess_text_end may fault on the
 * source; the fault handler (uaccess.c) then resumes at agent_uaccess_fixup,
 * which returns -EFAULT to the caller. The routines are leaves that keep
 * nothing on the stack, so the fixup's ret returns from whichever faulted.
 */
	.text
	.p2align 4
	.globl agent_uaccess_text_start
	.hidden agent_uaccess_text_start
agent_uaccess_text_start:

/* long agent_uaccess_copy(void *dst, const void *src, size_t n): 0 or -EFAULT */
	.globl agent_uaccess_copy
	.hidden agent_uaccess_copy
	.type agent_uaccess_copy, @function
agent_uaccess_copy:
	endbr64
	cmp $8, %rdx
	jne 1f
	mov (%rsi), %rax
	mov %rax, (%rdi)
	xor %eax, %eax
	ret
1:	mov %rdx, %rcx
	rep movsb
	xor %eax, %eax
	ret
	.size agent_uaccess_copy, . - agent_uaccess_copy

/*
 * long agent_uaccess_strncpy_raw(char *dst, const char *src, size_t n), n > 0:
 * bytes copied including the NUL, n without a NUL, or -EFAULT.
 */
	.globl agent_uaccess_strncpy_raw
	.hidden agent_uaccess_strncpy_raw
	.type agent_uaccess_strncpy_raw, @function
agent_uaccess_strncpy_raw:
	endbr64
	xor %eax, %eax
2:	movzbl (%rsi,%rax), %ecx
	movb %cl, (%rdi,%rax)
	inc %rax
	test %cl, %cl
	jz 3f
	cmp %rdx, %rax
	jb 2b
3:	ret
	.size agent_uaccess_strncpy_raw, . - agent_uaccess_strncpy_raw

	.globl agent_uaccess_fixup
	.hidden agent_uaccess_fixup
	.type agent_uaccess_fixup, @function
agent_uaccess_fixup:
	mov $-14, %rax
	ret
	.size agent_uaccess_fixup, . - agent_uaccess_fixup

	.globl agent_uaccess_text_end
	.hidden agent_uaccess_text_end
agent_uaccess_text_end:

	.section .note.GNU-stack, "", @progbits

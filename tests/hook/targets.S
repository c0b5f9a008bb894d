/* SPDX-License-Identifier: MIT */
/*
 * Functions with the first instructions the hooks must handle, laid out
 * with int3 padding between them as compilers do. Each takes an int in edi
 * and returns it plus a known constant. hk_*_end marks each end; padding
 * follows up to the next 16-byte boundary.
 */
	.text
	.p2align 4, 0xcc

#define FUNC(name) .globl name; .type name, @function; name:
#define END(name) .globl name##_end; name##_end: .size name, . - name; .p2align 4, 0xcc

/* lea with a 32-bit displacement: 7 bytes, single-stepped by the kernel -> DIRECT */
FUNC(hk_lea)
	lea 0x1000(%rdi), %rax
	ret
END(hk_lea)

/* nop5, the site the kernel optimises into a call -> DIRECT */
FUNC(hk_nop5)
	.byte 0x0f, 0x1f, 0x44, 0x00, 0x00 /* nopl 0(%rax,%rax,1) */
	lea 2(%rdi), %eax
	ret
END(hk_nop5)

/* endbr64 (4 bytes) -> CAVE in the padding before it */
FUNC(hk_endbr)
	endbr64
	lea 3(%rdi), %eax
	ret
END(hk_endbr)

/* push %rbp (1 byte) -> AFTER, replaying the push */
FUNC(hk_push)
	push %rbp
	mov %rsp, %rbp
	lea 4(%rdi), %eax
	pop %rbp
	ret
END(hk_push)

/* a 1-byte nop first -> AFTER */
FUNC(hk_nop1)
	nop
	lea 5(%rdi), %eax
	add $1, %eax
	ret
END(hk_nop1)

/* shorter than a jump: 4 bytes -> CAVE */
FUNC(hk_short)
	lea 6(%rdi), %eax
	ret
END(hk_short)

/* a rip-relative first instruction -> DIRECT with the displacement moved */
FUNC(hk_riprel)
	mov hk_const(%rip), %eax
	add %edi, %eax
	ret
END(hk_riprel)

/* push first, then a conditional jump among the displaced instructions */
FUNC(hk_jcc)
	push %rbx
	test %edi, %edi
	je 1f
	lea 8(%rdi), %eax
	pop %rbx
	ret
1:	mov $8, %eax
	pop %rbx
	ret
END(hk_jcc)

/* sub rsp first (4 bytes, no padding before it counts: it follows hk_jcc) */
FUNC(hk_sub)
	sub $24, %rsp
	lea 9(%rdi), %eax
	add $24, %rsp
	ret
END(hk_sub)

/* recursive: the sum 1..n */
FUNC(hk_fact)
	push %rbx
	mov %edi, %ebx
	test %edi, %edi
	je 1f
	lea -1(%rdi), %edi
	call hk_fact
	add %ebx, %eax
	pop %rbx
	ret
1:	xor %eax, %eax
	pop %rbx
	ret
END(hk_fact)

/* calls rsi(edi) and returns its result + 1: a callback may longjmp out */
FUNC(hk_call_cb)
	sub $8, %rsp
	call *%rsi
	add $1, %eax
	add $8, %rsp
	ret
END(hk_call_cb)

/* a probe in the middle, between a compare and the jump that reads its flags */
FUNC(hk_mid)
	cmp $5, %edi
	.globl hk_mid_probe
hk_mid_probe:
	lea 0x1000(%rdi), %rax
	jl 1f
	mov $100, %eax
1:	ret
END(hk_mid)

/* a double in, twice it out (xmm0 both ways): the hook must not touch vector registers */
FUNC(hk_double)
	lea 0x1000(%rdi), %rax
	addsd %xmm0, %xmm0
	ret
END(hk_double)

/* rdi through xmm9 and back, across a mid-function probe: rdi when xmm9 survived it */
FUNC(hk_xmm_mid)
	movq %rdi, %xmm9
	.globl hk_xmm_probe
hk_xmm_probe:
	lea 0x1000(%rdi), %rax
	movq %xmm9, %rax
	ret
END(hk_xmm_mid)

/* the same through xmm16 (AVX-512 only) */
FUNC(hk_zmm_mid)
	vmovq %rdi, %xmm16
	.globl hk_zmm_probe
hk_zmm_probe:
	lea 0x1000(%rdi), %rax
	vmovq %xmm16, %rax
	ret
END(hk_zmm_mid)

	.section .rodata
	.p2align 2
hk_const:
	.long 7

	.section .note.GNU-stack, "", @progbits

// SPDX-License-Identifier: MIT
/*
 * Trampolines. An entry trampoline builds a struct pt_regs on the stack
 * below the red zone, saves every vector register (the callbacks run C
 * code, and libc's string functions use every vector register this CPU
 * has), calls hook_entry_dispatch(), restores them, puts the
 * (possibly changed) registers and flags back, runs the displaced
 * instructions and jumps back. The return trampoline, shared by all hooks, is where hooked
 * functions return to: it calls hook_return_dispatch(), which hands back the
 * real return address.
 *
 * Trampolines live in pages mapped read+execute within +-2 GiB of their
 * site (rel32 jumps both ways); the code is written through /proc/self/mem,
 * so those pages are never writable.
 */
#include <cpuid.h>
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "hook-private.h"
#include "text-patch.h"

#define CHUNK_SIZE (64 * 1024)
#define MAX_CHUNKS 64
#define TRAMP_MAX 2048
#define RED_ZONE 128
#define REGS_SIZE ((int)sizeof(struct pt_regs))

enum { RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8, R9, R10, R11, R12, R13, R14, R15 };

/* Every general register and where struct pt_regs keeps it. */
static const struct {
	int reg;
	int off;
} gprs[] = {
	{ R15, offsetof(struct pt_regs, r15) }, { R14, offsetof(struct pt_regs, r14) },
	{ R13, offsetof(struct pt_regs, r13) }, { R12, offsetof(struct pt_regs, r12) },
	{ RBP, offsetof(struct pt_regs, rbp) }, { RBX, offsetof(struct pt_regs, rbx) },
	{ R11, offsetof(struct pt_regs, r11) }, { R10, offsetof(struct pt_regs, r10) },
	{ R9, offsetof(struct pt_regs, r9) },	{ R8, offsetof(struct pt_regs, r8) },
	{ RAX, offsetof(struct pt_regs, rax) }, { RCX, offsetof(struct pt_regs, rcx) },
	{ RDX, offsetof(struct pt_regs, rdx) }, { RSI, offsetof(struct pt_regs, rsi) },
	{ RDI, offsetof(struct pt_regs, rdi) },
};

struct chunk {
	uint64_t base;
	size_t used;
};

static pthread_mutex_t tramp_lock = PTHREAD_MUTEX_INITIALIZER;
static struct chunk chunks[MAX_CHUNKS];
static unsigned int nchunks;
static uint64_t ret_tramp;

struct emitter {
	uint8_t buf[TRAMP_MAX];
	size_t len;
};

static void emit(struct emitter *e, const void *p, size_t n)
{
	if (e->len + n <= sizeof(e->buf))
		memcpy(e->buf + e->len, p, n);
	e->len += n;
}

static void emit1(struct emitter *e, uint8_t b)
{
	emit(e, &b, 1);
}

static void emit4(struct emitter *e, uint32_t v)
{
	emit(e, &v, 4);
}

/* [rsp + off] as ModRM (mod 10, rm SIB) + SIB + disp32, reg in ModRM.reg */
static void rsp_disp32(struct emitter *e, int reg, uint32_t off)
{
	emit1(e, (uint8_t)(0x84 | (reg & 7) << 3));
	emit1(e, 0x24);
	emit4(e, off);
}

/* mov [rsp + off], reg  or  mov reg, [rsp + off] (load) */
static void mov_rsp_slot(struct emitter *e, int reg, int off, bool load)
{
	emit1(e, (uint8_t)(0x48 | ((reg & 8) ? 4 : 0)));
	emit1(e, load ? 0x8b : 0x89);
	rsp_disp32(e, reg, (uint32_t)off);
}

static void movabs(struct emitter *e, int reg, uint64_t imm)
{
	emit1(e, (uint8_t)(0x48 | ((reg & 8) ? 1 : 0)));
	emit1(e, (uint8_t)(0xb8 + (reg & 7)));
	emit(e, &imm, 8);
}

/* lea rsp, [rsp + disp32] */
static void adjust_rsp(struct emitter *e, int32_t disp)
{
	static const uint8_t op[] = { 0x48, 0x8d, 0xa4, 0x24 };

	emit(e, op, sizeof(op));
	emit4(e, (uint32_t)disp);
}

/* mov qword [rsp + off], simm32 */
static void store_imm(struct emitter *e, int off, int32_t imm)
{
	static const uint8_t op[] = { 0x48, 0xc7, 0x84, 0x24 };

	emit(e, op, sizeof(op));
	emit4(e, (uint32_t)off);
	emit4(e, (uint32_t)imm);
}

/*
 * Saves the registers into a struct pt_regs at rsp (already reserved):
 * flags, sp = rsp + sp_off, ip = ip (0: leave for the dispatcher).
 */
static void save_regs(struct emitter *e, int32_t sp_off, uint64_t ip)
{
	static const uint8_t pushfq_pop_rax[] = { 0x9c, 0x58 };
	static const uint8_t lea_rax[] = { 0x48, 0x8d, 0x84, 0x24 };

	for (size_t i = 0; i < sizeof(gprs) / sizeof(gprs[0]); i++)
		mov_rsp_slot(e, gprs[i].reg, gprs[i].off, false);
	emit(e, pushfq_pop_rax, sizeof(pushfq_pop_rax));
	mov_rsp_slot(e, RAX, offsetof(struct pt_regs, eflags), false);
	emit(e, lea_rax, sizeof(lea_rax));
	emit4(e, (uint32_t)sp_off);
	mov_rsp_slot(e, RAX, offsetof(struct pt_regs, rsp), false);
	if (ip) {
		movabs(e, RAX, ip);
		mov_rsp_slot(e, RAX, offsetof(struct pt_regs, rip), false);
	}
	store_imm(e, offsetof(struct pt_regs, orig_rax), -1);
	store_imm(e, offsetof(struct pt_regs, cs), 0x33);
	store_imm(e, offsetof(struct pt_regs, ss), 0x2b);
}

/*
 * The vector registers this CPU has, saved around a callback one by one
 * (XSAVE/XRSTOR cost 160 ns here, 32 zmm moves a few): zmm0-31 and k0-7
 * with AVX-512, ymm0-15 with AVX, else xmm0-15. MXCSR and the x87 state are
 * not saved: the agent's code never changes them.
 */
enum vector_kind { VEC_SSE, VEC_AVX, VEC_AVX512 };

static struct {
	enum vector_kind kind;
	uint32_t size; /* of the save area */
} vec;
static pthread_once_t vec_once = PTHREAD_ONCE_INIT;

static uint64_t xcr0(void)
{
	uint32_t lo, hi;

	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	return (uint64_t)hi << 32 | lo;
}

static void probe_vectors(void)
{
	unsigned int a, b, c, d;
	bool osxsave = __get_cpuid(1, &a, &b, &c, &d) && (c & bit_OSXSAVE);
	bool avx = osxsave && (c & bit_AVX) && (xcr0() & 0x6) == 0x6;
	bool avx512 = avx && __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & bit_AVX512F) &&
		      (xcr0() & 0xe6) == 0xe6;

	vec.kind = avx512 ? VEC_AVX512 : avx ? VEC_AVX : VEC_SSE;
	vec.size = avx512 ? 32 * 64 + 8 * 8 : avx ? 16 * 32 : 16 * 16;
}

/* Moves vector register n to (store) or from [rsp + its slot]. */
static void move_vector(struct emitter *e, int n, bool store)
{
	uint8_t op = store ? 0x7f : 0x6f;

	switch (vec.kind) {
	case VEC_AVX512: {
		/* vmovdqu64 zmm: EVEX.512.F3.0F.W1, disp8 scaled by 64 */
		uint8_t p0 = (uint8_t)(0x61 | (n & 8 ? 0 : 0x80) | (n & 16 ? 0 : 0x10));
		const uint8_t insn[] = { 0x62, p0, 0xfe, 0x48, op,
					 (uint8_t)(0x44 | (n & 7) << 3), 0x24, (uint8_t)n };

		emit(e, insn, sizeof(insn));
		return;
	}
	case VEC_AVX:
		/* vmovdqu ymm: VEX.256.F3.0F */
		emit1(e, 0xc5);
		emit1(e, n & 8 ? 0x7e : 0xfe);
		emit1(e, op);
		rsp_disp32(e, n, (uint32_t)n * 32);
		return;
	case VEC_SSE:
		/* movdqu xmm */
		emit1(e, 0xf3);
		if (n & 8)
			emit1(e, 0x44);
		emit1(e, 0x0f);
		emit1(e, op);
		rsp_disp32(e, n, (uint32_t)n * 16);
		return;
	}
}

/* Every vector (and mask) register to (store) or from the area at rsp. */
static void move_vectors(struct emitter *e, bool store)
{
	const uint8_t kmovq[] = { 0xc4, 0xe1, 0xf8, store ? 0x91 : 0x90 };

	for (int n = 0; n < (vec.kind == VEC_AVX512 ? 32 : 16); n++)
		move_vector(e, n, store);
	for (int k = 0; vec.kind == VEC_AVX512 && k < 8; k++) {
		emit(e, kmovq, sizeof(kmovq));
		rsp_disp32(e, k, 32 * 64 + 8 * (uint32_t)k);
	}
}

/* rsp = a 64-byte aligned area below it, every vector register saved there. */
static void save_vectors(struct emitter *e)
{
	static const uint8_t sub_rsp[] = { 0x48, 0x81, 0xec };
	static const uint8_t and_rsp64[] = { 0x48, 0x83, 0xe4, 0xc0 };

	emit(e, sub_rsp, sizeof(sub_rsp));
	emit4(e, vec.size);
	emit(e, and_rsp64, sizeof(and_rsp64));
	move_vectors(e, true);
}

/*
 * rdi = arg (or rsp when arg is 0), rsi = rsp; fn called on an aligned
 * stack with the vector state saved around it; its result in rax.
 */
static void call_dispatch(struct emitter *e, uint64_t arg, uint64_t fn)
{
	static const uint8_t mov_rsi_rsp[] = { 0x48, 0x89, 0xe6 };
	static const uint8_t mov_rdi_rsp[] = { 0x48, 0x89, 0xe7 };
	static const uint8_t mov_rbx_rsp[] = { 0x48, 0x89, 0xe3 };
	static const uint8_t call_rax[] = { 0xff, 0xd0 };
	static const uint8_t mov_rsp_rbx[] = { 0x48, 0x89, 0xdc };

	pthread_once(&vec_once, probe_vectors);
	if (arg) {
		movabs(e, RDI, arg);
		emit(e, mov_rsi_rsp, sizeof(mov_rsi_rsp));
	} else {
		emit(e, mov_rdi_rsp, sizeof(mov_rdi_rsp));
	}
	/* rbx is saved in pt_regs; it keeps the unaligned rsp across the call */
	emit(e, mov_rbx_rsp, sizeof(mov_rbx_rsp));
	save_vectors(e);
	movabs(e, RAX, fn);
	emit(e, call_rax, sizeof(call_rax));
	move_vectors(e, false);
	emit(e, mov_rsp_rbx, sizeof(mov_rsp_rbx));
}

static bool callee_saved(int reg)
{
	return reg == RBX || reg == RBP || reg == R12 || reg == R13 || reg == R14 || reg == R15;
}

/*
 * The caller-saved registers from the struct pt_regs at rsp (a callback may
 * have changed them, as bpf_override_return changes ax), and the flags when
 * they may be live. At a function's entry and at its return they are not
 * (the ABI does not carry flags across calls), and popfq is the slowest
 * instruction of the trampoline.
 */
static void restore_regs(struct emitter *e, bool flags)
{
	static const uint8_t push_rax_popfq[] = { 0x50, 0x9d };

	if (flags) {
		mov_rsp_slot(e, RAX, offsetof(struct pt_regs, eflags), true);
		emit(e, push_rax_popfq, sizeof(push_rax_popfq));
	}
	/*
	 * The dispatch is a C function: it kept rbp and r12-r15 itself; rbx is
	 * ours, it held the stack pointer across the call.
	 */
	for (size_t i = 0; i < sizeof(gprs) / sizeof(gprs[0]); i++)
		if (!callee_saved(gprs[i].reg) || gprs[i].reg == RBX)
			mov_rsp_slot(e, gprs[i].reg, gprs[i].off, true);
}

static bool near(uint64_t a, uint64_t b)
{
	int64_t d = (int64_t)(a - b);

	return d > -((int64_t)1 << 31) + CHUNK_SIZE && d < ((int64_t)1 << 31) - CHUNK_SIZE;
}

/* A chunk within reach of addr (any, when addr is 0) with len bytes free. */
static int alloc_code(uint64_t addr, size_t len, uint64_t *out)
{
	struct chunk *c = NULL;
	void *p = MAP_FAILED;

	for (unsigned int i = 0; i < nchunks && !c; i++)
		if ((!addr || near(chunks[i].base, addr)) && chunks[i].used + len <= CHUNK_SIZE)
			c = &chunks[i];
	if (!c) {
		if (nchunks == MAX_CHUNKS)
			return -ENOSPC;
		/* Walk away from the site in 1 MiB steps until a free range is found. */
		for (int64_t step = 1; addr && p == MAP_FAILED && step < 2000; step++) {
			for (int dir = -1; dir <= 1 && p == MAP_FAILED; dir += 2) {
				uint64_t hint = (addr & ~(uint64_t)0xfffff) + (uint64_t)(dir * step << 20);

				p = mmap((void *)hint, CHUNK_SIZE, PROT_READ | PROT_EXEC,
					 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
			}
		}
		if (!addr)
			p = mmap(NULL, CHUNK_SIZE, PROT_READ | PROT_EXEC,
				 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED || (addr && !near((uint64_t)p, addr)))
			return -ENOMEM;
		c = &chunks[nchunks++];
		c->base = (uint64_t)p;
		c->used = 0;
	}
	*out = c->base + c->used;
	/* Keep trampolines 16-byte aligned. */
	c->used += (len + 15) & ~(size_t)15;
	return 0;
}

int hook_tramp_build(struct hook *h, char err[HOOK_ERRMSG_SIZE])
{
	static const uint8_t jmp_rel32 = 0xe9;
	struct emitter *e;
	uint64_t at = 0;
	int32_t rel;
	int r, n;

	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	/* Below the red zone of the hooked code, room for struct pt_regs. */
	adjust_rsp(e, -RED_ZONE - REGS_SIZE);
	save_regs(e, REGS_SIZE + RED_ZONE + (int32_t)h->plan.sp_adjust, h->site.addr);
	call_dispatch(e, (uint64_t)(uintptr_t)h, (uint64_t)(uintptr_t)hook_entry_dispatch);
	restore_regs(e, h->site.addr != h->site.func_start);
	adjust_rsp(e, REGS_SIZE + RED_ZONE);

	pthread_mutex_lock(&tramp_lock);
	r = alloc_code(h->plan.patch_addr, e->len + RELOC_MAX + JMP_REL32_LEN, &at);
	pthread_mutex_unlock(&tramp_lock);
	if (r < 0) {
		free(e);
		snprintf(err, HOOK_ERRMSG_SIZE, "no memory for a trampoline within reach of 0x%llx",
			 (unsigned long long)h->plan.patch_addr);
		return r;
	}
	h->tramp = at;
	h->tramp_tail = at + e->len;
	n = hook_relocate(&h->plan, at + e->len, e->buf + e->len, sizeof(e->buf) - e->len, err);
	if (n < 0) {
		free(e);
		return n;
	}
	e->len += (size_t)n;
	rel = (int32_t)(h->plan.resume_addr - (at + e->len + JMP_REL32_LEN));
	emit1(e, jmp_rel32);
	emit4(e, (uint32_t)rel);
	r = e->len <= sizeof(e->buf) ? text_poke_stopped(at, e->buf, e->len) : -E2BIG;
	if (r < 0)
		snprintf(err, HOOK_ERRMSG_SIZE, "cannot write the trampoline: error %d", r);
	free(e);
	return r;
}

uint64_t hook_ret_tramp(void)
{
	struct emitter *e;
	static const uint8_t ret = 0xc3;
	uint64_t at = 0;

	pthread_mutex_lock(&tramp_lock);
	if (ret_tramp)
		goto out;
	e = calloc(1, sizeof(*e));
	if (!e)
		goto out;
	/* The slot at [R-8] (the dead return-address slot) will hold the real target. */
	adjust_rsp(e, -8 - REGS_SIZE);
	save_regs(e, REGS_SIZE + 8, 0);
	call_dispatch(e, 0, (uint64_t)(uintptr_t)hook_return_dispatch);
	mov_rsp_slot(e, RAX, REGS_SIZE, false);
	restore_regs(e, false);
	adjust_rsp(e, REGS_SIZE);
	emit1(e, ret);
	if (alloc_code(0, e->len, &at) == 0 && text_poke_stopped(at, e->buf, e->len) == 0)
		ret_tramp = at;
	free(e);
out:
	pthread_mutex_unlock(&tramp_lock);
	return ret_tramp;
}

// SPDX-License-Identifier: MIT
/*
 * Hooks: lifecycle, enabling and disabling the patch, and the dispatch from
 * the trampolines to the callbacks, with the per-thread shadow stacks of
 * return probes.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "hook-private.h"
#include "text-patch.h"

/*
 * Shadow stacks: a fixed table of threads, found by the thread pointer
 * (pthread_self, no syscall), each with a fixed stack of return records.
 * Mapped once, untouched pages cost nothing; no allocation on the hook path.
 */
#define SHADOW_THREADS 4096
#define SHADOW_DEPTH 64

struct ret_record {
	uint64_t ret_addr; /* where the function really returns to */
	uint64_t sp;	   /* stack pointer at the function's entry */
	struct hook *hook;
};

struct shadow {
	uint64_t owner; /* pthread_self of the thread, 0 = free */
	uint32_t depth;
	struct ret_record rec[SHADOW_DEPTH];
};

static struct shadow *shadows;
static pthread_once_t shadows_once = PTHREAD_ONCE_INIT;

static void map_shadows(void)
{
	void *p = mmap(NULL, SHADOW_THREADS * sizeof(struct shadow), PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	shadows = p == MAP_FAILED ? NULL : p;
}

/* The shadow stack of this thread; with create, claimed on first use. */
static struct shadow *my_shadow(bool create)
{
	uint64_t self = (uint64_t)pthread_self();
	size_t start = (size_t)((self >> 12) * 0x9e3779b97f4a7c15ULL >> 52) % SHADOW_THREADS;

	if (!shadows)
		return NULL;
	for (size_t i = 0; i < SHADOW_THREADS; i++) {
		struct shadow *s = &shadows[(start + i) % SHADOW_THREADS];
		uint64_t owner = __atomic_load_n(&s->owner, __ATOMIC_ACQUIRE), expected = 0;

		if (owner == self)
			return s;
		if (owner)
			continue;
		if (!create)
			return NULL;
		if (__atomic_compare_exchange_n(&s->owner, &expected, self, false,
						__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
			s->depth = 0;
			return s;
		}
		if (expected == self)
			return s;
	}
	return NULL;
}

/*
 * Records of frames that are gone (longjmp, exceptions): every frame whose
 * entry stack pointer is below sp, or at it when a new call reuses the slot.
 */
static void drop_dead(struct shadow *s, uint64_t sp, bool inclusive)
{
	while (s->depth && (s->rec[s->depth - 1].sp < sp ||
			    (inclusive && s->rec[s->depth - 1].sp == sp)))
		s->depth--;
}

void hook_entry_dispatch(struct hook *h, struct pt_regs *regs)
{
	uint64_t tramp;
	struct shadow *s;

	/*
	 * After the first instruction: a kernel breakpoint on it means the
	 * kernel served this call and resumed into our jump.
	 */
	if (h->plan.strategy == HOOK_AFTER &&
	    __atomic_load_n((const uint8_t *)h->site.addr, __ATOMIC_RELAXED) == 0xcc)
		return;
	if (h->ops.entry)
		h->ops.entry(h->ops.user, regs);
	if (!h->ops.ret || !__atomic_load_n(&h->ret_enabled, __ATOMIC_RELAXED))
		return;
	/* At the function's entry the return address is at sp. */
	tramp = hook_ret_tramp();
	s = my_shadow(true);
	if (!tramp || !s)
		return;
	drop_dead(s, regs->rsp, true);
	if (s->depth == SHADOW_DEPTH)
		return; /* as the kernel: past its depth, a return goes unseen */
	s->rec[s->depth++] = (struct ret_record){
		.ret_addr = *(uint64_t *)regs->rsp,
		.sp = regs->rsp,
		.hook = h,
	};
	*(uint64_t *)regs->rsp = tramp;
}

uint64_t hook_return_dispatch(struct pt_regs *regs)
{
	struct shadow *s = my_shadow(false);
	uint64_t entry_sp = regs->rsp - 8;
	struct ret_record rec;

	/*
	 * Only hooked functions return here, so this thread has a record; frames
	 * deeper than the returning one were left by longjmp and are dropped.
	 * Without one we could not know where to go: that is our bug, not the
	 * application's, and stopping here is all that is left.
	 */
	if (s)
		drop_dead(s, entry_sp, false);
	if (!s || !s->depth)
		abort();
	rec = s->rec[--s->depth];
	regs->rip = rec.ret_addr;
	if (rec.hook->ops.ret)
		rec.hook->ops.ret(rec.hook->ops.user, regs);
	return rec.ret_addr;
}

struct hook *hook__new(const struct hook_site *site, const struct hook_ops *ops,
		       char err[HOOK_ERRMSG_SIZE])
{
	struct hook *h = calloc(1, sizeof(*h));
	int r;

	if (!h) {
		snprintf(err, HOOK_ERRMSG_SIZE, "out of memory");
		errno = ENOMEM;
		return NULL;
	}
	h->site = *site;
	h->ops = *ops;
	h->ret_enabled = ops->ret != NULL;
	pthread_once(&shadows_once, map_shadows);
	r = hook_plan(site, &h->plan, err);
	if (r == 0)
		r = hook_tramp_build(h, err);
	if (r < 0) {
		free(h);
		errno = -r;
		return NULL;
	}
	return h;
}

static int write_jump(uint64_t at, uint8_t *buf, size_t len, uint64_t target)
{
	int32_t rel = (int32_t)(target - (at + len));

	if (len == JMP_REL8_LEN) {
		buf[0] = 0xeb;
		buf[1] = (uint8_t)rel;
	} else {
		buf[0] = 0xe9;
		memcpy(buf + 1, &rel, 4);
	}
	return 0;
}

/*
 * HOOK_AFTER leaves the first instruction in place: the kernel's breakpoint
 * on it goes (one byte, safe while threads run) so that calls reach the jump.
 */
static int clear_kernel_breakpoint(struct hook *h)
{
	uint8_t now;
	int r = text_peek(h->site.addr, &now, 1);

	if (r == 0 && now == 0xcc && h->site.orig[0] != 0xcc)
		r = text_poke_stopped(h->site.addr, h->site.orig, 1);
	return r;
}

int hook__enable(struct hook *h, unsigned int flags)
{
	const struct hook_plan *p = &h->plan;
	uint8_t jmp[JMP_REL32_LEN], entry[JMP_REL8_LEN];
	int r;

	if (h->enabled)
		return 0;
	write_jump(p->patch_addr, jmp, JMP_REL32_LEN, h->tramp);
	switch (p->strategy) {
	case HOOK_DIRECT:
		r = (flags & HOOK_F_STOPPED)
			    ? text_poke_stopped(p->patch_addr, jmp, sizeof(jmp))
			    : text_poke_live(p->patch_addr, jmp, sizeof(jmp), h->tramp);
		break;
	case HOOK_CAVE:
		/* The padding is never executed: the jump there first, then the way in. */
		r = text_poke_stopped(p->patch_addr, jmp, sizeof(jmp));
		write_jump(p->entry_addr, entry, JMP_REL8_LEN, p->patch_addr);
		if (r == 0)
			r = (flags & HOOK_F_STOPPED)
				    ? text_poke_stopped(p->entry_addr, entry, sizeof(entry))
				    : text_poke_live(p->entry_addr, entry, sizeof(entry), h->tramp);
		break;
	default:
		/* Several instructions change: only with every other thread stopped. */
		if (!(flags & HOOK_F_STOPPED))
			return -EBUSY;
		r = text_poke_stopped(p->patch_addr, jmp, sizeof(jmp));
		if (r == 0)
			r = clear_kernel_breakpoint(h);
		break;
	}
	if (r == 0)
		h->enabled = true;
	return r;
}

int hook__disable(struct hook *h, unsigned int flags)
{
	const struct hook_plan *p = &h->plan;
	int r;

	if (!h->enabled)
		return 0;
	switch (p->strategy) {
	case HOOK_DIRECT:
		if (flags & HOOK_F_KERNEL_BREAKPOINT)
			r = text_poke_kernel_breakpoint(p->patch_addr, p->patch_orig, JMP_REL32_LEN,
							h->tramp_tail);
		else if (flags & HOOK_F_STOPPED)
			r = text_poke_stopped(p->patch_addr, p->patch_orig, JMP_REL32_LEN);
		else
			r = text_poke_live(p->patch_addr, p->patch_orig, JMP_REL32_LEN,
					   h->tramp_tail);
		break;
	case HOOK_CAVE:
		if (flags & HOOK_F_KERNEL_BREAKPOINT)
			r = text_poke_kernel_breakpoint(p->entry_addr, p->entry_orig, JMP_REL8_LEN,
							h->tramp_tail);
		else if (flags & HOOK_F_STOPPED)
			r = text_poke_stopped(p->entry_addr, p->entry_orig, JMP_REL8_LEN);
		else
			r = text_poke_live(p->entry_addr, p->entry_orig, JMP_REL8_LEN,
					   h->tramp_tail);
		/*
		 * A running thread may be between the two jumps: the padding is put
		 * back only while every other thread is stopped.
		 */
		if (r == 0 && (flags & HOOK_F_STOPPED))
			r = text_poke_stopped(p->patch_addr, p->patch_orig, JMP_REL32_LEN);
		break;
	default:
		/*
		 * The jump spans several instructions. Without the other threads
		 * stopped it stays, and the kernel's breakpoint goes back before
		 * it: the kernel serves each call, then our jump (which then does
		 * nothing) runs the displaced instructions.
		 */
		if (!(flags & (HOOK_F_KERNEL_BREAKPOINT | HOOK_F_STOPPED)))
			return -EBUSY;
		r = (flags & HOOK_F_KERNEL_BREAKPOINT)
			    ? text_poke_kernel_breakpoint(h->site.addr, h->site.orig, 1, 0)
			    : 0;
		if (r == 0 && (flags & HOOK_F_STOPPED))
			r = text_poke_stopped(p->patch_addr, p->patch_orig, p->patch_len);
		break;
	}
	if (r == 0)
		h->enabled = false;
	return r;
}

/*
 * A thread may still be inside a disabled hook's trampoline or callback, and
 * both reach the hook: retired hooks and their trampolines are kept.
 */
static pthread_mutex_t retired_lock = PTHREAD_MUTEX_INITIALIZER;
static struct hook *retired;

void hook__free(struct hook *h)
{
	if (!h)
		return;
	pthread_mutex_lock(&retired_lock);
	h->next_retired = retired;
	retired = h;
	pthread_mutex_unlock(&retired_lock);
}

int hook__repair(struct hook *h, unsigned int flags)
{
	if (!h->enabled)
		return 0;
	if (h->plan.strategy == HOOK_AFTER)
		return clear_kernel_breakpoint(h);
	h->enabled = false;
	return hook__enable(h, flags);
}

void hook__set_return(struct hook *h, bool on)
{
	__atomic_store_n(&h->ret_enabled, on && h->ops.ret, __ATOMIC_RELAXED);
}

enum hook_strategy hook__strategy(const struct hook *h)
{
	return h->plan.strategy;
}

uint64_t hook__patch_addr(const struct hook *h)
{
	return h->plan.patch_addr;
}

size_t hook__patch_len(const struct hook *h)
{
	return h->plan.patch_len;
}

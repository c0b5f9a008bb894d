// SPDX-License-Identifier: MIT
/*
 * Per-run scratch: the copies of map values and the ringbuf records a run
 * hands to the program. A run claims a slot the first time it needs one
 * (a run that touches no syscall map never does) and gives it back when it
 * ends. Slots come in chunks mapped at load; when every slot is busy (more
 * runs at once than slots) a new chunk is mapped and published with one
 * compare-and-swap, so a run never waits and never fails for lack of a slot.
 * The arenas are reserved address space: only the pages runs touch cost
 * memory.
 */
#include <errno.h>
#include <sys/mman.h>

#include "prog-private.h"

#define SLOTS_PER_CHUNK 32

struct agent_slot_chunk {
	struct agent_slot_chunk *next;
	size_t map_len;
	uint8_t *arenas, *arenas_end;
	struct agent_slot slots[SLOTS_PER_CHUNK];
};

static __thread unsigned int slot_hint __attribute__((tls_model("initial-exec")));

static struct agent_slot_chunk *chunk_new(size_t arena_size)
{
	size_t head = (sizeof(struct agent_slot_chunk) + 4095) & ~(size_t)4095;
	size_t len = head + SLOTS_PER_CHUNK * arena_size;
	struct agent_slot_chunk *c;

	c = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1,
		 0);
	if (c == MAP_FAILED)
		return NULL;
	c->map_len = len;
	c->arenas = (uint8_t *)c + head;
	c->arenas_end = (uint8_t *)c + len;
	for (size_t i = 0; i < SLOTS_PER_CHUNK; i++) {
		c->slots[i].arena = c->arenas + i * arena_size;
		c->slots[i].arena_size = arena_size;
	}
	return c;
}

int agent_prog_scratch_init(struct agent_prog *prog)
{
	prog->chunks = chunk_new(prog->arena_size);
	return prog->chunks ? 0 : -errno;
}

void agent_prog_scratch_free(struct agent_prog *prog)
{
	struct agent_slot_chunk *c = prog->chunks, *next;

	for (; c; c = next) {
		next = c->next;
		munmap(c, c->map_len);
	}
	prog->chunks = NULL;
}

static bool try_claim(struct agent_slot *s)
{
	return !__atomic_load_n(&s->busy, __ATOMIC_RELAXED) &&
	       !__atomic_exchange_n(&s->busy, 1, __ATOMIC_ACQUIRE);
}

struct agent_slot *agent_run_slot(struct agent_run *run)
{
	struct agent_prog *prog = run->prog;
	struct agent_slot_chunk *c, *head;
	struct agent_slot *s = NULL;

	if (run->slot)
		return run->slot;
	head = __atomic_load_n(&prog->chunks, __ATOMIC_ACQUIRE);
	for (c = head; c && !s; c = c->next)
		for (unsigned int k = 0; k < SLOTS_PER_CHUNK; k++) {
			unsigned int i = (slot_hint + k) % SLOTS_PER_CHUNK;

			if (try_claim(&c->slots[i])) {
				s = &c->slots[i];
				slot_hint = i;
				break;
			}
		}
	if (!s) {
		c = chunk_new(prog->arena_size);
		if (!c)
			return NULL;
		s = &c->slots[0];
		s->busy = 1;
		c->next = head;
		while (!__atomic_compare_exchange_n(&prog->chunks, &c->next, c, false,
						    __ATOMIC_RELEASE, __ATOMIC_ACQUIRE))
			;
	}
	s->nentries = 0;
	s->used = 0;
	run->slot = s;
	return s;
}

void *agent_run_alloc(struct agent_run *run, size_t size)
{
	struct agent_slot *s = run->slot;
	size_t at;

	if (!s)
		return NULL;
	at = (s->used + 7) & ~(size_t)7;
	if (at > s->arena_size || size > s->arena_size - at)
		return NULL;
	s->used = at + size;
	return s->arena + at;
}

struct agent_entry *agent_run_entry(struct agent_run *run)
{
	struct agent_slot *s = run->slot;

	if (!s || s->nentries == AGENT_MAX_ENTRIES)
		return NULL;
	return &s->entries[s->nentries++];
}

void agent_run_release_slot(struct agent_run *run)
{
	struct agent_slot *s = run->slot;

	if (!s)
		return;
	s->nentries = 0;
	s->used = 0;
	__atomic_store_n(&s->busy, 0, __ATOMIC_RELEASE);
	run->slot = NULL;
}

bool agent_run_in_scratch(struct agent_run *run, uint64_t addr, uint64_t len)
{
	struct agent_slot *s = run->slot;

	return s && addr >= (uintptr_t)s->arena && addr - (uintptr_t)s->arena <= s->used &&
	       len <= s->used - (addr - (uintptr_t)s->arena);
}

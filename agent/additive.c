// SPDX-License-Identifier: MIT
/*
 * The additivity check (additive.h): every path of the program is walked
 * with symbolic registers and stack. A value is a constant, a pointer
 * (to a map, the stack, or a looked-up value), "the word looked up at
 * (lookup, offset) plus an amount", or anything else; each carries the set
 * of maps whose values it depends on otherwise. A map is struck out as
 * soon as one of its values reaches a branch, a helper, the return value,
 * memory other than the stack, or a write into a map other than as "the
 * same word plus an amount"; a lookup's null check forks the path, and on
 * the null side an update may create the element with an amount alone.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "additive.h"

#define MAX_STEPS 200000
#define MAX_PENDING 4096
#define MAX_LOOKUPS 32
#define STACK_SLOTS (EBPF_STACK_SIZE / 8)

#define HELPER_MAP_LOOKUP 1
#define HELPER_MAP_UPDATE 2
#define HELPER_MAP_DELETE 3

enum kind {
	K_UNKNOWN,
	K_CONST,
	K_MAP,	  /* a map (lddw by fd) */
	K_STACK,  /* r10 + off */
	K_VALPTR, /* a looked-up value + off */
	K_OLD,	  /* the word a lookup found at off, plus an amount */
};

struct val {
	uint8_t kind;
	uint8_t map;
	uint8_t lookup;
	int32_t off;
	int64_t imm;
	uint64_t deps; /* maps whose values this depends on (apart from K_OLD's own word) */
};

enum nullness { MAYBE_NULL, NOT_NULL, IS_NULL };

struct lookup {
	uint8_t map;
	uint8_t null;
	uint8_t writes, updates;
	int32_t key_off;
	uint32_t key_ver[8]; /* versions of the key's stack slots when it was looked up */
};

struct state {
	size_t pc;
	struct val r[EBPF_NR_REGS];
	struct val stack[STACK_SLOTS];
	uint32_t ver[STACK_SLOTS];
	uint32_t next_ver;
	struct lookup lookups[MAX_LOOKUPS];
	unsigned int nlookups;
};

struct walk {
	const struct ebpf_insn *insns;
	size_t insn_cnt;
	const int *map_fds;
	const uint32_t *value_sizes, *key_sizes;
	size_t map_cnt;
	uint64_t bad, used;
	bool give_up;
	struct state *pending;
	size_t npending;
	size_t steps;
};

static const struct val unknown = { .kind = K_UNKNOWN };

static uint64_t bit(unsigned int map)
{
	return 1ull << map;
}

/* Every map a value depends on, its own looked-up word included. */
static uint64_t deps(const struct val *v)
{
	return v->deps | (v->kind == K_OLD ? bit(v->map) : 0);
}

static struct val tainted(uint64_t d)
{
	return (struct val){ .kind = K_UNKNOWN, .deps = d };
}

static void sink(struct walk *w, const struct val *v)
{
	w->bad |= deps(v);
	if (v->kind == K_VALPTR || v->kind == K_MAP)
		w->bad |= bit(v->map);
}

static int stack_slot(int32_t off)
{
	int32_t at = off + EBPF_STACK_SIZE;

	return at >= 0 && at < EBPF_STACK_SIZE ? at / 8 : -1;
}

static bool stack_aligned(int32_t off)
{
	return stack_slot(off) >= 0 && (off + EBPF_STACK_SIZE) % 8 == 0;
}

/* Sinks the stack bytes [off, off + len); all of the stack when len is unknown (<= 0). */
static void sink_stack(struct walk *w, const struct state *s, int32_t off, int64_t len)
{
	int first = stack_slot(off), last = STACK_SLOTS - 1;

	if (len <= 0 || first < 0)
		first = 0;
	else if (stack_slot(off + (int32_t)len - 1) >= 0)
		last = stack_slot(off + (int32_t)len - 1);
	for (int i = first; i <= last; i++)
		sink(w, &s->stack[i]);
}

/* The helper wrote [off, off + len) (unknown length: all of it): fresh values there. */
static void clobber_stack(struct state *s, int32_t off, int64_t len)
{
	int first = stack_slot(off), last = len > 0 ? stack_slot(off + (int32_t)len - 1) : -1;

	if (first < 0 || last < 0)
		first = 0, last = STACK_SLOTS - 1;
	for (int i = first; i <= last; i++) {
		s->stack[i] = unknown;
		s->ver[i] = ++s->next_ver;
	}
}

/* After an additive write to map m, words of m loaded earlier are stale. */
static void stale_old(struct state *s, unsigned int m)
{
	for (int i = 0; i < EBPF_NR_REGS; i++)
		if (s->r[i].kind == K_OLD && s->r[i].map == m)
			s->r[i] = tainted(deps(&s->r[i]));
	for (int i = 0; i < STACK_SLOTS; i++)
		if (s->stack[i].kind == K_OLD && s->stack[i].map == m)
			s->stack[i] = tainted(deps(&s->stack[i]));
}

static int map_index(const struct walk *w, int32_t fd)
{
	for (size_t i = 0; i < w->map_cnt; i++)
		if (w->map_fds[i] == fd)
			return (int)i;
	return -1;
}

static void push(struct walk *w, const struct state *s, size_t pc)
{
	if (w->npending == MAX_PENDING) {
		w->give_up = true;
		return;
	}
	w->pending[w->npending] = *s;
	w->pending[w->npending].pc = pc;
	w->npending++;
}

/* ---- ALU ---- */

static struct val alu64(uint8_t op, const struct val *d, const struct val *s)
{
	uint64_t dd = deps(d) | deps(s);

	switch (op) {
	case EBPF_MOV:
		return *s;
	case EBPF_ADD:
	case EBPF_SUB:
		if (s->kind == K_CONST && (d->kind == K_STACK || d->kind == K_VALPTR)) {
			struct val v = *d;

			v.off += (int32_t)(op == EBPF_ADD ? s->imm : -s->imm);
			return v;
		}
		if (d->kind == K_CONST && s->kind == K_CONST)
			return (struct val){ .kind = K_CONST,
					     .imm = op == EBPF_ADD ? d->imm + s->imm
								   : d->imm - s->imm };
		/* old + amount, amount + old, old - amount */
		if (d->kind == K_OLD && s->kind != K_OLD && s->kind != K_VALPTR &&
		    s->kind != K_MAP) {
			struct val v = *d;

			v.deps |= s->deps;
			return v;
		}
		if (op == EBPF_ADD && s->kind == K_OLD && d->kind != K_OLD &&
		    d->kind != K_VALPTR && d->kind != K_MAP) {
			struct val v = *s;

			v.deps |= d->deps;
			return v;
		}
		return tainted(dd);
	default:
		if (d->kind == K_CONST && s->kind == K_CONST) {
			uint64_t a = (uint64_t)d->imm, b = (uint64_t)s->imm;

			switch (op) {
			case EBPF_AND:
				return (struct val){ .kind = K_CONST, .imm = (int64_t)(a & b) };
			case EBPF_OR:
				return (struct val){ .kind = K_CONST, .imm = (int64_t)(a | b) };
			case EBPF_XOR:
				return (struct val){ .kind = K_CONST, .imm = (int64_t)(a ^ b) };
			case EBPF_MUL:
				return (struct val){ .kind = K_CONST, .imm = (int64_t)(a * b) };
			case EBPF_LSH:
				return (struct val){ .kind = K_CONST, .imm = (int64_t)(a << (b & 63)) };
			case EBPF_RSH:
				return (struct val){ .kind = K_CONST, .imm = (int64_t)(a >> (b & 63)) };
			}
		}
		return tainted(dd);
	}
}

static void do_alu(struct state *st, const struct ebpf_insn *in, bool is64)
{
	uint8_t op = EBPF_OP(in->code);
	struct val *d = &st->r[in->dst];
	struct val s = EBPF_SRC(in->code) == EBPF_X ? st->r[in->src]
						    : (struct val){ .kind = K_CONST, .imm = in->imm };

	if (op == EBPF_NEG || op == EBPF_END) {
		*d = tainted(deps(d));
		return;
	}
	if (is64 && !(op == EBPF_MOV && in->off)) {
		*d = alu64(op, d, &s);
		return;
	}
	/* 32-bit (and sign-extending moves): constants stay constants, the rest is opaque. */
	if (op == EBPF_MOV && s.kind == K_CONST && !in->off) {
		*d = (struct val){ .kind = K_CONST, .imm = (int64_t)(uint32_t)s.imm };
		return;
	}
	*d = tainted(op == EBPF_MOV ? deps(&s) : deps(d) | deps(&s));
}

/* ---- memory ---- */

static void do_load(struct state *st, const struct ebpf_insn *in)
{
	const struct val *p = &st->r[in->src];
	int32_t off = p->off + in->off;
	bool dw = EBPF_SIZE(in->code) == EBPF_DW && EBPF_MODE(in->code) == EBPF_MEM;
	/* read through a pointer computed from a map's value: depends on it */
	struct val v = tainted(deps(p));

	if (p->kind == K_STACK && stack_slot(off) >= 0) {
		const struct val *slot = &st->stack[stack_slot(off)];

		v = dw && stack_aligned(off) ? *slot : tainted(deps(slot));
	} else if (p->kind == K_VALPTR) {
		v = dw && off % 8 == 0 ? (struct val){ .kind = K_OLD, .map = p->map,
						       .lookup = p->lookup, .off = off }
				       : tainted(bit(p->map));
	}
	st->r[in->dst] = v;
}

/* A write of v into the looked-up value p + off (atomic: an atomic add). */
static void write_value(struct walk *w, struct state *st, const struct val *p, int32_t off,
			const struct val *v, bool dw, bool atomic_add)
{
	struct lookup *l = &st->lookups[p->lookup];
	bool ok;

	if (atomic_add)
		ok = dw && v->kind != K_OLD && !(v->deps & bit(p->map)) && v->kind != K_VALPTR &&
		     v->kind != K_MAP;
	else
		ok = dw && v->kind == K_OLD && v->map == p->map && v->lookup == p->lookup &&
		     v->off == off && !(v->deps & bit(p->map));
	if (!ok || l->updates)
		w->bad |= bit(p->map);
	w->bad |= v->deps;
	l->writes++;
	stale_old(st, p->map);
}

static void do_store(struct walk *w, struct state *st, const struct ebpf_insn *in)
{
	const struct val *p = &st->r[in->dst];
	int32_t off = p->off + in->off;
	bool dw = EBPF_SIZE(in->code) == EBPF_DW;
	struct val v = EBPF_CLASS(in->code) == EBPF_CLS_ST
			       ? (struct val){ .kind = K_CONST, .imm = in->imm }
			       : st->r[in->src];

	if (EBPF_MODE(in->code) == EBPF_ATOMIC) {
		bool add = in->imm == EBPF_ADD || in->imm == (EBPF_ADD | EBPF_FETCH);

		if (p->kind == K_VALPTR) {
			if (add)
				write_value(w, st, p, off, &v, dw && off % 8 == 0, true);
			else
				w->bad |= bit(p->map) | deps(&v);
			/* a fetched old value depends on the map */
			if (in->imm & EBPF_FETCH)
				st->r[in->imm == EBPF_CMPXCHG ? 0 : in->src] = tainted(bit(p->map));
			return;
		}
		if (p->kind == K_STACK && stack_slot(off) >= 0) {
			int i = stack_slot(off);

			st->stack[i] = tainted(deps(&st->stack[i]) | deps(&v));
			st->ver[i] = ++st->next_ver;
			if (in->imm & EBPF_FETCH)
				st->r[in->imm == EBPF_CMPXCHG ? 0 : in->src] = st->stack[i];
			return;
		}
		sink(w, &v);
		w->bad |= deps(p);
		if (in->imm & EBPF_FETCH)
			st->r[in->imm == EBPF_CMPXCHG ? 0 : in->src] = unknown;
		return;
	}
	if (p->kind == K_STACK && stack_slot(off) >= 0) {
		int i = stack_slot(off);

		st->stack[i] = dw && stack_aligned(off) ? v : tainted(deps(&st->stack[i]) | deps(&v));
		st->ver[i] = ++st->next_ver;
		return;
	}
	if (p->kind == K_VALPTR) {
		write_value(w, st, p, off, &v, dw && off % 8 == 0, false);
		return;
	}
	sink(w, &v);
	w->bad |= deps(p);
}

/* ---- helpers ---- */

/* How many stack slots (at most 8) the key of map at off covers. */
static int key_slots(const struct walk *w, int32_t off, unsigned int map)
{
	int first = stack_slot(off), n;

	if (first < 0)
		return 0;
	n = (int)((off + EBPF_STACK_SIZE) % 8 + w->key_sizes[map] + 7) / 8;
	if (n > 8)
		n = 8;
	return first + n > STACK_SLOTS ? STACK_SLOTS - first : n;
}

static void do_lookup(struct walk *w, struct state *st)
{
	const struct val *m = &st->r[1], *k = &st->r[2];
	struct lookup *l;

	if (m->kind != K_MAP) {
		sink(w, k);
		st->r[0] = unknown;
		return;
	}
	if (k->kind != K_STACK || st->nlookups == MAX_LOOKUPS) {
		w->bad |= bit(m->map) | deps(k);
		w->give_up |= st->nlookups == MAX_LOOKUPS;
		st->r[0] = tainted(bit(m->map));
		return;
	}
	sink_stack(w, st, k->off, w->key_sizes[m->map]);
	l = &st->lookups[st->nlookups];
	*l = (struct lookup){ .map = m->map, .null = MAYBE_NULL, .key_off = k->off };
	for (int i = 0; i < key_slots(w, k->off, m->map); i++)
		l->key_ver[i] = st->ver[stack_slot(k->off) + i];
	st->r[0] = (struct val){ .kind = K_VALPTR, .map = m->map,
				 .lookup = (uint8_t)st->nlookups };
	st->nlookups++;
}

static bool same_key(const struct walk *w, const struct state *st, const struct lookup *l,
		     int32_t off)
{
	if (l->key_off != off || stack_slot(off) < 0)
		return false;
	for (int i = 0; i < key_slots(w, off, l->map); i++)
		if (l->key_ver[i] != st->ver[stack_slot(off) + i])
			return false;
	return true;
}

static void do_update(struct walk *w, struct state *st)
{
	const struct val *m = &st->r[1], *k = &st->r[2], *v = &st->r[3], *f = &st->r[4];
	struct lookup *l = NULL;
	uint32_t words;

	if (m->kind != K_MAP) {
		sink(w, k);
		sink(w, v);
		return;
	}
	if (k->kind == K_STACK)
		sink_stack(w, st, k->off, w->key_sizes[m->map]);
	for (unsigned int i = st->nlookups; i-- > 0 && !l;)
		if (st->lookups[i].map == m->map && k->kind == K_STACK &&
		    same_key(w, st, &st->lookups[i], k->off))
			l = &st->lookups[i];
	words = w->value_sizes[m->map] / 8;
	if (!l || l->null == MAYBE_NULL || l->writes || l->updates || v->kind != K_STACK ||
	    !stack_aligned(v->off) || f->kind != K_CONST || w->value_sizes[m->map] % 8 ||
	    stack_slot(v->off) + (int)words > STACK_SLOTS) {
		w->bad |= bit(m->map);
		if (v->kind == K_STACK)
			sink_stack(w, st, v->off, w->value_sizes[m->map]);
		else
			sink(w, v);
		return;
	}
	for (uint32_t i = 0; i < words; i++) {
		const struct val *x = &st->stack[stack_slot(v->off) + (int)i];
		bool ok = l->null == NOT_NULL ? x->kind == K_OLD && x->map == m->map &&
							x->lookup == (uint8_t)(l - st->lookups) &&
							x->off == (int32_t)(8 * i)
					      : x->kind != K_OLD && x->kind != K_VALPTR &&
							x->kind != K_MAP;

		if (!ok || (x->deps & bit(m->map)))
			w->bad |= bit(m->map);
		w->bad |= x->deps;
	}
	l->updates++;
	stale_old(st, m->map);
}

/* Helpers with a stack buffer and its size: which arguments, and whether they write it. */
static const struct {
	int32_t id;
	uint8_t ptr, size; /* argument numbers */
	bool writes;
} buffers[] = {
	{ 4, 1, 2, true },    /* probe_read */
	{ 6, 1, 2, false },   /* trace_printk: the format */
	{ 16, 1, 2, true },   /* get_current_comm */
	{ 25, 4, 5, false },  /* perf_event_output */
	{ 45, 1, 2, true },   /* probe_read_str */
	{ 67, 2, 3, true },   /* get_stack */
	{ 112, 1, 2, true },  /* probe_read_user */
	{ 113, 1, 2, true },  /* probe_read_kernel */
	{ 114, 1, 2, true },  /* probe_read_user_str */
	{ 115, 1, 2, true },  /* probe_read_kernel_str */
	{ 130, 2, 3, false }, /* ringbuf_output */
	{ 165, 1, 2, true },  /* snprintf: the output */
	{ 165, 4, 5, false }, /* snprintf: the arguments */
};

static bool is_callback_helper(int32_t id)
{
	/* tail_call, timer callbacks, for_each_map_elem, loop, user_ringbuf_drain */
	return id == 12 || id == 170 || id == 164 || id == 181 || id == 209;
}

static void do_helper(struct walk *w, struct state *st, int32_t id)
{
	bool seen[6] = { false };

	if (is_callback_helper(id)) {
		w->give_up = true;
		return;
	}
	if (id == HELPER_MAP_LOOKUP) {
		do_lookup(w, st);
		goto clobber;
	}
	if (id == HELPER_MAP_UPDATE) {
		do_update(w, st);
		st->r[0] = unknown;
		goto clobber;
	}
	for (size_t i = 0; i < sizeof(buffers) / sizeof(buffers[0]); i++) {
		const struct val *p = &st->r[buffers[i].ptr], *n = &st->r[buffers[i].size];
		int64_t len = n->kind == K_CONST ? n->imm : -1;

		if (buffers[i].id != id)
			continue;
		seen[buffers[i].ptr] = true;
		/* a map's value as the buffer: read or written by the helper */
		if (p->kind != K_STACK) {
			sink(w, p);
			continue;
		}
		if (buffers[i].writes)
			clobber_stack(st, p->off, len);
		else
			sink_stack(w, st, p->off, len);
	}
	for (int a = 1; a <= 5; a++) {
		const struct val *p = &st->r[a];

		if (id == HELPER_MAP_DELETE && a == 1 && p->kind == K_MAP)
			w->bad |= bit(p->map);
		if (p->kind == K_STACK && !seen[a]) {
			/* A buffer of unknown use: all of the stack is read and may be written. */
			sink_stack(w, st, 0, -1);
			clobber_stack(st, 0, -1);
		} else if (p->kind != K_MAP || id == HELPER_MAP_DELETE) {
			sink(w, p);
		} else {
			w->bad |= bit(p->map);
		}
	}
	st->r[0] = unknown;
clobber:
	for (int a = 1; a <= 5; a++)
		st->r[a] = unknown;
}

/* ---- jumps ---- */

static bool eval(uint8_t op, uint64_t a, uint64_t b, bool *known)
{
	*known = true;
	switch (op) {
	case EBPF_JEQ:
		return a == b;
	case EBPF_JNE:
		return a != b;
	case EBPF_JGT:
		return a > b;
	case EBPF_JGE:
		return a >= b;
	case EBPF_JLT:
		return a < b;
	case EBPF_JLE:
		return a <= b;
	case EBPF_JSET:
		return a & b;
	case EBPF_JSGT:
		return (int64_t)a > (int64_t)b;
	case EBPF_JSGE:
		return (int64_t)a >= (int64_t)b;
	case EBPF_JSLT:
		return (int64_t)a < (int64_t)b;
	case EBPF_JSLE:
		return (int64_t)a <= (int64_t)b;
	}
	*known = false;
	return false;
}

/* The path where lookup l found nothing: its pointers are 0 there. */
static void set_null(struct state *st, uint8_t l, enum nullness n)
{
	st->lookups[l].null = (uint8_t)n;
	if (n != IS_NULL)
		return;
	for (int i = 0; i < EBPF_NR_REGS; i++)
		if (st->r[i].kind == K_VALPTR && st->r[i].lookup == l)
			st->r[i] = (struct val){ .kind = K_CONST };
	for (int i = 0; i < STACK_SLOTS; i++)
		if (st->stack[i].kind == K_VALPTR && st->stack[i].lookup == l)
			st->stack[i] = (struct val){ .kind = K_CONST };
}

/* Conditional jump: the next pc of this path; the other side, if feasible, is pushed. */
static size_t do_branch(struct walk *w, struct state *st, const struct ebpf_insn *in)
{
	uint8_t op = EBPF_OP(in->code);
	const struct val *d = &st->r[in->dst];
	struct val s = EBPF_SRC(in->code) == EBPF_X ? st->r[in->src]
						    : (struct val){ .kind = K_CONST, .imm = in->imm };
	size_t taken = st->pc + 1 + (size_t)(int64_t)in->off, next = st->pc + 1;
	bool known;

	/* A lookup's null check forks the path; it reads no value. */
	if (d->kind == K_VALPTR && s.kind == K_CONST && s.imm == 0 &&
	    (op == EBPF_JEQ || op == EBPF_JNE)) {
		uint8_t l = d->lookup;

		if (st->lookups[l].null == MAYBE_NULL) {
			struct state other = *st;

			set_null(&other, l, op == EBPF_JEQ ? NOT_NULL : IS_NULL);
			push(w, &other, next);
			set_null(st, l, op == EBPF_JEQ ? IS_NULL : NOT_NULL);
			return taken;
		}
		return (st->lookups[l].null == IS_NULL) == (op == EBPF_JEQ) ? taken : next;
	}
	sink(w, d);
	sink(w, &s);
	if (d->kind == K_CONST && s.kind == K_CONST && EBPF_CLASS(in->code) == EBPF_CLS_JMP) {
		bool t = eval(op, (uint64_t)d->imm, (uint64_t)s.imm, &known);

		if (known)
			return t ? taken : next;
	}
	push(w, st, next);
	return taken;
}

/* ---- the walk ---- */

static void walk_path(struct walk *w, struct state *st)
{
	while (!w->give_up) {
		const struct ebpf_insn *in;
		uint8_t cls;

		if (st->pc >= w->insn_cnt || ++w->steps > MAX_STEPS) {
			w->give_up = true;
			return;
		}
		in = &w->insns[st->pc];
		cls = EBPF_CLASS(in->code);
		switch (cls) {
		case EBPF_CLS_ALU:
		case EBPF_CLS_ALU64:
			do_alu(st, in, cls == EBPF_CLS_ALU64);
			break;
		case EBPF_CLS_LDX:
			do_load(st, in);
			break;
		case EBPF_CLS_ST:
		case EBPF_CLS_STX:
			do_store(w, st, in);
			break;
		case EBPF_CLS_LD:
			if (in->code != (EBPF_CLS_LD | EBPF_IMM | EBPF_DW) ||
			    st->pc + 1 >= w->insn_cnt) {
				w->give_up = true;
				return;
			}
			if (in->src == EBPF_PSEUDO_MAP_FD && map_index(w, in->imm) >= 0) {
				unsigned int m = (unsigned int)map_index(w, in->imm);

				st->r[in->dst] = (struct val){ .kind = K_MAP, .map = (uint8_t)m };
				w->used |= bit(m);
			} else if (in->src == EBPF_PSEUDO_IMM64) {
				st->r[in->dst] = (struct val){
					.kind = K_CONST,
					.imm = (int64_t)((uint64_t)(uint32_t)in->imm |
							 (uint64_t)w->insns[st->pc + 1].imm << 32)
				};
			} else {
				st->r[in->dst] = unknown;
			}
			st->pc += 2;
			continue;
		case EBPF_CLS_JMP:
		case EBPF_CLS_JMP32:
			switch (EBPF_OP(in->code)) {
			case EBPF_JA:
				st->pc += 1 + (size_t)(int64_t)(cls == EBPF_CLS_JMP32 ? in->imm
										    : in->off);
				continue;
			case EBPF_EXIT:
				sink(w, &st->r[0]);
				return;
			case EBPF_CALL:
				if (in->src != EBPF_PSEUDO_CALL_HELPER) {
					w->give_up = true;
					return;
				}
				do_helper(w, st, in->imm);
				break;
			default:
				st->pc = do_branch(w, st, in);
				continue;
			}
			break;
		}
		st->pc++;
	}
}

uint64_t additive__maps(const struct ebpf_insn *insns, size_t insn_cnt, const int *map_fds,
			const uint32_t *value_sizes, const uint32_t *key_sizes, size_t map_cnt)
{
	struct walk w = { .insns = insns, .insn_cnt = insn_cnt, .map_fds = map_fds,
			  .value_sizes = value_sizes, .key_sizes = key_sizes, .map_cnt = map_cnt };
	struct state *st;

	if (map_cnt > ADDITIVE_MAX_MAPS || !insn_cnt)
		return 0;
	w.pending = malloc(MAX_PENDING * sizeof(*w.pending));
	st = calloc(1, sizeof(*st));
	if (!w.pending || !st) {
		free(w.pending);
		free(st);
		return 0;
	}
	st->r[EBPF_REG_FP] = (struct val){ .kind = K_STACK, .off = 0 };
	st->r[1] = unknown; /* the context */
	push(&w, st, 0);
	while (w.npending && !w.give_up) {
		*st = w.pending[--w.npending];
		walk_path(&w, st);
	}
	free(w.pending);
	free(st);
	return w.give_up ? 0 : w.used & ~w.bad;
}

/* SPDX-License-Identifier: MIT */
/*
 * monitor_reader: the userspace half of the kernel monitor. Loads the skeleton, checks every
 * record before it reaches the caller, follows the sequence numbers and reassembles the
 * instruction chunks of each program load far enough to say whether they all arrived.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "monitor.h"
#include "monitor.skel.h"

#define DEFAULT_RINGBUF_SIZE (16u << 20)
#define UPROBE_TYPE_PATH "/sys/bus/event_source/devices/uprobe/type"

/* How far seq may run ahead of a missing one before that one is declared lost. */
#define SEQ_WINDOW 4096u
/* Program loads whose chunks are being followed at once (one per CPU is the usual peak). */
#define MAX_ASSEMBLIES 64

struct assembly {
	uint64_t load_id; /* 0: free */
	uint32_t tid;
	uint32_t next_chunk;
	bool broken;
};

struct monitor_reader {
	struct monitor_bpf *skel;
	struct ring_buffer *rb;
	monitor_event_fn cb;
	monitor_lost_fn lost_cb;
	void *ctx;

	/* Every seq below seq_base was seen or declared lost; seen[] covers the next SEQ_WINDOW. */
	uint64_t seq_base;
	uint64_t seq_max; /* highest seen, 0 before the first record */
	uint64_t seen[SEQ_WINDOW / 64];
	uint64_t drops_explained;

	struct assembly asm_slots[MAX_ASSEMBLIES];
	int err; /* the callback's error, carried out of ring_buffer__consume */

	struct monitor_reader_stats stats;
};

static const char *const type_names[MONITOR_EV_MAX] = {
	[MONITOR_EV_PROG_LOAD] = "prog_load",
	[MONITOR_EV_PROG_INSNS] = "prog_insns",
	[MONITOR_EV_MAP_CREATE] = "map_create",
	[MONITOR_EV_LINK_CREATE] = "link_create",
	[MONITOR_EV_BTF_LOAD] = "btf_load",
	[MONITOR_EV_PERF_OPEN] = "perf_open",
	[MONITOR_EV_PERF_IOCTL] = "perf_ioctl",
	[MONITOR_EV_CLOSE] = "close",
	[MONITOR_EV_EXEC] = "exec",
	[MONITOR_EV_EXIT] = "exit",
	[MONITOR_EV_FORK] = "fork",
};

const char *monitor_event_type_name(uint32_t type)
{
	if (type >= MONITOR_EV_MAX || !type_names[type])
		return "?";
	return type_names[type];
}

/* ---- bounds checks ---- */

static bool terminated(const char *s, size_t n)
{
	return memchr(s, 0, n) != NULL;
}

static uint64_t chunks_for(uint64_t insn_cnt)
{
	return (insn_cnt + MONITOR_INSNS_PER_CHUNK - 1) / MONITOR_INSNS_PER_CHUNK;
}

static bool valid_prog_load(const struct monitor_prog_load *e, size_t len)
{
	if (len != sizeof(*e) || !terminated(e->prog_name, sizeof(e->prog_name)) ||
	    !terminated(e->license, sizeof(e->license)))
		return false;
	if (e->chunk_cnt > chunks_for(e->insn_cnt))
		return false;
	if ((e->flags & MONITOR_PROG_INSNS_COMPLETE) && e->chunk_cnt != chunks_for(e->insn_cnt))
		return false;
	return true;
}

static bool valid_prog_insns(const struct monitor_prog_insns *e, size_t len)
{
	if (len < sizeof(*e) || e->insn_cnt == 0 || e->insn_cnt > MONITOR_INSNS_PER_CHUNK)
		return false;
	if (len != sizeof(*e) + (size_t)e->insn_cnt * 8)
		return false;
	if ((uint64_t)e->chunk * MONITOR_INSNS_PER_CHUNK != e->insn_off)
		return false;
	return (uint64_t)e->insn_off + e->insn_cnt <= e->total_cnt &&
	       e->total_cnt <= MONITOR_MAX_INSNS;
}

static bool valid_link_create(const struct monitor_link_create *e, size_t len)
{
	uint64_t arrays = 1;

	if (len < sizeof(*e) || !terminated(e->um_path, sizeof(e->um_path)))
		return false;
	if (!(e->flags & MONITOR_LINK_UPROBE_MULTI))
		return e->um_captured == 0 && len == sizeof(*e);
	if (e->um_captured > MONITOR_UPROBE_MULTI_MAX || e->um_captured > e->um_cnt)
		return false;
	arrays += !!(e->flags & MONITOR_LINK_REF_CTR) + !!(e->flags & MONITOR_LINK_COOKIES);
	return len == sizeof(*e) + arrays * e->um_captured * 8;
}

static bool valid_record(const void *data, size_t len)
{
	const struct monitor_hdr *h = data;

	if (len < sizeof(*h) || h->size != len || h->seq == 0 ||
	    !terminated(h->comm, sizeof(h->comm)))
		return false;

	switch (h->type) {
	case MONITOR_EV_PROG_LOAD:
		return valid_prog_load(data, len);
	case MONITOR_EV_PROG_INSNS:
		return valid_prog_insns(data, len);
	case MONITOR_EV_MAP_CREATE: {
		const struct monitor_map_create *e = data;

		return len == sizeof(*e) && terminated(e->map_name, sizeof(e->map_name));
	}
	case MONITOR_EV_LINK_CREATE:
		return valid_link_create(data, len);
	case MONITOR_EV_BTF_LOAD:
		return len == sizeof(struct monitor_btf_load);
	case MONITOR_EV_PERF_OPEN: {
		const struct monitor_perf_open *e = data;

		return len == sizeof(*e) && e->kind <= MONITOR_PERF_TRACEPOINT &&
		       terminated(e->path, sizeof(e->path));
	}
	case MONITOR_EV_PERF_IOCTL:
		return len == sizeof(struct monitor_perf_ioctl);
	case MONITOR_EV_CLOSE:
		return len == sizeof(struct monitor_close);
	case MONITOR_EV_EXEC: {
		const struct monitor_exec *e = data;

		return len == sizeof(*e) && terminated(e->filename, sizeof(e->filename));
	}
	case MONITOR_EV_EXIT:
		return len == sizeof(struct monitor_exit);
	case MONITOR_EV_FORK:
		return len == sizeof(struct monitor_fork);
	default:
		return false;
	}
}

int monitor_record_check(const void *data, size_t len)
{
	if (!data || !valid_record(data, len)) {
		errno = EBADMSG;
		return -EBADMSG;
	}
	return 0;
}

/* ---- sequence numbers ---- */

static bool seq_test(const struct monitor_reader *r, uint64_t s)
{
	return r->seen[(s % SEQ_WINDOW) / 64] & (1ull << (s % 64));
}

static void seq_set(struct monitor_reader *r, uint64_t s, bool on)
{
	uint64_t bit = 1ull << (s % 64);

	if (on)
		r->seen[(s % SEQ_WINDOW) / 64] |= bit;
	else
		r->seen[(s % SEQ_WINDOW) / 64] &= ~bit;
}

static void report_lost(struct monitor_reader *r, uint64_t first, uint64_t cnt)
{
	r->stats.lost += cnt;
	if (r->lost_cb)
		r->lost_cb(r->ctx, first, cnt);
}

/* Declares every unseen seq in [seq_base, to) lost and moves seq_base to `to`. */
static uint64_t seq_skip_to(struct monitor_reader *r, uint64_t to)
{
	uint64_t s, first = 0, run = 0, total = 0;

	for (s = r->seq_base; s < to; s++) {
		if (s >= r->seq_base + SEQ_WINDOW) {
			/* Beyond the window nothing could have been marked. */
			if (!run)
				first = s;
			run += to - s;
			break;
		}
		if (seq_test(r, s)) {
			seq_set(r, s, false);
			if (run) {
				report_lost(r, first, run);
				total += run;
				run = 0;
			}
		} else if (!run++) {
			first = s;
		}
	}
	if (run) {
		report_lost(r, first, run);
		total += run;
	}
	r->seq_base = to;
	return total;
}

static void seq_seen(struct monitor_reader *r, uint64_t s)
{
	if (s < r->seq_base) {
		r->stats.late++;
		return;
	}
	if (s >= r->seq_base + SEQ_WINDOW)
		r->drops_explained += seq_skip_to(r, s - SEQ_WINDOW + 1);
	seq_set(r, s, true);
	if (s > r->seq_max)
		r->seq_max = s;
	while (r->seq_base <= r->seq_max && seq_test(r, r->seq_base)) {
		seq_set(r, r->seq_base, false);
		r->seq_base++;
	}
}

/*
 * A hole below the highest seq seen may be a record another CPU has not committed yet, so holes
 * are declared lost only once the kernel says records were dropped (or the window overflows).
 */
static void seq_flush(struct monitor_reader *r)
{
	uint64_t dropped = monitor_reader__dropped(r);

	if (dropped > r->drops_explained && r->seq_max >= r->seq_base)
		r->drops_explained += seq_skip_to(r, r->seq_max + 1);
}

/* ---- instruction chunks ---- */

static struct assembly *assembly_find(struct monitor_reader *r, uint64_t load_id)
{
	for (size_t i = 0; i < MAX_ASSEMBLIES; i++)
		if (r->asm_slots[i].load_id == load_id)
			return &r->asm_slots[i];
	return NULL;
}

static struct assembly *assembly_new(struct monitor_reader *r, uint64_t load_id)
{
	struct assembly *a = NULL;

	/* Free slot, or else the oldest load (its PROG_LOAD record was lost). */
	for (size_t i = 0; i < MAX_ASSEMBLIES; i++) {
		struct assembly *s = &r->asm_slots[i];

		if (!s->load_id) {
			a = s;
			break;
		}
		if (!a || s->load_id < a->load_id)
			a = s;
	}
	*a = (struct assembly){ .load_id = load_id };
	return a;
}

static void assembly_chunk(struct monitor_reader *r, const struct monitor_prog_insns *e)
{
	struct assembly *a = assembly_find(r, e->load_id);

	if (!a) {
		a = assembly_new(r, e->load_id);
		a->tid = e->hdr.tid;
	}
	if (a->tid != e->hdr.tid || a->next_chunk != e->chunk)
		a->broken = true;
	a->next_chunk = e->chunk + 1;
}

/* True if every chunk the load record announces was delivered, in order. */
static bool assembly_done(struct monitor_reader *r, const struct monitor_prog_load *e)
{
	struct assembly *a = assembly_find(r, e->load_id);
	bool ok;

	if (!a)
		return e->chunk_cnt == 0;
	ok = !a->broken && a->tid == e->hdr.tid && a->next_chunk == e->chunk_cnt;
	a->load_id = 0;
	return ok;
}

/* ---- consuming ---- */

static int on_sample(void *ctx, void *data, size_t len)
{
	struct monitor_reader *r = ctx;
	const struct monitor_hdr *h = data;
	struct monitor_prog_load fixed;
	int err;

	if (!valid_record(data, len)) {
		r->stats.invalid++;
		return 0;
	}
	seq_seen(r, h->seq);

	if (h->type == MONITOR_EV_PROG_INSNS) {
		assembly_chunk(r, data);
	} else if (h->type == MONITOR_EV_PROG_LOAD && !assembly_done(r, data)) {
		/* The ring buffer is read-only: correct a copy. */
		memcpy(&fixed, data, sizeof(fixed));
		fixed.flags &= ~MONITOR_PROG_INSNS_COMPLETE;
		fixed.flags |= MONITOR_PROG_INSNS_LOST;
		h = &fixed.hdr;
	}

	r->stats.delivered++;
	err = r->cb(r->ctx, h, len);
	if (err < 0) {
		r->err = err;
		return err;
	}
	return 0;
}

static int finish_consume(struct monitor_reader *r, int n, uint64_t before)
{
	seq_flush(r);
	if (n < 0) {
		n = r->err ? r->err : n;
		r->err = 0;
		errno = -n;
		return n;
	}
	return (int)(r->stats.delivered - before);
}

int monitor_reader__consume(struct monitor_reader *r)
{
	uint64_t before = r->stats.delivered;

	return finish_consume(r, ring_buffer__consume(r->rb), before);
}

int monitor_reader__poll(struct monitor_reader *r, int timeout_ms)
{
	uint64_t before = r->stats.delivered;
	int n = ring_buffer__poll(r->rb, timeout_ms);

	if (n == -EINTR)
		n = 0;
	return finish_consume(r, n, before);
}

int monitor_reader__fd(const struct monitor_reader *r)
{
	return ring_buffer__epoll_fd(r->rb);
}

uint64_t monitor_reader__dropped(const struct monitor_reader *r)
{
	return __atomic_load_n(&r->skel->bss->dropped, __ATOMIC_RELAXED);
}

int monitor_reader__stats(const struct monitor_reader *r, struct monitor_reader_stats *stats)
{
	if (!r || !stats) {
		errno = EINVAL;
		return -EINVAL;
	}
	*stats = r->stats;
	stats->dropped = monitor_reader__dropped(r);
	return 0;
}

int monitor_reader__track_fd(struct monitor_reader *r, pid_t tgid, int fd, bool cloexec)
{
	struct monitor_fd_key key = { .tgid = tgid, .fd = fd };
	uint32_t val = cloexec ? MONITOR_TRACKED_CLOEXEC : 0, one = 1;
	int err;

	if (tgid <= 0 || fd < 0) {
		errno = EINVAL;
		return -EINVAL;
	}
	err = bpf_map__update_elem(r->skel->maps.tracked_tgids, &key.tgid, sizeof(key.tgid), &one,
				   sizeof(one), BPF_ANY);
	if (err)
		return err;
	return bpf_map__update_elem(r->skel->maps.tracked, &key, sizeof(key), &val, sizeof(val),
				    BPF_ANY);
}

int monitor_reader__untrack_fd(struct monitor_reader *r, pid_t tgid, int fd)
{
	struct monitor_fd_key key = { .tgid = tgid, .fd = fd };

	return bpf_map__delete_elem(r->skel->maps.tracked, &key, sizeof(key), 0);
}

/* ---- setup ---- */

static int print_nothing(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	return 0;
}

/* The uprobe PMU's dynamic type, or ~0u (matches no perf event) when there is none. */
static uint32_t read_uprobe_type(void)
{
	char buf[32] = {};
	unsigned long v;
	char *end;
	ssize_t n;
	int fd;

	fd = open(UPROBE_TYPE_PATH, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return ~0u;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return ~0u;
	errno = 0;
	v = strtoul(buf, &end, 10);
	if (errno || end == buf || v >= ~0u)
		return ~0u;
	return v;
}

static int opts_copy(struct monitor_reader_opts *dst, const struct monitor_reader_opts *src)
{
	size_t sz;

	*dst = (struct monitor_reader_opts){ .sz = sizeof(*dst) };
	if (!src)
		return 0;
	sz = src->sz;
	if (sz < sizeof(src->sz))
		return -EINVAL;
	/* A newer caller's extra fields must be zero: we would ignore them. */
	for (size_t i = sizeof(*dst); i < sz; i++)
		if (((const char *)src)[i])
			return -EINVAL;
	memcpy(dst, src, sz < sizeof(*dst) ? sz : sizeof(*dst));
	dst->sz = sizeof(*dst);
	return 0;
}

struct monitor_reader *monitor_reader__new(monitor_event_fn cb, void *ctx,
					   const struct monitor_reader_opts *user_opts)
{
	struct monitor_reader_opts opts;
	struct monitor_reader *r;
	libbpf_print_fn_t old_print;
	uint32_t ringbuf_size;
	int err;

	if (!cb || opts_copy(&opts, user_opts) < 0) {
		errno = EINVAL;
		return NULL;
	}
	ringbuf_size = opts.ringbuf_size ? opts.ringbuf_size : DEFAULT_RINGBUF_SIZE;
	if (opts.max_insns > MONITOR_MAX_INSNS) {
		errno = EINVAL;
		return NULL;
	}

	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->cb = cb;
	r->ctx = ctx;
	r->lost_cb = opts.lost;
	r->seq_base = 1;

	old_print = libbpf_set_print(opts.print ? opts.print : print_nothing);
	r->skel = monitor_bpf__open();
	if (!r->skel) {
		err = -errno;
		goto fail;
	}
	if (opts.self_tgid == -1)
		r->skel->rodata->self_tgid = ~0u;
	else
		r->skel->rodata->self_tgid = opts.self_tgid ? opts.self_tgid : getpid();
	r->skel->rodata->uprobe_type = read_uprobe_type();
	r->skel->rodata->max_insns = opts.max_insns ? opts.max_insns : MONITOR_MAX_INSNS;
	err = bpf_map__set_max_entries(r->skel->maps.events, ringbuf_size);
	if (err)
		goto fail;
	err = monitor_bpf__load(r->skel);
	if (err)
		goto fail;
	err = monitor_bpf__attach(r->skel);
	if (err)
		goto fail;
	__atomic_store_n(&r->skel->bss->armed, 1, __ATOMIC_RELEASE);
	libbpf_set_print(old_print);

	r->rb = ring_buffer__new(bpf_map__fd(r->skel->maps.events), on_sample, r, NULL);
	if (!r->rb) {
		err = -errno;
		goto fail_printed;
	}
	return r;

fail:
	libbpf_set_print(old_print);
fail_printed:
	monitor_reader__free(r);
	errno = err < 0 ? -err : EINVAL;
	return NULL;
}

void monitor_reader__free(struct monitor_reader *r)
{
	if (!r)
		return;
	ring_buffer__free(r->rb);
	monitor_bpf__destroy(r->skel);
	free(r);
}

// SPDX-License-Identifier: GPL-2.0-only OR MIT
/*
 * The kernel monitor: watches every process create eBPF programs, maps, links and perf events,
 * and reports each step, in order, through one ring buffer (records in monitor-events.h).
 *
 * Tracepoints only (our kernels run with lockdown=integrity: no kprobes, no fentry, no
 * bpf_probe_write_user); it observes and never changes what the caller does. Syscall arguments
 * are stashed per thread at sys_enter and reported at sys_exit together with the result.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>

#include "monitor-events.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

/* Set by the loader before load. */
const volatile __u32 self_tgid = 0; /* the consumer's own process: never reported */
const volatile __u32 uprobe_type = ~0u; /* /sys/bus/event_source/devices/uprobe/type */
const volatile __u32 max_insns = MONITOR_MAX_INSNS;

/* Read by the consumer through the skeleton's mmapped .bss. */
__u64 seq; /* last sequence number handed out */
__u64 dropped; /* records the ring buffer had no room for */
__u64 load_ids; /* last BPF_PROG_LOAD id */
/*
 * Set by the loader once every program is attached: until then no sys_enter stashes anything, so
 * no stash can wait for a sys_exit program that was not attached yet when its syscall returned.
 */
__u32 armed;

#define PERF_EVENT_IOC_ENABLE 0x2400
#define PERF_EVENT_IOC_DISABLE 0x2401
#define PERF_EVENT_IOC_SET_BPF 0x40042408
#define PERF_FLAG_FD_CLOEXEC 8
#define ATTR_FIELDS_END 72 /* PERF_ATTR_SIZE_VER1: through config2 */

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20);
} events SEC(".maps");

enum pending_kind {
	PENDING_BPF = 1,
	PENDING_PERF,
	PENDING_IOCTL,
};

/* What a thread passed at sys_enter, kept until its sys_exit. */
struct pending {
	__u32 kind;
	__u32 cmd; /* bpf cmd, ioctl cmd */
	__u32 fault; /* the attributes could not be read */
	__s32 fd; /* ioctl fd */
	__s32 pid; /* perf_event_open pid, cpu, group_fd, flags */
	__s32 cpu;
	__s32 group_fd;
	__u32 pad;
	__u64 flags;
	__u64 ptr; /* perf_event_attr pointer, ioctl arg */
	union bpf_attr attr;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32); /* tid */
	__type(value, struct pending);
} pending SEC(".maps");

/* A zeroed struct pending to start each entry from (attr bytes past the caller's size are 0). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pending);
} pending_zero SEC(".maps");

/* Fds created by monitored calls, so that only their close() is reported. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct monitor_fd_key);
	__type(value, __u32); /* MONITOR_TRACKED_* */
} tracked SEC(".maps");

/* Processes with entries in `tracked`, so exec and exit of other processes cost one lookup. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, __u32);
} tracked_tgids SEC(".maps");

/* Records with a variable tail are built here, then copied out with bpf_ringbuf_output(). */
struct insns_buf {
	__u8 b[sizeof(struct monitor_prog_insns) + 8 * MONITOR_INSNS_PER_CHUNK];
};

#define LINK_TAIL_MAX (3 * MONITOR_UPROBE_MULTI_MAX)

struct link_buf {
	__u8 b[sizeof(struct monitor_link_create) + 8 * LINK_TAIL_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct insns_buf);
} insns_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct link_buf);
} link_scratch SEC(".maps");

static __always_inline bool is_self(__u64 pid_tgid)
{
	return (__u32)(pid_tgid >> 32) == self_tgid;
}

/* sys_enter programs stash only when armed and not called by the consumer itself. */
static __always_inline bool ignored(__u64 pid_tgid)
{
	return !armed || is_self(pid_tgid);
}

/* Fills the header; the sequence number is taken last, just before the record is written. */
static __always_inline void fill_hdr(struct monitor_hdr *h, __u32 type, __u32 size)
{
	__u64 id = bpf_get_current_pid_tgid();

	h->type = type;
	h->size = size;
	h->ts = bpf_ktime_get_boot_ns();
	h->pid = id >> 32;
	h->tid = (__u32)id;
	bpf_get_current_comm(h->comm, sizeof(h->comm));
	h->seq = __sync_fetch_and_add(&seq, 1) + 1;
}

/* Reserves a fixed-size record; a failure takes a sequence number too, so the gap shows. */
static __always_inline void *reserve(__u32 size)
{
	void *r = bpf_ringbuf_reserve(&events, size, 0);

	if (!r) {
		__sync_fetch_and_add(&seq, 1);
		__sync_fetch_and_add(&dropped, 1);
	}
	return r;
}

static __always_inline int output(void *rec, __u32 size)
{
	long err = bpf_ringbuf_output(&events, rec, size, 0);

	if (err)
		__sync_fetch_and_add(&dropped, 1);
	return err;
}

static __always_inline __u32 track_fd(long fd, bool cloexec)
{
	struct monitor_fd_key key = { .tgid = bpf_get_current_pid_tgid() >> 32, .fd = fd };
	__u32 val = cloexec ? MONITOR_TRACKED_CLOEXEC : 0, one = 1;

	if (fd < 0)
		return 0;
	if (bpf_map_update_elem(&tracked, &key, &val, BPF_ANY))
		return MONITOR_FD_UNTRACKED;
	/* Without its tgid entry an fd would outlive its process in `tracked`: undo. */
	if (bpf_map_update_elem(&tracked_tgids, &key.tgid, &one, BPF_ANY)) {
		bpf_map_delete_elem(&tracked, &key);
		return MONITOR_FD_UNTRACKED;
	}
	return 0;
}

/* ---- bpf(2) ---- */

SEC("tp/syscalls/sys_enter_bpf")
int monitor_bpf_enter(struct trace_event_raw_sys_enter *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id, zero = 0, size;
	struct pending *zp, *p;
	int cmd = ctx->args[0];

	if (ignored(id))
		return 0;
	if (cmd != BPF_PROG_LOAD && cmd != BPF_MAP_CREATE && cmd != BPF_LINK_CREATE &&
	    cmd != BPF_BTF_LOAD)
		return 0;

	zp = bpf_map_lookup_elem(&pending_zero, &zero);
	if (!zp || bpf_map_update_elem(&pending, &tid, zp, BPF_ANY))
		return 0;
	p = bpf_map_lookup_elem(&pending, &tid);
	if (!p)
		return 0;

	p->kind = PENDING_BPF;
	p->cmd = cmd;
	/* Like the kernel: the caller's size counts, the rest of the attributes is zero. */
	size = ctx->args[2];
	barrier_var(size);
	if (size > sizeof(p->attr))
		size = sizeof(p->attr);
	barrier_var(size);
	if (bpf_probe_read_user(&p->attr, size, (void *)ctx->args[1]))
		p->fault = 1;
	return 0;
}

struct chunk_ctx {
	__u64 insns;
	__u64 load_id;
	__u32 insn_cnt;
	__u32 emitted;
	__u32 flags;
};

static long emit_chunk(__u32 i, struct chunk_ctx *c)
{
	struct monitor_prog_insns *r;
	__u32 zero = 0, off, n;

	r = bpf_map_lookup_elem(&insns_scratch, &zero);
	if (!r)
		return 1;
	if (i > MONITOR_MAX_INSNS / MONITOR_INSNS_PER_CHUNK)
		return 1;
	off = i * MONITOR_INSNS_PER_CHUNK;
	if (off >= c->insn_cnt)
		return 1;
	n = c->insn_cnt - off;
	if (n > MONITOR_INSNS_PER_CHUNK)
		n = MONITOR_INSNS_PER_CHUNK;

	if (bpf_probe_read_user(r->insns, n * 8, (void *)(c->insns + (__u64)off * 8))) {
		c->flags |= MONITOR_PROG_INSNS_FAULT;
		return 1;
	}
	r->load_id = c->load_id;
	r->chunk = i;
	r->insn_off = off;
	r->insn_cnt = n;
	r->total_cnt = c->insn_cnt;
	fill_hdr(&r->hdr, MONITOR_EV_PROG_INSNS, sizeof(*r) + n * 8);
	if (output(r, sizeof(*r) + n * 8)) {
		c->flags |= MONITOR_PROG_INSNS_DROPPED;
		return 1;
	}
	c->emitted++;
	return 0;
}

/*
 * The instructions are copied at sys_exit, and only when the load succeeded: the kernel has just
 * read the same bytes (so they are resident: bpf_probe_read_user cannot fault pages in), failed
 * loads (feature probes) cost one record and no chunks, and the fd is known. The chunks go first
 * so that the load record can say whether the stream is complete. A thread of the caller that
 * rewrites the buffer during the syscall could make the copy differ from what the kernel
 * verified; no tool does, and the daemon can compare the count with BPF_OBJ_GET_INFO_BY_FD.
 */
static __always_inline void emit_prog_load(struct pending *p, long ret)
{
	struct chunk_ctx c = {
		.insns = p->attr.insns,
		.insn_cnt = p->attr.insn_cnt,
	};
	struct monitor_prog_load *r;
	__u32 flags = 0, nchunks;

	c.load_id = __sync_fetch_and_add(&load_ids, 1) + 1;
	if (p->fault)
		flags |= MONITOR_ATTR_FAULT;
	if (ret >= 0 && !p->fault) {
		if (c.insn_cnt > max_insns || c.insn_cnt > MONITOR_MAX_INSNS) {
			flags |= MONITOR_PROG_TOO_LARGE;
		} else if (c.insn_cnt > 0) {
			nchunks = (c.insn_cnt + MONITOR_INSNS_PER_CHUNK - 1) /
				  MONITOR_INSNS_PER_CHUNK;
			bpf_loop(nchunks, emit_chunk, &c, 0);
			flags |= c.flags;
			if (c.emitted == nchunks && !c.flags)
				flags |= MONITOR_PROG_INSNS_COMPLETE;
		}
		flags |= track_fd(ret, true);
	}

	r = reserve(sizeof(*r));
	if (!r)
		return;
	r->result = ret;
	r->flags = flags;
	r->load_id = c.load_id;
	r->prog_type = p->attr.prog_type;
	r->expected_attach_type = p->attr.expected_attach_type;
	r->insn_cnt = p->attr.insn_cnt;
	r->chunk_cnt = c.emitted;
	r->prog_flags = p->attr.prog_flags;
	r->kern_version = p->attr.kern_version;
	r->prog_btf_fd = p->attr.prog_btf_fd;
	r->attach_btf_id = p->attr.attach_btf_id;
	r->attach_prog_fd = p->attr.attach_prog_fd;
	r->fd_array_cnt = p->attr.fd_array_cnt;
	r->insns = p->attr.insns;
	r->fd_array = p->attr.fd_array;
	__builtin_memcpy(r->prog_name, p->attr.prog_name, sizeof(r->prog_name));
	r->prog_name[sizeof(r->prog_name) - 1] = 0;
	if (!p->attr.license ||
	    bpf_probe_read_user_str(r->license, sizeof(r->license), (void *)p->attr.license) < 0)
		r->license[0] = 0;
	fill_hdr(&r->hdr, MONITOR_EV_PROG_LOAD, sizeof(*r));
	bpf_ringbuf_submit(r, 0);
}

static __always_inline void emit_map_create(struct pending *p, long ret)
{
	struct monitor_map_create *r;
	__u32 flags = p->fault ? MONITOR_ATTR_FAULT : 0;

	if (ret >= 0)
		flags |= track_fd(ret, true);
	r = reserve(sizeof(*r));
	if (!r)
		return;
	r->result = ret;
	r->flags = flags;
	r->map_type = p->attr.map_type;
	r->key_size = p->attr.key_size;
	r->value_size = p->attr.value_size;
	r->max_entries = p->attr.max_entries;
	r->map_flags = p->attr.map_flags;
	r->inner_map_fd = p->attr.inner_map_fd;
	r->btf_fd = p->attr.btf_fd;
	r->btf_value_type_id = p->attr.btf_value_type_id;
	r->map_extra = p->attr.map_extra;
	__builtin_memcpy(r->map_name, p->attr.map_name, sizeof(r->map_name));
	r->map_name[sizeof(r->map_name) - 1] = 0;
	fill_hdr(&r->hdr, MONITOR_EV_MAP_CREATE, sizeof(*r));
	bpf_ringbuf_submit(r, 0);
}

/* Reads cnt (<= MONITOR_UPROBE_MULTI_MAX) u64 from the caller into tail[at..]. */
static __always_inline int read_u64s(struct monitor_link_create *r, __u32 at, __u32 cnt, __u64 uptr)
{
	if (at > LINK_TAIL_MAX - MONITOR_UPROBE_MULTI_MAX || cnt > MONITOR_UPROBE_MULTI_MAX)
		return -1;
	return bpf_probe_read_user(&r->tail[at], cnt * 8, (void *)uptr);
}

static __always_inline void emit_link_create(struct pending *p, long ret)
{
	struct monitor_link_create *r;
	__u32 zero = 0, flags = p->fault ? MONITOR_ATTR_FAULT : 0, n = 0, words = 0;

	r = bpf_map_lookup_elem(&link_scratch, &zero);
	if (!r)
		return;
	if (ret >= 0)
		flags |= track_fd(ret, true);

	r->result = ret;
	r->prog_fd = p->attr.link_create.prog_fd;
	r->target_fd = p->attr.link_create.target_fd;
	r->attach_type = p->attr.link_create.attach_type;
	r->link_flags = p->attr.link_create.flags;
	r->bpf_cookie = 0;
	r->um_cnt = 0;
	r->um_flags = 0;
	r->um_pid = 0;
	r->um_path[0] = 0;
	if (p->attr.link_create.attach_type == BPF_PERF_EVENT)
		r->bpf_cookie = p->attr.link_create.perf_event.bpf_cookie;

	if (p->attr.link_create.attach_type == BPF_TRACE_UPROBE_MULTI && !p->fault) {
		__u64 path = p->attr.link_create.uprobe_multi.path;
		__u64 ref = p->attr.link_create.uprobe_multi.ref_ctr_offsets;
		__u64 cookies = p->attr.link_create.uprobe_multi.cookies;
		__u32 cnt = p->attr.link_create.uprobe_multi.cnt;
		long len;

		flags |= MONITOR_LINK_UPROBE_MULTI;
		r->um_cnt = cnt;
		r->um_flags = p->attr.link_create.uprobe_multi.flags;
		r->um_pid = p->attr.link_create.uprobe_multi.pid;
		len = bpf_probe_read_user_str(r->um_path, sizeof(r->um_path), (void *)path);
		if (len < 0) {
			r->um_path[0] = 0;
			flags |= MONITOR_LINK_PATH_FAULT;
		} else if (len == sizeof(r->um_path)) {
			flags |= MONITOR_LINK_PATH_TRUNCATED;
		}
		n = cnt;
		if (n > MONITOR_UPROBE_MULTI_MAX) {
			n = MONITOR_UPROBE_MULTI_MAX;
			flags |= MONITOR_LINK_TRUNCATED;
		}
		if (read_u64s(r, 0, n, p->attr.link_create.uprobe_multi.offsets))
			flags |= MONITOR_LINK_ARRAY_FAULT;
		words = n;
		if (ref) {
			if (read_u64s(r, words, n, ref))
				flags |= MONITOR_LINK_ARRAY_FAULT;
			flags |= MONITOR_LINK_REF_CTR;
			words += n;
		}
		if (cookies) {
			if (read_u64s(r, words, n, cookies))
				flags |= MONITOR_LINK_ARRAY_FAULT;
			flags |= MONITOR_LINK_COOKIES;
			words += n;
		}
	}
	r->um_captured = n;
	r->flags = flags;
	if (words > LINK_TAIL_MAX)
		return;
	fill_hdr(&r->hdr, MONITOR_EV_LINK_CREATE, sizeof(*r) + words * 8);
	output(r, sizeof(*r) + words * 8);
}

static __always_inline void emit_btf_load(struct pending *p, long ret)
{
	struct monitor_btf_load *r;
	__u32 flags = p->fault ? MONITOR_ATTR_FAULT : 0;

	if (ret >= 0)
		flags |= track_fd(ret, true);
	r = reserve(sizeof(*r));
	if (!r)
		return;
	r->result = ret;
	r->flags = flags;
	r->btf_size = p->attr.btf_size;
	r->pad = 0;
	fill_hdr(&r->hdr, MONITOR_EV_BTF_LOAD, sizeof(*r));
	bpf_ringbuf_submit(r, 0);
}

SEC("tp/syscalls/sys_exit_bpf")
int monitor_bpf_exit(struct trace_event_raw_sys_exit *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct pending *p;
	long ret = ctx->ret;

	p = bpf_map_lookup_elem(&pending, &tid);
	if (!p)
		return 0;
	if (p->kind == PENDING_BPF) {
		switch (p->cmd) {
		case BPF_PROG_LOAD:
			emit_prog_load(p, ret);
			break;
		case BPF_MAP_CREATE:
			emit_map_create(p, ret);
			break;
		case BPF_LINK_CREATE:
			emit_link_create(p, ret);
			break;
		case BPF_BTF_LOAD:
			emit_btf_load(p, ret);
			break;
		}
	}
	bpf_map_delete_elem(&pending, &tid);
	return 0;
}

/* ---- perf_event_open(2) ---- */

SEC("tp/syscalls/sys_enter_perf_event_open")
int monitor_perf_open_enter(struct trace_event_raw_sys_enter *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id;
	struct pending p = {};

	if (ignored(id))
		return 0;
	p.kind = PENDING_PERF;
	p.ptr = ctx->args[0];
	p.pid = ctx->args[1];
	p.cpu = ctx->args[2];
	p.group_fd = ctx->args[3];
	p.flags = ctx->args[4];
	bpf_map_update_elem(&pending, &tid, &p, BPF_ANY);
	return 0;
}

SEC("tp/syscalls/sys_exit_perf_event_open")
int monitor_perf_open_exit(struct trace_event_raw_sys_exit *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct perf_event_attr attr = {};
	struct monitor_perf_open *r;
	struct pending *p;
	long ret = ctx->ret, len;
	__u32 flags = 0, size;

	p = bpf_map_lookup_elem(&pending, &tid);
	if (!p)
		return 0;
	if (p->kind != PENDING_PERF)
		goto out;

	/* Read what the kernel read: the declared size, at most through config2. */
	if (bpf_probe_read_user(&attr, 8, (void *)p->ptr)) {
		flags |= MONITOR_ATTR_FAULT;
	} else {
		size = attr.size ? attr.size : 64; /* PERF_ATTR_SIZE_VER0 */
		if (size > ATTR_FIELDS_END)
			size = ATTR_FIELDS_END;
		if (size < 8 || bpf_probe_read_user(&attr, size, (void *)p->ptr))
			flags |= MONITOR_ATTR_FAULT;
	}
	if (ret >= 0)
		flags |= track_fd(ret, p->flags & PERF_FLAG_FD_CLOEXEC);

	r = reserve(sizeof(*r));
	if (!r)
		goto out;
	r->result = ret;
	r->type = attr.type;
	r->attr_size = attr.size;
	r->target_pid = p->pid;
	r->cpu = p->cpu;
	r->group_fd = p->group_fd;
	r->open_flags = p->flags;
	r->config = attr.config;
	r->config1 = attr.config1;
	r->config2 = attr.config2;
	r->sample_period = attr.sample_period;
	r->sample_type = attr.sample_type;
	r->attr_bits = *(__u64 *)((char *)&attr + 40);
	r->wakeup_events = attr.wakeup_events;
	r->ref_ctr_offset = 0;
	r->offset = 0;
	r->path[0] = 0;
	r->kind = MONITOR_PERF_OTHER;
	if (!(flags & MONITOR_ATTR_FAULT) && attr.type == uprobe_type) {
		r->kind = MONITOR_PERF_UPROBE;
		if (attr.config & 1)
			flags |= MONITOR_PERF_RETPROBE;
		r->ref_ctr_offset = attr.config >> 32;
		r->offset = attr.config2;
		len = bpf_probe_read_user_str(r->path, sizeof(r->path), (void *)attr.config1);
		if (len < 0) {
			r->path[0] = 0;
			flags |= MONITOR_PERF_PATH_FAULT;
		} else if (len == sizeof(r->path)) {
			flags |= MONITOR_PERF_PATH_TRUNCATED;
		}
	} else if (!(flags & MONITOR_ATTR_FAULT) && attr.type == PERF_TYPE_TRACEPOINT) {
		r->kind = MONITOR_PERF_TRACEPOINT;
	}
	r->flags = flags;
	fill_hdr(&r->hdr, MONITOR_EV_PERF_OPEN, sizeof(*r));
	bpf_ringbuf_submit(r, 0);
out:
	bpf_map_delete_elem(&pending, &tid);
	return 0;
}

/* ---- ioctl(2) on perf events ---- */

SEC("tp/syscalls/sys_enter_ioctl")
int monitor_ioctl_enter(struct trace_event_raw_sys_enter *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id, cmd = ctx->args[1];
	struct pending p = {};

	if (cmd != PERF_EVENT_IOC_SET_BPF && cmd != PERF_EVENT_IOC_ENABLE &&
	    cmd != PERF_EVENT_IOC_DISABLE)
		return 0;
	if (ignored(id))
		return 0;
	p.kind = PENDING_IOCTL;
	p.fd = ctx->args[0];
	p.cmd = cmd;
	p.ptr = ctx->args[2];
	bpf_map_update_elem(&pending, &tid, &p, BPF_ANY);
	return 0;
}

SEC("tp/syscalls/sys_exit_ioctl")
int monitor_ioctl_exit(struct trace_event_raw_sys_exit *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct monitor_perf_ioctl *r;
	struct pending *p;

	p = bpf_map_lookup_elem(&pending, &tid);
	if (!p)
		return 0;
	if (p->kind == PENDING_IOCTL) {
		r = reserve(sizeof(*r));
		if (r) {
			r->result = ctx->ret;
			r->fd = p->fd;
			r->cmd = p->cmd;
			r->pad = 0;
			r->arg = p->ptr;
			fill_hdr(&r->hdr, MONITOR_EV_PERF_IOCTL, sizeof(*r));
			bpf_ringbuf_submit(r, 0);
		}
	}
	bpf_map_delete_elem(&pending, &tid);
	return 0;
}

/* ---- close(2) ---- */

/*
 * Filtered in the kernel: close() is among the most frequent syscalls on a busy machine, and
 * sending every one through the ring buffer would crowd out the records that matter. One hash
 * lookup per close is the price. Reported at entry: the fd is released whatever close returns.
 */
SEC("tp/syscalls/sys_enter_close")
int monitor_close_enter(struct trace_event_raw_sys_enter *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct monitor_fd_key key = { .tgid = id >> 32, .fd = ctx->args[0] };
	struct monitor_close *r;

	if (!bpf_map_lookup_elem(&tracked, &key))
		return 0;
	bpf_map_delete_elem(&tracked, &key);
	r = reserve(sizeof(*r));
	if (!r)
		return 0;
	r->fd = key.fd;
	r->pad = 0;
	fill_hdr(&r->hdr, MONITOR_EV_CLOSE, sizeof(*r));
	bpf_ringbuf_submit(r, 0);
	return 0;
}

/* ---- processes ---- */

struct forget_ctx {
	__u32 tgid;
	__u32 only_cloexec;
};

static long forget_fd(struct bpf_map *map, struct monitor_fd_key *key, __u32 *val,
		      struct forget_ctx *c)
{
	if (key->tgid == c->tgid && (!c->only_cloexec || (*val & MONITOR_TRACKED_CLOEXEC)))
		bpf_map_delete_elem(map, key);
	return 0;
}

static __always_inline void forget_fds(__u32 tgid, bool only_cloexec)
{
	struct forget_ctx c = { .tgid = tgid, .only_cloexec = only_cloexec };

	if (!bpf_map_lookup_elem(&tracked_tgids, &tgid))
		return;
	bpf_for_each_map_elem(&tracked, forget_fd, &c, 0);
	if (!only_cloexec)
		bpf_map_delete_elem(&tracked_tgids, &tgid);
}

SEC("tp/sched/sched_process_exec")
int monitor_exec(struct trace_event_raw_sched_process_exec *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct monitor_exec *r;
	__u16 loc = ctx->__data_loc_filename & 0xffff;
	long len;

	if (is_self(id))
		return 0;
	/* The old image's close-on-exec fds (all bpf() fds) are gone without a close(). */
	forget_fds(id >> 32, true);
	r = reserve(sizeof(*r));
	if (!r)
		return 0;
	r->old_tid = ctx->old_pid;
	r->flags = 0;
	len = bpf_probe_read_kernel_str(r->filename, sizeof(r->filename), (void *)ctx + loc);
	if (len < 0)
		r->filename[0] = 0;
	else if (len == sizeof(r->filename))
		r->flags = MONITOR_EXEC_FILENAME_TRUNCATED;
	fill_hdr(&r->hdr, MONITOR_EV_EXEC, sizeof(*r));
	bpf_ringbuf_submit(r, 0);
	return 0;
}

SEC("tp/sched/sched_process_exit")
int monitor_exit(struct trace_event_raw_sched_process_exit *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct task_struct *task = (void *)bpf_get_current_task();
	__u32 tid = (__u32)id;
	struct monitor_exit *r;
	bool group_dead;

	bpf_map_delete_elem(&pending, &tid);
	if (is_self(id))
		return 0;
	if (bpf_core_field_exists(ctx->group_dead))
		group_dead = BPF_CORE_READ(ctx, group_dead);
	else
		group_dead = BPF_CORE_READ(task, signal, live.counter) == 0;
	if (!group_dead)
		return 0;

	forget_fds(id >> 32, false);
	r = reserve(sizeof(*r));
	if (!r)
		return 0;
	r->exit_code = BPF_CORE_READ(task, exit_code);
	r->pad = 0;
	fill_hdr(&r->hdr, MONITOR_EV_EXIT, sizeof(*r));
	bpf_ringbuf_submit(r, 0);
	return 0;
}

/*
 * A raw tracepoint, because telling a thread from a process needs the child task, which the
 * classic tracepoint's record does not carry. Runs in the parent.
 */
SEC("raw_tp/sched_process_fork")
int monitor_fork(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *parent = (void *)ctx->args[0], *child = (void *)ctx->args[1];
	__u64 id = bpf_get_current_pid_tgid();
	struct monitor_fork *r;

	if (is_self(id))
		return 0;
	r = reserve(sizeof(*r));
	if (!r)
		return 0;
	r->child_pid = BPF_CORE_READ(child, tgid);
	r->child_tid = BPF_CORE_READ(child, pid);
	r->flags = r->child_pid == BPF_CORE_READ(parent, tgid) ? MONITOR_FORK_THREAD : 0;
	r->pad = 0;
	fill_hdr(&r->hdr, MONITOR_EV_FORK, sizeof(*r));
	bpf_ringbuf_submit(r, 0);
	return 0;
}

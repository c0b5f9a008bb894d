// SPDX-License-Identifier: MIT
/* Encoding and validating decoding of the daemon <-> agent messages (see proto.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "proto.h"

/* The fixed part of each type as version 1 defines it: the least a sender may send. */
static const size_t fixed_v1[PROTO__TYPE_MAX] = {
	[PROTO_HELLO] = sizeof(struct proto_hello),
	[PROTO_LOAD] = sizeof(struct proto_load_fixed),
	[PROTO_ATTACH] = sizeof(struct proto_attach_fixed),
	[PROTO_DETACH] = sizeof(struct proto_id_fixed),
	[PROTO_UNLOAD] = sizeof(struct proto_id_fixed),
	[PROTO_STATS] = sizeof(struct proto_stats_fixed),
	[PROTO_ERROR] = sizeof(struct proto_error_fixed),
	[PROTO_BYE] = 0,
	[PROTO_DONE] = sizeof(struct proto_done_fixed),
	[PROTO_STOP] = sizeof(struct proto_stop_fixed),
	[PROTO_STOPPED] = sizeof(struct proto_stopped_fixed),
};

static const char *const type_names[PROTO__TYPE_MAX] = {
	[PROTO_HELLO] = "HELLO",   [PROTO_LOAD] = "LOAD",   [PROTO_ATTACH] = "ATTACH",
	[PROTO_DETACH] = "DETACH", [PROTO_UNLOAD] = "UNLOAD", [PROTO_STATS] = "STATS",
	[PROTO_ERROR] = "ERROR",   [PROTO_BYE] = "BYE",	     [PROTO_DONE] = "DONE",
	[PROTO_STOP] = "STOP",	   [PROTO_STOPPED] = "STOPPED",
};

static int fail(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(char *err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, PROTO_ERRMSG_SIZE, fmt, ap);
	va_end(ap);
	errno = EBADMSG;
	return -EBADMSG;
}

static bool has_nul(const char *s, size_t n)
{
	return memchr(s, 0, n) != NULL;
}

/* A fd index of the message: one of the fds that came with it, or PROTO_NO_FD. */
static bool fd_ok(uint32_t index, size_t nfds, bool optional)
{
	return index < nfds || (optional && index == PROTO_NO_FD);
}

static void copy_fixed(void *dst, size_t known, const uint8_t *src, size_t sent)
{
	memset(dst, 0, known);
	memcpy(dst, src, sent < known ? sent : known);
}

void proto_load__map(const struct proto_msg *msg, uint32_t i, struct proto_map *out)
{
	copy_fixed(out, sizeof(*out), msg->load.maps + (size_t)i * msg->load.fixed.map_entry_len,
		   msg->load.fixed.map_entry_len);
}

static int decode_load(struct proto_msg *msg, const uint8_t *var, size_t left, size_t nfds,
		       char *err)
{
	const struct proto_load_fixed *f = &msg->load.fixed;
	uint64_t maps_len, need;

	if (!has_nul(f->name, sizeof(f->name)))
		return fail(err, "LOAD: name is not NUL-terminated");
	if (f->flags & ~PROTO_LOAD_JIT)
		return fail(err, "LOAD: unknown flags 0x%x", f->flags & ~PROTO_LOAD_JIT);
	if (f->map_cnt > PROTO_MAX_MAPS)
		return fail(err, "LOAD: %u maps, at most %u", f->map_cnt, PROTO_MAX_MAPS);
	if (f->map_cnt && (f->map_entry_len < PROTO_MAP_V1_LEN || f->map_entry_len > 4096))
		return fail(err, "LOAD: map entries of %u bytes (at least %zu, at most 4096)",
			    f->map_entry_len, (size_t)PROTO_MAP_V1_LEN);
	if (!f->insn_cnt || f->insn_cnt > PROTO_MAX_INSNS)
		return fail(err, "LOAD: %u instructions (1 to %u)", f->insn_cnt, PROTO_MAX_INSNS);
	maps_len = (uint64_t)f->map_cnt * f->map_entry_len;
	need = maps_len + (uint64_t)f->insn_cnt * 8;
	if (need > left)
		return fail(err, "LOAD: %u maps and %u instructions need %llu bytes, %zu remain",
			    f->map_cnt, f->insn_cnt, (unsigned long long)need, left);
	if (!fd_ok(f->ringbuf_prog_fd, nfds, true) || !fd_ok(f->perf_prog_fd, nfds, true) ||
	    !fd_ok(f->printk_prog_fd, nfds, true) || !fd_ok(f->cgroup_prog_fd, nfds, true))
		return fail(err, "LOAD: a helper program names fd %u/%u/%u/%u of %zu",
			    f->ringbuf_prog_fd, f->perf_prog_fd, f->printk_prog_fd,
			    f->cgroup_prog_fd, nfds);
	msg->load.maps = var;
	msg->load.insns = var + maps_len;
	for (uint32_t i = 0; i < f->map_cnt; i++) {
		struct proto_map m;

		proto_load__map(msg, i, &m);
		if (!fd_ok(m.fd_index, nfds, false))
			return fail(err, "LOAD: map %u names fd %u, the message has %zu", i,
				    m.fd_index, nfds);
		if (m.tool_fd < 0)
			return fail(err, "LOAD: map %u has tool fd %d", i, m.tool_fd);
		if (m.delta_fd && !fd_ok(m.delta_fd - 1, nfds, false))
			return fail(err, "LOAD: map %u names delta fd %u, the message has %zu", i,
				    m.delta_fd - 1, nfds);
		if (m.lock_fd && !fd_ok(m.lock_fd - 1, nfds, false))
			return fail(err, "LOAD: map %u names lock fd %u, the message has %zu", i,
				    m.lock_fd - 1, nfds);
		if (!m.key_size && m.type != 27 /* RINGBUF */ && m.type != 4 /* PERF_EVENT_ARRAY */)
			return fail(err, "LOAD: map %u (id %u) has key size 0", i, m.id);
	}
	return 0;
}

static int decode_attach(struct proto_msg *msg, const uint8_t *var, size_t left, char *err)
{
	const struct proto_attach_fixed *f = &msg->attach.fixed;

	if (f->kind != PROTO_PROBE_ENTRY && f->kind != PROTO_PROBE_RETURN)
		return fail(err, "ATTACH: unknown probe kind %u", f->kind);
	if (!f->path_len || f->path_len > PROTO_MAX_PATH || f->path_len > left)
		return fail(err, "ATTACH: path of %u bytes (1 to %u, %zu remain)", f->path_len,
			    PROTO_MAX_PATH, left);
	if (memchr(var, 0, f->path_len))
		return fail(err, "ATTACH: path holds a NUL byte");
	if (f->orig_len > sizeof(f->orig))
		return fail(err, "ATTACH: %u original bytes, at most %zu", f->orig_len,
			    sizeof(f->orig));
	if (f->func_size &&
	    (f->offset < f->func_offset || f->offset - f->func_offset >= f->func_size ||
	     f->func_offset + f->func_size < f->func_offset))
		return fail(err, "ATTACH: offset 0x%llx is outside its function [0x%llx, +0x%llx)",
			    (unsigned long long)f->offset, (unsigned long long)f->func_offset,
			    (unsigned long long)f->func_size);
	if ((f->prev_end && f->prev_end > f->func_offset) ||
	    (f->next_start && f->func_size && f->next_start < f->func_offset + f->func_size))
		return fail(err, "ATTACH: the neighbours of the function overlap it");
	msg->attach.path = (const char *)var;
	return 0;
}

static int decode_error(struct proto_msg *msg, const uint8_t *var, size_t left, char *err)
{
	const struct proto_error_fixed *f = &msg->error.fixed;

	if (f->err <= 0 || f->err >= 4096)
		return fail(err, "ERROR: errno %d is not a positive errno", f->err);
	if (!f->ref_type || f->ref_type >= PROTO__TYPE_MAX)
		return fail(err, "ERROR: refers to unknown message type %u", f->ref_type);
	if (f->text_len > PROTO_MAX_TEXT || f->text_len > left)
		return fail(err, "ERROR: text of %u bytes (at most %u, %zu remain)", f->text_len,
			    PROTO_MAX_TEXT, left);
	msg->error.text = (const char *)var;
	return 0;
}

int proto_msg__decode(const void *buf, size_t len, size_t nfds, struct proto_msg *msg,
		      char err[PROTO_ERRMSG_SIZE])
{
	const uint8_t *p = buf;
	struct proto_hdr h;
	size_t left;

	memset(msg, 0, sizeof(*msg));
	if (len < sizeof(h))
		return fail(err, "message of %zu bytes is shorter than its %zu-byte header", len,
			    sizeof(h));
	memcpy(&h, p, sizeof(h));
	if (h.magic != PROTO_MAGIC)
		return fail(err, "bad magic 0x%08x", h.magic);
	if (h.version != PROTO_VERSION)
		return fail(err, "protocol version %u, we speak %u", h.version, PROTO_VERSION);
	if (h.len != len)
		return fail(err, "header says %u bytes, the datagram has %zu", h.len, len);
	if (!h.type || h.type >= PROTO__TYPE_MAX)
		return fail(err, "unknown message type %u", h.type);
	if (h.nfds != nfds)
		return fail(err, "%s: header says %u fds, %zu came with it", type_names[h.type],
			    h.nfds, nfds);
	if (nfds && h.type != PROTO_LOAD && h.type != PROTO_STATS)
		return fail(err, "%s carries no fds, %zu came with it", type_names[h.type], nfds);
	if (h.type == PROTO_STATS && nfds != 1)
		return fail(err, "STATS carries its page's fd, %zu fds came with it", nfds);
	left = len - sizeof(h);
	if (h.fixed_len > left || h.fixed_len < fixed_v1[h.type])
		return fail(err, "%s: fixed part of %u bytes (at least %zu, %zu remain)",
			    type_names[h.type], h.fixed_len, fixed_v1[h.type], left);
	p += sizeof(h);
	left -= h.fixed_len;
	msg->type = h.type;
	msg->seq = h.seq;
	msg->nfds = h.nfds;
	switch (h.type) {
	case PROTO_HELLO:
		copy_fixed(&msg->hello, sizeof(msg->hello), p, h.fixed_len);
		if (!has_nul(msg->hello.version, sizeof(msg->hello.version)))
			return fail(err, "HELLO: version is not NUL-terminated");
		return 0;
	case PROTO_LOAD:
		copy_fixed(&msg->load.fixed, sizeof(msg->load.fixed), p, h.fixed_len);
		return decode_load(msg, p + h.fixed_len, left, nfds, err);
	case PROTO_ATTACH:
		copy_fixed(&msg->attach.fixed, sizeof(msg->attach.fixed), p, h.fixed_len);
		return decode_attach(msg, p + h.fixed_len, left, err);
	case PROTO_DETACH:
	case PROTO_UNLOAD:
		copy_fixed(&msg->id, sizeof(msg->id), p, h.fixed_len);
		return 0;
	case PROTO_STATS:
		copy_fixed(&msg->stats, sizeof(msg->stats), p, h.fixed_len);
		return 0;
	case PROTO_ERROR:
		copy_fixed(&msg->error.fixed, sizeof(msg->error.fixed), p, h.fixed_len);
		return decode_error(msg, p + h.fixed_len, left, err);
	case PROTO_DONE:
		copy_fixed(&msg->done, sizeof(msg->done), p, h.fixed_len);
		if (msg->done.ref_type != PROTO_LOAD && msg->done.ref_type != PROTO_ATTACH)
			return fail(err, "DONE: refers to message type %u, not LOAD or ATTACH",
				    msg->done.ref_type);
		return 0;
	case PROTO_STOP:
		copy_fixed(&msg->stop, sizeof(msg->stop), p, h.fixed_len);
		if (msg->stop.tid <= 0 || msg->stop.lo >= msg->stop.hi ||
		    msg->stop.hi - msg->stop.lo > 64)
			return fail(err, "STOP: thread %d, range [0x%llx, 0x%llx)", msg->stop.tid,
				    (unsigned long long)msg->stop.lo,
				    (unsigned long long)msg->stop.hi);
		return 0;
	case PROTO_STOPPED:
		copy_fixed(&msg->stopped, sizeof(msg->stopped), p, h.fixed_len);
		if (msg->stopped.err < 0)
			return fail(err, "STOPPED: err %d is not 0 or a positive errno",
				    msg->stopped.err);
		return 0;
	default:
		return 0;
	}
}

ssize_t proto_msg__encode(const struct proto_msg *msg, void *buf, size_t cap)
{
	struct proto_hdr h = {
		.magic = PROTO_MAGIC,
		.version = PROTO_VERSION,
		.type = (uint16_t)msg->type,
		.seq = msg->seq,
		.nfds = (uint16_t)msg->nfds,
	};
	const void *fixed = NULL, *var1 = NULL, *var2 = NULL;
	size_t var1_len = 0, var2_len = 0, total;
	uint8_t *p = buf;

	if (msg->type <= 0 || msg->type >= PROTO__TYPE_MAX || msg->nfds > PROTO_MAX_FDS)
		return -EINVAL;
	h.fixed_len = (uint16_t)fixed_v1[msg->type];
	switch (msg->type) {
	case PROTO_HELLO:
		fixed = &msg->hello;
		break;
	case PROTO_LOAD:
		if (msg->load.fixed.map_entry_len != sizeof(struct proto_map) &&
		    msg->load.fixed.map_cnt)
			return -EINVAL;
		fixed = &msg->load.fixed;
		var1 = msg->load.maps;
		var1_len = (size_t)msg->load.fixed.map_cnt * sizeof(struct proto_map);
		var2 = msg->load.insns;
		var2_len = (size_t)msg->load.fixed.insn_cnt * 8;
		break;
	case PROTO_ATTACH:
		fixed = &msg->attach.fixed;
		var1 = msg->attach.path;
		var1_len = msg->attach.fixed.path_len;
		break;
	case PROTO_DETACH:
	case PROTO_UNLOAD:
		fixed = &msg->id;
		break;
	case PROTO_STATS:
		fixed = &msg->stats;
		break;
	case PROTO_ERROR:
		fixed = &msg->error.fixed;
		var1 = msg->error.text;
		var1_len = msg->error.fixed.text_len;
		break;
	case PROTO_DONE:
		fixed = &msg->done;
		break;
	case PROTO_STOP:
		fixed = &msg->stop;
		break;
	case PROTO_STOPPED:
		fixed = &msg->stopped;
		break;
	default:
		break;
	}
	total = sizeof(h) + h.fixed_len + var1_len + var2_len;
	if (total > PROTO_MAX_MSG)
		return -EMSGSIZE;
	if (total > cap)
		return -E2BIG;
	h.len = (uint32_t)total;
	memcpy(p, &h, sizeof(h));
	p += sizeof(h);
	if (h.fixed_len)
		memcpy(p, fixed, h.fixed_len);
	p += h.fixed_len;
	if (var1_len)
		memcpy(p, var1, var1_len);
	p += var1_len;
	if (var2_len)
		memcpy(p, var2, var2_len);
	return (ssize_t)total;
}

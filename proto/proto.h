/* SPDX-License-Identifier: MIT */
/*
 * The daemon <-> agent wire format. One message per SOCK_SEQPACKET datagram:
 *
 *   struct proto_hdr | fixed part (hdr.fixed_len bytes) | variable sections
 *
 * The fixed part of each type may grow in later versions: a decoder takes
 * what it knows, zero-fills what the sender did not send (older peers) and
 * skips what it does not know (newer peers); likewise bytes after the known
 * variable sections are skipped. Every length, count, index and enum is
 * checked against the datagram before anything is read, and a refusal says
 * exactly which field is wrong. Fds (maps, helper programs) travel beside
 * the message with SCM_RIGHTS and are named by index.
 *
 * Contract: proto_msg__decode() never reads outside [buf, buf + len) and
 * points into buf (no copies, no allocation); proto_msg__encode() writes
 * a message that decodes to the same thing. Both return -errno with a
 * message in err / -E2BIG when the buffer is too small.
 */
#ifndef BPFTIME_PROTO_H
#define BPFTIME_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PROTO_MAGIC 0x4d545042u /* "BPTM" */
#define PROTO_VERSION 1
#define PROTO_ERRMSG_SIZE 256
#define PROTO_MAX_MSG (16u << 20)
#define PROTO_MAX_INSNS 1000000u
#define PROTO_MAX_MAPS 64u
#define PROTO_MAX_FDS 64u
#define PROTO_MAX_PATH 4096u
#define PROTO_MAX_TEXT 1024u
#define PROTO_NAME_LEN 16

enum proto_type {
	PROTO_HELLO = 1,  /* both ways: who we are, what we can do */
	PROTO_LOAD = 2,	  /* daemon -> agent: a program and its maps */
	PROTO_ATTACH = 3, /* daemon -> agent: run a loaded program at a probe site */
	PROTO_DETACH = 4, /* daemon -> agent */
	PROTO_UNLOAD = 5, /* daemon -> agent */
	PROTO_STATS = 6,  /* daemon -> agent: where to count (its status page, one fd) */
	PROTO_ERROR = 7,  /* both ways: a request failed, and why */
	PROTO_BYE = 8,	  /* both ways: the sender goes away */
	PROTO_DONE = 9,	  /* agent -> daemon: a LOAD or ATTACH took effect */
	PROTO_STOP = 10,  /* agent -> daemon: stop my other threads for a patch */
	PROTO_STOPPED = 11, /* daemon -> agent: they are stopped (or why not) */
	PROTO__TYPE_MAX,
};

struct proto_hdr {
	uint32_t magic;
	uint16_t version;
	uint16_t type;
	uint32_t len;	    /* of the whole message, header included */
	uint32_t seq;	    /* the sender's; replies carry the request's */
	uint16_t fixed_len; /* of the fixed part that follows */
	uint16_t nfds;	    /* fds sent with the message */
	uint32_t reserved;
};

/* Capabilities in HELLO. */
#define PROTO_CAP_JIT (1u << 0)
#define PROTO_CAP_RETURN_PROBES (1u << 1)

struct proto_hello {
	uint32_t pid;
	uint32_t caps;
	uint32_t max_msg;
	uint32_t reserved;
	char version[PROTO_NAME_LEN];
};

/* One map of a LOAD: fd_index names the fd sent with the message. */
struct proto_map {
	uint32_t id;
	uint32_t type;
	uint32_t key_size;
	uint32_t value_size;
	uint32_t max_entries;
	uint32_t flags;
	int32_t tool_fd;   /* the fd number the program's lddw uses */
	uint32_t fd_index; /* into the message's fds */
	/*
	 * The map's delta array (bpf/delta.h: the programs only add to it),
	 * as fd index + 1; 0: none, reach the map through bpf().
	 */
	uint32_t delta_fd;
	/*
	 * The map's write-back lock (shm/maplock.h), shared by the agents of
	 * every process and user, as fd index + 1; 0: none (output maps).
	 */
	uint32_t lock_fd;
};

/* What version 1 sent of each map: later fields read as zero from it. */
#define PROTO_MAP_V1_LEN 32u

#define PROTO_NO_FD 0xffffffffu

struct proto_load_fixed {
	uint32_t prog;	    /* the daemon's handle of this program */
	uint32_t kernel_id;
	uint32_t prog_type;
	uint32_t flags; /* PROTO_LOAD_JIT */
	char name[PROTO_NAME_LEN];
	uint32_t map_cnt;
	uint32_t map_entry_len; /* sizeof(struct proto_map) as the sender knows it */
	uint32_t insn_cnt;
	uint32_t ringbuf_prog_fd; /* fd indexes of output helper programs, or PROTO_NO_FD */
	uint32_t perf_prog_fd;
	uint32_t printk_prog_fd;
	uint32_t cgroup_prog_fd; /* bpf/cgroup-check.bpf.c on the program's CGROUP_ARRAY */
};

#define PROTO_LOAD_JIT (1u << 0)

enum proto_probe_kind {
	PROTO_PROBE_ENTRY = 0,
	PROTO_PROBE_RETURN = 1,
};

struct proto_attach_fixed {
	uint32_t attach;    /* the daemon's handle of this attachment */
	uint32_t prog;
	uint64_t dev;
	uint64_t ino;
	uint64_t offset;    /* file offset of the probed instruction */
	uint64_t cookie;
	uint64_t ref_ctr_offset; /* USDT semaphore (file offset), 0: none */
	/* The function around the offset, as file offsets (0: unknown). */
	uint64_t func_offset;
	uint64_t func_size;
	uint64_t prev_end;
	uint64_t next_start;
	uint32_t kind;	    /* enum proto_probe_kind */
	uint32_t path_len;  /* bytes of path that follow, no NUL */
	uint8_t orig[32];   /* the original bytes at offset, from the file */
	uint32_t orig_len;
	uint32_t reserved;
};

struct proto_id_fixed {
	uint32_t id; /* DETACH: attachment; UNLOAD: program */
	uint32_t flags; /* DETACH: PROTO_DETACH_*; UNLOAD: 0 */
};

/*
 * The kernel still has its uprobe on the site: when the last program leaves
 * it, put the kernel's breakpoint back (0xcc on the first byte), not the
 * file's bytes, so the kernel serves the process again.
 */
#define PROTO_DETACH_KERNEL_BREAKPOINT (1u << 0)

struct proto_done_fixed {
	uint16_t ref_type; /* the type of the message that took effect */
	uint16_t reserved;
	uint32_t ref_id;   /* its program or attachment */
};

/*
 * An ATTACH whose patch spans several instructions: the agent asks for
 * every thread but `tid` (its own) to be stopped with none inside
 * [lo, hi) but at lo, and answers the ATTACH (DONE or ERROR) once it has
 * patched; the daemon lets the threads go on that answer.
 */
struct proto_stop_fixed {
	uint32_t attach;
	int32_t tid;
	uint64_t lo, hi;
};

struct proto_stopped_fixed {
	uint32_t attach;
	int32_t err; /* 0: stopped; else the positive errno of why not */
};

/*
 * The agent's status page (shm/agentstat.h), sent with the one fd of the
 * message right after the daemon's HELLO: the agent counts its probes'
 * hits there and the daemon reads them without asking.
 */
struct proto_stats_fixed {
	uint32_t size;	  /* of the page */
	uint32_t version; /* of its layout */
};

struct proto_error_fixed {
	int32_t err;	   /* a positive errno */
	uint16_t ref_type; /* the type of the message that failed */
	uint16_t reserved;
	uint32_t ref_id;   /* its program or attachment */
	uint32_t text_len; /* bytes of message that follow, no NUL */
};

/* A decoded message: fixed parts copied, variable parts pointing into the buffer. */
struct proto_msg {
	enum proto_type type;
	uint32_t seq;
	uint32_t nfds;
	union {
		struct proto_hello hello;
		struct {
			struct proto_load_fixed fixed;
			const uint8_t *maps; /* map_cnt entries of map_entry_len bytes */
			const uint8_t *insns; /* insn_cnt * 8 bytes, unaligned */
		} load;
		struct {
			struct proto_attach_fixed fixed;
			const char *path; /* path_len bytes */
		} attach;
		struct proto_id_fixed id;
		struct proto_stats_fixed stats;
		struct proto_done_fixed done;
		struct proto_stop_fixed stop;
		struct proto_stopped_fixed stopped;
		struct {
			struct proto_error_fixed fixed;
			const char *text;
		} error;
	};
};

int proto_msg__decode(const void *buf, size_t len, size_t nfds, struct proto_msg *msg,
		      char err[PROTO_ERRMSG_SIZE]);

/*
 * Encodes msg; for LOAD the caller fills load.fixed and points load.maps at
 * map_cnt struct proto_map and load.insns at insn_cnt instructions.
 * Returns the length written, or -errno.
 */
ssize_t proto_msg__encode(const struct proto_msg *msg, void *buf, size_t cap);

/* One map entry of a decoded LOAD, whatever entry size the sender used. */
void proto_load__map(const struct proto_msg *msg, uint32_t i, struct proto_map *out);

/*
 * Sends one message with fds; receives one, its fds into fds[] (room for
 * PROTO_MAX_FDS; all closed again when the message or its fds were cut).
 * proto_recv returns the length, 0 when the peer closed, or -errno.
 */
int proto_send(int sock, const void *buf, size_t len, const int *fds, size_t nfds);
ssize_t proto_recv(int sock, void *buf, size_t cap, int *fds, size_t *nfds);

#endif

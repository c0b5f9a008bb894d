/* SPDX-License-Identifier: MIT */
/*
 * The records the kernel monitor (monitor.bpf.c) writes into its ring buffer, shared by the BPF
 * program and its consumers. Plain C, fixed-size fields, little-endian, 8-byte aligned.
 *
 * Contract:
 * - Every record starts with struct monitor_hdr. hdr.size is the exact length of the record;
 *   records with a variable tail say how many tail elements follow.
 * - hdr.seq comes from one global counter, taken just before the record is written: a seq that
 *   never arrives is a lost record (the program also counts ring-buffer failures in `dropped`).
 *   Records of one thread are in ring order; across CPUs seq may be slightly out of ring order.
 * - hdr.pid is the thread-group id, hdr.tid the thread id, hdr.ts CLOCK_BOOTTIME in ns.
 * - Strings are NUL-terminated inside their arrays; one that fills its array may have been cut
 *   (the record's *_TRUNCATED flag says so).
 * - bpf(BPF_PROG_LOAD): the instructions come first, as MONITOR_EV_PROG_INSNS chunks carrying the
 *   load_id of the MONITOR_EV_PROG_LOAD record that follows them; that record says how many
 *   chunks were written and whether the stream is complete. Nothing is cut silently: an
 *   incomplete stream never has MONITOR_PROG_INSNS_COMPLETE.
 * - Fds created by a monitored call are tracked per (tgid, fd): their close() is reported, and they
 *   are forgotten at exec (close-on-exec ones) and when the process exits. An fd the monitor could
 *   not track carries MONITOR_FD_UNTRACKED: its close will not be reported. Fds that vanish
 *   without close() (dup2/dup3 over them, close_range()) are not reported; a later record with the
 *   same (pid, fd) means the old object is gone from that fd.
 */
#ifndef BPFTIMED_MONITOR_EVENTS_H
#define BPFTIMED_MONITOR_EVENTS_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define MONITOR_COMM_LEN 16
#define MONITOR_NAME_LEN 16 /* BPF_OBJ_NAME_LEN */
#define MONITOR_LICENSE_LEN 64
#define MONITOR_PATH_LEN 256
#define MONITOR_INSNS_PER_CHUNK 512
/* The kernel refuses programs above BPF_COMPLEXITY_LIMIT_INSNS instructions. */
#define MONITOR_MAX_INSNS 1000000
#define MONITOR_UPROBE_MULTI_MAX 256

enum monitor_event_type {
	MONITOR_EV_PROG_LOAD = 1,
	MONITOR_EV_PROG_INSNS = 2,
	MONITOR_EV_MAP_CREATE = 3,
	MONITOR_EV_LINK_CREATE = 4,
	MONITOR_EV_BTF_LOAD = 5,
	MONITOR_EV_PERF_OPEN = 6,
	MONITOR_EV_PERF_IOCTL = 7,
	MONITOR_EV_CLOSE = 8,
	MONITOR_EV_EXEC = 9,
	MONITOR_EV_EXIT = 10,
	MONITOR_EV_FORK = 11,
	MONITOR_EV_MAX,
};

/* Common to the flags of every fd-creating record. */
#define MONITOR_FD_UNTRACKED (1u << 31) /* the tracking map was full: close() not reported */
#define MONITOR_ATTR_FAULT (1u << 30) /* the attributes could not be read from the caller */

struct monitor_hdr {
	__u32 type;
	__u32 size;
	__u64 seq;
	__u64 ts;
	__u32 pid;
	__u32 tid;
	char comm[MONITOR_COMM_LEN];
};

/* Flags of struct monitor_prog_load. */
#define MONITOR_PROG_INSNS_COMPLETE (1u << 0) /* chunk_cnt chunks carry all insn_cnt insns */
#define MONITOR_PROG_TOO_LARGE (1u << 1) /* insn_cnt above the monitor's limit: no chunks */
#define MONITOR_PROG_INSNS_FAULT (1u << 2) /* reading the caller's instructions faulted */
#define MONITOR_PROG_INSNS_DROPPED (1u << 3) /* the ring buffer was full */
#define MONITOR_PROG_INSNS_LOST (1u << 4) /* set by the reader: chunks missing or out of order */

/* bpf(BPF_PROG_LOAD), after its chunks. */
struct monitor_prog_load {
	struct monitor_hdr hdr;
	__s32 result; /* program fd, or -errno */
	__u32 flags; /* MONITOR_PROG_*, MONITOR_FD_*, MONITOR_ATTR_FAULT */
	__u64 load_id;
	__u32 prog_type;
	__u32 expected_attach_type;
	__u32 insn_cnt;
	__u32 chunk_cnt; /* chunks written before this record */
	__u32 prog_flags;
	__u32 kern_version;
	__u32 prog_btf_fd;
	__u32 attach_btf_id;
	__u32 attach_prog_fd;
	__u32 fd_array_cnt;
	__u64 insns; /* caller's pointers, as passed */
	__u64 fd_array;
	char prog_name[MONITOR_NAME_LEN];
	char license[MONITOR_LICENSE_LEN];
};

/* A run of the original instructions of a load; hdr.size = sizeof + 8 * insn_cnt. */
struct monitor_prog_insns {
	struct monitor_hdr hdr;
	__u64 load_id;
	__u32 chunk; /* 0, 1, ... */
	__u32 insn_off; /* chunk * MONITOR_INSNS_PER_CHUNK */
	__u32 insn_cnt; /* 1..MONITOR_INSNS_PER_CHUNK */
	__u32 total_cnt; /* insn_cnt of the load */
	__u64 insns[]; /* struct bpf_insn, as the caller passed them */
};

struct monitor_map_create {
	struct monitor_hdr hdr;
	__s32 result;
	__u32 flags;
	__u32 map_type;
	__u32 key_size;
	__u32 value_size;
	__u32 max_entries;
	__u32 map_flags;
	__u32 inner_map_fd;
	__u32 btf_fd;
	__u32 btf_value_type_id;
	__u64 map_extra;
	char map_name[MONITOR_NAME_LEN];
};

/* Flags of struct monitor_link_create. */
#define MONITOR_LINK_UPROBE_MULTI (1u << 0) /* the um_* fields and the tail are filled */
#define MONITOR_LINK_TRUNCATED (1u << 1) /* um_cnt above MONITOR_UPROBE_MULTI_MAX */
#define MONITOR_LINK_PATH_FAULT (1u << 2)
#define MONITOR_LINK_ARRAY_FAULT (1u << 3)
#define MONITOR_LINK_REF_CTR (1u << 4) /* the tail holds ref_ctr_offsets after the offsets */
#define MONITOR_LINK_COOKIES (1u << 5) /* the tail then holds the cookies */
#define MONITOR_LINK_PATH_TRUNCATED (1u << 6) /* um_path is full: the path may be longer */

/*
 * bpf(BPF_LINK_CREATE). For BPF_TRACE_UPROBE_MULTI the tail holds um_captured offsets, then as
 * many ref_ctr_offsets and cookies when the flags say so: hdr.size = sizeof + 8 * um_captured *
 * (1 + REF_CTR + COOKIES).
 */
struct monitor_link_create {
	struct monitor_hdr hdr;
	__s32 result;
	__u32 flags;
	__u32 prog_fd;
	__u32 target_fd;
	__u32 attach_type;
	__u32 link_flags;
	__u64 bpf_cookie; /* BPF_PERF_EVENT */
	__u32 um_cnt;
	__u32 um_flags;
	__u32 um_pid;
	__u32 um_captured;
	char um_path[MONITOR_PATH_LEN];
	__u64 tail[];
};

struct monitor_btf_load {
	struct monitor_hdr hdr;
	__s32 result;
	__u32 flags;
	__u32 btf_size;
	__u32 pad;
};

enum monitor_perf_kind {
	MONITOR_PERF_OTHER = 0,
	MONITOR_PERF_UPROBE = 1, /* type is the uprobe PMU */
	MONITOR_PERF_TRACEPOINT = 2, /* PERF_TYPE_TRACEPOINT: config is a tracefs event id */
};

/* Flags of struct monitor_perf_open. */
#define MONITOR_PERF_RETPROBE (1u << 0)
#define MONITOR_PERF_PATH_FAULT (1u << 1)
/* The path filled path[]: it may be longer (the daemon resolves it from the fd). */
#define MONITOR_PERF_PATH_TRUNCATED (1u << 2)

/* perf_event_open(2). */
struct monitor_perf_open {
	struct monitor_hdr hdr;
	__s32 result; /* perf fd, or -errno */
	__u32 flags;
	__u32 kind;
	__u32 type;
	__u32 attr_size;
	__s32 target_pid;
	__s32 cpu;
	__s32 group_fd;
	__u64 open_flags;
	__u64 config;
	__u64 config1;
	__u64 config2;
	__u64 sample_period;
	__u64 sample_type;
	__u64 attr_bits; /* the bit-field word: disabled, inherit, ... */
	__u32 wakeup_events;
	__u32 ref_ctr_offset; /* uprobe: config >> 32 */
	__u64 offset; /* uprobe: config2 */
	char path[MONITOR_PATH_LEN];
};

/* ioctl(2) PERF_EVENT_IOC_SET_BPF, _ENABLE or _DISABLE. */
struct monitor_perf_ioctl {
	struct monitor_hdr hdr;
	__s32 result;
	__s32 fd;
	__u32 cmd;
	__u32 pad;
	__u64 arg;
};

/* close(2) of a tracked fd, at entry. */
struct monitor_close {
	struct monitor_hdr hdr;
	__s32 fd;
	__u32 pad;
};

#define MONITOR_EXEC_FILENAME_TRUNCATED (1u << 0) /* filename is full: it may be longer */

/* hdr.pid/tid: the process after exec. */
struct monitor_exec {
	struct monitor_hdr hdr;
	__u32 old_tid; /* the thread that called execve */
	__u32 flags;
	char filename[MONITOR_PATH_LEN];
};

/* The last thread of a process exited. */
struct monitor_exit {
	struct monitor_hdr hdr;
	__s32 exit_code; /* wait(2) status: exit code << 8, or the killing signal */
	__u32 pad;
};

#define MONITOR_FORK_THREAD (1u << 0)

/* hdr: the parent thread. */
struct monitor_fork {
	struct monitor_hdr hdr;
	__u32 child_pid; /* thread-group id */
	__u32 child_tid;
	__u32 flags;
	__u32 pad;
};

/* Key and value of the monitor's `tracked` map, for loaders that add fds learnt elsewhere. */
struct monitor_fd_key {
	__u32 tgid;
	__s32 fd;
};

#define MONITOR_TRACKED_CLOEXEC 1u

_Static_assert(sizeof(struct monitor_hdr) == 48, "monitor_hdr layout");
_Static_assert(sizeof(struct monitor_prog_load) == 200, "monitor_prog_load layout");
_Static_assert(sizeof(struct monitor_prog_insns) == 72, "monitor_prog_insns layout");
_Static_assert(sizeof(struct monitor_perf_open) == 408, "monitor_perf_open layout");
_Static_assert(sizeof(struct monitor_link_create) == 352, "monitor_link_create layout");

#endif

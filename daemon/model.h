/* SPDX-License-Identifier: MIT */
/*
 * The daemon's model of every eBPF tool on the system: processes, the
 * programs, maps, BTF objects, perf events and links they hold by fd, and the
 * uprobe attachments those make. Built from the kernel monitor's records
 * (events.c) and from /proc when records were lost (resync.c).
 *
 * Contract:
 *  - A tool is a process that holds at least one tracked fd; it is removed
 *    with its last fd or when it exits.
 *  - Programs are reference counted: a perf event or link that runs a
 *    program keeps it after the tool closes the program's own fd, as the
 *    kernel does.
 *  - An attachment is a uprobe perf event with a program (SET_BPF or a
 *    BPF_PERF_EVENT link), or one offset of a uprobe_multi link.
 *  - Nothing here logs; functions return -errno.
 */
#ifndef BPFTIMED_MODEL_H
#define BPFTIMED_MODEL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <linux/bpf.h>

/* BPF_TRACE_UPROBE_MULTI: newer than Debian's 6.1 UAPI headers. */
#define MODEL_ATTACH_UPROBE_MULTI 48
#define MODEL_UPROBE_MULTI_RETURN 1

#define MODEL_NAME_LEN 16
#define MODEL_PATH_LEN 4096
#define MODEL_SYMBOL_LEN 256
#define MODEL_ORIG_LEN 32

struct model_map_ref {
	int32_t fd;
	uint32_t id;
};

struct model_prog {
	unsigned int refs;
	uint32_t id; /* kernel id; 0 when it could not be read */
	uint32_t type;
	uint32_t expected_attach_type;
	char name[MODEL_NAME_LEN];
	char license[64];
	uint32_t insn_cnt;
	/* The original instructions, or NULL when they could not be captured. */
	struct bpf_insn *insns;
	/* Kernel ids of the maps the program uses, as the kernel lists them. */
	uint32_t *map_ids;
	uint32_t map_cnt;
	/* The tool's fds its lddw instructions name, each once, with their maps' ids. */
	struct model_map_ref *map_refs;
	uint32_t map_ref_cnt;
	/* The lddw references and the kernel's own map list agreed. */
	bool maps_checked;
};

struct model_map {
	uint32_t id;
	uint32_t type;
	uint32_t key_size;
	uint32_t value_size;
	uint32_t max_entries;
	uint32_t flags;
	char name[MODEL_NAME_LEN];
};

/* Where a probe is: a file (as the tool named it and as resolved) and an offset. */
struct model_probe_site {
	char path[MODEL_PATH_LEN]; /* absolute, in the daemon's mount namespace */
	uint64_t dev;
	uint64_t ino;
	uint64_t offset; /* file offset */
	char symbol[MODEL_SYMBOL_LEN];
	uint64_t symbol_offset;
	/*
	 * From the file, for patching it in a process: the function around the
	 * offset as file offsets [func_offset, func_offset + func_size), where
	 * the symbol before it ends and the one after it starts (0: unknown),
	 * and the original bytes at the offset.
	 */
	uint64_t func_offset, func_size, prev_end, next_start;
	uint8_t orig[MODEL_ORIG_LEN];
	uint32_t orig_len;
};

enum model_perf_kind {
	MODEL_PERF_UPROBE,
	MODEL_PERF_TRACEPOINT,
	MODEL_PERF_OTHER,
};

struct model_perf {
	enum model_perf_kind kind;
	bool retprobe;
	struct model_probe_site site;
	uint64_t ref_ctr_offset;
	int target_pid; /* -1: every process */
	int cpu;
	uint64_t config;
	bool enabled;
	bool cloexec;
	/* The program run by SET_BPF, or NULL. */
	struct model_prog *prog;
};

struct model_link {
	uint32_t id;
	uint32_t attach_type;
	uint64_t cookie;
	struct model_prog *prog;
	int target_fd; /* BPF_PERF_EVENT: the perf event's fd in the same tool */
	/* BPF_TRACE_UPROBE_MULTI */
	bool retprobe;
	int um_pid;
	uint32_t um_cnt;
	struct model_probe_site *um_sites;
};

enum model_obj_kind {
	MODEL_OBJ_PROG,
	MODEL_OBJ_MAP,
	MODEL_OBJ_BTF,
	MODEL_OBJ_PERF,
	MODEL_OBJ_LINK,
};

struct model_obj {
	struct model_obj *next;
	int fd;
	enum model_obj_kind kind;
	union {
		struct model_prog *prog;
		struct model_map map;
		struct model_perf perf;
		struct model_link link;
	};
};

struct model_tool {
	struct model_tool *next;
	pid_t pid;
	char comm[MODEL_NAME_LEN];
	char exe[MODEL_PATH_LEN];
	struct model_obj *objs;
};

/* One uprobe attachment, as listed to users. */
struct model_attachment {
	const struct model_tool *tool;
	const struct model_probe_site *site;
	bool retprobe;
	int pid_filter;
	uint64_t ref_ctr_offset;
	uint64_t cookie;
	const struct model_prog *prog;
	bool enabled;
	const char *via; /* "perf_event", "link" or "uprobe_multi" */
	int perf_fd;
	int link_fd;
};

struct model {
	struct model_tool *tools;
	uint64_t generation; /* bumped on every change, for D-Bus signals */
};

void model_init(struct model *m);
void model_clear(struct model *m);

struct model_tool *model_tool_get(struct model *m, pid_t pid);
struct model_tool *model_tool_find(const struct model *m, pid_t pid);
void model_tool_remove(struct model *m, pid_t pid);

struct model_obj *model_obj_find(const struct model_tool *t, int fd);
/* Adds an object for fd, replacing one the tool had under that fd. */
struct model_obj *model_obj_add(struct model *m, struct model_tool *t, int fd,
				enum model_obj_kind kind);
/* Removes the object at fd; drops the tool when it was its last. */
void model_obj_close(struct model *m, pid_t pid, int fd);
/* Drops every object exec closes (bpf fds, close-on-exec perf events). */
void model_tool_exec(struct model *m, pid_t pid);

struct model_prog *model_prog_new(void);
struct model_prog *model_prog_ref(struct model_prog *p);
void model_prog_unref(struct model_prog *p);

/* Calls fn for each attachment, in tool and fd order; stops at fn's first < 0. */
int model_for_each_attachment(const struct model *m,
			      int (*fn)(void *ctx, const struct model_attachment *a), void *ctx);

/* Names for kinds and types, for listings. */
const char *model_prog_type_name(uint32_t type);
const char *model_map_type_name(uint32_t type);

#endif

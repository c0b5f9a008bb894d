/* SPDX-License-Identifier: MIT */
/*
 * What the monitor's records do not say, read from the kernel and the file
 * system: kernel ids of a tool's objects (its fd duplicated with
 * pidfd_getfd, then BPF_OBJ_GET_INFO_BY_FD), the maps a program references,
 * and where a uprobe is (the file as seen by the tool, its device and inode,
 * the function symbol covering the offset, read with libelf).
 * Functions return 0 or -errno and never log.
 */
#ifndef BPFTIMED_RESOLVE_H
#define BPFTIMED_RESOLVE_H

#include <stdbool.h>
#include <sys/types.h>

#include "model.h"

/* A copy of fd of process pid in this process (close it), or -errno. */
int resolve_dup_fd(pid_t pid, int fd);

/* Fills id, and the map ids: from the program's lddw references when they
 * resolve, cross-checked against the kernel's list (maps_checked). */
int resolve_prog(pid_t pid, int fd, struct model_prog *prog);
/* Every field of the map from the kernel. */
int resolve_map(pid_t pid, int fd, struct model_map *map);
/* Id, type, name and map ids of a program known only by its kernel id. */
int resolve_prog_by_id(uint32_t id, struct model_prog *prog);
/* Link id and the id of the program it runs. */
int resolve_link(pid_t pid, int fd, uint32_t *id, uint32_t *prog_id);

/*
 * What the kernel says a perf event of process pid probes
 * (BPF_TASK_FD_QUERY): true for a uprobe, with the site, the return-probe
 * bit and the program's id. Works once a program is attached; it also
 * recognises uprobes made through tracefs uprobe_events.
 */
bool resolve_uprobe_perf(pid_t pid, int fd, struct model_probe_site *site, bool *retprobe,
			 uint32_t *prog_id);

/*
 * Resolves path (as process pid passed it, relative to its cwd and root) and
 * the file offset into site: absolute path, device, inode and symbol.
 * Missing pieces are left empty; returns -errno only when the file cannot be
 * found at all.
 */
int resolve_probe_site(pid_t pid, const char *path, uint64_t offset,
		       struct model_probe_site *site);

/* The executable of pid, or an empty string. */
void resolve_exe(pid_t pid, char *buf, size_t size);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * shm_maplock — the write-back lock of one kernel map, shared by every agent
 * that serves the map, in any process and of any user: a robust,
 * process-shared mutex in a small file named after the map's kernel id, in
 * a directory only the daemon writes.
 *
 * Contract:
 *  - shm_maplock__open_file() opens the lock file of map_id in dir, creating
 *    it (mode 0600, fully initialised before it becomes visible under its
 *    name) when it does not exist, and returns its fd or -errno. The daemon
 *    passes that fd to every agent of the map; shm_maplock__open_fd() maps
 *    it (NULL with errno set when it is no lock file), and every holder of
 *    the same file shares the same mutex.
 *  - shm_maplock__lock() waits at most timeout_ns. It returns 0 when locked,
 *    1 when locked after the previous holder died holding it (the map may
 *    then hold that holder's partial write-back), -ETIMEDOUT, or another
 *    -errno. A dead holder never wedges the others.
 *  - Not recursive: a thread that holds the lock must not lock it again
 *    through any handle.
 *  - No allocation and no syscall on an uncontended lock or unlock.
 */
#ifndef BPFTIME_SHM_MAPLOCK_H
#define BPFTIME_SHM_MAPLOCK_H

#include <stdint.h>

struct shm_maplock;

int shm_maplock__open_file(const char *dir, uint32_t map_id);
struct shm_maplock *shm_maplock__open_fd(int fd);
void shm_maplock__close(struct shm_maplock *l);

int shm_maplock__lock(struct shm_maplock *l, uint64_t timeout_ns);
void shm_maplock__unlock(struct shm_maplock *l);

uint32_t shm_maplock__map_id(const struct shm_maplock *l);

/* Removes the lock file of map_id from dir (when the map is gone). */
int shm_maplock__unlink(const char *dir, uint32_t map_id);

#endif

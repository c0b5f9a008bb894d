/* SPDX-License-Identifier: MIT */
/*
 * shm_maplock — the write-back lock of one kernel map, shared by every agent
 * that serves the map, in any process and of any user: a robust,
 * process-shared mutex in a memfd the daemon makes, whose size is sealed.
 *
 * Contract:
 *  - shm_maplock__create() makes the lock of map_id and returns its fd or
 *    -errno. The daemon passes that fd to every agent of the map;
 *    shm_maplock__open_fd() maps it (NULL with errno set when it is no lock),
 *    and every holder of the same fd shares the same mutex. Its size cannot
 *    change, so no holder can make another's access fault; a holder can
 *    still hold or spoil the mutex, which only costs the others the timeout.
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

int shm_maplock__create(uint32_t map_id);
struct shm_maplock *shm_maplock__open_fd(int fd);
void shm_maplock__close(struct shm_maplock *l);

int shm_maplock__lock(struct shm_maplock *l, uint64_t timeout_ns);
void shm_maplock__unlock(struct shm_maplock *l);

uint32_t shm_maplock__map_id(const struct shm_maplock *l);

#endif

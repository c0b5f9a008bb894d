/* SPDX-License-Identifier: MIT */
/*
 * The write-back locks of the maps agents reach through bpf()
 * (shm/maplock.h): one per kernel map, made by the daemon as a sealed memfd
 * and passed with every LOAD of a program that uses the map. So agents of
 * every user share one lock per map, and no one else can make or swap it.
 *
 * Contract: maplocks_get() returns map_id's lock fd (owned here, the same
 * one until released) or -errno with the reason. maplocks_release() closes
 * the locks of maps no program of ours names and the kernel no longer has
 * (an agent that still maps one keeps its copy); kernel map ids are
 * allocated cyclically, so a new map does not inherit an old lock.
 */
#ifndef BPFTIMED_MAPLOCKS_H
#define BPFTIMED_MAPLOCKS_H

#include <stddef.h>
#include <stdint.h>

struct maplocks;

struct maplocks *maplocks_new(void);
void maplocks_free(struct maplocks *l);

int maplocks_get(struct maplocks *l, uint32_t map_id, char *err, size_t err_size);
void maplocks_release(struct maplocks *l, int (*keep)(void *ctx, uint32_t map_id), void *ctx);

#endif

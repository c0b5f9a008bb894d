/* SPDX-License-Identifier: MIT */
/*
 * The write-back locks of the maps agents reach through bpf()
 * (shm/maplock.h): one per kernel map, made by the daemon in a directory
 * only it writes (<agents' socket directory>/maplocks), its fd passed with
 * every LOAD of a program that uses the map. So agents of every user share
 * one lock per map, and no one else can make one first or swap it.
 *
 * Contract: maplocks_get() returns map_id's lock fd (owned here, the same
 * one until the file goes) or -errno with the reason. maplocks_release()
 * removes the files of maps no program of ours names and the kernel no
 * longer has (an agent that still maps one keeps its copy); kernel map ids
 * are allocated cyclically, so a new map does not inherit an old file.
 * maplocks_new() starts from an empty directory.
 */
#ifndef BPFTIMED_MAPLOCKS_H
#define BPFTIMED_MAPLOCKS_H

#include <stddef.h>
#include <stdint.h>

struct maplocks;

int maplocks_new(struct maplocks **ret, const char *dir);
/* Closes and removes every lock file. */
void maplocks_free(struct maplocks *l);

int maplocks_get(struct maplocks *l, uint32_t map_id, char *err, size_t err_size);
void maplocks_release(struct maplocks *l, int (*keep)(void *ctx, uint32_t map_id), void *ctx);

#endif

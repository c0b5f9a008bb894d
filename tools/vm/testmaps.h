/* SPDX-License-Identifier: MIT */
/*
 * Userspace maps for data files that declare "-- map" sections: ARRAY and
 * HASH with the kernel's lookup/update/delete semantics, reached by programs
 * through lddw map_by_fd(name) and helpers 1-3. They exist so corpus programs
 * that use maps can run in bpftime-vm; the agent uses the tool's kernel maps.
 */
#ifndef BPFTIME_TESTMAPS_H
#define BPFTIME_TESTMAPS_H

#include "testdata.h"
#include "vm.h"

struct testmaps;

/* Creates the maps a data file declares. NULL with errno set on failure. */
struct testmaps *testmaps__new(const struct test_data *td);
void testmaps__free(struct testmaps *maps);

/* Registers the map helpers and the map_by_fd relocation on vm. */
int testmaps__attach(struct testmaps *maps, struct vm *vm);

#endif

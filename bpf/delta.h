/* SPDX-License-Identifier: MIT */
/*
 * Deltas of a map the tools' programs only add to (agent/additive.h): what
 * agents added to its values and the kernel has not seen yet. One
 * BPF_F_MMAPABLE array per kernel map, shared by every agent of the map
 * (mapped) and drain.bpf.c, which adds the deltas into the map's values:
 * before any bpf() map command reaches the kernel (so a tool never reads
 * a value without them), and when the daemon asks.
 *
 * Element 0 is the header: state != 0 when deltas may be pending, presence
 * counts the drains in progress. The
 * others are an open-addressing table of keys: an agent claims an empty
 * element (EMPTY -> CLAIMED), writes the key, publishes it (READY), then
 * only ever adds to delta[] atomically; the drainer takes delta[] with
 * atomic exchanges. presence is the agents' knowledge of whether the key
 * exists in the map; the drainer forgets it when a tool deletes elements.
 */
#ifndef BPFTIMED_DELTA_H
#define BPFTIMED_DELTA_H

#define BPFTIMED_DELTA_KEY_MAX 64
#define BPFTIMED_DELTA_WORDS 16 /* the largest value: 128 bytes */
#define BPFTIMED_DELTA_SLOTS 1024

enum bpftimed_delta_state {
	BPFTIMED_DELTA_EMPTY = 0,
	BPFTIMED_DELTA_CLAIMED = 1,
	BPFTIMED_DELTA_READY = 2,
};

enum bpftimed_delta_presence {
	BPFTIMED_DELTA_UNKNOWN = 0,
	BPFTIMED_DELTA_PRESENT = 1,
	BPFTIMED_DELTA_ABSENT = 2,
};

struct bpftimed_delta_slot {
	__u32 state;
	__u32 presence;
	__u8 key[BPFTIMED_DELTA_KEY_MAX];
	__u64 delta[BPFTIMED_DELTA_WORDS];
};

#endif

/* SPDX-License-Identifier: MIT */
/*
 * shm_agentstat — the status page of one agent: its state and the counters
 * of every probe site it serves, written by the agent's hook path and read
 * by the daemon without a word to the agent.
 *
 * The daemon creates the page as a file <dir>/<pid> (mode 0600, owned by
 * the target's uid), hands the agent its fd (STATS, proto.h) and removes
 * the file when the agent's connection ends. The target may write anything
 * into it: every reader check (site indexes, sizes) is done on read.
 *
 * Contract:
 *  - shm_agentstat__create() makes the file and returns its fd (or -errno).
 *    The agent maps it (shm_agentstat__map(), checked: NULL with errno);
 *    the daemon never does: shm_agentstat__load() copies it with pread(),
 *    so a page cut short makes a failed read (-EIO), not a fault.
 *  - The agent counts into sites[i] for its site i and lists each
 *    attachment it serves as { id, i } in attach[]; counters only grow.
 *  - shm_agentstat__read() sums one attachment's site, or (attach 0) every
 *    site, into a reading; ns is the time spent estimated from the timed
 *    runs (one in SHM_AGENTSTAT_SAMPLE).
 */
#ifndef BPFTIME_SHM_AGENTSTAT_H
#define BPFTIME_SHM_AGENTSTAT_H

#include <stdint.h>
#include <sys/types.h>

#define SHM_AGENTSTAT_SITES 256
#define SHM_AGENTSTAT_ATTACH 1024
/* One run in this many of each kind is timed. */
#define SHM_AGENTSTAT_SAMPLE 64

enum shm_agent_state {
	SHM_AGENT_CONNECTED = 0, /* no probe yet */
	SHM_AGENT_SERVING = 1,	 /* at least one probe hooked */
	SHM_AGENT_DORMANT = 2,	 /* the daemon went away: every probe is back with the kernel */
};

/* The counters of one hooked address: a cache line of its own. */
struct shm_agentstat_site {
	uint64_t hits;	  /* calls, counted at the entry */
	uint64_t returns; /* runs at the return, where a return probe is */
	uint64_t errors;  /* program runs that failed */
	uint64_t sampled_ns, samples;
	uint64_t ret_sampled_ns, ret_samples;
	uint64_t reserved;
};

struct shm_agentstat_attach {
	uint32_t id;   /* the daemon's handle; 0: free */
	uint32_t site; /* index into sites[] */
};

struct shm_agentstat {
	uint32_t magic;
	uint32_t version;
	uint32_t size;
	int32_t pid;
	uint32_t state; /* enum shm_agent_state */
	uint32_t probes; /* attachments hooked */
	uint8_t reserved[40];
	struct shm_agentstat_site sites[SHM_AGENTSTAT_SITES];
	struct shm_agentstat_attach attach[SHM_AGENTSTAT_ATTACH];
};

struct shm_agentstat_reading {
	uint64_t hits, ns, errors;
};

int shm_agentstat__create(const char *dir, pid_t pid, uid_t uid, gid_t gid);
struct shm_agentstat *shm_agentstat__map(int fd);
int shm_agentstat__load(int fd, struct shm_agentstat *copy);
void shm_agentstat__unmap(struct shm_agentstat *page);
int shm_agentstat__unlink(const char *dir, pid_t pid);

void shm_agentstat__read(const struct shm_agentstat *page, uint32_t attach,
			 struct shm_agentstat_reading *out);

#endif

// SPDX-License-Identifier: MIT
/*
 * The tool's kernel maps, reached through its fds. BPF_F_MMAPABLE arrays are
 * mapped and used in place: the program's loads, stores and atomics hit the
 * kernel's memory. Every other supported map goes through bpf(): a lookup
 * copies the value (all CPUs' values for per-CPU maps) into the run's scratch
 * and hands out a pointer to the copy; when the run ends, every copy the
 * program changed is written back. The first map access of a run takes the
 * write-back locks of all the program's syscall maps, in map id order (so two
 * programs sharing maps cannot deadlock), and the run keeps them until the
 * write-back: a read-modify-write of a value is then atomic against every
 * other agent, which is what makes (*v)++ and atomic adds exact.
 *
 * A map every program only adds to (agent/additive.h) comes with a delta
 * array (bpf/delta.h) instead: a lookup finds (or claims) the key's element
 * there and hands out a zeroed per-run value, an update adds its value, and
 * the write-back adds what the program added; no lock, no system call once
 * the agent knows whether the key exists. The kernel adds the deltas into
 * the map before anyone reads it.
 *
 * Errors and flags follow the kernel's map code: the update and delete
 * syscalls run the same functions a program's helpers do.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "delta.h"
#include "maplock.h"
#include "prog-private.h"

/* A locker waits this long for a holder before going on unlocked (counted). */
#define LOCK_TIMEOUT_NS 1000000000ull

static const char *const map_type_names[] = {
	[BPF_MAP_TYPE_UNSPEC] = "unspec",
	[BPF_MAP_TYPE_HASH] = "hash",
	[BPF_MAP_TYPE_ARRAY] = "array",
	[BPF_MAP_TYPE_PROG_ARRAY] = "prog_array",
	[BPF_MAP_TYPE_PERF_EVENT_ARRAY] = "perf_event_array",
	[BPF_MAP_TYPE_PERCPU_HASH] = "percpu_hash",
	[BPF_MAP_TYPE_PERCPU_ARRAY] = "percpu_array",
	[BPF_MAP_TYPE_STACK_TRACE] = "stack_trace",
	[BPF_MAP_TYPE_CGROUP_ARRAY] = "cgroup_array",
	[BPF_MAP_TYPE_LRU_HASH] = "lru_hash",
	[BPF_MAP_TYPE_LRU_PERCPU_HASH] = "lru_percpu_hash",
	[BPF_MAP_TYPE_LPM_TRIE] = "lpm_trie",
	[BPF_MAP_TYPE_ARRAY_OF_MAPS] = "array_of_maps",
	[BPF_MAP_TYPE_HASH_OF_MAPS] = "hash_of_maps",
	[BPF_MAP_TYPE_DEVMAP] = "devmap",
	[BPF_MAP_TYPE_SOCKMAP] = "sockmap",
	[BPF_MAP_TYPE_CPUMAP] = "cpumap",
	[BPF_MAP_TYPE_XSKMAP] = "xskmap",
	[BPF_MAP_TYPE_SOCKHASH] = "sockhash",
	[BPF_MAP_TYPE_CGROUP_STORAGE] = "cgroup_storage",
	[BPF_MAP_TYPE_REUSEPORT_SOCKARRAY] = "reuseport_sockarray",
	[BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE] = "percpu_cgroup_storage",
	[BPF_MAP_TYPE_QUEUE] = "queue",
	[BPF_MAP_TYPE_STACK] = "stack",
	[BPF_MAP_TYPE_SK_STORAGE] = "sk_storage",
	[BPF_MAP_TYPE_DEVMAP_HASH] = "devmap_hash",
	[BPF_MAP_TYPE_STRUCT_OPS] = "struct_ops",
	[BPF_MAP_TYPE_RINGBUF] = "ringbuf",
	[BPF_MAP_TYPE_INODE_STORAGE] = "inode_storage",
	[BPF_MAP_TYPE_TASK_STORAGE] = "task_storage",
	[BPF_MAP_TYPE_BLOOM_FILTER] = "bloom_filter",
	[BPF_MAP_TYPE_USER_RINGBUF] = "user_ringbuf",
	[32] = "cgrp_storage",
	[33] = "arena",
	[34] = "insn_array",
};

const char *agent_map_type_name(uint32_t type)
{
	if (type < sizeof(map_type_names) / sizeof(map_type_names[0]) && map_type_names[type])
		return map_type_names[type];
	return "unknown";
}

bool agent_map_type_supported(uint32_t type)
{
	switch (type) {
	case BPF_MAP_TYPE_ARRAY:
	case BPF_MAP_TYPE_HASH:
	case BPF_MAP_TYPE_LRU_HASH:
	case BPF_MAP_TYPE_PERCPU_ARRAY:
	case BPF_MAP_TYPE_PERCPU_HASH:
	case BPF_MAP_TYPE_LRU_PERCPU_HASH:
	case BPF_MAP_TYPE_RINGBUF:
	case BPF_MAP_TYPE_PERF_EVENT_ARRAY:
	case BPF_MAP_TYPE_CGROUP_ARRAY:
		return true;
	default:
		return false;
	}
}

static bool is_array(const struct agent_map *m)
{
	return m->type == BPF_MAP_TYPE_ARRAY || m->type == BPF_MAP_TYPE_PERCPU_ARRAY;
}

static long sys_bpf(int cmd, union bpf_attr *attr)
{
	long r = syscall(__NR_bpf, cmd, attr, sizeof(*attr));

	return r < 0 ? -errno : r;
}

static long map_lookup(int fd, const void *key, void *value)
{
	union bpf_attr attr = {
		.map_fd = (uint32_t)fd,
		.key = (uintptr_t)key,
		.value = (uintptr_t)value,
	};

	return sys_bpf(BPF_MAP_LOOKUP_ELEM, &attr);
}

static long map_update(int fd, const void *key, const void *value, uint64_t flags)
{
	union bpf_attr attr = {
		.map_fd = (uint32_t)fd,
		.key = (uintptr_t)key,
		.value = (uintptr_t)value,
		.flags = flags,
	};

	return sys_bpf(BPF_MAP_UPDATE_ELEM, &attr);
}

static long map_delete(int fd, const void *key)
{
	union bpf_attr attr = {
		.map_fd = (uint32_t)fd,
		.key = (uintptr_t)key,
	};

	return sys_bpf(BPF_MAP_DELETE_ELEM, &attr);
}

#define fail(err, errsz, e, ...) (snprintf(err, errsz, __VA_ARGS__), -(e))

/*
 * A read-only array that cannot be mapped (libbpf's .rodata when it holds
 * only static variables, such as bpf_printk's formats): programs cannot
 * write it and the loader froze it, so a copy read once serves every run,
 * in place, as the mapping of a mmapable one would.
 */
static int snapshot(struct agent_map *m, char *err, size_t errsz)
{
	m->mem_len = ((size_t)m->value_stride * m->max_entries + 4095) & ~(size_t)4095;
	m->mem = mmap(NULL, m->mem_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m->mem == MAP_FAILED) {
		m->mem = NULL;
		return fail(err, errsz, errno, "map %u: out of memory", m->id);
	}
	for (uint32_t i = 0; i < m->max_entries; i++) {
		long r = map_lookup(m->fd, &i, m->mem + (size_t)i * m->value_stride);

		if (r < 0)
			return fail(err, errsz, -r, "map %u: cannot read element %u: %s", m->id, i,
				    strerror((int)-r));
	}
	mprotect(m->mem, m->mem_len, PROT_READ);
	return 0;
}

#define DELTAS_LEN (((size_t)BPFTIMED_DELTA_SLOTS * sizeof(struct bpftimed_delta_slot) + 4095) & ~(size_t)4095)
/* A claimed element whose key never comes (its agent died): given up after this many reads. */
#define CLAIM_SPIN 1000000

static int open_deltas(struct agent_map *m, int fd, char *err, size_t errsz)
{
	struct bpf_map_info info = { 0 };
	union bpf_attr attr = { 0 };
	void *p;

	if (m->type != BPF_MAP_TYPE_HASH && m->type != BPF_MAP_TYPE_PERCPU_HASH && !is_array(m))
		return fail(err, errsz, EINVAL, "map %u (%s) cannot have deltas", m->id,
			    agent_map_type_name(m->type));
	if (m->key_size > BPFTIMED_DELTA_KEY_MAX || m->value_size % 8 ||
	    m->value_size > 8 * BPFTIMED_DELTA_WORDS)
		return fail(err, errsz, EINVAL, "map %u: key %u, value %u bytes: no deltas", m->id,
			    m->key_size, m->value_size);
	attr.info.bpf_fd = (uint32_t)fd;
	attr.info.info_len = sizeof(info);
	attr.info.info = (uintptr_t)&info;
	if (sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &attr) < 0 || info.type != BPF_MAP_TYPE_ARRAY ||
	    info.value_size != sizeof(struct bpftimed_delta_slot) ||
	    info.max_entries != BPFTIMED_DELTA_SLOTS || !(info.map_flags & BPF_F_MMAPABLE))
		return fail(err, errsz, EINVAL, "map %u: fd %d is not a delta array", m->id, fd);
	p = mmap(NULL, DELTAS_LEN, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return fail(err, errsz, errno, "map %u: cannot map its deltas: %s", m->id,
			    strerror(errno));
	m->deltas = p;
	return 0;
}

void agent_map_drop_deltas(struct agent_map *m)
{
	if (m->deltas)
		munmap(m->deltas, DELTAS_LEN);
	m->deltas = NULL;
}

int agent_map_open(struct agent_map *m, const struct agent_map_spec *spec, char *err, size_t errsz)
{
	struct bpf_map_info info = { 0 };
	union bpf_attr attr = { 0 };
	int prot;

	*m = (struct agent_map){ .fd = -1, .lock_index = -1, .output_prog_fd = -1 };
	if (!agent_map_type_supported(spec->type))
		return fail(err, errsz, EOPNOTSUPP, "map %u: type %s (%u) is not supported",
			    spec->id, agent_map_type_name(spec->type), spec->type);
	m->fd = fcntl(spec->fd, F_DUPFD_CLOEXEC, 3);
	if (m->fd < 0)
		return fail(err, errsz, errno, "map %u: fd %d: %s", spec->id, spec->fd,
			    strerror(errno));
	attr.info.bpf_fd = (uint32_t)m->fd;
	attr.info.info_len = sizeof(info);
	attr.info.info = (uintptr_t)&info;
	if (sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &attr) < 0)
		return fail(err, errsz, errno, "map %u: fd %d is not a BPF map: %s", spec->id,
			    spec->fd, strerror(errno));
	if (info.type != spec->type || info.key_size != spec->key_size ||
	    info.value_size != spec->value_size || info.max_entries != spec->max_entries ||
	    info.map_flags != spec->flags || (spec->id && info.id != spec->id))
		return fail(err, errsz, EINVAL,
			    "map %u: fd %d is map %u (%s, key %u, value %u, max %u, flags 0x%x), "
			    "not as described (%s, key %u, value %u, max %u, flags 0x%x)",
			    spec->id, spec->fd, info.id, agent_map_type_name(info.type),
			    info.key_size, info.value_size, info.max_entries, info.map_flags,
			    agent_map_type_name(spec->type), spec->key_size, spec->value_size,
			    spec->max_entries, spec->flags);
	m->id = info.id;
	m->type = info.type;
	m->key_size = info.key_size;
	m->value_size = info.value_size;
	m->max_entries = info.max_entries;
	m->flags = info.map_flags;
	m->value_stride = (m->value_size + 7) & ~7u;
	m->percpu = m->type == BPF_MAP_TYPE_PERCPU_ARRAY || m->type == BPF_MAP_TYPE_PERCPU_HASH ||
		    m->type == BPF_MAP_TYPE_LRU_PERCPU_HASH;
	m->copy_size = m->percpu ? m->value_stride * agent_ncpus : m->value_size;

	switch (m->type) {
	case BPF_MAP_TYPE_ARRAY:
		if (!(m->flags & BPF_F_MMAPABLE) && (m->flags & BPF_F_RDONLY_PROG))
			return snapshot(m, err, errsz);
		if (!(m->flags & BPF_F_MMAPABLE)) {
			m->syscall = true;
			break;
		}
		m->mem_len = (size_t)m->value_stride * m->max_entries;
		m->mem_len = (m->mem_len + 4095) & ~(size_t)4095;
		/*
		 * Writable unless programs may not write it; a map the kernel will not
		 * map writable here (frozen, BPF_F_RDONLY) is refused rather than
		 * mapped read-only under a program that writes it.
		 */
		prot = (m->flags & BPF_F_RDONLY_PROG) ? PROT_READ : PROT_READ | PROT_WRITE;
		m->mem = mmap(NULL, m->mem_len, prot, MAP_SHARED, m->fd, 0);
		if (m->mem == MAP_FAILED) {
			m->mem = NULL;
			return fail(err, errsz, errno, "map %u: cannot mmap the mmapable array: %s",
				    m->id, strerror(errno));
		}
		break;
	case BPF_MAP_TYPE_RINGBUF:
	case BPF_MAP_TYPE_PERF_EVENT_ARRAY:
		if (spec->output_prog_fd > 0) {
			m->output_prog_fd = fcntl(spec->output_prog_fd, F_DUPFD_CLOEXEC, 3);
			if (m->output_prog_fd < 0)
				return fail(err, errsz, errno, "map %u: output program fd %d: %s",
					    m->id, spec->output_prog_fd, strerror(errno));
		}
		break;
	case BPF_MAP_TYPE_CGROUP_ARRAY:
		if (spec->output_prog_fd <= 0)
			return fail(err, errsz, EOPNOTSUPP,
				    "map %u (cgroup_array) comes without its cgroup-check program",
				    m->id);
		m->output_prog_fd = fcntl(spec->output_prog_fd, F_DUPFD_CLOEXEC, 3);
		if (m->output_prog_fd < 0)
			return fail(err, errsz, errno, "map %u: cgroup-check program fd %d: %s",
				    m->id, spec->output_prog_fd, strerror(errno));
		break;
	default:
		m->syscall = true;
		break;
	}
	if (spec->delta_fd > 0 && m->syscall) {
		int r = open_deltas(m, spec->delta_fd, err, errsz);

		if (r < 0)
			return r;
	}
	/* BPF_F_RDONLY and BPF_F_WRONLY live in the fd's mode, not in the map. */
	if (m->syscall && (fcntl(m->fd, F_GETFL) & O_ACCMODE) != O_RDWR)
		return fail(err, errsz, EOPNOTSUPP,
			    "map %u (%s): fd %d is %s to bpf(), and the agent reads and writes "
			    "the values through bpf()",
			    m->id, agent_map_type_name(m->type), spec->fd,
			    (fcntl(m->fd, F_GETFL) & O_ACCMODE) == O_RDONLY ? "read-only" :
									      "write-only");
	return 0;
}

int agent_map_open_lock(struct agent_map *m, int lock_fd, char *err, size_t errsz)
{
	if (lock_fd < 0)
		return fail(err, errsz, EINVAL,
			    "map %u (%s) is reached through bpf() and came without its write-back "
			    "lock",
			    m->id, agent_map_type_name(m->type));
	m->lock = shm_maplock__open_fd(lock_fd);
	if (!m->lock)
		return fail(err, errsz, errno, "map %u: fd %d is not its write-back lock: %s",
			    m->id, lock_fd, strerror(errno));
	if (shm_maplock__map_id(m->lock) != m->id)
		return fail(err, errsz, EINVAL, "map %u: fd %d is the write-back lock of map %u",
			    m->id, lock_fd, shm_maplock__map_id(m->lock));
	return 0;
}

void agent_map_close(struct agent_map *m)
{
	agent_map_drop_deltas(m);
	if (m->mem)
		munmap(m->mem, m->mem_len);
	shm_maplock__close(m->lock);
	if (m->output_prog_fd >= 0)
		close(m->output_prog_fd);
	if (m->fd >= 0)
		close(m->fd);
	*m = (struct agent_map){ .fd = -1, .lock_index = -1, .output_prog_fd = -1 };
}

bool agent_maps_contain(struct agent_prog *prog, uint64_t addr, uint64_t len)
{
	for (size_t i = 0; i < prog->map_cnt; i++) {
		const struct agent_map *m = &prog->maps[i];

		if (m->mem && addr >= (uintptr_t)m->mem && addr - (uintptr_t)m->mem <= m->mem_len &&
		    len <= m->mem_len - (addr - (uintptr_t)m->mem))
			return true;
	}
	return false;
}

/* Takes every write-back lock of the program, once per run, in map id order. */
static void run_lock(struct agent_run *run)
{
	struct agent_prog *prog = run->prog;

	if (run->locked)
		return;
	run->locked = true;
	for (size_t i = 0; i < prog->nlocks; i++) {
		if (shm_maplock__lock(prog->locks[i], LOCK_TIMEOUT_NS) >= 0)
			run->held |= 1ull << i;
		else
			__atomic_fetch_add(&prog->lock_failed, 1, __ATOMIC_RELAXED);
	}
}

static void run_unlock(struct agent_run *run)
{
	struct agent_prog *prog = run->prog;

	for (size_t i = prog->nlocks; i-- > 0;)
		if (run->held & (1ull << i))
			shm_maplock__unlock(prog->locks[i]);
	run->held = 0;
	run->locked = false;
}

static struct agent_entry *find_entry(struct agent_run *run, const struct agent_map *m,
				      const void *key)
{
	struct agent_slot *s = run->slot;

	if (!s)
		return NULL;
	for (uint32_t i = 0; i < s->nentries; i++) {
		struct agent_entry *e = &s->entries[i];

		if (e->map == m && e->kind == ENTRY_VALUE && !memcmp(e->key, key, m->key_size))
			return e;
	}
	return NULL;
}

/* The run's copy of the value at key, read from the kernel the first time. */
static struct agent_entry *fetch(struct agent_run *run, struct agent_map *m, const void *key)
{
	struct agent_entry *e = find_entry(run, m, key);
	struct agent_slot *s;
	uint8_t *k, *copy, *orig;
	size_t mark;

	if (e)
		return e;
	s = agent_run_slot(run);
	if (!s)
		return NULL;
	run_lock(run);
	mark = s->used;
	k = agent_run_alloc(run, m->key_size);
	copy = agent_run_alloc(run, m->copy_size);
	orig = agent_run_alloc(run, m->copy_size);
	if (!k || !copy || !orig || s->nentries == AGENT_MAX_ENTRIES) {
		__atomic_fetch_add(&run->prog->scratch_full, 1, __ATOMIC_RELAXED);
		s->used = mark;
		return NULL;
	}
	memcpy(k, key, m->key_size);
	if (map_lookup(m->fd, k, copy) < 0) {
		s->used = mark;
		return NULL;
	}
	memcpy(orig, copy, m->copy_size);
	e = agent_run_entry(run);
	*e = (struct agent_entry){
		.map = m,
		.key = k,
		.copy = copy,
		.orig = orig,
		.size = m->copy_size,
		.kind = ENTRY_VALUE,
	};
	return e;
}

/* ---- additive maps ---- */

static uint32_t key_hash(const uint8_t *k, uint32_t n)
{
	uint32_t h = 2166136261u;

	for (uint32_t i = 0; i < n; i++)
		h = (h ^ k[i]) * 16777619u;
	return h;
}

/* The key's element of the delta array, claimed if new; NULL when the table is full. */
static struct bpftimed_delta_slot *delta_slot(struct agent_map *m, const void *key)
{
	const uint32_t n = BPFTIMED_DELTA_SLOTS - 1;
	uint32_t h = key_hash(key, m->key_size);

	for (uint32_t i = 0; i < n; i++) {
		struct bpftimed_delta_slot *s = &m->deltas[1 + (h + i) % n];
		uint32_t state = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);

		if (state == BPFTIMED_DELTA_EMPTY &&
		    __atomic_compare_exchange_n(&s->state, &state, BPFTIMED_DELTA_CLAIMED, false,
						__ATOMIC_ACQUIRE, __ATOMIC_ACQUIRE)) {
			memcpy(s->key, key, m->key_size);
			__atomic_store_n(&s->state, BPFTIMED_DELTA_READY, __ATOMIC_RELEASE);
			return s;
		}
		for (int spin = 0; state == BPFTIMED_DELTA_CLAIMED && spin < CLAIM_SPIN; spin++)
			state = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
		if (state == BPFTIMED_DELTA_READY && !memcmp(s->key, key, m->key_size))
			return s;
	}
	return NULL;
}

/* Whether the key exists in the map: asked of the kernel once, then known. */
static bool delta_present(struct agent_run *run, struct agent_map *m,
			  struct bpftimed_delta_slot *s, const void *key)
{
	uint32_t p = __atomic_load_n(&s->presence, __ATOMIC_ACQUIRE), unknown = p;
	struct agent_slot *sl;
	size_t mark;
	void *buf;

	if (is_array(m))
		return true;
	if (p != BPFTIMED_DELTA_UNKNOWN)
		return p == BPFTIMED_DELTA_PRESENT;
	sl = agent_run_slot(run);
	if (!sl)
		return true;
	mark = sl->used;
	buf = agent_run_alloc(run, m->copy_size);
	p = buf && map_lookup(m->fd, key, buf) == -ENOENT ? BPFTIMED_DELTA_ABSENT
							    : BPFTIMED_DELTA_PRESENT;
	sl->used = mark;
	/* Another thread may have learnt it first, or created the key since. */
	if (!__atomic_compare_exchange_n(&s->presence, &unknown, p, false, __ATOMIC_ACQ_REL,
					 __ATOMIC_ACQUIRE))
		p = unknown;
	return p == BPFTIMED_DELTA_PRESENT;
}

static void delta_add(struct agent_map *m, struct bpftimed_delta_slot *s, const uint8_t *value)
{
	bool any = false;

	for (uint32_t w = 0; w < m->value_size / 8; w++) {
		uint64_t v;

		memcpy(&v, value + 8 * w, 8);
		if (v) {
			__atomic_fetch_add(&s->delta[w], v, __ATOMIC_RELAXED);
			any = true;
		}
	}
	if (any)
		__atomic_store_n(&m->deltas[0].state, 1, __ATOMIC_RELEASE);
}

/* A zeroed value of the run for the key's element (the same one for the same key). */
static void *delta_lookup(struct agent_run *run, struct agent_map *m, const void *key,
			  struct bpftimed_delta_slot *ds)
{
	struct agent_slot *s;
	struct agent_entry *e;
	uint8_t *k, *v;
	size_t mark;

	s = agent_run_slot(run);
	if (!s)
		return NULL;
	for (uint32_t i = 0; i < s->nentries; i++) {
		e = &s->entries[i];
		if (e->map == m && e->kind == ENTRY_DELTA && e->delta == ds)
			return e->copy;
	}
	if (!delta_present(run, m, ds, key))
		return NULL;
	mark = s->used;
	k = agent_run_alloc(run, m->key_size);
	v = agent_run_alloc(run, m->value_size);
	if (!k || !v || s->nentries == AGENT_MAX_ENTRIES) {
		__atomic_fetch_add(&run->prog->scratch_full, 1, __ATOMIC_RELAXED);
		s->used = mark;
		return NULL;
	}
	memcpy(k, key, m->key_size);
	memset(v, 0, m->value_size);
	e = agent_run_entry(run);
	*e = (struct agent_entry){ .map = m, .key = k, .copy = v, .size = m->value_size,
				   .kind = ENTRY_DELTA, .delta = ds };
	return v;
}

/*
 * An update of an element that exists adds its value (the program computed
 * it from a zero it looked up); one that creates the element does so in
 * the kernel, as the kernel would (one system call per new key). When
 * another thread or CPU created it meanwhile, the value is added to what
 * is there rather than written over it: as if the two had run one after
 * the other.
 */
static long delta_update(struct agent_run *run, struct agent_map *m,
			 struct bpftimed_delta_slot *ds, const void *key, const void *value,
			 uint64_t flags)
{
	struct agent_slot *sl;
	uint8_t *buf;
	size_t mark;
	long r;

	if (delta_present(run, m, ds, key)) {
		if (flags & BPF_NOEXIST)
			return -EEXIST;
		delta_add(m, ds, value);
		return 0;
	}
	if (flags & BPF_EXIST)
		return -ENOENT;
	sl = agent_run_slot(run);
	if (!sl)
		return -ENOMEM;
	mark = sl->used;
	buf = agent_run_alloc(run, m->copy_size);
	if (!buf)
		return -ENOMEM;
	memset(buf, 0, m->copy_size);
	memcpy(buf + (m->percpu ? (size_t)agent_run_cpu(run) * m->value_stride : 0), value,
	       m->value_size);
	r = map_update(m->fd, key, buf, BPF_NOEXIST);
	sl->used = mark;
	if (r == 0 || r == -EEXIST)
		__atomic_store_n(&ds->presence, BPFTIMED_DELTA_PRESENT, __ATOMIC_RELEASE);
	if (r == -EEXIST && !(flags & BPF_NOEXIST)) {
		delta_add(m, ds, value);
		return 0;
	}
	return r;
}

void agent_map_flush_deltas(struct agent_map *m)
{
	uint8_t key[BPFTIMED_DELTA_KEY_MAX], *buf;
	bool locked;

	if (!m->deltas || !__atomic_exchange_n(&m->deltas[0].state, 0, __ATOMIC_ACQ_REL))
		return;
	buf = calloc(1, m->copy_size);
	if (!buf)
		return;
	locked = m->lock && shm_maplock__lock(m->lock, LOCK_TIMEOUT_NS) >= 0;
	for (uint32_t i = 1; i < BPFTIMED_DELTA_SLOTS; i++) {
		struct bpftimed_delta_slot *s = &m->deltas[i];
		bool any = false;

		if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != BPFTIMED_DELTA_READY)
			continue;
		memcpy(key, s->key, m->key_size);
		if (map_lookup(m->fd, key, buf) < 0)
			memset(buf, 0, m->copy_size);
		/* per-CPU maps: into the first CPU's value; tools read the sum */
		for (uint32_t w = 0; w < m->value_size / 8; w++) {
			uint64_t d = __atomic_exchange_n(&s->delta[w], 0, __ATOMIC_ACQ_REL), v;

			memcpy(&v, buf + 8 * w, 8);
			v += d;
			memcpy(buf + 8 * w, &v, 8);
			any |= d != 0;
		}
		if (any)
			map_update(m->fd, key, buf, BPF_ANY);
	}
	if (locked)
		shm_maplock__unlock(m->lock);
	free(buf);
}

void *agent_map_lookup(struct agent_run *run, struct agent_map *m, const void *key)
{
	struct agent_entry *e;

	if (m->mem) {
		uint32_t idx = *(const uint32_t *)key;

		return idx < m->max_entries ? m->mem + (size_t)idx * m->value_stride : NULL;
	}
	if (!m->syscall)
		return NULL;
	if (is_array(m) && *(const uint32_t *)key >= m->max_entries)
		return NULL;
	if (m->deltas) {
		struct bpftimed_delta_slot *ds = delta_slot(m, key);

		if (ds)
			return delta_lookup(run, m, key, ds);
	}
	e = fetch(run, m, key);
	if (!e)
		return NULL;
	return m->percpu ? e->copy + (size_t)agent_run_cpu(run) * m->value_stride : e->copy;
}

void *agent_map_lookup_percpu(struct agent_run *run, struct agent_map *m, const void *key,
			      uint32_t cpu)
{
	struct agent_entry *e;

	if (!m->percpu || cpu >= agent_ncpus)
		return NULL;
	if (is_array(m) && *(const uint32_t *)key >= m->max_entries)
		return NULL;
	e = fetch(run, m, key);
	return e ? e->copy + (size_t)cpu * m->value_stride : NULL;
}

/* A program's update of a per-CPU map changes the slot of its CPU only. */
static long update_percpu(struct agent_run *run, struct agent_map *m, const void *key,
			  const void *value, uint64_t flags)
{
	struct agent_entry *e;
	struct agent_slot *s;
	uint8_t *buf;
	size_t mark = 0;
	bool exists;
	long r;

	if (flags > BPF_EXIST)
		return -EINVAL;
	s = agent_run_slot(run);
	if (!s)
		return -ENOMEM;
	run_lock(run);
	e = find_entry(run, m, key);
	if (e) {
		buf = e->copy;
		exists = true;
	} else {
		mark = s->used;
		buf = agent_run_alloc(run, m->copy_size);
		if (!buf) {
			__atomic_fetch_add(&run->prog->scratch_full, 1, __ATOMIC_RELAXED);
			return -ENOMEM;
		}
		r = map_lookup(m->fd, key, buf);
		if (r < 0 && r != -ENOENT) {
			s->used = mark;
			return r;
		}
		exists = r == 0;
		if (!exists)
			memset(buf, 0, m->copy_size);
	}
	if (exists && (flags & BPF_NOEXIST))
		r = -EEXIST;
	else if (!exists && (flags & BPF_EXIST))
		r = -ENOENT;
	else {
		memcpy(buf + (size_t)agent_run_cpu(run) * m->value_stride, value, m->value_size);
		r = map_update(m->fd, key, buf, flags);
	}
	if (e && r == 0)
		memcpy(e->orig, e->copy, m->copy_size);
	if (!e)
		s->used = mark;
	return r;
}

long agent_map_update(struct agent_run *run, struct agent_map *m, const void *key,
		      const void *value, uint64_t flags)
{
	struct agent_entry *e;
	long r;

	/*
	 * array_map_update_elem() checks in this order; the update syscall
	 * would refuse BPF_F_LOCK first. No value here holds a spin lock.
	 */
	if (is_array(m)) {
		if ((flags & ~(uint64_t)BPF_F_LOCK) > BPF_EXIST)
			return -EINVAL;
		if (*(const uint32_t *)key >= m->max_entries)
			return -E2BIG;
		if (flags & BPF_NOEXIST)
			return -EEXIST;
		if (flags & BPF_F_LOCK)
			return -EINVAL;
	}
	if (m->mem) {
		uint32_t idx = *(const uint32_t *)key;

		/* the verifier lets no program write a read-only map */
		if (m->flags & BPF_F_RDONLY_PROG)
			return -EPERM;
		memcpy(m->mem + (size_t)idx * m->value_stride, value, m->value_size);
		return 0;
	}
	if (!m->syscall)
		return -EINVAL;
	if (m->deltas) {
		struct bpftimed_delta_slot *ds = delta_slot(m, key);

		if (ds) {
			if (flags > BPF_EXIST)
				return -EINVAL;
			return delta_update(run, m, ds, key, value, flags);
		}
	}
	if (m->percpu)
		return update_percpu(run, m, key, value, flags);
	run_lock(run);
	r = map_update(m->fd, key, value, flags);
	e = r == 0 ? find_entry(run, m, key) : NULL;
	if (e) {
		/* the program's pointer sees the new value, as in an array */
		memcpy(e->copy, value, m->value_size);
		memcpy(e->orig, value, m->value_size);
	}
	return r;
}

long agent_map_delete(struct agent_run *run, struct agent_map *m, const void *key)
{
	struct agent_slot *s = run->slot;
	long r;

	if (!m->syscall || is_array(m))
		return -EINVAL;
	run_lock(run);
	r = map_delete(m->fd, key);
	if (r == 0 && s)
		for (uint32_t i = 0; i < s->nentries; i++) {
			struct agent_entry *e = &s->entries[i];

			if (e->map == m && e->kind == ENTRY_VALUE &&
			    !memcmp(e->key, key, m->key_size))
				e->kind = ENTRY_GONE;
		}
	return r;
}

void agent_run_writeback(struct agent_run *run)
{
	struct agent_slot *s = run->slot;

	if (s)
		for (uint32_t i = 0; i < s->nentries; i++) {
			struct agent_entry *e = &s->entries[i];
			uint64_t flags;
			long r;

			if (e->kind == ENTRY_DELTA)
				delta_add(e->map, e->delta, e->copy);
			if (e->kind != ENTRY_VALUE || !memcmp(e->copy, e->orig, e->size))
				continue;
			/* An element deleted meanwhile stays deleted, as a kernel write would vanish. */
			flags = is_array(e->map) ? BPF_ANY : BPF_EXIST;
			r = map_update(e->map->fd, e->key, e->copy, flags);
			if (r < 0 && r != -ENOENT)
				__atomic_fetch_add(&run->prog->writeback_failed, 1,
						   __ATOMIC_RELAXED);
		}
	if (run->locked)
		run_unlock(run);
}

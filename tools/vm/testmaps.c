// SPDX-License-Identifier: MIT
/* Userspace ARRAY and HASH maps for bpftime-vm data files (see testmaps.h). */
#include <errno.h>
#include <linux/bpf.h>
#include <stdlib.h>
#include <string.h>

#include "testmaps.h"

struct testmap {
	uint32_t type, key_size, value_size, max_entries;
	uint32_t count;
	/* ARRAY: values only. HASH: per slot, a used byte, the key, the value. */
	uint8_t *data;
};

struct testmaps {
	struct testmap maps[TESTDATA_MAX_MAPS];
	size_t cnt;
};

static size_t slot_size(const struct testmap *m)
{
	return m->type == BPF_MAP_TYPE_ARRAY ? m->value_size : 1 + m->key_size + m->value_size;
}

struct testmaps *testmaps__new(const struct test_data *td)
{
	struct testmaps *maps = calloc(1, sizeof(*maps));

	if (!maps)
		return NULL;
	for (size_t i = 0; i < td->map_cnt; i++) {
		const struct testdata_map *d = &td->maps[i];
		struct testmap *m = &maps->maps[i];

		*m = (struct testmap){ .type = d->type,
				       .key_size = d->key_size,
				       .value_size = d->value_size,
				       .max_entries = d->max_entries };
		if ((m->type != BPF_MAP_TYPE_ARRAY && m->type != BPF_MAP_TYPE_HASH) ||
		    !m->key_size || !m->value_size || !m->max_entries || m->key_size > 512 ||
		    m->value_size > 65536 || m->max_entries > 65536 ||
		    (m->type == BPF_MAP_TYPE_ARRAY && m->key_size != 4)) {
			testmaps__free(maps);
			errno = EINVAL;
			return NULL;
		}
		m->data = calloc(m->max_entries, slot_size(m));
		if (!m->data) {
			testmaps__free(maps);
			errno = ENOMEM;
			return NULL;
		}
		maps->cnt++;
	}
	return maps;
}

void testmaps__free(struct testmaps *maps)
{
	if (!maps)
		return;
	for (size_t i = 0; i < maps->cnt; i++)
		free(maps->maps[i].data);
	free(maps);
}

/* The slot holding key, or with create the first free one; NULL if none. */
static uint8_t *hash_slot(struct testmap *m, const void *key, bool create)
{
	size_t sz = slot_size(m);
	uint8_t *free_slot = NULL;

	for (uint32_t i = 0; i < m->max_entries; i++) {
		uint8_t *s = m->data + i * sz;

		if (s[0] && !memcmp(s + 1, key, m->key_size))
			return s;
		if (!s[0] && !free_slot)
			free_slot = s;
	}
	return create ? free_slot : NULL;
}

static uint64_t map_lookup(uint64_t map, uint64_t key, uint64_t a3, uint64_t a4, uint64_t a5)
{
	struct testmap *m = (struct testmap *)(uintptr_t)map;
	uint32_t idx;
	uint8_t *s;

	if (m->type == BPF_MAP_TYPE_ARRAY) {
		memcpy(&idx, (void *)(uintptr_t)key, sizeof(idx));
		return idx < m->max_entries ? (uintptr_t)(m->data + (size_t)idx * m->value_size) : 0;
	}
	s = hash_slot(m, (void *)(uintptr_t)key, false);
	return s ? (uintptr_t)(s + 1 + m->key_size) : 0;
}

static uint64_t map_update(uint64_t map, uint64_t key, uint64_t value, uint64_t flags,
			   uint64_t a5)
{
	struct testmap *m = (struct testmap *)(uintptr_t)map;
	uint32_t idx;
	uint8_t *s;

	if (flags > BPF_EXIST)
		return (uint64_t)-EINVAL;
	if (m->type == BPF_MAP_TYPE_ARRAY) {
		memcpy(&idx, (void *)(uintptr_t)key, sizeof(idx));
		if (idx >= m->max_entries)
			return (uint64_t)-E2BIG;
		if (flags == BPF_NOEXIST)
			return (uint64_t)-EEXIST;
		memcpy(m->data + (size_t)idx * m->value_size, (void *)(uintptr_t)value,
		       m->value_size);
		return 0;
	}
	s = hash_slot(m, (void *)(uintptr_t)key, false);
	if (s && flags == BPF_NOEXIST)
		return (uint64_t)-EEXIST;
	if (!s && flags == BPF_EXIST)
		return (uint64_t)-ENOENT;
	if (!s) {
		s = hash_slot(m, (void *)(uintptr_t)key, true);
		if (!s)
			return (uint64_t)-E2BIG;
		s[0] = 1;
		memcpy(s + 1, (void *)(uintptr_t)key, m->key_size);
		m->count++;
	}
	memcpy(s + 1 + m->key_size, (void *)(uintptr_t)value, m->value_size);
	return 0;
}

static uint64_t map_delete(uint64_t map, uint64_t key, uint64_t a3, uint64_t a4, uint64_t a5)
{
	struct testmap *m = (struct testmap *)(uintptr_t)map;
	uint8_t *s;

	if (m->type == BPF_MAP_TYPE_ARRAY)
		return (uint64_t)-EINVAL;
	s = hash_slot(m, (void *)(uintptr_t)key, false);
	if (!s)
		return (uint64_t)-ENOENT;
	memset(s, 0, slot_size(m));
	m->count--;
	return 0;
}

static int resolve_map(void *user, unsigned int src, int32_t imm, int32_t next_imm,
		       uint64_t *value)
{
	struct testmaps *maps = user;

	if (src != EBPF_PSEUDO_MAP_FD || imm < 0 || (size_t)imm >= maps->cnt || next_imm)
		return -EBADF;
	*value = (uintptr_t)&maps->maps[imm];
	return 0;
}

/* Map values are the only memory besides stack and context a program reaches. */
static bool map_memory(void *user, uint64_t addr, uint64_t len, bool write)
{
	struct testmaps *maps = user;

	for (size_t i = 0; i < maps->cnt; i++) {
		const struct testmap *m = &maps->maps[i];
		uint64_t lo = (uintptr_t)m->data;
		uint64_t hi = lo + (uint64_t)m->max_entries * slot_size(m);

		if (addr >= lo && addr <= hi && len <= hi - addr)
			return true;
	}
	return false;
}

int testmaps__attach(struct testmaps *maps, struct vm *vm)
{
	int r;

	r = vm__register_helper(vm, BPF_FUNC_map_lookup_elem, "map_lookup_elem", map_lookup);
	if (r == 0)
		r = vm__register_helper(vm, BPF_FUNC_map_update_elem, "map_update_elem",
					map_update);
	if (r == 0)
		r = vm__register_helper(vm, BPF_FUNC_map_delete_elem, "map_delete_elem",
					map_delete);
	if (r == 0)
		r = vm__set_lddw_resolver(vm, resolve_map, maps);
	if (r == 0)
		r = vm__set_mem_check(vm, map_memory, maps);
	return r;
}

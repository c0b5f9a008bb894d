// SPDX-License-Identifier: MIT
/* File offsets of this executable's addresses (see self-offset.h). */
#include <link.h>

#include "self-offset.h"

static int find(struct dl_phdr_info *info, size_t size, void *data)
{
	uint64_t *addr = data;

	if (info->dlpi_name && info->dlpi_name[0])
		return 0;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uint64_t va = *addr - info->dlpi_addr;

		if (ph->p_type == PT_LOAD && va >= ph->p_vaddr && va < ph->p_vaddr + ph->p_memsz) {
			*addr = va - ph->p_vaddr + ph->p_offset;
			return 1;
		}
	}
	return 0;
}

uint64_t self_file_offset(const void *addr)
{
	uint64_t off = (uint64_t)addr;

	return dl_iterate_phdr(find, &off) == 1 ? off : 0;
}

// SPDX-License-Identifier: MIT
/* Kernel helper names for the assembler: the VM library's table (helper-names.h). */
#include "asm.h"
#include "helper-names.h"

int asm__helper_id(const char *name)
{
	return ebpf_helper_id(name);
}

const char *asm__helper_name(int id)
{
	return ebpf_helper_name(id);
}

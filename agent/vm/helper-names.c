// SPDX-License-Identifier: MIT
/* Kernel helper names, taken from the UAPI's own list so they never drift. */
#include <linux/bpf.h>
#include <string.h>

#include "helper-names.h"

#define HELPER_NAME(name) [BPF_FUNC_##name] = #name
static const char *const helper_names[] = { __BPF_FUNC_MAPPER(HELPER_NAME) };
#undef HELPER_NAME

#define NR_HELPERS ((int)(sizeof(helper_names) / sizeof(helper_names[0])))

int ebpf_helper_id(const char *name)
{
	if (!strncmp(name, "bpf_", 4))
		name += 4;
	for (int id = 1; id < NR_HELPERS; id++)
		if (helper_names[id] && !strcmp(helper_names[id], name))
			return id;
	return -1;
}

const char *ebpf_helper_name(int id)
{
	return id > 0 && id < NR_HELPERS ? helper_names[id] : NULL;
}

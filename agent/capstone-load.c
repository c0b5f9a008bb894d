// SPDX-License-Identifier: MIT
/* Loading capstone on first use (see capstone-load.h). */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

#include "capstone-load.h"

static struct capstone cap;
static char load_error[256];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void *symbol(void *lib, const char *name)
{
	void *p = dlsym(lib, name);

	if (!p && !load_error[0])
		snprintf(load_error, sizeof(load_error), "%s has no %s", CAPSTONE_SONAME, name);
	return p;
}

static void load(void)
{
	void *lib = dlopen(CAPSTONE_SONAME, RTLD_NOW | RTLD_LOCAL);

	if (!lib) {
		snprintf(load_error, sizeof(load_error), "cannot load %s: %s", CAPSTONE_SONAME,
			 dlerror());
		return;
	}
	cap.open = symbol(lib, "cs_open");
	cap.option = symbol(lib, "cs_option");
	cap.malloc = symbol(lib, "cs_malloc");
	cap.free = symbol(lib, "cs_free");
	cap.disasm_iter = symbol(lib, "cs_disasm_iter");
	cap.insn_group = symbol(lib, "cs_insn_group");
	cap.close = symbol(lib, "cs_close");
}

const struct capstone *capstone_get(char *err, size_t size)
{
	pthread_once(&once, load);
	if (load_error[0]) {
		snprintf(err, size, "%s", load_error);
		return NULL;
	}
	return &cap;
}

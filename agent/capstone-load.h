/* SPDX-License-Identifier: MIT */
/*
 * capstone, loaded with dlopen() when the first hook is planned rather than
 * linked: its dlopen costs 7-8 ms here, and the agent's own dlopen runs
 * while the daemon holds a thread of the target stopped.
 *
 * Contract: capstone_get() loads the library once (thread-safe) and returns
 * its functions, or NULL with the reason in err; the library stays loaded.
 */
#ifndef BPFTIME_AGENT_CAPSTONE_LOAD_H
#define BPFTIME_AGENT_CAPSTONE_LOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <capstone/capstone.h>

struct capstone {
	cs_err (*open)(cs_arch arch, cs_mode mode, csh *handle);
	cs_err (*option)(csh handle, cs_opt_type type, size_t value);
	cs_insn *(*malloc)(csh handle);
	void (*free)(cs_insn *insn, size_t count);
	bool (*disasm_iter)(csh handle, const uint8_t **code, size_t *size, uint64_t *address,
			    cs_insn *insn);
	bool (*insn_group)(csh handle, const cs_insn *insn, unsigned int group_id);
	cs_err (*close)(csh *handle);
};

const struct capstone *capstone_get(char *err, size_t size);

#endif

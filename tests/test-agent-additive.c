// SPDX-License-Identifier: MIT
/*
 * The additivity check (agent/additive.h) on programs as clang builds them
 * and the kernel verified them (tests/agent/progs/additive.bpf.c): which
 * maps each program only adds to, by name.
 */
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "additive.h"
#include "agent-test.h"

#define MAX_MAPS 8

/* The names of the maps of program prog that additive__maps() calls additive, space-separated. */
static void additive_names(struct at_obj *o, const char *prog, char *out, size_t size)
{
	struct bpf_program *p = bpf_object__find_program_by_name(o->obj, prog);
	const struct bpf_insn *insns;
	uint32_t value_sizes[MAX_MAPS], key_sizes[MAX_MAPS];
	char names[MAX_MAPS][BPF_OBJ_NAME_LEN];
	int fds[MAX_MAPS];
	size_t n = 0, cnt;
	uint64_t mask;

	cr_assert_not_null(p, "no program %s", prog);
	insns = bpf_program__insns(p);
	cnt = bpf_program__insn_cnt(p);
	for (size_t i = 0; i + 1 < cnt; i++) {
		struct bpf_map_info info = { 0 };
		uint32_t len = sizeof(info);
		bool seen = false;

		if (insns[i].code != (BPF_LD | BPF_IMM | BPF_DW) || insns[i].src_reg != BPF_PSEUDO_MAP_FD)
			continue;
		for (size_t k = 0; k < n; k++)
			seen |= fds[k] == insns[i].imm;
		if (seen)
			continue;
		cr_assert_lt(n, MAX_MAPS);
		cr_assert_eq(bpf_obj_get_info_by_fd(insns[i].imm, &info, &len), 0);
		fds[n] = insns[i].imm;
		value_sizes[n] = info.value_size;
		key_sizes[n] = info.key_size;
		snprintf(names[n], sizeof(names[n]), "%s", info.name);
		n++;
	}
	mask = additive__maps((const struct ebpf_insn *)insns, cnt, fds, value_sizes, key_sizes, n);
	out[0] = 0;
	for (size_t k = 0; k < n; k++)
		if (mask & (1ull << k))
			snprintf(out + strlen(out), size - strlen(out), "%s%s", out[0] ? " " : "",
				 names[k]);
}

static void expect_additive(struct at_obj *o, const char *prog, const char *want)
{
	char got[256];

	additive_names(o, prog, got, sizeof(got));
	cr_expect_str_eq(got, want, "%s: additive maps \"%s\", expected \"%s\"", prog, got, want);
}

Test(agent_additive, tools_aggregations, .timeout = 30)
{
	struct at_obj *o = at_obj_load("additive");

	expect_additive(o, "count", "counts");
	expect_additive(o, "sum", "sums");
	expect_additive(o, "log2_hist", "hist");
	expect_additive(o, "increment", "sums");
	expect_additive(o, "average", "avgs");
	expect_additive(o, "count_and_max", "counts");
	at_obj_free(o);
}

Test(agent_additive, not_additive, .timeout = 30)
{
	struct at_obj *o = at_obj_load("additive");

	expect_additive(o, "assign", "");
	expect_additive(o, "delete", "");
	expect_additive(o, "count_and_print", "");
	expect_additive(o, "capped", "");
	expect_additive(o, "returns_value", "");
	expect_additive(o, "crossed", "");
	expect_additive(o, "helper_writes", "");
	at_obj_free(o);
}

int main(int argc, char *argv[])
{
	return at_main(argc, argv);
}

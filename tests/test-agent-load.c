// SPDX-License-Identifier: MIT
/*
 * What the agent refuses at load time, with a message that names it: an
 * unsupported helper, an unsupported map type, a helper whose output program
 * is missing, a map that is not what the spec says, a map the spec lacks.
 * Nothing of this can fail later, at run time.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <linux/bpf.h>

#include "agent-test.h"

static void expect_refused(const char *prog, unsigned int flags, int err, const char *names)
{
	struct at_obj *o = at_obj_load("refused");
	char msg[AGENT_ERRMSG_SIZE];
	struct agent_prog *p = NULL;
	int r = at_prog_try_load(o, prog, flags, &p, msg);

	cr_expect_eq(r, -err, "%s: %d (%s)", prog, r, msg);
	cr_expect_null(p);
	cr_expect(strstr(msg, names), "%s: message \"%s\" does not name \"%s\"", prog, msg, names);
	at_obj_free(o);
}

Test(agent_load, unsupported_helper_named, .timeout = 30)
{
	expect_refused("task_helper", 0, EOPNOTSUPP, "helper bpf_get_current_task (35)");
}

Test(agent_load, unsupported_map_type_named, .timeout = 30)
{
	expect_refused("stackid", 0, EOPNOTSUPP, "type stack_trace");
	expect_refused("tail", 0, EOPNOTSUPP, "type prog_array");
}

Test(agent_load, trace_printk_needs_its_program, .timeout = 30)
{
	expect_refused("printk_no_prog", AT_NO_TRACE_PROG, EOPNOTSUPP,
		       "bpf_trace_printk needs the trace_printk helper program");
}

static struct agent_prog_spec spec_of(struct at_obj *o, const char *name)
{
	struct bpf_program *prog = bpf_object__find_program_by_name(o->obj, name);

	cr_assert_not_null(prog);
	return (struct agent_prog_spec){
		.insns = (const struct ebpf_insn *)bpf_program__insns(prog),
		.insn_cnt = bpf_program__insn_cnt(prog),
		.ringbuf_output_prog_fd = -1,
		.perf_output_prog_fd = -1,
		.trace_printk_prog_fd = -1,
		.jit = at_jit(),
	};
}

Test(agent_load, map_spec_must_match_the_fd, .timeout = 30)
{
	struct at_obj *o = at_obj_load("counters");
	struct agent_prog_spec spec = spec_of(o, "count_arr");
	int arr = at_map_fd(o, "arr"), hash = at_map_fd(o, "hash");
	char msg[AGENT_ERRMSG_SIZE];
	struct agent_prog *p = NULL;
	struct agent_map_spec maps[1] = { {
		.fd = hash, /* described as arr, but it is the hash */
		.type = BPF_MAP_TYPE_ARRAY,
		.key_size = 4,
		.value_size = 8,
		.max_entries = 16,
	} };
	int fds[1] = { arr };

	spec.maps = maps;
	spec.tool_map_fds = fds;
	spec.map_cnt = 1;
	cr_expect_eq(agent_prog__load(&spec, &p, msg), -EINVAL);
	cr_expect(strstr(msg, "not as described"), "%s", msg);

	/* The program names .bss and .rodata too: a spec without them is refused. */
	maps[0].fd = arr;
	cr_expect_eq(agent_prog__load(&spec, &p, msg), -ENOENT);
	cr_expect(strstr(msg, "is not among the program's maps"), "%s", msg);
	cr_expect_null(p);
	at_obj_free(o);
}

Test(agent_load, map_bpf_cannot_write_back, .timeout = 30)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_RDONLY);
	int fd = bpf_map_create(BPF_MAP_TYPE_HASH, "ro", 4, 8, 16, &opts);
	const struct ebpf_insn insns[] = {
		{ .code = 0x18, .dst = 1, .src = 1, .imm = fd }, /* lddw r1, map_fd */
		{ 0 },
		{ .code = 0xb7 }, /* mov r0, 0 */
		{ .code = 0x95 }, /* exit */
	};
	struct agent_map_spec map = {
		.fd = fd,
		.type = BPF_MAP_TYPE_HASH,
		.key_size = 4,
		.value_size = 8,
		.max_entries = 16,
		.lock_fd = -1,
	};
	struct agent_prog_spec spec = {
		.insns = insns,
		.insn_cnt = 4,
		.maps = &map,
		.tool_map_fds = &fd,
		.map_cnt = 1,
		.ringbuf_output_prog_fd = -1,
		.perf_output_prog_fd = -1,
		.trace_printk_prog_fd = -1,
		.jit = at_jit(),
	};
	char msg[AGENT_ERRMSG_SIZE];
	struct agent_prog *p = NULL;

	cr_assert_geq(fd, 0);
	cr_expect_eq(agent_prog__load(&spec, &p, msg), -EOPNOTSUPP);
	cr_expect(strstr(msg, "read-only to bpf()"), "%s", msg);
	/* The same map without the flag loads: the program itself is fine. */
	close(fd);
	fd = bpf_map_create(BPF_MAP_TYPE_HASH, "rw", 4, 8, 16, NULL);
	cr_assert_geq(fd, 0);
	((struct ebpf_insn *)insns)[0].imm = fd;
	map.fd = fd;
	{
		struct bpf_map_info info = { 0 };
		__u32 len = sizeof(info);

		cr_assert_eq(bpf_obj_get_info_by_fd(fd, &info, &len), 0);
		map.id = info.id;
		/* Without its write-back lock a map reached through bpf() is refused. */
		cr_expect_eq(agent_prog__load(&spec, &p, msg), -EINVAL);
		cr_expect(strstr(msg, "came without its write-back lock"), "%s", msg);
		map.lock_fd = at_map_lock(info.id);
		cr_expect_eq(agent_prog__load(&spec, &p, msg), 0, "%s", msg);
		agent_prog__free(p);
	}
	close(fd);
}

Test(agent_load, empty_program, .timeout = 30)
{
	struct agent_prog_spec spec = { .trace_printk_prog_fd = -1 };
	char msg[AGENT_ERRMSG_SIZE];
	struct agent_prog *p = NULL;

	cr_expect_eq(agent_prog__load(&spec, &p, msg), -EINVAL);
	cr_expect_str_eq(msg, "the program is empty");
}

int main(int argc, char *argv[])
{
	return at_main(argc, argv);
}

/* SPDX-License-Identifier: MIT */
/*
 * A tool with many uprobes, for the daemon's end-to-end tests:
 *
 *   probe-many PATH ADD_OFFSET MUL_OFFSET [COUNT]
 *
 * loads COUNT (default 200) small kprobe-type programs and attaches each as
 * a uprobe on PATH the way the stock tools do (perf_event_open on the uprobe
 * PMU). Program i varies on purpose so a model that mixes them up shows it:
 *
 *   function   i % 2       tgt_add (ADD_OFFSET) or tgt_mul (MUL_OFFSET)
 *   kind       i / 2 % 2   uprobe or uretprobe
 *   attach     i / 4 % 2   PERF_EVENT_IOC_SET_BPF, or a BPF_PERF_EVENT link
 *   map        i % 3       counts map "pm_a" or "pm_b" (i % 3 == 2: both)
 *   length     i % 8       extra instructions
 *
 * It prints one line per program (what the test expects the daemon to list),
 * then "ready COUNT", and holds everything until SIGINT or SIGTERM.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/perf_event.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <bpf/bpf.h>

#define MAX_INSNS 64

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = 1;
}

static int read_sysfs(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "re");
	int ok;

	if (!f)
		return -errno;
	ok = fgets(buf, (int)size, f) != NULL;
	fclose(f);
	return ok ? 0 : -EIO;
}

static struct bpf_insn insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm)
{
	return (struct bpf_insn){ .code = code, .dst_reg = dst, .src_reg = src, .off = off,
				  .imm = imm };
}

/* *(u64 *)map[0] += 1, through a lookup of key 0. */
static int emit_count(struct bpf_insn *p, int map_fd)
{
	int n = 0;

	p[n++] = insn(BPF_ST | BPF_MEM | BPF_W, BPF_REG_10, 0, -4, 0);
	p[n++] = insn(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_2, BPF_REG_10, 0, 0);
	p[n++] = insn(BPF_ALU64 | BPF_ADD | BPF_K, BPF_REG_2, 0, 0, -4);
	p[n++] = insn(BPF_LD | BPF_IMM | BPF_DW, BPF_REG_1, BPF_PSEUDO_MAP_FD, 0, map_fd);
	p[n++] = insn(0, 0, 0, 0, 0);
	p[n++] = insn(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_map_lookup_elem);
	p[n++] = insn(BPF_JMP | BPF_JEQ | BPF_K, BPF_REG_0, 0, 2, 0);
	p[n++] = insn(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_1, 0, 0, 1);
	p[n++] = insn(BPF_STX | BPF_ATOMIC | BPF_DW, BPF_REG_0, BPF_REG_1, 0, BPF_ADD);
	return n;
}

static int load_prog(int i, int map_a, int map_b, int *insn_cnt)
{
	struct bpf_insn prog[MAX_INSNS];
	char name[16];
	int n = 0;

	for (int k = 0; k < i % 8; k++)
		prog[n++] = insn(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, k);
	if (i % 3 != 1)
		n += emit_count(prog + n, map_a);
	if (i % 3 != 0)
		n += emit_count(prog + n, map_b);
	prog[n++] = insn(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0);
	prog[n++] = insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
	*insn_cnt = n;
	snprintf(name, sizeof(name), "pm_%d", i);
	return bpf_prog_load(BPF_PROG_TYPE_KPROBE, name, "GPL", prog, (size_t)n, NULL);
}

static int open_uprobe(int type, int retprobe_bit, const char *path, uint64_t offset, bool ret)
{
	struct perf_event_attr attr = {
		.size = sizeof(attr),
		.type = (uint32_t)type,
		.config = ret ? 1ULL << retprobe_bit : 0,
		.config1 = (uint64_t)(uintptr_t)path,
		.config2 = offset,
		.disabled = 1,
	};
	int fd = (int)syscall(SYS_perf_event_open, &attr, -1, 0, -1, PERF_FLAG_FD_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

static uint32_t id_of(int fd, bool prog)
{
	struct bpf_prog_info pinfo = { 0 };
	struct bpf_map_info minfo = { 0 };
	uint32_t len = prog ? sizeof(pinfo) : sizeof(minfo);

	if (bpf_obj_get_info_by_fd(fd, prog ? (void *)&pinfo : (void *)&minfo, &len) < 0)
		return 0;
	return prog ? pinfo.id : minfo.id;
}

int main(int argc, char **argv)
{
	struct rlimit nofile;
	sigset_t mask, none;
	char buf[64], path[4096];
	int type, retprobe_bit, count, map_a, map_b;
	uint64_t offsets[2];

	if (argc < 4 || argc > 5) {
		fprintf(stderr, "usage: probe-many PATH ADD_OFFSET MUL_OFFSET [COUNT]\n");
		return 2;
	}
	if (!realpath(argv[1], path)) {
		fprintf(stderr, "probe-many: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	offsets[0] = strtoull(argv[2], NULL, 0);
	offsets[1] = strtoull(argv[3], NULL, 0);
	count = argc > 4 ? atoi(argv[4]) : 200;

	/* Three fds per probe at most. */
	if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
		nofile.rlim_cur = nofile.rlim_max;
		setrlimit(RLIMIT_NOFILE, &nofile);
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);

	if (read_sysfs("/sys/bus/event_source/devices/uprobe/type", buf, sizeof(buf)) < 0) {
		fprintf(stderr, "probe-many: no uprobe PMU\n");
		return 1;
	}
	type = atoi(buf);
	if (read_sysfs("/sys/bus/event_source/devices/uprobe/format/retprobe", buf,
		       sizeof(buf)) < 0 ||
	    sscanf(buf, "config:%d", &retprobe_bit) != 1) {
		fprintf(stderr, "probe-many: no retprobe bit in the uprobe PMU format\n");
		return 1;
	}

	map_a = bpf_map_create(BPF_MAP_TYPE_ARRAY, "pm_a", 4, 8, 1, NULL);
	map_b = bpf_map_create(BPF_MAP_TYPE_ARRAY, "pm_b", 4, 8, 1, NULL);
	if (map_a < 0 || map_b < 0) {
		fprintf(stderr, "probe-many: map create: %s\n", strerror(errno));
		return 1;
	}

	for (int i = 0; i < count; i++) {
		bool ret = i / 2 % 2, via_link = i / 4 % 2;
		int insn_cnt, prog_fd, perf_fd, link_fd = -1;

		prog_fd = load_prog(i, map_a, map_b, &insn_cnt);
		if (prog_fd < 0) {
			fprintf(stderr, "probe-many: program %d: %s\n", i, strerror(-prog_fd));
			return 1;
		}
		perf_fd = open_uprobe(type, retprobe_bit, path, offsets[i % 2], ret);
		if (perf_fd < 0) {
			fprintf(stderr, "probe-many: perf_event_open %d: %s\n", i, strerror(-perf_fd));
			return 1;
		}
		if (via_link) {
			link_fd = bpf_link_create(prog_fd, perf_fd, BPF_PERF_EVENT, NULL);
			if (link_fd < 0) {
				fprintf(stderr, "probe-many: link %d: %s\n", i, strerror(-link_fd));
				return 1;
			}
		} else if (ioctl(perf_fd, PERF_EVENT_IOC_SET_BPF, prog_fd) < 0) {
			fprintf(stderr, "probe-many: SET_BPF %d: %s\n", i, strerror(errno));
			return 1;
		}
		if (ioctl(perf_fd, PERF_EVENT_IOC_ENABLE, 0) < 0) {
			fprintf(stderr, "probe-many: ENABLE %d: %s\n", i, strerror(errno));
			return 1;
		}
		printf("prog %d id=%u insns=%d maps=%s%s%s fn=%s kind=%s via=%s perf_fd=%d "
		       "link_fd=%d\n",
		       i, id_of(prog_fd, true), insn_cnt, i % 3 != 1 ? "a" : "",
		       i % 3 == 2 ? "," : "", i % 3 != 0 ? "b" : "", i % 2 ? "tgt_mul" : "tgt_add",
		       ret ? "uretprobe" : "uprobe", via_link ? "link" : "perf_event", perf_fd,
		       link_fd);
	}
	printf("map a id=%u\nmap b id=%u\nready %d\n", id_of(map_a, false), id_of(map_b, false),
	       count);
	fflush(stdout);

	sigemptyset(&none);
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	while (!stop)
		sigsuspend(&none);
	/* Everything is left for exit to close, as a killed tool's would be. */
	return 0;
}

// SPDX-License-Identifier: MIT
/*
 * Output from the agent into the tool's kernel buffers, read the way tools
 * read them: a libbpf ring_buffer consumer gets exactly the records
 * submitted (none of the discarded), a perf_buffer consumer gets each record
 * on the CPU it was emitted from, and bpf_trace_printk lines appear in
 * trace_pipe exactly as the kernel writes them for the same program.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "agent-test.h"

struct event {
	uint64_t seq;
	uint64_t pid_tgid;
	uint32_t cpu;
	uint32_t kind;
	char comm[16];
};

struct uresult {
	int64_t ret;
	uint64_t val[4];
	uint64_t stack[32];
};

static struct uresult uout(struct at_obj *o)
{
	struct uresult r;
	uint32_t zero = 0;

	cr_assert_eq(bpf_map_lookup_elem(at_map_fd(o, "out"), &zero, &r), 0);
	return r;
}

static uint64_t self_pid_tgid(void)
{
	return (uint64_t)getpid() << 32 | (uint32_t)syscall(SYS_gettid);
}

#define RB_RUNS 500

struct rb_seen {
	int n;
	struct event ev[2 * RB_RUNS + 8];
	size_t bad_size;
};

static int on_rb(void *ctx, void *data, size_t size)
{
	struct rb_seen *s = ctx;

	if (size != sizeof(struct event)) {
		s->bad_size++;
		return 0;
	}
	if (s->n < (int)(sizeof(s->ev) / sizeof(s->ev[0])))
		memcpy(&s->ev[s->n], data, size);
	s->n++;
	return 0;
}

Test(agent_output, ringbuf_records_arrive, .timeout = 60)
{
	struct at_obj *o = at_obj_load("uprobe");
	struct agent_prog *p = at_prog_load(o, "ringbuf");
	static struct rb_seen seen;
	struct ring_buffer *rb;

	prctl(PR_SET_NAME, "rb-writer");
	rb = ring_buffer__new(at_map_fd(o, "rb"), on_rb, &seen, NULL);
	cr_assert_not_null(rb);
	for (int i = 0; i < RB_RUNS; i++) {
		at_run(p, (uint64_t)i, 0, 0, 0, 0);
		cr_expect_eq(uout(o).ret, 0);
		cr_expect_eq(uout(o).val[0], 0, "a record larger than the ring was reserved");
	}
	cr_expect_geq(ring_buffer__consume(rb), 0);
	cr_expect_eq(seen.bad_size, 0);
	/* bpf_ringbuf_output then reserve + submit; the discarded record never shows. */
	cr_assert_eq(seen.n, 2 * RB_RUNS);
	for (int i = 0; i < 2 * RB_RUNS; i++) {
		cr_expect_eq(seen.ev[i].seq, (uint64_t)i / 2);
		cr_expect_eq(seen.ev[i].kind, (uint32_t)(i % 2 + 1));
		cr_expect_eq(seen.ev[i].pid_tgid, self_pid_tgid());
		cr_expect_str_eq(seen.ev[i].comm, "rb-writer");
	}
	ring_buffer__free(rb);
	agent_prog__free(p);
	at_obj_free(o);
}

struct perf_seen {
	int n, lost;
	struct event ev[64];
	int cpu[64];
};

static void on_perf(void *ctx, int cpu, void *data, __u32 size)
{
	struct perf_seen *s = ctx;

	if (s->n < 64 && size >= sizeof(struct event)) {
		memcpy(&s->ev[s->n], data, sizeof(struct event));
		s->cpu[s->n] = cpu;
	}
	s->n++;
}

static void on_perf_lost(void *ctx, int cpu, __u64 cnt)
{
	((struct perf_seen *)ctx)->lost += (int)cnt;
}

Test(agent_output, perf_records_arrive_on_their_cpu, .timeout = 60)
{
	struct at_obj *o = at_obj_load("uprobe");
	struct agent_prog *p = at_prog_load(o, "perf");
	static struct perf_seen seen;
	struct perf_buffer *pb;
	int ncpus = at_ncpus(), want = 0;

	pb = perf_buffer__new(at_map_fd(o, "events"), 8, on_perf, on_perf_lost, &seen, NULL);
	cr_assert_not_null(pb, "perf_buffer__new: %s", strerror(errno));
	for (int c = 0; c < ncpus; c++) {
		at_pin_cpu(c);
		for (int i = 0; i < 3; i++) {
			at_run(p, (uint64_t)(c * 10 + i), BPF_F_CURRENT_CPU, 0, 0, 0);
			cr_expect_eq(uout(o).ret, 0, "cpu %d: %lld", c, (long long)uout(o).ret);
			want++;
		}
		/* An explicit index: the buffer of that CPU, from that CPU only. */
		at_run(p, (uint64_t)(c * 10 + 9), (uint64_t)c, 0, 0, 0);
		cr_expect_eq(uout(o).ret, 0);
		want++;
		if (ncpus > 1) {
			at_run(p, 999, (uint64_t)((c + 1) % ncpus), 0, 0, 0);
			cr_expect_eq(uout(o).ret, -EOPNOTSUPP, "another CPU's buffer");
		}
	}
	/* Index past the array and bad flags: the kernel's errors. */
	at_run(p, 999, 1000, 0, 0, 0);
	cr_expect_eq(uout(o).ret, -E2BIG);
	at_run(p, 999, 1ull << 40, 0, 0, 0);
	cr_expect_eq(uout(o).ret, -EINVAL);
	for (int tries = 0; tries < 10 && seen.n < want; tries++)
		perf_buffer__poll(pb, 100);
	cr_assert_eq(seen.n, want);
	cr_expect_eq(seen.lost, 0);
	for (int i = 0; i < seen.n && i < 64; i++) {
		int c = (int)(seen.ev[i].seq / 10);

		cr_expect_eq(seen.cpu[i], c, "record %llu came out of cpu %d's buffer",
			     (unsigned long long)seen.ev[i].seq, seen.cpu[i]);
		cr_expect_eq(seen.ev[i].cpu, (uint32_t)c);
		cr_expect_eq(seen.ev[i].kind, 4);
	}
	perf_buffer__free(pb);
	agent_prog__free(p);
	at_obj_free(o);
}

/* ---- trace_printk ---- */

static int trace_open(void)
{
	int fd = open("/sys/kernel/tracing/trace_pipe", O_RDONLY | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0)
		fd = open("/sys/kernel/debug/tracing/trace_pipe",
			  O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	cr_assert_geq(fd, 0, "trace_pipe: %s", strerror(errno));
	return fd;
}

/* Reads trace_pipe until a line holds needle (or 5 s pass); copies that line. */
static bool trace_find(int fd, const char *needle, char *line, size_t size)
{
	static char buf[1 << 16];
	static size_t len;
	struct timespec start, now;

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		char *hit = NULL, *nl;
		ssize_t n;

		buf[len] = 0;
		hit = strstr(buf, needle);
		if (hit) {
			char *begin = hit;

			while (begin > buf && begin[-1] != '\n')
				begin--;
			nl = strchr(hit, '\n');
			if (nl) {
				snprintf(line, size, "%.*s", (int)(nl - begin), begin);
				memmove(buf, nl + 1, len - (size_t)(nl + 1 - buf));
				len -= (size_t)(nl + 1 - buf);
				return true;
			}
		}
		if (len > sizeof(buf) / 2) {
			/* keep the tail only */
			memmove(buf, buf + len - 1024, 1024);
			len = 1024;
		}
		n = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (n > 0) {
			len += (size_t)n;
			continue;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - start.tv_sec > 5)
			return false;
		poll(&(struct pollfd){ .fd = fd, .events = POLLIN }, 1, 100);
	}
}

Test(agent_output, trace_printk_line, .timeout = 60)
{
	struct at_obj *o = at_obj_load("uprobe");
	struct agent_prog *p = at_prog_load(o, "printk");
	uint64_t token = (uint64_t)getpid() * 1000003u + (uint64_t)time(NULL);
	char needle[64], line[1024], task[64];
	int fd = trace_open();

	prctl(PR_SET_NAME, "printk-thread");
	at_run(p, token, 0, 0, 0, 0);
	snprintf(needle, sizeof(needle), "agent-test %llu comm=printk-thread",
		 (unsigned long long)token);
	cr_expect_eq(uout(o).ret, (int64_t)strlen(needle) + 1, "bpf_trace_printk returned %lld",
		     (long long)uout(o).ret);
	cr_assert(trace_find(fd, needle, line, sizeof(line)), "no line with \"%s\"", needle);
	/*
	 * As the kernel writes it: "<comm>-<tid> [<cpu>] ... bpf_trace_printk: <text>"
	 * (the comm shows as <...> until the tracer has cached it).
	 */
	snprintf(task, sizeof(task), "-%d ", (int)syscall(SYS_gettid));
	cr_expect(strstr(line, task), "line: %s", line);
	cr_expect(strstr(line, "bpf_trace_printk: agent-test"), "line: %s", line);
	close(fd);
	agent_prog__free(p);
	at_obj_free(o);
}

struct result {
	int64_t ret;
	int64_t ret2;
	uint64_t val[4];
	char buf[256];
	char buf2[256];
};

Test(agent_output, trace_printk_matches_the_kernel, .timeout = 60)
{
	struct at_obj *k = at_obj_load("oracle"), *a = at_obj_load("oracle");
	struct agent_prog *p = at_prog_load(a, "printk");
	char needle[64], lk[1024], la[1024];
	const char *tk, *ta;
	struct result rk, ra;
	uint32_t zero = 0;
	int fd = trace_open();
	uint64_t args[3];

	snprintf(needle, sizeof(needle), "oracle %d ", (int)getpid());
	args[0] = (uint64_t)getpid();
	args[1] = (uintptr_t) "from user memory";
	args[2] = 0xbeef;
	at_kernel_run(k, "printk", args, 3);
	cr_assert(trace_find(fd, needle, lk, sizeof(lk)), "no kernel line");
	at_run_ctx(p, args, 3);
	cr_assert(trace_find(fd, needle, la, sizeof(la)), "no agent line");
	cr_assert_eq(bpf_map_lookup_elem(at_map_fd(k, "out"), &zero, &rk), 0);
	cr_assert_eq(bpf_map_lookup_elem(at_map_fd(a, "out"), &zero, &ra), 0);
	cr_expect_eq(ra.ret, rk.ret);
	cr_expect_eq(ra.ret2, rk.ret2);
	cr_expect_eq(rk.ret2, -EINVAL);
	/* The same task prefix and the same text; only the timestamps differ. */
	tk = strstr(lk, "bpf_trace_printk: ");
	ta = strstr(la, "bpf_trace_printk: ");
	cr_assert(tk && ta, "kernel: %s\nagent: %s", lk, la);
	cr_expect_str_eq(ta, tk);
	cr_expect(!strncmp(la, lk, (size_t)(strchr(lk, '[') - lk)), "kernel: %s\nagent: %s", lk,
		  la);
	close(fd);
	agent_prog__free(p);
	at_obj_free(k);
	at_obj_free(a);
}

int main(int argc, char *argv[])
{
	return at_main(argc, argv);
}

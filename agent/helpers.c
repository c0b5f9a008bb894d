// SPDX-License-Identifier: MIT
/*
 * The kernel helpers a uprobe program may call, with the kernel's arguments,
 * semantics and return values (kernel/trace/bpf_trace.c, kernel/bpf/helpers.c,
 * kernel/bpf/stackmap.c, mm/maccess.c). Each reaches the run it serves
 * through agent_cur_run. None allocates or takes a lock other than the map
 * write-back lock, and the probe_read family never faults.
 *
 * Where userspace sees a namespaced view the kernel does not (pid, tgid, uid
 * and gid in a pid or user namespace) the agent gives its own view: the daemon
 * keeps programs that need the kernel's view of namespaced processes in the
 * kernel.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "bprintf.h"
#include "prog-private.h"
#include "uaccess.h"

#define HELPER(name)                                                                      \
	static uint64_t helper_##name(uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4, \
				      uint64_t r5)
#define PTR(x) ((void *)(uintptr_t)(x))
#define RET(x) ((uint64_t)(int64_t)(x))

/* The kernel's limit on the bpf_loop count. */
#define BPF_MAX_LOOPS (8 * 1024 * 1024)

static inline struct agent_run *cur(void)
{
	return agent_cur_run;
}

/* ---- maps ---- */

HELPER(map_lookup_elem)
{
	return (uintptr_t)agent_map_lookup(cur(), PTR(r1), PTR(r2));
}

HELPER(map_update_elem)
{
	return RET(agent_map_update(cur(), PTR(r1), PTR(r2), PTR(r3), r4));
}

HELPER(map_delete_elem)
{
	return RET(agent_map_delete(cur(), PTR(r1), PTR(r2)));
}

HELPER(map_lookup_percpu_elem)
{
	return (uintptr_t)agent_map_lookup_percpu(cur(), PTR(r1), PTR(r2), (uint32_t)r3);
}

/* ---- memory ---- */

/* bpf_probe_read_user_common(): copy_from_user_nofault(), zeroed on error. */
static long read_user(void *dst, uint32_t size, uint64_t src)
{
	int r = agent_uaccess_read(dst, PTR(src), size);

	if (r < 0)
		memset(dst, 0, size);
	return r;
}

/*
 * bpf_probe_read_kernel_common(): x86 refuses user addresses (-ERANGE); the
 * kernel memory a program can point at is its own stack, context and map
 * values, which here are the run's.
 */
static long read_kernel(void *dst, uint32_t size, uint64_t src)
{
	long r;

	if (!agent_run_is_kernel(cur(), src, size))
		r = agent_kernel_read_error(src);
	else
		r = agent_uaccess_read(dst, PTR(src), size);
	if (r < 0)
		memset(dst, 0, size);
	return r;
}

/* bpf_probe_read_user_str(): strncpy_from_user_nofault(), zeroed on error. */
static long read_user_str(char *dst, uint32_t size, uint64_t src)
{
	long r;

	if (!size)
		return 0;
	r = agent_strncpy_from_user(dst, src, size);
	if (r < 0)
		memset(dst, 0, size);
	return r;
}

/* bpf_probe_read_kernel_str(): strncpy_from_kernel_nofault(), byte by byte. */
static long read_kernel_str(char *dst, uint32_t size, uint64_t src)
{
	long r;

	if (!size)
		return 0;
	if (!agent_run_is_kernel(cur(), src, 1))
		r = agent_kernel_read_error(src);
	else
		r = agent_uaccess_strncpy(dst, PTR(src), size);
	if (r < 0) {
		memset(dst, 0, size);
		return r;
	}
	if (r >= size) {
		r = size;
		dst[r - 1] = 0;
	}
	return r;
}

HELPER(probe_read_user)
{
	return RET(read_user(PTR(r1), (uint32_t)r2, r3));
}

HELPER(probe_read_kernel)
{
	return RET(read_kernel(PTR(r1), (uint32_t)r2, r3));
}

/* bpf_probe_read_compat(): user memory below TASK_SIZE, kernel memory above. */
HELPER(probe_read)
{
	if (r3 < agent_task_size_max)
		return RET(read_user(PTR(r1), (uint32_t)r2, r3));
	return RET(read_kernel(PTR(r1), (uint32_t)r2, r3));
}

HELPER(probe_read_user_str)
{
	return RET(read_user_str(PTR(r1), (uint32_t)r2, r3));
}

HELPER(probe_read_kernel_str)
{
	return RET(read_kernel_str(PTR(r1), (uint32_t)r2, r3));
}

HELPER(probe_read_str)
{
	if (r3 < agent_task_size_max)
		return RET(read_user_str(PTR(r1), (uint32_t)r2, r3));
	return RET(read_kernel_str(PTR(r1), (uint32_t)r2, r3));
}

/* bpf_copy_from_user() (sleepable programs): copy_from_user(), zeroed on error. */
HELPER(copy_from_user)
{
	return RET(read_user(PTR(r1), (uint32_t)r2, r3));
}

/* ---- time, CPU, random ---- */

static uint64_t clock_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

HELPER(ktime_get_ns)
{
	return clock_ns(CLOCK_MONOTONIC);
}

HELPER(ktime_get_boot_ns)
{
	return clock_ns(CLOCK_BOOTTIME);
}

HELPER(ktime_get_coarse_ns)
{
	return clock_ns(CLOCK_MONOTONIC_COARSE);
}

HELPER(ktime_get_tai_ns)
{
	return clock_ns(CLOCK_TAI);
}

HELPER(get_smp_processor_id)
{
	return (uint32_t)agent_run_cpu(cur());
}

HELPER(get_numa_node_id)
{
	unsigned int cpu, node = 0;

	getcpu(&cpu, &node);
	return node;
}

/* Per-thread xorshift64*, seeded without a syscall from the clock, thread and address. */
static __thread uint64_t prandom_state __attribute__((tls_model("initial-exec")));

HELPER(get_prandom_u32)
{
	uint64_t x = prandom_state;

	if (!x) {
		x = clock_ns(CLOCK_MONOTONIC) ^ ((uint64_t)(uintptr_t)&prandom_state << 16) ^
		    0x9e3779b97f4a7c15ull;
		x ^= x >> 33;
		x *= 0xff51afd7ed558ccdull;
		x ^= x >> 33;
		if (!x)
			x = 1;
	}
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	prandom_state = x;
	return (uint32_t)((x * 0x2545f4914f6cdd1dull) >> 32);
}

/* ---- the current task ---- */

/*
 * tgid << 32 | tid, cached per thread; a fork handler clears the cache of the
 * one thread the child has, so the child never sees its parent's ids.
 */
static __thread uint64_t pid_tgid_cache __attribute__((tls_model("initial-exec")));

static void pid_tgid_atfork_child(void)
{
	pid_tgid_cache = 0;
}

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void atfork_install(void)
{
	pthread_atfork(NULL, NULL, pid_tgid_atfork_child);
}

HELPER(get_current_pid_tgid)
{
	uint64_t v = pid_tgid_cache;

	if (!v) {
		v = (uint64_t)(uint32_t)getpid() << 32 | (uint32_t)syscall(SYS_gettid);
		pid_tgid_cache = v;
	}
	return v;
}

HELPER(get_current_uid_gid)
{
	return (uint64_t)getgid() << 32 | (uint32_t)getuid();
}

/*
 * The calling thread's comm, asked from the kernel every time: another thread
 * (pthread_setname_np) or another process (/proc/PID/task/TID/comm) may
 * rename this thread at any moment, and nothing tells us.
 */
HELPER(get_current_comm)
{
	char comm[16] = { 0 };
	char *buf = PTR(r1);
	uint32_t size = (uint32_t)r2;
	size_t n;

	if (prctl(PR_GET_NAME, comm) < 0) {
		memset(buf, 0, size);
		return RET(-EINVAL);
	}
	comm[15] = 0;
	/* strscpy_pad() */
	n = strnlen(comm, size - 1);
	memcpy(buf, comm, n);
	memset(buf + n, 0, size - n);
	return 0;
}

/* ---- the probe ---- */

HELPER(get_func_ip)
{
	const struct agent_probe_info *info = cur()->info;

	return info ? info->func_ip : 0;
}

HELPER(get_attach_cookie)
{
	const struct agent_probe_info *info = cur()->info;

	return info ? info->cookie : 0;
}

/* ---- stacks ---- */

#define STACK_BUILD_ID_SIZE 20

struct stack_build_id {
	int32_t status;
	unsigned char build_id[STACK_BUILD_ID_SIZE];
	union {
		uint64_t offset;
		uint64_t ip;
	};
};

/* sysctl kernel.perf_event_max_stack, read at load. */
unsigned int agent_perf_max_stack = 127;

/*
 * perf_callchain_user() on x86-64: the probed ip, the return address at sp
 * when the probe sits on push %rbp or endbr64, then the frame-pointer chain,
 * stopping at the first frame that cannot be read.
 */
static uint32_t user_callchain(const struct pt_regs *regs, const struct agent_probe_info *info,
			       uint64_t *ips, uint32_t max)
{
	uint64_t fp, frame[2], ret;
	uint32_t nr = 0;

	if (nr < max)
		ips[nr++] = regs->rip;
	if (info && info->func_entry && nr < max &&
	    agent_uaccess_read(&ret, PTR(regs->rsp), sizeof(ret)) == 0)
		ips[nr++] = ret;
	fp = regs->rbp;
	while (nr < max) {
		if (!agent_uaccess_ok(fp, sizeof(frame)) ||
		    agent_uaccess_read(frame, PTR(fp), sizeof(frame)) < 0)
			break;
		ips[nr++] = frame[1];
		fp = frame[0];
	}
	return nr;
}

/*
 * __bpf_get_stack(): a uprobe's kernel stack is empty (its registers are the
 * user's); a user stack is the callchain above. Build ids are reported as
 * BPF_STACK_BUILD_ID_IP entries, what the kernel gives when it cannot look
 * the file up.
 */
HELPER(get_stack)
{
	struct agent_run *run = cur();
	const struct pt_regs *regs = PTR(r1);
	uint8_t *buf = PTR(r2);
	uint32_t size = (uint32_t)r3, skip = (uint32_t)(r4 & BPF_F_SKIP_FIELD_MASK);
	uint64_t flags = r4, ips[256];
	bool user = flags & BPF_F_USER_STACK, build_id = flags & BPF_F_USER_BUILD_ID;
	uint32_t elem, num_elem, max_depth, nr, copy;
	long err = -EINVAL;

	if (flags & ~(uint64_t)(BPF_F_SKIP_FIELD_MASK | BPF_F_USER_STACK | BPF_F_USER_BUILD_ID))
		goto clear;
	if (!user && build_id)
		goto clear;
	elem = user && build_id ? sizeof(struct stack_build_id) : sizeof(uint64_t);
	if (size % elem)
		goto clear;
	num_elem = size / elem;
	max_depth = num_elem + skip;
	if (max_depth > agent_perf_max_stack)
		max_depth = agent_perf_max_stack;
	if (max_depth > sizeof(ips) / sizeof(ips[0]))
		max_depth = sizeof(ips) / sizeof(ips[0]);
	nr = user ? user_callchain(regs, run->info, ips, max_depth) : 0;
	if (nr < skip) {
		err = -EFAULT;
		goto clear;
	}
	nr -= skip;
	if (nr > num_elem)
		nr = num_elem;
	copy = nr * elem;
	if (build_id) {
		struct stack_build_id *ids = (void *)buf;

		for (uint32_t i = 0; i < nr; i++) {
			memset(&ids[i], 0, sizeof(ids[i]));
			ids[i].status = BPF_STACK_BUILD_ID_IP;
			ids[i].ip = ips[skip + i];
		}
	} else {
		memcpy(buf, ips + skip, copy);
	}
	if (size > copy)
		memset(buf + copy, 0, size - copy);
	return copy;
clear:
	memset(buf, 0, size);
	return RET(err);
}

/* ---- strings and formatting ---- */

/* The kernel's strncmp(): -1, 0 or 1. */
HELPER(strncmp)
{
	const unsigned char *a = PTR(r1), *b = PTR(r3);
	size_t n = (uint32_t)r2;

	for (; n; n--) {
		unsigned char c1 = *a++, c2 = *b++;

		if (c1 != c2)
			return RET(c1 < c2 ? -1 : 1);
		if (!c1)
			break;
	}
	return 0;
}

static bool is_kernel_cb(void *user, uint64_t addr, uint64_t len)
{
	return agent_run_is_kernel(user, addr, len);
}

HELPER(snprintf)
{
	struct agent_run *run = cur();
	const struct agent_bprintf_mem mem = { is_kernel_cb, run };
	uint32_t size = (uint32_t)r2, data_len = (uint32_t)r5;
	int r;

	if (data_len % 8 || data_len > AGENT_BPRINTF_MAX_ARGS * 8 || (data_len && !r4))
		return RET(-EINVAL);
	r = agent_bprintf(PTR(r1), size, PTR(r3), UINT32_MAX, PTR(r4), data_len / 8, &mem);
	return r < 0 ? RET(r) : (uint64_t)(r + 1);
}

static long trace_emit(const char *fmt, uint32_t fmt_size, const uint64_t *args, uint32_t nargs)
{
	struct agent_run *run = cur();
	const struct agent_bprintf_mem mem = { is_kernel_cb, run };
	char buf[AGENT_BPRINTF_BUF];
	int r = agent_bprintf(buf, sizeof(buf), fmt, fmt_size, args, nargs, &mem);
	long e;

	if (r < 0)
		return r;
	e = agent_output_trace(run->prog->trace_prog_fd, buf);
	return e < 0 ? e : r;
}

HELPER(trace_printk)
{
	const uint64_t args[3] = { r3, r4, r5 };

	return RET(trace_emit(PTR(r1), (uint32_t)r2, args, 3));
}

HELPER(trace_vprintk)
{
	uint32_t data_len = (uint32_t)r4;

	if (data_len % 8 || data_len > AGENT_BPRINTF_MAX_ARGS * 8 || (data_len && !r3))
		return RET(-EINVAL);
	return RET(trace_emit(PTR(r1), (uint32_t)r2, PTR(r3), data_len / 8));
}

/* ---- output ---- */

HELPER(perf_event_output)
{
	struct agent_map *m = PTR(r2);

	if (r3 & ~(uint64_t)BPF_F_INDEX_MASK)
		return RET(-EINVAL);
	return RET(agent_output_perf(m, PTR(r4), r5, r3));
}

HELPER(current_task_under_cgroup)
{
	return RET(agent_output_cgroup(PTR(r1), (uint32_t)r2));
}

HELPER(ringbuf_output)
{
	struct agent_map *m = PTR(r1);

	if (r4 & ~(uint64_t)(BPF_RB_NO_WAKEUP | BPF_RB_FORCE_WAKEUP))
		return RET(-EINVAL);
	return RET(agent_output_ringbuf(m, PTR(r2), r3, r4));
}

/*
 * bpf_ringbuf_reserve(): the record is built in the run's scratch and goes
 * out on submit. The kernel also says NULL for a record larger than the ring.
 */
HELPER(ringbuf_reserve)
{
	struct agent_run *run = cur();
	struct agent_map *m = PTR(r1);
	struct agent_entry *e;
	struct agent_slot *s;
	size_t mark;
	void *p;

	/* __bpf_ringbuf_reserve(): the record and its 8-byte header must fit the ring. */
	if (r3 || r2 > m->max_entries || ((r2 + 8 + 7) & ~7ull) > m->max_entries ||
	    !(s = agent_run_slot(run)))
		return 0;
	mark = s->used;
	p = agent_run_alloc(run, r2);
	e = p ? agent_run_entry(run) : NULL;
	if (!e) {
		s->used = mark;
		__atomic_fetch_add(&run->prog->scratch_full, 1, __ATOMIC_RELAXED);
		return 0;
	}
	*e = (struct agent_entry){ .map = m, .copy = p, .size = (uint32_t)r2, .kind = ENTRY_RECORD };
	return (uintptr_t)p;
}

static struct agent_entry *find_record(struct agent_run *run, void *p)
{
	struct agent_slot *s = run->slot;

	if (s)
		for (uint32_t i = 0; i < s->nentries; i++)
			if (s->entries[i].kind == ENTRY_RECORD && s->entries[i].copy == p)
				return &s->entries[i];
	return NULL;
}

HELPER(ringbuf_submit)
{
	struct agent_entry *e = find_record(cur(), PTR(r1));

	if (e) {
		e->kind = ENTRY_DONE;
		agent_output_ringbuf(e->map, e->copy, e->size,
				     r2 & (BPF_RB_NO_WAKEUP | BPF_RB_FORCE_WAKEUP));
	}
	return 0;
}

HELPER(ringbuf_discard)
{
	struct agent_entry *e = find_record(cur(), PTR(r1));

	if (e)
		e->kind = ENTRY_DONE;
	return 0;
}

/* ---- control ---- */

/* bpf_loop(): the callback is a function of the program, run by the VM. */
HELPER(loop)
{
	struct agent_run *run = cur();
	uint32_t nr = (uint32_t)r1;
	uint64_t i, ret;

	if (r4)
		return RET(-EINVAL);
	if (nr > BPF_MAX_LOOPS)
		return RET(-E2BIG);
	for (i = 0; i < nr; i++) {
		const uint64_t args[5] = { i, r3, 0, 0, 0 };

		if (vm__exec_func(run->prog->vm, (uint32_t)r2, args, &ret, NULL) < 0)
			return RET(-EINVAL);
		if (ret)
			return i + 1;
	}
	return i;
}

/*
 * bpf_send_signal(): checked now, sent when the run ends (after the write-back
 * and with no lock held), as the kernel's signal is only seen on the way back
 * to user mode.
 */
static uint64_t queue_signal(uint64_t sig, bool thread)
{
	struct agent_run *run = cur();

	if (sig > 64)
		return RET(-EINVAL);
	if (getpid() == 1)
		return RET(-EPERM);
	if (run->nsignals == AGENT_MAX_SIGNALS)
		return RET(-EBUSY);
	run->signals[run->nsignals].sig = (int)sig;
	run->signals[run->nsignals].thread = thread;
	run->nsignals++;
	return 0;
}

HELPER(send_signal)
{
	return queue_signal((uint32_t)r1, false);
}

HELPER(send_signal_thread)
{
	return queue_signal((uint32_t)r1, true);
}

void agent_run_deliver_signals(struct agent_run *run)
{
	for (uint8_t i = 0; i < run->nsignals; i++) {
		int sig = run->signals[i].sig;
		pid_t tgid = getpid(), tid = (pid_t)syscall(SYS_gettid);
		siginfo_t si;
		sigset_t blocked;

		if (!sig)
			continue;
		/* As the kernel sends it: si_code SI_KERNEL, no sender. */
		memset(&si, 0, sizeof(si));
		si.si_signo = sig;
		si.si_code = SI_KERNEL;
		/*
		 * The kernel delivers a process signal to the current thread unless it
		 * blocks it; only the thread group leader may queue SI_KERNEL to the
		 * whole process, so others queue it to themselves, or fall back to
		 * kill() when they block it.
		 */
		if (run->signals[i].thread)
			syscall(SYS_rt_tgsigqueueinfo, tgid, tid, sig, &si);
		else if (tid == tgid)
			syscall(SYS_rt_sigqueueinfo, tgid, sig, &si);
		else if (pthread_sigmask(SIG_BLOCK, NULL, &blocked) == 0 &&
			 !sigismember(&blocked, sig))
			syscall(SYS_rt_tgsigqueueinfo, tgid, tid, sig, &si);
		else
			kill(tgid, sig);
	}
	run->nsignals = 0;
}

/* ---- the table ---- */

#define H(name)                                \
	{                                      \
		BPF_FUNC_##name, helper_##name \
	}
const struct agent_helper agent_helpers[] = {
	H(map_lookup_elem),
	H(map_update_elem),
	H(map_delete_elem),
	H(probe_read),
	H(ktime_get_ns),
	H(trace_printk),
	H(get_prandom_u32),
	H(get_smp_processor_id),
	H(get_current_pid_tgid),
	H(get_current_uid_gid),
	H(get_current_comm),
	H(perf_event_output),
	H(get_numa_node_id),
	H(current_task_under_cgroup),
	H(probe_read_str),
	H(get_stack),
	H(send_signal),
	H(probe_read_user),
	H(probe_read_kernel),
	H(probe_read_user_str),
	H(probe_read_kernel_str),
	H(send_signal_thread),
	H(ktime_get_boot_ns),
	H(ringbuf_output),
	H(ringbuf_reserve),
	H(ringbuf_submit),
	H(ringbuf_discard),
	H(copy_from_user),
	H(ktime_get_coarse_ns),
	H(snprintf),
	H(get_func_ip),
	H(get_attach_cookie),
	H(trace_vprintk),
	H(loop),
	H(strncmp),
	H(map_lookup_percpu_elem),
	H(ktime_get_tai_ns),
};
#undef H

const size_t agent_helper_cnt = sizeof(agent_helpers) / sizeof(agent_helpers[0]);

bool agent_helper_supported(int32_t id)
{
	for (size_t i = 0; i < agent_helper_cnt; i++)
		if ((int32_t)agent_helpers[i].id == id)
			return true;
	return false;
}

void agent_helpers_init(void)
{
	char buf[32];
	int fd;

	pthread_once(&atfork_once, atfork_install);
	fd = open("/proc/sys/kernel/perf_event_max_stack", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t n = read(fd, buf, sizeof(buf) - 1);
		unsigned int v;

		if (n > 0) {
			buf[n] = 0;
			if (sscanf(buf, "%u", &v) == 1 && v > 0)
				agent_perf_max_stack = v;
		}
		close(fd);
	}
}

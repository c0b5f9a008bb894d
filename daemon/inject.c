// SPDX-License-Identifier: MIT
/* dlopen() in another process, through ptrace (see inject.h). */
#include <dirent.h>
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "inject.h"

#define XSTATE_MAX 16384
#define CALL_TIMEOUT_MS 5000

struct target {
	pid_t pid, tid;
	int mem_fd;
	uint64_t dlopen, dlerror, dlclose, dlsym;
	struct user_regs_struct regs;
	uint8_t xstate[XSTATE_MAX];
	struct iovec xstate_iov;
	uint64_t sigmask;
	int pending_sig;
	bool seized;
	/* The thread's scheduling, while we run it ahead of everything else. */
	int policy;
	struct sched_param param;
	bool boosted;
	/* How long it ran to its entry point between two stops (INJECT_AT_ENTRY). */
	uint64_t ran_ns;
	bool at_entry, before_entry;
	char *err;
};

static int fail(struct target *t, int e, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(struct target *t, int e, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(t->err, INJECT_ERRMSG_SIZE, fmt, ap);
	va_end(ap);
	return -e;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* A dynamic symbol of an ELF file, as an offset from its load bias. */
static int elf_symbol(int fd, const char *name, uint64_t *value)
{
	Elf_Scn *scn = NULL;
	int r = -ENOENT;
	GElf_Shdr sh;
	Elf *elf;

	elf_version(EV_CURRENT);
	elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!elf)
		return -EINVAL;
	while (r < 0 && (scn = elf_nextscn(elf, scn))) {
		Elf_Data *data;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_DYNSYM || !sh.sh_entsize)
			continue;
		data = elf_getdata(scn, NULL);
		for (size_t i = 0; data && i < sh.sh_size / sh.sh_entsize; i++) {
			GElf_Sym sym;
			const char *n;

			if (!gelf_getsym(data, (int)i, &sym) || !sym.st_value ||
			    GELF_ST_TYPE(sym.st_info) != STT_FUNC)
				continue;
			n = elf_strptr(elf, sh.sh_link, sym.st_name);
			if (n && !strcmp(n, name)) {
				*value = sym.st_value;
				r = 0;
				break;
			}
		}
	}
	elf_end(elf);
	return r;
}

/* dlopen and dlerror in the target's own libc (it may not be ours). */
static int find_libc_functions(struct target *t)
{
	char path[64], line[4096], mapped[128];
	uint64_t start, end, off, bias = 0;
	bool found = false;
	FILE *maps;
	int fd, r;

	snprintf(path, sizeof(path), "/proc/%d/maps", t->pid);
	maps = fopen(path, "re");
	if (!maps)
		return fail(t, errno, "cannot read /proc/%d/maps: %m", t->pid);
	while (!found && fgets(line, sizeof(line), maps)) {
		char *name = strchr(line, '/'), *base;

		if (!name || sscanf(line, "%lx-%lx %*s %lx", &start, &end, &off) != 3)
			continue;
		name[strcspn(name, "\n")] = 0;
		base = strrchr(name, '/') + 1;
		if (off == 0 && (!strncmp(base, "libc.so", 7) || !strncmp(base, "libc-", 5))) {
			found = true;
			bias = start;
			snprintf(mapped, sizeof(mapped), "/proc/%d/map_files/%lx-%lx", t->pid, start,
				 end);
		}
	}
	fclose(maps);
	if (!found)
		return fail(t, ENOENT, "process %d has no libc mapped (static or not started yet)",
			    t->pid);
	/* map_files reaches the very file the target mapped, whatever its namespace. */
	fd = open(mapped, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail(t, errno, "cannot open the libc of process %d: %m", t->pid);
	r = elf_symbol(fd, "dlopen", &t->dlopen);
	if (r == 0)
		r = elf_symbol(fd, "dlerror", &t->dlerror);
	if (r == 0)
		r = elf_symbol(fd, "dlclose", &t->dlclose);
	if (r == 0)
		r = elf_symbol(fd, "dlsym", &t->dlsym);
	close(fd);
	if (r < 0)
		return fail(t, -r, "no dlopen/dlerror/dlclose/dlsym in the libc of process %d",
			    t->pid);
	t->dlopen += bias;
	t->dlerror += bias;
	t->dlclose += bias;
	t->dlsym += bias;
	return 0;
}

/* A thread blocked in a system call holds no libc lock: prefer one. */
static pid_t choose_thread(pid_t pid)
{
	static const long blocking[] = {
		0 /* read */,	   7 /* poll */,	 23 /* select */,	 34 /* pause */,
		35 /* nanosleep */, 43 /* accept */,	 45 /* recvfrom */,	 47 /* recvmsg */,
		61 /* wait4 */,	   230 /* clock_nanosleep */, 232 /* epoll_wait */,
		270 /* pselect6 */, 271 /* ppoll */,	 281 /* epoll_pwait */, 288 /* accept4 */,
	};
	char path[96], buf[64];
	struct dirent *de;
	pid_t best = pid;
	DIR *dir;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	dir = opendir(path);
	if (!dir)
		return pid;
	while ((de = readdir(dir))) {
		pid_t tid = atoi(de->d_name);
		long nr = -1;
		FILE *f;

		if (tid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%d/syscall", pid, tid);
		f = fopen(path, "re");
		if (!f)
			continue;
		if (fgets(buf, sizeof(buf), f))
			nr = strtol(buf, NULL, 10);
		fclose(f);
		for (size_t i = 0; i < sizeof(blocking) / sizeof(blocking[0]); i++) {
			if (nr == blocking[i]) {
				best = tid;
				break;
			}
		}
		if (best != pid)
			break;
	}
	closedir(dir);
	return best;
}

/* The next stop of thread tid before deadline: 0, -ETIMEDOUT, or -ESRCH when it is gone. */
static int next_stop(pid_t tid, int *status, uint64_t deadline)
{
	for (;;) {
		pid_t w = waitpid(tid, status, __WALL | WNOHANG);

		if (w < 0)
			return -errno;
		if (w > 0 && (WIFEXITED(*status) || WIFSIGNALED(*status)))
			return -ESRCH;
		if (w > 0 && WIFSTOPPED(*status))
			return 0;
		if (now_ns() > deadline)
			return -ETIMEDOUT;
		usleep(50);
	}
}

/* next_stop()'s failure as the injection's error. */
static int stop_failed(struct target *t, int r)
{
	if (r == -ESRCH) {
		t->seized = false;
		return fail(t, ESRCH, "process %d exited during the injection", t->pid);
	}
	if (r == -ETIMEDOUT)
		return fail(t, ETIMEDOUT, "thread %d did not stop within %d ms", t->tid,
			    CALL_TIMEOUT_MS);
	return fail(t, -r, "waiting for thread %d: %s", t->tid, strerror(-r));
}

/* Waits for the next stop of the thread; signals other than `expect` are kept for later. */
static int wait_stop(struct target *t, int expect, int *status)
{
	uint64_t deadline = now_ns() + (uint64_t)CALL_TIMEOUT_MS * 1000000ULL;

	for (;;) {
		int r = next_stop(t->tid, status, deadline);

		if (r < 0)
			return stop_failed(t, r);
		if (WSTOPSIG(*status) == expect || (*status >> 16) == PTRACE_EVENT_STOP)
			return 0;
		/* A signal for the application: hold it, deliver it when we leave. */
		t->pending_sig = WSTOPSIG(*status);
		if (ptrace(PTRACE_CONT, t->tid, 0, 0) < 0)
			return fail(t, errno, "resuming thread %d: %m", t->tid);
	}
}

static int mem_write(struct target *t, uint64_t addr, const void *buf, size_t len)
{
	ssize_t n = pwrite(t->mem_fd, buf, len, (off_t)addr);

	if (n != (ssize_t)len)
		return fail(t, n < 0 ? errno : EIO, "writing the memory of process %d: %m", t->pid);
	return 0;
}

/*
 * Calls fn(a0, a1) on the seized thread, on its own stack below the red
 * zone and below `floor`; returns what it returned. Return address 0: the
 * call ends in a SIGSEGV stop at ip 0.
 */
static int remote_call(struct target *t, uint64_t fn, uint64_t a0, uint64_t a1, uint64_t floor,
		       uint64_t *ret)
{
	struct user_regs_struct regs = t->regs;
	uint64_t zero = 0;
	int status, r;

	regs.rsp = ((floor < t->regs.rsp - 128 ? floor : t->regs.rsp - 128) - 256) & ~(uint64_t)15;
	regs.rsp -= 8;
	r = mem_write(t, regs.rsp, &zero, sizeof(zero));
	if (r < 0)
		return r;
	regs.rip = fn;
	regs.rdi = a0;
	regs.rsi = a1;
	regs.rax = 0;
	/* No system call restart on the way in; the ABI wants the direction flag clear. */
	regs.orig_rax = (uint64_t)-1;
	regs.eflags &= ~0x400ULL;
	if (ptrace(PTRACE_SETREGS, t->tid, 0, &regs) < 0)
		return fail(t, errno, "setting the registers of thread %d: %m", t->tid);
	if (ptrace(PTRACE_CONT, t->tid, 0, 0) < 0)
		return fail(t, errno, "resuming thread %d: %m", t->tid);
	r = wait_stop(t, SIGSEGV, &status);
	if (r < 0)
		return r;
	if (ptrace(PTRACE_GETREGS, t->tid, 0, &regs) < 0)
		return fail(t, errno, "reading the registers of thread %d: %m", t->tid);
	if (regs.rip != 0)
		return fail(t, EFAULT, "the call in process %d faulted at 0x%llx", t->pid,
			    (unsigned long long)regs.rip);
	*ret = regs.rax;
	return 0;
}

/* What release() puts back. */
static int save_state(struct target *t)
{
	t->xstate_iov = (struct iovec){ .iov_base = t->xstate, .iov_len = sizeof(t->xstate) };
	if (ptrace(PTRACE_GETREGS, t->tid, 0, &t->regs) < 0 ||
	    ptrace(PTRACE_GETREGSET, t->tid, NT_X86_XSTATE, &t->xstate_iov) < 0 ||
	    ptrace(PTRACE_GETSIGMASK, t->tid, sizeof(t->sigmask), &t->sigmask) < 0)
		return fail(t, errno, "cannot save the state of thread %d: %m", t->tid);
	return 0;
}

/* The program's entry point, from the auxiliary vector the kernel gave it. */
static int entry_point(struct target *t, uint64_t *entry)
{
	uint64_t av[2];
	char path[64];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/auxv", t->pid);
	f = fopen(path, "re");
	if (!f)
		return fail(t, errno, "cannot read %s: %m", path);
	*entry = 0;
	while (!*entry && fread(av, sizeof(av), 1, f) == 1 && av[0] != AT_NULL)
		if (av[0] == AT_ENTRY)
			*entry = av[1];
	fclose(f);
	return *entry ? 0 : fail(t, ENOENT, "process %d has no entry point in its auxv", t->pid);
}

/* Where the kernel left the stack at exec (argc), from field 28 of /proc/PID/stat. */
static int start_stack(struct target *t, uint64_t *sp)
{
	char path[64], buf[1024], *p;
	unsigned long long v = 0;
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", t->pid);
	f = fopen(path, "re");
	if (!f)
		return fail(t, errno, "cannot read %s: %m", path);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	/* comm may hold spaces and parentheses: fields count from the last ')'. */
	p = strrchr(buf, ')');
	for (int field = 3; p && field <= 28; field++) {
		p = strchr(p + 1, ' ');
		if (p && field == 28)
			v = strtoull(p + 1, NULL, 10);
	}
	if (!v)
		return fail(t, EIO, "no start of stack in %s", path);
	*sp = v;
	return 0;
}

/*
 * Whether the program's _start has run: glibc's (x86-64 start.S) aligns
 * the stack at argc, pushes %rax and %rsp and calls __libc_start_main
 * through the GOT, whose frame stays under main() for good. So the word
 * 24 bytes under argc returns just after an `ff 15` call a few bytes past
 * the entry point, and the one 16 bytes under holds its own address + 8.
 */
static bool past_entry(struct target *t, uint64_t entry, uint64_t sp)
{
	uint64_t w[2];
	uint8_t call[2];

	if (pread(t->mem_fd, w, sizeof(w), (off_t)(sp - 24)) != sizeof(w))
		return false;
	if (w[0] <= entry + 6 || w[0] > entry + 64 || w[1] != sp - 8)
		return false;
	return pread(t->mem_fd, call, sizeof(call), (off_t)(w[0] - 6)) == sizeof(call) &&
	       call[0] == 0xff && call[1] == 0x15;
}

/*
 * A child the thread forked while the breakpoint was in: it got a copy of
 * it. It starts stopped (PTRACE_O_TRACEFORK); the byte goes back, it goes.
 */
static int untrap_child(struct target *t, uint64_t entry, uint8_t orig)
{
	unsigned long child;
	char path[64];
	int status, fd, r;

	if (ptrace(PTRACE_GETEVENTMSG, t->tid, 0, &child) < 0)
		return fail(t, errno, "cannot learn the child thread %d forked: %m", t->tid);
	r = next_stop((pid_t)child, &status, now_ns() + CALL_TIMEOUT_MS * 1000000ULL);
	if (r == -ESRCH)
		return 0;
	if (r < 0)
		return fail(t, -r, "the child %lu of process %d did not stop: %s", child, t->pid,
			    strerror(-r));
	snprintf(path, sizeof(path), "/proc/%lu/mem", child);
	fd = open(path, O_RDWR | O_CLOEXEC);
	r = fd >= 0 && pwrite(fd, &orig, 1, (off_t)entry) == 1 ? 0 : -errno;
	if (fd >= 0)
		close(fd);
	if (ptrace(PTRACE_DETACH, (pid_t)child, 0, 0) < 0 && r == 0)
		r = -errno;
	return r < 0 ? fail(t, -r, "cannot take the breakpoint out of child %lu: %s", child,
			     strerror(-r))
		     : 0;
}

/* The thread's real-time boost (seize()), off while it runs code of its own. */
static void boost(struct target *t, bool on)
{
	struct sched_param fifo = { .sched_priority = 1 };

	if (t->boosted)
		(void)sched_setscheduler(t->tid, on ? SCHED_FIFO : t->policy,
					 on ? &fifo : &t->param);
}

/*
 * Runs the seized main thread of a process still in its loader on to the
 * program's entry point, with a breakpoint there (int3; debug registers do
 * not work in every VM), taken out again on every path, and out of any
 * child forked meanwhile. Its own signals reach it as they come. Then the
 * state saved is that of the entry point; or, when it did not get there in
 * time, that of where it was stopped, and -EAGAIN with before_entry set.
 */
static int run_to_entry(struct target *t, uint64_t entry)
{
	const int fork_event = SIGTRAP | (PTRACE_EVENT_FORK << 8);
	uint64_t deadline, timeout = CALL_TIMEOUT_MS * 1000000ULL;
	bool late = false, hit = false;
	int status, sig = 0, r, r2;
	uint8_t orig, trap = 0xcc;

	if (t->regs.rip == entry) {
		t->at_entry = true;
		return 0;
	}
	if (pread(t->mem_fd, &orig, 1, (off_t)entry) != 1)
		return fail(t, errno ? errno : EIO, "cannot read the entry point of process %d: %m",
			    t->pid);
	if (ptrace(PTRACE_SETOPTIONS, t->tid, 0, PTRACE_O_TRACEFORK) < 0)
		return fail(t, errno, "cannot follow the forks of thread %d: %m", t->tid);
	r = mem_write(t, entry, &trap, 1);
	boost(t, false);
	deadline = now_ns() + (uint64_t)INJECT_ENTRY_WAIT_MS * 1000000ULL;
	t->ran_ns = now_ns();
	while (r == 0) {
		if (ptrace(PTRACE_CONT, t->tid, 0, sig) < 0) {
			r = fail(t, errno, "resuming thread %d: %m", t->tid);
			break;
		}
		sig = 0;
		r = next_stop(t->tid, &status, late ? now_ns() + timeout : deadline);
		if (r == -ETIMEDOUT && !late) {
			/* Not there in time: stop it where it is. */
			late = true;
			r = ptrace(PTRACE_INTERRUPT, t->tid, 0, 0) < 0
				    ? -errno
				    : next_stop(t->tid, &status, now_ns() + timeout);
		}
		if (r < 0) {
			r = stop_failed(t, r);
			break;
		}
		if ((status >> 8) == fork_event) {
			r = untrap_child(t, entry, orig);
			continue;
		}
		if (ptrace(PTRACE_GETREGS, t->tid, 0, &t->regs) < 0) {
			r = fail(t, errno, "reading the registers of thread %d: %m", t->tid);
			break;
		}
		/* Ours whenever it stands just past the entry point, even when it got there late. */
		if (WSTOPSIG(status) == SIGTRAP && t->regs.rip == entry + 1) {
			hit = true;
			break;
		}
		if ((status >> 16) == PTRACE_EVENT_STOP) {
			if (late)
				break;
			continue;
		}
		/* A signal of its own: it gets it now (or, stopped late, when we leave). */
		if (late) {
			t->pending_sig = WSTOPSIG(status);
			break;
		}
		sig = WSTOPSIG(status);
	}
	t->ran_ns = now_ns() - t->ran_ns;
	if (!t->seized)
		return r;
	/* Out again whatever happened: running into it later would kill the process. */
	r2 = mem_write(t, entry, &orig, 1);
	(void)ptrace(PTRACE_SETOPTIONS, t->tid, 0, 0);
	boost(t, true);
	if (r < 0)
		return r;
	/* Stopped, wherever: this is the state to put back. */
	r = save_state(t);
	if (r == 0 && r2 < 0)
		r = r2;
	if (r < 0)
		return r;
	if (hit) {
		t->regs.rip = entry;
		t->at_entry = true;
		return 0;
	}
	t->before_entry = true;
	return fail(t, EAGAIN,
		    "process %d did not reach its entry point within %d ms (still in its loader "
		    "or its libraries' constructors); not injected yet",
		    t->pid, INJECT_ENTRY_WAIT_MS);
}

static int seize(struct target *t)
{
	int status, r;

	struct sched_param fifo = { .sched_priority = 1 };

	if (ptrace(PTRACE_SEIZE, t->tid, 0, 0) < 0)
		return fail(t, errno, "cannot ptrace thread %d of process %d: %m", t->tid, t->pid);
	t->seized = true;
	/*
	 * On a busy machine the thread waits for a CPU to stop, and again to run
	 * dlopen: real-time priority for those milliseconds keeps the stop short.
	 */
	t->policy = sched_getscheduler(t->tid);
	if (t->policy >= 0 && sched_getparam(t->tid, &t->param) == 0 &&
	    sched_setscheduler(t->tid, SCHED_FIFO, &fifo) == 0)
		t->boosted = true;
	if (ptrace(PTRACE_INTERRUPT, t->tid, 0, 0) < 0)
		return fail(t, errno, "cannot interrupt thread %d: %m", t->tid);
	r = wait_stop(t, SIGTRAP, &status);
	return r < 0 ? r : save_state(t);
}

/* Everything as it was, and the thread on its way. */
static int release(struct target *t)
{
	int r = 0;

	if (!t->seized)
		return 0;
	if (ptrace(PTRACE_SETREGS, t->tid, 0, &t->regs) < 0 ||
	    ptrace(PTRACE_SETREGSET, t->tid, NT_X86_XSTATE, &t->xstate_iov) < 0 ||
	    ptrace(PTRACE_SETSIGMASK, t->tid, sizeof(t->sigmask), &t->sigmask) < 0)
		r = -errno;
	if (t->boosted && sched_setscheduler(t->tid, t->policy, &t->param) < 0 && r == 0 &&
	    errno != ESRCH)
		r = -errno;
	if (ptrace(PTRACE_DETACH, t->tid, 0, t->pending_sig) < 0 && r == 0 && errno != ESRCH)
		r = -errno;
	t->seized = false;
	return r;
}

/* 1 when the process has not run its program's _start yet (*entry set), 0 when it has. */
static int still_loading(struct target *t, uint64_t *entry)
{
	uint64_t sp;
	int r = entry_point(t, entry);

	if (r == 0)
		r = start_stack(t, &sp);
	if (r < 0)
		return r;
	return past_entry(t, *entry, sp) ? 0 : 1;
}

/* What to do with the seized thread: the remote calls of one operation. */
typedef int (*inject_op)(struct target *t, const void *arg, uint64_t *ret);

static int session(pid_t pid, unsigned int flags, inject_op op, const void *arg,
		   struct inject_result *res, char err[INJECT_ERRMSG_SIZE])
{
	struct sched_param fifo = { .sched_priority = 1 }, self_param;
	struct target *t = calloc(1, sizeof(*t));
	uint64_t ret = 0, t0 = 0, t1, entry = 0;
	bool self_boosted = false, loading;
	int r, r2, self_policy;
	char mem[64];

	if (!t) {
		snprintf(err, INJECT_ERRMSG_SIZE, "out of memory");
		return -ENOMEM;
	}
	*t = (struct target){ .pid = pid, .mem_fd = -1, .err = err };
	snprintf(mem, sizeof(mem), "/proc/%d/mem", pid);
	t->mem_fd = open(mem, O_RDWR | O_CLOEXEC);
	if (t->mem_fd < 0)
		r = fail(t, errno, "cannot open %s: %m", mem);
	else
		r = flags & INJECT_AT_ENTRY ? still_loading(t, &entry) : 0;
	/* Still in its loader: its libc comes with the loader's work. */
	loading = r > 0;
	if (r >= 0 && !loading)
		r = find_libc_functions(t);
	if (r >= 0) {
		t->tid = loading ? pid : choose_thread(pid);
		/* We too must not wait for a CPU while the target waits for us. */
		self_policy = sched_getscheduler(0);
		if (self_policy >= 0 && sched_getparam(0, &self_param) == 0 &&
		    sched_setscheduler(0, SCHED_FIFO, &fifo) == 0)
			self_boosted = true;
		t0 = now_ns();
		r = seize(t);
	}
	if (r == 0 && loading)
		r = run_to_entry(t, entry);
	if (r == 0 && loading)
		r = find_libc_functions(t);
	if (r == 0)
		r = op(t, arg, &ret);
	r2 = release(t);
	/* The target goes on from here: our own return to normal priority may wait for a CPU. */
	t1 = now_ns();
	if (self_boosted)
		sched_setscheduler(0, self_policy, &self_param);
	if (r == 0 && r2 < 0)
		r = fail(t, -r2, "cannot restore thread %d of process %d", t->tid, pid);
	if (res) {
		res->handle = ret;
		res->tid = t->tid;
		res->stop_ns = t0 ? t1 - t0 - t->ran_ns : 0;
		res->at_entry = t->at_entry;
		res->before_entry = t->before_entry;
	}
	if (t->mem_fd >= 0)
		close(t->mem_fd);
	free(t);
	return r;
}

/* The message of the target's dlerror(), or "". */
static void remote_dlerror(struct target *t, uint64_t floor, char *why, size_t size)
{
	uint64_t msg = 0;

	why[0] = 0;
	if (remote_call(t, t->dlerror, 0, 0, floor, &msg) == 0 && msg &&
	    pread(t->mem_fd, why, size - 1, (off_t)msg) > 0)
		why[size - 1] = 0;
}

static int do_dlopen(struct target *t, const void *arg, uint64_t *handle)
{
	const char *path = arg;
	size_t len = strlen(path) + 1;
	/* The path goes below the red zone of the thread's stack. */
	uint64_t str_addr = (t->regs.rsp - 128 - len) & ~(uint64_t)15;
	char why[256];
	int r;

	r = mem_write(t, str_addr, path, len);
	if (r == 0)
		r = remote_call(t, t->dlopen, str_addr, RTLD_NOW, str_addr, handle);
	if (r == 0 && !*handle) {
		remote_dlerror(t, str_addr, why, sizeof(why));
		r = fail(t, ENOEXEC, "dlopen(%s) in process %d failed: %s", path, t->pid,
			 why[0] ? why : "no reason given");
	}
	return r;
}

struct open_call {
	const char *path, *entry, *arg;
};

/* Strings for the target, one after the other below the red zone; returns the lowest. */
static int push_strings(struct target *t, const char *const *strs, uint64_t *addrs, int n,
			uint64_t *floor)
{
	uint64_t at = t->regs.rsp - 128;
	int r = 0;

	for (int i = 0; i < n && r == 0; i++) {
		size_t len = strlen(strs[i]) + 1;

		at = (at - len) & ~(uint64_t)15;
		addrs[i] = at;
		r = mem_write(t, at, strs[i], len);
	}
	*floor = at;
	return r;
}

/* dlopen, then the library's entry point with its argument. */
static int do_dlopen_call(struct target *t, const void *arg, uint64_t *handle)
{
	const struct open_call *c = arg;
	const char *strs[3] = { c->path, c->entry, c->arg };
	uint64_t addrs[3], floor, fn = 0, ret = 0;
	char why[256];
	int r;

	r = push_strings(t, strs, addrs, 3, &floor);
	if (r == 0)
		r = remote_call(t, t->dlopen, addrs[0], RTLD_NOW, floor, handle);
	if (r == 0 && !*handle) {
		remote_dlerror(t, floor, why, sizeof(why));
		return fail(t, ENOEXEC, "dlopen(%s) in process %d failed: %s", c->path, t->pid,
			    why[0] ? why : "no reason given");
	}
	if (r == 0)
		r = remote_call(t, t->dlsym, *handle, addrs[1], floor, &fn);
	if (r == 0 && !fn)
		return fail(t, ENOENT, "%s has no %s", c->path, c->entry);
	if (r == 0)
		r = remote_call(t, fn, addrs[2], 0, floor, &ret);
	if (r == 0 && (int32_t)ret < 0)
		r = fail(t, -(int32_t)ret, "%s(\"%s\") in process %d failed: %s", c->entry, c->arg,
			 t->pid, strerror(-(int32_t)ret));
	return r;
}

static int do_dlclose(struct target *t, const void *arg, uint64_t *ret)
{
	uint64_t handle = *(const uint64_t *)arg, floor = t->regs.rsp - 128;
	char why[256];
	int r;

	r = remote_call(t, t->dlclose, handle, 0, floor, ret);
	if (r == 0 && *ret) {
		remote_dlerror(t, floor, why, sizeof(why));
		r = fail(t, EINVAL, "dlclose in process %d failed: %s", t->pid,
			 why[0] ? why : "no reason given");
	}
	return r;
}

int inject_library(pid_t pid, const char *path, struct inject_result *res,
		   char err[INJECT_ERRMSG_SIZE])
{
	return session(pid, 0, do_dlopen, path, res, err);
}

int inject_library_call(pid_t pid, const char *path, const char *entry, const char *arg,
			unsigned int flags, struct inject_result *res,
			char err[INJECT_ERRMSG_SIZE])
{
	struct open_call c = { .path = path, .entry = entry, .arg = arg };

	return session(pid, flags, do_dlopen_call, &c, res, err);
}

int inject_unload(pid_t pid, uint64_t handle, struct inject_result *res,
		  char err[INJECT_ERRMSG_SIZE])
{
	return session(pid, 0, do_dlclose, &handle, res, err);
}

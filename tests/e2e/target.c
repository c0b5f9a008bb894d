/* SPDX-License-Identifier: MIT */
/*
 * The process the e2e suite probes.
 *
 *   e2e-target [-f] [-m] [-l] [-w N] [-p N] CALLS
 *
 * Prints "ready", waits for a line on stdin, then calls e2e_add(i % 5000, i % 7)
 * for i = 0 .. CALLS-1, prints "done PID CALLS SUM" (SUM: the sum of what
 * e2e_add returned) and exits 0 at EOF on stdin. Until the go line nothing is
 * called, so the tool is attached (and the agent serving) before the first call;
 * until EOF the process stays, so its agent can still be asked about it.
 *
 *   -f    fork after the go line: the child makes CALLS / 2 calls, prints its
 *         "done" line and exits; the parent makes CALLS, prints its own, and
 *         exits 1 if the child did not exit 0
 *   -m    call malloc(i % 256 + 1) and free() instead of e2e_add (SUM stays 0)
 *   -l    repeat the CALLS calls until a second line or EOF on stdin
 *   -w N  write one byte to stderr every N calls
 *   -p N  sleep 1 ms every N calls (a pace the tools' output readers keep up with)
 *
 * e2e_add's first instruction is a 7-byte lea (-O2, -fcf-protection=none, and
 * a constant the addressing mode takes): the kernel single-steps it, the agent
 * hooks it in place.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define MODULUS 5000
#define BIAS 1000000

int e2e_add(int a, int b);

__attribute__((noinline)) int e2e_add(int a, int b)
{
	return a + b + BIAS;
}

struct opts {
	long calls;
	long write_every;
	long pace_every;
	int use_malloc;
};

static long long run_calls(const struct opts *o, long calls)
{
	long long sum = 0;

	for (long i = 0; i < calls; i++) {
		if (o->use_malloc) {
			void *volatile p = malloc(i % 256 + 1);

			free(p);
		} else {
			sum += e2e_add(i % MODULUS, i % 7);
		}
		if (o->write_every && (i + 1) % o->write_every == 0 && write(2, ".", 1) < 0)
			exit(1);
		if (o->pace_every && (i + 1) % o->pace_every == 0)
			usleep(1000);
	}
	return sum;
}

static int stdin_ready(void)
{
	struct pollfd pfd = { .fd = 0, .events = POLLIN };

	return poll(&pfd, 1, 0) > 0;
}

static void read_line(void)
{
	char c;

	while (read(0, &c, 1) == 1 && c != '\n')
		;
}

static void wait_eof(void)
{
	char buf[64];

	while (read(0, buf, sizeof(buf)) > 0)
		;
}

static void done(long calls, long long sum)
{
	printf("done %d %ld %lld\n", getpid(), calls, sum);
	fflush(stdout);
}

static int usage(void)
{
	fprintf(stderr, "usage: e2e-target [-f] [-m] [-l] [-w N] [-p N] CALLS\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct opts o = { 0 };
	int fork_mode = 0, loop = 0, c, status;
	long long sum;
	long calls;
	pid_t child;

	while ((c = getopt(argc, argv, "fmlw:p:")) != -1) {
		switch (c) {
		case 'f':
			fork_mode = 1;
			break;
		case 'm':
			o.use_malloc = 1;
			break;
		case 'l':
			loop = 1;
			break;
		case 'w':
			o.write_every = strtol(optarg, NULL, 10);
			break;
		case 'p':
			o.pace_every = strtol(optarg, NULL, 10);
			break;
		default:
			return usage();
		}
	}
	if (optind + 1 != argc)
		return usage();
	o.calls = strtol(argv[optind], NULL, 10);
	if (o.calls <= 0)
		return usage();

	printf("ready\n");
	fflush(stdout);
	read_line();

	if (loop) {
		sum = 0;
		calls = 0;
		while (!stdin_ready()) {
			sum += run_calls(&o, o.calls);
			calls += o.calls;
		}
		done(calls, sum);
		wait_eof();
		return 0;
	}

	child = fork_mode ? fork() : 1;
	if (child < 0)
		return 1;
	if (child == 0) {
		done(o.calls / 2, run_calls(&o, o.calls / 2));
		return 0;
	}
	done(o.calls, run_calls(&o, o.calls));
	if (fork_mode && (waitpid(child, &status, 0) < 0 || status != 0))
		return 1;
	wait_eof();
	return 0;
}

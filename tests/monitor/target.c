/* SPDX-License-Identifier: MIT */
/*
 * A process for tools to probe: calls monitor_target_fn() in a loop until killed. The function
 * is a real, separate symbol (noinline, external linkage) so its file offset can be computed from
 * the ELF symbol table and compared with what the monitor saw.
 */
#include <signal.h>
#include <unistd.h>

int monitor_target_fn(int x);

static volatile sig_atomic_t stop;

__attribute__((noinline)) int monitor_target_fn(int x)
{
	/* Keeps the call from being folded away. */
	__asm__ volatile("" : "+r"(x));
	return x * 2 + 1;
}

static void on_signal(int sig)
{
	stop = 1;
}

int main(void)
{
	volatile int sink = 0;

	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	while (!stop) {
		for (int i = 0; i < 1000; i++)
			sink += monitor_target_fn(i);
		usleep(1000);
	}
	return sink == 42;
}

/* SPDX-License-Identifier: MIT */
/*
 * The output helper programs (ringbuf-output.bpf.c, perf-output.bpf.c,
 * trace-printk.bpf.c): a process without CAP_BPF cannot write into a tool's
 * ring buffer, perf buffer or the trace buffer, but it can run a program the
 * daemon loaded for it with BPF_PROG_TEST_RUN. This is their input (ctx_in),
 * for the SEC("syscall") program and, as raw_tp arguments, for the others
 * (cgroup-check.bpf.c takes them too: data is the CGROUP_ARRAY index).
 * Each returns what the helper it stands for returns.
 */
#ifndef BPFTIMED_OUTPUT_H
#define BPFTIMED_OUTPUT_H

struct bpftimed_output_args {
	__u64 data;  /* the record (the text for trace_printk), in the caller's memory */
	__u64 size;  /* bytes of the record */
	__u64 flags; /* the flags the program gave the helper */
};

/* The largest record the helper programs forward. */
#define BPFTIMED_RINGBUF_MAX_RECORD (256 * 1024)
#define BPFTIMED_PERF_MAX_RECORD (32 * 1024 - 8)

#endif

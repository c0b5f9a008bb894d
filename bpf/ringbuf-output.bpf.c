// SPDX-License-Identifier: MIT
/*
 * bpf_ringbuf_output() for an agent: forwards one record from the caller's
 * memory into the tool's ring buffer (the loader gives "rb" the tool's map
 * with bpf_map__reuse_fd). A sleepable syscall program run with
 * BPF_PROG_TEST_RUN: the record goes straight into reserved ring memory,
 * chunk by chunk, so concurrent callers share no scratch buffer.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "output.h"

#define EINVAL 22
#define EAGAIN 11
#define E2BIG 7

#define CHUNK 256

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} rb SEC(".maps");

SEC("syscall")
int ringbuf_output(struct bpftimed_output_args *args)
{
	__u64 data = args->data, size = args->size, flags = args->flags;
	__u32 full, rest, off = 0;
	struct bpf_dynptr dp;
	char buf[CHUNK];
	long err = 0;

	if (flags & ~(__u64)(BPF_RB_NO_WAKEUP | BPF_RB_FORCE_WAKEUP))
		return -EINVAL;
	if (size > BPFTIMED_RINGBUF_MAX_RECORD)
		return -E2BIG;
	if (bpf_ringbuf_reserve_dynptr(&rb, size, 0, &dp)) {
		/* a failed reservation still has to be released */
		bpf_ringbuf_discard_dynptr(&dp, 0);
		return -EAGAIN; /* what bpf_ringbuf_output() says when it cannot reserve */
	}
	/* Whole chunks, then the rest: a loop body with no size-dependent branch. */
	full = size / CHUNK;
	rest = size % CHUNK;
	for (__u32 i = 0; i < BPFTIMED_RINGBUF_MAX_RECORD / CHUNK && i < full && !err; i++) {
		off = i * CHUNK;
		err = bpf_copy_from_user(buf, CHUNK, (void *)(data + off));
		if (!err)
			err = bpf_dynptr_write(&dp, off, buf, CHUNK, 0);
	}
	off = full * CHUNK;
	if (!err && rest) {
		err = bpf_copy_from_user(buf, rest & (CHUNK - 1), (void *)(data + off));
		if (!err)
			err = bpf_dynptr_write(&dp, off, buf, rest & (CHUNK - 1), 0);
	}
	if (err) {
		bpf_ringbuf_discard_dynptr(&dp, 0);
		return err;
	}
	bpf_ringbuf_submit_dynptr(&dp, flags);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";

// SPDX-License-Identifier: MIT
/*
 * Loads and stores of every size through the context, the stack and memory a
 * mem-check callback allows; sign-extending loads; and the run-time faults of
 * accesses outside all three, which must come back as errors naming the
 * instruction rather than as crashes.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "vm-test-util.h"

static const uint8_t pattern[16] = {
	0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,
	0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x00,
};

Test(vm_mem, loads_zero_extend, .timeout = 10)
{
	uint8_t mem[16];

	memcpy(mem, pattern, sizeof(mem));
	/* r0 starts as all ones: a narrow load must replace the whole register. */
	cr_expect_eq(vt_run_mem("mov %r0, -1\nldxb %r0, [%r1+3]\nexit\n", mem, 16), 0x44);
	cr_expect_eq(vt_run_mem("mov %r0, -1\nldxh %r0, [%r1+1]\nexit\n", mem, 16), 0x3322);
	cr_expect_eq(vt_run_mem("mov %r0, -1\nldxw %r0, [%r1+4]\nexit\n", mem, 16), 0x88776655);
	cr_expect_eq(vt_run_mem("ldxdw %r0, [%r1+8]\nexit\n", mem, 16), 0x00ffeeddccbbaa99);
	cr_expect_eq(vt_run_mem("ldxdw %r0, [%r1]\nexit\n", mem, 16), 0x8877665544332211);
	/* High bits set in the loaded value do not sign-extend. */
	cr_expect_eq(vt_run_mem("ldxb %r0, [%r1+8]\nexit\n", mem, 16), 0x99);
	cr_expect_eq(vt_run_mem("ldxh %r0, [%r1+8]\nexit\n", mem, 16), 0xaa99);
	cr_expect_eq(vt_run_mem("ldxw %r0, [%r1+8]\nexit\n", mem, 16), 0xccbbaa99);
	/* Unaligned accesses are fine for plain loads. */
	cr_expect_eq(vt_run_mem("ldxdw %r0, [%r1+1]\nexit\n", mem, 16), 0x9988776655443322);
	/* Negative offsets from a pointer inside the context. */
	cr_expect_eq(vt_run_mem("mov %r2, %r1\nadd %r2, 16\nldxw %r0, [%r2-16]\nexit\n", mem, 16),
		     0x44332211);
	/* The last bytes of the context are in bounds. */
	cr_expect_eq(vt_run_mem("ldxb %r0, [%r1+15]\nexit\n", mem, 16), 0);
	cr_expect_eq(vt_run_mem("ldxdw %r0, [%r1+8]\nexit\n", mem, 16), 0x00ffeeddccbbaa99);
}

Test(vm_mem, loads_sign_extend, .timeout = 10)
{
	uint8_t mem[8] = { 0x80, 0x7f, 0x01, 0x80, 0x00, 0x00, 0x00, 0x80 };

	cr_expect_eq(vt_run_mem("ldxsb %r0, [%r1]\nexit\n", mem, 8), 0xffffffffffffff80);
	cr_expect_eq(vt_run_mem("ldxsb %r0, [%r1+1]\nexit\n", mem, 8), 0x7f);
	cr_expect_eq(vt_run_mem("ldxsh %r0, [%r1+2]\nexit\n", mem, 8), 0xffffffffffff8001);
	cr_expect_eq(vt_run_mem("ldxsh %r0, [%r1]\nexit\n", mem, 8), 0x7f80);
	cr_expect_eq(vt_run_mem("ldxsw %r0, [%r1+4]\nexit\n", mem, 8), 0xffffffff80000000);
	cr_expect_eq(vt_run_mem("ldxsw %r0, [%r1]\nexit\n", mem, 8), 0xffffffff80017f80);
	cr_expect_eq(vt_run_mem("ldxsw %r0, [%r1+3]\nexit\n", mem, 8), 0x80);
}

Test(vm_mem, st_immediate, .timeout = 10)
{
	uint8_t mem[24];
	static const uint8_t want[24] = {
		0x78, 0xa5, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, /* stb, sth, stw */
		0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, /* stdw -2 sign-extends */
		0xff, 0xff, 0xff, 0x7f, 0x00, 0x00, 0x00, 0x00, /* stdw 0x7fffffff */
	};

	memset(mem, 0xa5, sizeof(mem));
	/* Each store writes exactly its size: byte 1 keeps its 0xa5. */
	vt_run_mem("stb [%r1], 0x12345678\nsth [%r1+2], -2\nstw [%r1+4], -1\n"
		   "stdw [%r1+8], -2\nstdw [%r1+16], 0x7fffffff\nexit\n",
		   mem, sizeof(mem));
	cr_expect_arr_eq(mem, want, sizeof(want));
}

Test(vm_mem, stx_register, .timeout = 10)
{
	uint8_t mem[16];
	static const uint8_t want[16] = {
		0x88, 0xa5, 0x88, 0x77, 0x88, 0x77, 0x66, 0x55,
		0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11,
	};

	memset(mem, 0xa5, sizeof(mem));
	vt_run_mem("lddw %r2, 0x1122334455667788\nstxb [%r1], %r2\nstxh [%r1+2], %r2\n"
		   "stxw [%r1+4], %r2\nstxdw [%r1+8], %r2\nexit\n",
		   mem, sizeof(mem));
	cr_expect_arr_eq(mem, want, sizeof(want));
}

Test(vm_mem, stack, .timeout = 10)
{
	/* Both ends of the 512-byte frame, every size, read back. */
	cr_expect_eq(vt_run("lddw %r1, 0x1122334455667788\nstxdw [%r10-512], %r1\n"
			    "ldxdw %r0, [%r10-512]\nexit\n"),
		     0x1122334455667788);
	cr_expect_eq(vt_run("stb [%r10-1], 0xab\nldxb %r0, [%r10-1]\nexit\n"), 0xab);
	cr_expect_eq(vt_run("sth [%r10-2], -2\nldxh %r0, [%r10-2]\nexit\n"), 0xfffe);
	cr_expect_eq(vt_run("stw [%r10-4], -2\nldxsw %r0, [%r10-4]\nexit\n"), (uint64_t)-2);
	cr_expect_eq(vt_run("stdw [%r10-8], -3\nldxdw %r0, [%r10-8]\nexit\n"), (uint64_t)-3);
	/* Little-endian byte order within a stack slot. */
	cr_expect_eq(vt_run("lddw %r1, 0x1122334455667788\nstxdw [%r10-8], %r1\n"
			    "ldxw %r0, [%r10-4]\nexit\n"),
		     0x11223344);
	/* A pointer derived from r10 reaches the same bytes. */
	cr_expect_eq(vt_run("mov %r2, %r10\nadd %r2, -16\nstdw [%r2], 77\nldxdw %r0, [%r10-16]\n"
			    "exit\n"),
		     77);
	/* Sixty-four slots filled and summed: the whole frame is usable. */
	cr_expect_eq(vt_run("mov %r1, %r10\nmov %r2, 0\nfill:\nsub %r1, 8\nadd %r2, 1\n"
			    "stxdw [%r1], %r2\njne %r2, 64, fill\n"
			    "mov %r0, 0\nmov %r1, %r10\nsum:\nsub %r1, 8\nldxdw %r3, [%r1]\n"
			    "add %r0, %r3\nsub %r2, 1\njne %r2, 0, sum\nexit\n"),
		     64 * 65 / 2);
}

Test(vm_mem, wild_pointer_faults, .timeout = 10)
{
	struct vm_fault fault;
	int r;

	r = vt_exec_fault("mov %r0, 0\nlddw %r1, 0xdead0000\nldxdw %r0, [%r1]\nexit\n", NULL, NULL,
			  0, &fault);
	cr_expect_eq(r, -EFAULT);
	cr_expect_eq(fault.err, EFAULT);
	cr_expect_eq(fault.pc, 3);
	cr_expect(strstr(fault.msg, "insn 3:"), "message: %s", fault.msg);
	cr_expect(strstr(fault.msg, "0xdead0000"), "message: %s", fault.msg);

	r = vt_exec_fault("lddw %r1, 0xdead0000\nstdw [%r1+8], 1\nexit\n", NULL, NULL, 0, &fault);
	cr_expect_eq(r, -EFAULT);
	cr_expect_eq(fault.pc, 2);
	cr_expect(strstr(fault.msg, "insn 2:"), "message: %s", fault.msg);
	cr_expect(strstr(fault.msg, "write"), "message: %s", fault.msg);

	r = vt_exec_fault("mov %r1, 0\nlddw %r2, 0xdead0000\nstxb [%r2], %r1\nexit\n", NULL, NULL,
			  0, &fault);
	cr_expect_eq(r, -EFAULT);
	cr_expect(strstr(fault.msg, "insn 3:"), "message: %s", fault.msg);

	/* A NULL pointer and the top of the address space, where addr + len wraps. */
	r = vt_exec_fault("mov %r1, 0\nldxb %r0, [%r1]\nexit\n", NULL, NULL, 0, &fault);
	cr_expect_eq(r, -EFAULT);
	r = vt_exec_fault("mov %r1, -1\nldxdw %r0, [%r1]\nexit\n", NULL, NULL, 0, &fault);
	cr_expect_eq(r, -EFAULT);
	cr_expect(strstr(fault.msg, "insn 1:"), "message: %s", fault.msg);
}

Test(vm_mem, context_bounds, .timeout = 10)
{
	uint8_t mem[16] = { 0 };
	struct vm_fault fault;

	/* One byte past the context, or a wide load straddling its end. */
	cr_expect_eq(vt_exec_fault("ldxb %r0, [%r1+16]\nexit\n", NULL, mem, 16, &fault), -EFAULT);
	cr_expect_eq(vt_exec_fault("ldxdw %r0, [%r1+9]\nexit\n", NULL, mem, 16, &fault), -EFAULT);
	cr_expect_eq(vt_exec_fault("stw [%r1+13], 0\nexit\n", NULL, mem, 16, &fault), -EFAULT);
	cr_expect_eq(vt_exec_fault("ldxb %r0, [%r1-1]\nexit\n", NULL, mem, 16, &fault), -EFAULT);
	/* Without a context r1 is NULL and nothing is readable through it. */
	cr_expect_eq(vt_exec_fault("ldxb %r0, [%r1]\nexit\n", NULL, NULL, 0, &fault), -EFAULT);
}

Test(vm_mem, stack_bounds_at_run_time, .timeout = 10)
{
	struct vm_fault fault;

	/*
	 * Through a register other than r10 the validator cannot check the
	 * offset: the bytes at and above r10, and far below it, fault.
	 */
	cr_expect_eq(vt_exec_fault("mov %r2, %r10\nldxb %r0, [%r2]\nexit\n", NULL, NULL, 0, &fault),
		     -EFAULT);
	cr_expect(strstr(fault.msg, "insn 1:"), "message: %s", fault.msg);
	cr_expect_eq(vt_exec_fault("mov %r2, %r10\nldxdw %r0, [%r2-4]\nexit\n", NULL, NULL, 0,
				   &fault),
		     -EFAULT);
	cr_expect_eq(vt_exec_fault("mov %r2, %r10\nsub %r2, 100000\nstb [%r2], 1\nexit\n", NULL,
				   NULL, 0, &fault),
		     -EFAULT);
}

/* The one region the callback lets programs touch, and what it was asked. */
static uint64_t allowed[2];
static struct {
	uint64_t addr, len;
	bool write;
	int calls;
} last_check;

static bool allow_region(void *user, uint64_t addr, uint64_t len, bool write)
{
	uintptr_t lo = (uintptr_t)allowed, hi = lo + sizeof(allowed);

	cr_expect_eq(user, (void *)allowed, "the callback gets the user pointer it was set with");
	last_check.addr = addr;
	last_check.len = len;
	last_check.write = write;
	last_check.calls++;
	return addr >= lo && addr <= hi && len <= hi - addr;
}

static void setup_allow_region(struct vm *vm)
{
	cr_assert_eq(vm__set_mem_check(vm, allow_region, allowed), 0);
}

Test(vm_mem, mem_check_allows, .timeout = 10)
{
	struct vm_fault fault;
	uint64_t ctx[1] = { (uintptr_t)allowed };

	allowed[0] = 0x1122334455667788;
	allowed[1] = 0;
	/* The context holds the address of the allowed region. */
	cr_expect_eq(vt_run_setup("ldxdw %r2, [%r1]\nldxdw %r0, [%r2]\nexit\n", setup_allow_region,
				  ctx, sizeof(ctx)),
		     0x1122334455667788);
	cr_expect_eq(last_check.addr, (uintptr_t)allowed);
	cr_expect_eq(last_check.len, 8);
	cr_expect_not(last_check.write);

	vt_run_setup("ldxdw %r2, [%r1]\nmov %r3, 99\nstxh [%r2+8], %r3\nexit\n", setup_allow_region,
		     ctx, sizeof(ctx));
	cr_expect_eq(allowed[1], 99);
	cr_expect_eq(last_check.addr, (uintptr_t)allowed + 8);
	cr_expect_eq(last_check.len, 2);
	cr_expect(last_check.write);

	/* The stack and the context never need the callback. */
	last_check.calls = 0;
	vt_run_setup("ldxdw %r2, [%r1]\nstdw [%r10-8], 1\nldxdw %r0, [%r10-8]\nexit\n",
		     setup_allow_region, ctx, sizeof(ctx));
	cr_expect_eq(last_check.calls, 0);

	/* One byte past the region is refused by the callback, so the run faults. */
	cr_expect_eq(vt_exec_fault("ldxdw %r2, [%r1]\nldxdw %r0, [%r2+9]\nexit\n",
				   setup_allow_region, ctx, sizeof(ctx), &fault),
		     -EFAULT);
	cr_expect_eq(fault.pc, 1);
	cr_expect(strstr(fault.msg, "insn 1:"), "message: %s", fault.msg);
}

static void setup_allow_all(struct vm *vm)
{
	cr_assert_eq(vm__set_mem_check(vm, vm_mem_allow_all, NULL), 0);
}

/* The check for verifier-accepted programs lets them reach any memory they are given. */
Test(vm_mem, mem_allow_all, .timeout = 10)
{
	static uint32_t outside = 0x01020304;
	uint64_t ctx[1] = { (uintptr_t)&outside };

	cr_expect_eq(vt_run_setup("ldxdw %r2, [%r1]\nldxw %r0, [%r2]\nstw [%r2], 7\nexit\n",
				  setup_allow_all, ctx, sizeof(ctx)),
		     0x01020304);
	cr_expect_eq(outside, 7);
}

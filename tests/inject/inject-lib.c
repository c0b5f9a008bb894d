// SPDX-License-Identifier: MIT
/*
 * The library the inject tests load into their targets: its constructor
 * clobbers vector registers on purpose (as dlopen itself does), so a
 * target that sees its own XMM/YMM values change proves we did not restore
 * them.
 */
__attribute__((constructor)) static void clobber(void)
{
	__asm__ volatile("vpcmpeqb %%ymm0, %%ymm0, %%ymm0\n\t"
			 "vpcmpeqb %%ymm7, %%ymm7, %%ymm7\n\t"
			 "vpcmpeqb %%ymm15, %%ymm15, %%ymm15" ::: "xmm0", "xmm7", "xmm15");
}

// SPDX-License-Identifier: MIT
/*
 * Choosing how to hook an instruction, and relocating the instructions a
 * hook displaces. Three ways, in order of preference:
 *  - HOOK_DIRECT: the first instruction is 5 bytes or more; the jump sits
 *    inside it, so a kernel breakpoint written later at the address still
 *    resumes at the next instruction, which we leave alone.
 *  - HOOK_CAVE: the first instruction has at least 2 bytes and the padding
 *    before the function holds 5: a 2-byte jump inside the first
 *    instruction leads to a 5-byte jump in the padding.
 *  - HOOK_AFTER: the first instruction is one whose effect we can replay
 *    (push, endbr64, nop, sub/add rsp): the jump goes right after it, over
 *    whole instructions (and the padding after a final ret or jmp), checked
 *    against every branch of the function that could land inside.
 */
#include <capstone/capstone.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "capstone-load.h"
#include "hook-private.h"
#include "text-patch.h"

static int fail(char *err, int e, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(char *err, int e, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, HOOK_ERRMSG_SIZE, fmt, ap);
	va_end(ap);
	return -e;
}

/* capstone's functions, once a plan opened it */
static const struct capstone *cs_lib;

static int open_capstone(csh *cs, char *err)
{
	cs_lib = capstone_get(err, HOOK_ERRMSG_SIZE);
	if (!cs_lib)
		return -ENOENT;
	if (cs_lib->open(CS_ARCH_X86, CS_MODE_64, cs) != CS_ERR_OK) {
		snprintf(err, HOOK_ERRMSG_SIZE, "capstone cannot decode x86-64");
		return -ENOMEM;
	}
	cs_lib->option(*cs, CS_OPT_DETAIL, CS_OPT_ON);
	return 0;
}

/* Code as it was before anyone patched it: memory, with the site's original bytes on top. */
static int read_code(const struct hook_site *site, uint64_t addr, uint8_t *buf, size_t len)
{
	int r = text_peek(addr, buf, len);

	if (r < 0)
		return r;
	for (size_t i = 0; i < len; i++)
		if (addr + i >= site->addr && addr + i < site->addr + site->orig_len)
			buf[i] = site->orig[addr + i - site->addr];
	return 0;
}

static bool is_padding(const uint8_t *p, size_t len, csh cs)
{
	cs_insn *insn = cs_lib->malloc(cs);
	const uint8_t *code = p;
	size_t left = len;
	uint64_t at = 0;
	bool ok = true;

	while (ok && left) {
		if (*code == 0xcc) {
			code++;
			left--;
			continue;
		}
		ok = cs_lib->disasm_iter(cs, &code, &left, &at, insn) && insn->id == X86_INS_NOP;
	}
	cs_lib->free(insn, 1);
	return ok;
}

/* The immediate target of a relative jump or call, if insn is one. */
static bool branch_target(csh cs, const cs_insn *insn, uint64_t *target)
{
	const cs_x86 *x = &insn->detail->x86;

	if (!cs_lib->insn_group(cs, insn, CS_GRP_JUMP) && !cs_lib->insn_group(cs, insn, CS_GRP_CALL))
		return false;
	if (x->op_count != 1 || x->operands[0].type != X86_OP_IMM)
		return false;
	*target = (uint64_t)x->operands[0].imm;
	return true;
}

static bool is_unconditional_exit(const cs_insn *insn)
{
	return insn->id == X86_INS_RET || insn->id == X86_INS_JMP || insn->id == X86_INS_UD2 ||
	       insn->id == X86_INS_INT3;
}

/* The stack pointer change of an instruction we can replay, or false. */
static bool replayable(const cs_insn *insn, int64_t *sp_adjust)
{
	const cs_x86 *x = &insn->detail->x86;

	*sp_adjust = 0;
	switch (insn->id) {
	case X86_INS_ENDBR64:
	case X86_INS_NOP:
		return true;
	case X86_INS_PUSH:
		/* push r64: the value pushed is the register, which stays as it was */
		if (x->op_count == 1 && x->operands[0].type == X86_OP_REG && x->operands[0].size == 8) {
			*sp_adjust = 8;
			return true;
		}
		return false;
	case X86_INS_SUB:
	case X86_INS_ADD:
		if (x->op_count == 2 && x->operands[0].type == X86_OP_REG &&
		    x->operands[0].reg == X86_REG_RSP && x->operands[1].type == X86_OP_IMM) {
			*sp_adjust = insn->id == X86_INS_SUB ? x->operands[1].imm : -x->operands[1].imm;
			return true;
		}
		return false;
	default:
		return false;
	}
}

/* No branch of the function may land strictly inside [from, to). */
static int check_branches(const struct hook_site *site, csh cs, uint64_t from, uint64_t to,
			  char *err)
{
	uint8_t code[4096];
	size_t len = site->func_end - site->func_start;
	const uint8_t *p = code;
	uint64_t at = site->func_start, target;
	cs_insn *insn;
	int r = 0;

	if (len > sizeof(code))
		return fail(err, E2BIG, "function at 0x%llx is too long (%zu bytes) to check",
			    (unsigned long long)site->func_start, len);
	r = read_code(site, site->func_start, code, len);
	if (r < 0)
		return fail(err, -r, "cannot read the function at 0x%llx",
			    (unsigned long long)site->func_start);
	insn = cs_lib->malloc(cs);
	while (len && r == 0) {
		if (!cs_lib->disasm_iter(cs, &p, &len, &at, insn)) {
			/* Data or an instruction capstone does not know: skip a byte. */
			p++;
			len--;
			at++;
			continue;
		}
		if (branch_target(cs, insn, &target) && target > from && target < to)
			r = fail(err, EINVAL,
				 "the branch at 0x%llx lands at 0x%llx, inside the bytes a hook "
				 "would replace",
				 (unsigned long long)insn->address, (unsigned long long)target);
	}
	cs_lib->free(insn, 1);
	return r;
}

static int plan_after(const struct hook_site *site, csh cs, const cs_insn *first,
		      struct hook_plan *plan, char *err)
{
	uint64_t at = site->addr + first->size, end;
	const uint8_t *p = site->orig + first->size;
	size_t left = site->orig_len - first->size, covered = 0;
	cs_insn *insn;
	bool exited = false;
	int r;

	if (!replayable(first, &plan->sp_adjust))
		return fail(err, ENOTSUP,
			    "the first instruction (%s %s, %u bytes) is shorter than a jump and "
			    "its effect cannot be replayed",
			    first->mnemonic, first->op_str, first->size);
	if (!site->func_end)
		return fail(err, ENOTSUP, "hooking after the first instruction needs the function's "
					  "bounds, and they are unknown");
	insn = cs_lib->malloc(cs);
	while (covered < JMP_REL32_LEN) {
		if (exited) {
			/* After ret/jmp only padding up to the next symbol may be replaced. */
			uint8_t pad[JMP_REL32_LEN];
			size_t need = JMP_REL32_LEN - covered;

			end = site->next_start ? site->next_start : site->func_end;
			if (at + need > end || text_peek(at, pad, need) < 0 ||
			    !is_padding(pad, need, cs)) {
				cs_lib->free(insn, 1);
				return fail(err, ENOTSUP, "the function ends before there is room for "
							  "a jump after its first instruction");
			}
			covered = JMP_REL32_LEN;
			break;
		}
		if (at >= site->func_end ||
		    !cs_lib->disasm_iter(cs, &p, &left, &at, insn)) {
			cs_lib->free(insn, 1);
			return fail(err, ENOTSUP, "cannot decode enough whole instructions after the "
						  "first one");
		}
		covered += insn->size;
		exited = is_unconditional_exit(insn);
	}
	cs_lib->free(insn, 1);

	plan->strategy = HOOK_AFTER;
	plan->patch_addr = site->addr + first->size;
	plan->patch_len = covered;
	plan->reloc_addr = plan->patch_addr;
	plan->resume_addr = plan->patch_addr + covered;
	/* Only the instructions are run out of line, not the padding after an exit. */
	plan->reloc_len = (size_t)(at - plan->patch_addr);
	if (plan->reloc_len > covered)
		plan->reloc_len = covered;
	r = read_code(site, plan->patch_addr, plan->patch_orig, plan->patch_len);
	if (r == 0)
		memcpy(plan->reloc, plan->patch_orig, plan->reloc_len);
	if (r == 0)
		r = check_branches(site, cs, plan->patch_addr, plan->patch_addr + plan->patch_len,
				   err);
	return r;
}

static int plan_cave(const struct hook_site *site, csh cs, const cs_insn *first,
		     struct hook_plan *plan)
{
	uint8_t pad[256];
	uint64_t cave;
	size_t len;

	if (first->size < JMP_REL8_LEN || !site->prev_end || site->prev_end >= site->func_start ||
	    site->func_start != site->addr)
		return -ENOENT;
	/*
	 * All of [prev_end, addr) must be padding, decoded from its start as
	 * the assembler laid it out (multi-byte nops); the cave is its last 5
	 * bytes, in reach of a rel8 jump from addr + 2.
	 */
	len = (size_t)(site->addr - site->prev_end);
	if (len < JMP_REL32_LEN || len > sizeof(pad) || text_peek(site->prev_end, pad, len) < 0 ||
	    !is_padding(pad, len, cs))
		return -ENOENT;
	cave = site->addr - JMP_REL32_LEN;
	plan->strategy = HOOK_CAVE;
	plan->patch_addr = cave;
	plan->patch_len = JMP_REL32_LEN;
	memcpy(plan->patch_orig, pad + (cave - site->prev_end), JMP_REL32_LEN);
	plan->entry_addr = site->addr;
	memcpy(plan->entry_orig, site->orig, JMP_REL8_LEN);
	plan->reloc_addr = site->addr;
	plan->reloc_len = first->size;
	memcpy(plan->reloc, site->orig, first->size);
	plan->resume_addr = site->addr + first->size;
	return 0;
}

int hook_plan(const struct hook_site *site, struct hook_plan *plan, char err[HOOK_ERRMSG_SIZE])
{
	const uint8_t *p = site->orig;
	size_t left = site->orig_len;
	uint64_t at = site->addr;
	cs_insn *first;
	csh cs;
	int r;

	memset(plan, 0, sizeof(*plan));
	if (site->orig_len < JMP_REL32_LEN || site->orig_len > HOOK_MAX_ORIG)
		return fail(err, EINVAL, "need %d to %d original bytes of the site, got %zu",
			    JMP_REL32_LEN, HOOK_MAX_ORIG, site->orig_len);
	r = open_capstone(&cs, err);
	if (r < 0)
		return r;
	first = cs_lib->malloc(cs);
	if (!cs_lib->disasm_iter(cs, &p, &left, &at, first)) {
		r = fail(err, EINVAL, "cannot decode the instruction at 0x%llx",
			 (unsigned long long)site->addr);
		goto out;
	}
	if (first->size >= JMP_REL32_LEN) {
		plan->strategy = HOOK_DIRECT;
		plan->patch_addr = site->addr;
		plan->patch_len = JMP_REL32_LEN;
		memcpy(plan->patch_orig, site->orig, JMP_REL32_LEN);
		plan->reloc_addr = site->addr;
		plan->reloc_len = first->size;
		memcpy(plan->reloc, site->orig, first->size);
		plan->resume_addr = site->addr + first->size;
		r = 0;
	} else if (plan_cave(site, cs, first, plan) == 0) {
		r = 0;
	} else {
		r = plan_after(site, cs, first, plan, err);
	}
out:
	cs_lib->free(first, 1);
	cs_lib->close(&cs);
	return r;
}

static size_t emit_rel32(uint8_t *out, const uint8_t *opcode, size_t oplen, uint64_t at,
			 uint64_t target)
{
	int32_t rel = (int32_t)(target - (at + oplen + 4));

	memcpy(out, opcode, oplen);
	memcpy(out + oplen, &rel, 4);
	return oplen + 4;
}

static bool fits_rel32(uint64_t from_end, uint64_t target)
{
	int64_t d = (int64_t)(target - from_end);

	return d >= INT32_MIN && d <= INT32_MAX;
}

/* An instruction with a rip-relative operand, its displacement moved to run at `at`. */
static int relocate_riprel(csh cs, const cs_insn *insn, const cs_x86_op *mem, uint64_t at,
			   uint8_t *out, char *err)
{
	int64_t disp = mem->mem.disp;
	int64_t new_disp = disp + (int64_t)(insn->address - at);
	int32_t want = (int32_t)disp, nd = (int32_t)new_disp;
	cs_insn *check = cs_lib->malloc(cs);
	bool done = false;

	if (new_disp < INT32_MIN || new_disp > INT32_MAX) {
		cs_lib->free(check, 1);
		return fail(err, ERANGE, "rip-relative operand at 0x%llx is out of reach",
			    (unsigned long long)insn->address);
	}
	/* Find the displacement in the encoding: patch each match and let capstone confirm. */
	for (size_t k = 1; k + 4 <= insn->size && !done; k++) {
		const uint8_t *p = out;
		size_t left = insn->size;
		uint64_t a = at;

		memcpy(out, insn->bytes, insn->size);
		if (memcmp(out + k, &want, 4))
			continue;
		memcpy(out + k, &nd, 4);
		if (cs_lib->disasm_iter(cs, &p, &left, &a, check) && check->size == insn->size &&
		    check->id == insn->id)
			for (int i = 0; i < check->detail->x86.op_count; i++)
				if (check->detail->x86.operands[i].type == X86_OP_MEM &&
				    check->detail->x86.operands[i].mem.base == X86_REG_RIP &&
				    check->detail->x86.operands[i].mem.disp == new_disp)
					done = true;
	}
	cs_lib->free(check, 1);
	if (!done)
		return fail(err, ENOTSUP, "cannot relocate the rip-relative %s at 0x%llx",
			    insn->mnemonic, (unsigned long long)insn->address);
	return (int)insn->size;
}

static int relocate_one(csh cs, const cs_insn *insn, uint64_t at, uint8_t *out, char *err)
{
	const cs_x86 *x = &insn->detail->x86;
	uint64_t target;

	if (branch_target(cs, insn, &target)) {
		uint8_t op[2] = { 0xe9 };
		size_t oplen = 1;

		if (insn->id == X86_INS_CALL) {
			op[0] = 0xe8;
		} else if ((insn->bytes[0] & 0xf0) == 0x70 ||
			   (insn->bytes[0] == 0x0f && (insn->bytes[1] & 0xf0) == 0x80)) {
			/* jcc: short form 7x, near form 0f 8x; the condition is the low nibble */
			op[0] = 0x0f;
			op[1] = (uint8_t)(0x80 | (insn->bytes[0] == 0x0f ? insn->bytes[1] & 0xf
									 : insn->bytes[0] & 0xf));
			oplen = 2;
		} else if (insn->id != X86_INS_JMP) {
			/* loop, jrcxz: no rel32 form */
			return fail(err, ENOTSUP, "cannot relocate %s at 0x%llx", insn->mnemonic,
				    (unsigned long long)insn->address);
		}
		if (!fits_rel32(at + oplen + 4, target))
			return fail(err, ERANGE, "branch at 0x%llx is out of reach",
				    (unsigned long long)insn->address);
		return (int)emit_rel32(out, op, oplen, at, target);
	}
	for (int i = 0; i < x->op_count; i++)
		if (x->operands[i].type == X86_OP_MEM && x->operands[i].mem.base == X86_REG_RIP)
			return relocate_riprel(cs, insn, &x->operands[i], at, out, err);
	memcpy(out, insn->bytes, insn->size);
	return (int)insn->size;
}

int hook_relocate(const struct hook_plan *plan, uint64_t at, uint8_t *out, size_t cap,
		  char err[HOOK_ERRMSG_SIZE])
{
	const uint8_t *p = plan->reloc;
	size_t left = plan->reloc_len, used = 0;
	uint64_t addr = plan->reloc_addr;
	cs_insn *insn;
	csh cs;
	int r = 0;

	r = open_capstone(&cs, err);
	if (r < 0)
		return r;
	insn = cs_lib->malloc(cs);
	while (left && r >= 0) {
		if (!cs_lib->disasm_iter(cs, &p, &left, &addr, insn)) {
			r = fail(err, EINVAL, "cannot decode the displaced instruction at 0x%llx",
				 (unsigned long long)addr);
			break;
		}
		if (cap - used < 16) {
			r = fail(err, E2BIG, "displaced instructions do not fit the trampoline");
			break;
		}
		r = relocate_one(cs, insn, at + used, out + used, err);
		if (r > 0)
			used += (size_t)r;
	}
	cs_lib->free(insn, 1);
	cs_lib->close(&cs);
	return r < 0 ? r : (int)used;
}

// SPDX-License-Identifier: MIT
/*
 * Assembler for the conformance corpus syntax (see asm.h). One pass encodes
 * every line and records label references; a final pass resolves them.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asm.h"

#define MAX_TOKENS 8
#define MAX_NAME 64

struct label {
	char name[MAX_NAME];
	size_t pc;
};

/* A label used by an instruction; resolved once every label is known. */
struct fixup {
	char name[MAX_NAME];
	size_t pc;
	unsigned int line;
	bool in_imm; /* call local, ja32 and lddw func() keep the target in imm */
};

struct assembler {
	const struct asm_maps *maps;
	struct ebpf_insn *insns;
	size_t cnt, cap;
	struct label *labels;
	size_t nlabels, cap_labels;
	struct fixup *fixups;
	size_t nfixups, cap_fixups;
	ssize_t first_exit;
	unsigned int line;
	char *err;
};

static int fail(struct assembler *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(struct assembler *a, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(a->err, ASM_ERRMSG_SIZE, "line %u: ", a->line);

	va_start(ap, fmt);
	vsnprintf(a->err + n, ASM_ERRMSG_SIZE - (size_t)n, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static int grow(void **buf, size_t *cap, size_t need, size_t elem)
{
	size_t ncap;
	void *p;

	if (need <= *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 64;
	while (ncap < need)
		ncap *= 2;
	p = realloc(*buf, ncap * elem);
	if (!p)
		return -ENOMEM;
	*buf = p;
	*cap = ncap;
	return 0;
}

static struct ebpf_insn *emit(struct assembler *a, uint8_t code, unsigned int dst,
			      unsigned int src, int16_t off, int32_t imm)
{
	if (grow((void **)&a->insns, &a->cap, a->cnt + 1, sizeof(*a->insns)) < 0)
		return NULL;
	a->insns[a->cnt] = (struct ebpf_insn){
		.code = code, .dst = dst & 0xf, .src = src & 0xf, .off = off, .imm = imm
	};
	return &a->insns[a->cnt++];
}

static int add_fixup(struct assembler *a, const char *name, bool in_imm)
{
	if (strlen(name) >= MAX_NAME)
		return fail(a, "label '%s' is too long", name);
	if (grow((void **)&a->fixups, &a->cap_fixups, a->nfixups + 1, sizeof(*a->fixups)) < 0)
		return -ENOMEM;
	a->fixups[a->nfixups] = (struct fixup){ .pc = a->cnt, .line = a->line, .in_imm = in_imm };
	strcpy(a->fixups[a->nfixups].name, name);
	a->nfixups++;
	return 0;
}

static int add_label(struct assembler *a, const char *name)
{
	if (!*name || strlen(name) >= MAX_NAME)
		return fail(a, "bad label '%s'", name);
	for (size_t i = 0; i < a->nlabels; i++)
		if (!strcmp(a->labels[i].name, name))
			return fail(a, "label '%s' is defined twice", name);
	if (grow((void **)&a->labels, &a->cap_labels, a->nlabels + 1, sizeof(*a->labels)) < 0)
		return -ENOMEM;
	strcpy(a->labels[a->nlabels].name, name);
	a->labels[a->nlabels++].pc = a->cnt;
	return 0;
}

static bool parse_reg(const char *tok, unsigned int *reg)
{
	char *end;
	unsigned long n;

	if (*tok == '%')
		tok++;
	if (*tok != 'r' || !isdigit((unsigned char)tok[1]))
		return false;
	n = strtoul(tok + 1, &end, 10);
	if (*end || n > 15)
		return false;
	*reg = (unsigned int)n;
	return true;
}

/* Decimal or 0x hex, optionally signed; negative values wrap like the corpus. */
static bool parse_num(const char *tok, uint64_t *val)
{
	bool neg = false;
	const char *p = tok;
	char *end;

	if (*p == '+' || *p == '-')
		neg = *p++ == '-';
	if (!isdigit((unsigned char)*p))
		return false;
	errno = 0;
	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
		*val = strtoull(p + 2, &end, 16);
	else
		*val = strtoull(p, &end, 10);
	if (*end || errno || (p[0] == '0' && (p[1] == 'x' || p[1] == 'X') && !p[2]))
		return false;
	if (neg)
		*val = 0 - *val;
	return true;
}

static int parse_imm32(struct assembler *a, const char *tok, int32_t *imm)
{
	uint64_t v;

	*imm = 0;
	if (!parse_num(tok, &v))
		return fail(a, "'%s' is not a number", tok);
	*imm = (int32_t)(uint32_t)v;
	return 0;
}

/* [%rN], [%rN+off] or [%rN-off] */
static int parse_mem(struct assembler *a, const char *tok, unsigned int *reg, int16_t *off)
{
	char buf[64], *sign;
	size_t len = strlen(tok);
	uint64_t v = 0;

	if (len < 3 || len >= sizeof(buf) || tok[0] != '[' || tok[len - 1] != ']')
		return fail(a, "'%s' is not a memory operand like [%%r1+8]", tok);
	memcpy(buf, tok + 1, len - 2);
	buf[len - 2] = 0;
	sign = strpbrk(buf, "+-");
	if (sign) {
		if (!parse_num(sign, &v))
			return fail(a, "bad offset in '%s'", tok);
		*sign = 0;
	}
	if (!parse_reg(buf, reg))
		return fail(a, "bad register in '%s'", tok);
	*off = (int16_t)(uint16_t)v;
	return 0;
}

/* +N / -N relative to the next instruction, or a label. */
static int parse_target(struct assembler *a, const char *tok, bool in_imm, int32_t *rel)
{
	uint64_t v;

	*rel = 0;
	if ((*tok == '+' || *tok == '-') && parse_num(tok, &v)) {
		*rel = (int32_t)(uint32_t)v;
		return 0;
	}
	if (!isalpha((unsigned char)*tok) && *tok != '_' && *tok != '.')
		return fail(a, "'%s' is not a label or +N/-N offset", tok);
	return add_fixup(a, tok, in_imm);
}

static int want(struct assembler *a, int ntok, int n, const char *mnem, const char *usage)
{
	if (ntok != n)
		return fail(a, "%s takes %s", mnem, usage);
	return 0;
}

static const char *const alu_names[16] = {
	"add", "sub", "mul", "div", "or", "and", "lsh", "rsh",
	"neg", "mod", "xor", "mov", "arsh", NULL, NULL, NULL,
};

static const char *const jmp_names[16] = {
	"ja",  "jeq",  "jgt",  "jge",  "jset", "jne",  "jsgt", "jsge",
	NULL, NULL, "jlt", "jle", "jslt", "jsle", NULL, NULL,
};

static int lookup(const char *const *names, const char *name, size_t len)
{
	for (int i = 0; i < 16; i++)
		if (names[i] && strlen(names[i]) == len && !strncmp(names[i], name, len))
			return i;
	return -1;
}

/* Splits "name32"/"name64"/"name" into base length and 32-bit flag. */
static size_t split_width(const char *m, bool *is32)
{
	size_t len = strlen(m);

	*is32 = false;
	if (len > 2 && !strcmp(m + len - 2, "32")) {
		*is32 = true;
		return len - 2;
	}
	if (len > 2 && !strcmp(m + len - 2, "64"))
		return len - 2;
	return len;
}

static int asm_alu(struct assembler *a, char **tok, int n, int opi, bool is32, int16_t off)
{
	uint8_t cls = is32 ? EBPF_CLS_ALU : EBPF_CLS_ALU64;
	unsigned int dst, src;
	int32_t imm;
	int r;

	if (opi == EBPF_NEG >> 4) {
		if ((r = want(a, n, 2, tok[0], "one register")) < 0)
			return r;
		if (!parse_reg(tok[1], &dst))
			return fail(a, "'%s' is not a register", tok[1]);
		return emit(a, cls | EBPF_NEG, dst, 0, 0, 0) ? 0 : -ENOMEM;
	}
	if ((r = want(a, n, 3, tok[0], "a register and a register or immediate")) < 0)
		return r;
	if (!parse_reg(tok[1], &dst))
		return fail(a, "'%s' is not a register", tok[1]);
	if (parse_reg(tok[2], &src))
		return emit(a, cls | (uint8_t)(opi << 4) | EBPF_X, dst, src, off, 0) ? 0 : -ENOMEM;
	if ((r = parse_imm32(a, tok[2], &imm)) < 0)
		return r;
	return emit(a, cls | (uint8_t)(opi << 4) | EBPF_K, dst, 0, off, imm) ? 0 : -ENOMEM;
}

static int asm_movsx(struct assembler *a, char **tok, int n)
{
	static const struct {
		const char *name;
		uint8_t cls;
		int16_t off;
	} forms[] = {
		{ "movsx832", EBPF_CLS_ALU, 8 },    { "movsx1632", EBPF_CLS_ALU, 16 },
		{ "movsx864", EBPF_CLS_ALU64, 8 },  { "movsx1664", EBPF_CLS_ALU64, 16 },
		{ "movsx3264", EBPF_CLS_ALU64, 32 },
	};
	unsigned int dst, src;
	int r;

	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		if (strcmp(tok[0], forms[i].name))
			continue;
		if ((r = want(a, n, 3, tok[0], "two registers")) < 0)
			return r;
		if (!parse_reg(tok[1], &dst) || !parse_reg(tok[2], &src))
			return fail(a, "%s takes two registers", tok[0]);
		return emit(a, forms[i].cls | EBPF_MOV | EBPF_X, dst, src, forms[i].off, 0)
			       ? 0
			       : -ENOMEM;
	}
	return fail(a, "unknown mnemonic '%s'", tok[0]);
}

static int asm_end(struct assembler *a, char **tok, int n, uint8_t code, const char *width)
{
	unsigned int dst;
	int r;

	if (strcmp(width, "16") && strcmp(width, "32") && strcmp(width, "64"))
		return fail(a, "unknown mnemonic '%s'", tok[0]);
	if ((r = want(a, n, 2, tok[0], "one register")) < 0)
		return r;
	if (!parse_reg(tok[1], &dst))
		return fail(a, "'%s' is not a register", tok[1]);
	return emit(a, code, dst, 0, 0, atoi(width)) ? 0 : -ENOMEM;
}

static int asm_jmp(struct assembler *a, char **tok, int n, int opi, bool is32)
{
	uint8_t cls = is32 ? EBPF_CLS_JMP32 : EBPF_CLS_JMP;
	unsigned int dst, src;
	int32_t imm, rel;
	int r;

	if (opi == 0) {
		if ((r = want(a, n, 2, tok[0], "a target")) < 0)
			return r;
		if ((r = parse_target(a, tok[1], is32, &rel)) < 0)
			return r;
		if (is32)
			return emit(a, EBPF_OP_JA32, 0, 0, 0, rel) ? 0 : -ENOMEM;
		return emit(a, EBPF_OP_JA, 0, 0, (int16_t)rel, 0) ? 0 : -ENOMEM;
	}
	if ((r = want(a, n, 4, tok[0], "a register, a register or immediate, and a target")) < 0)
		return r;
	if (!parse_reg(tok[1], &dst))
		return fail(a, "'%s' is not a register", tok[1]);
	if ((r = parse_target(a, tok[3], false, &rel)) < 0)
		return r;
	if (parse_reg(tok[2], &src))
		return emit(a, cls | (uint8_t)(opi << 4) | EBPF_X, dst, src, (int16_t)rel, 0)
			       ? 0
			       : -ENOMEM;
	if ((r = parse_imm32(a, tok[2], &imm)) < 0)
		return r;
	return emit(a, cls | (uint8_t)(opi << 4) | EBPF_K, dst, 0, (int16_t)rel, imm) ? 0
										       : -ENOMEM;
}

static int size_code(const char *s, bool allow_dw, uint8_t *size)
{
	if (!strcmp(s, "b"))
		*size = EBPF_B;
	else if (!strcmp(s, "h"))
		*size = EBPF_H;
	else if (!strcmp(s, "w"))
		*size = EBPF_W;
	else if (allow_dw && !strcmp(s, "dw"))
		*size = EBPF_DW;
	else
		return -1;
	return 0;
}

static int asm_mem(struct assembler *a, char **tok, int n)
{
	const char *m = tok[0];
	unsigned int reg, base;
	uint8_t size;
	int16_t off;
	int32_t imm;
	int r;

	if ((r = want(a, n, 3, m, "two operands")) < 0)
		return r;
	if (!strncmp(m, "ldxs", 4) && !size_code(m + 4, false, &size)) {
		if (!parse_reg(tok[1], &reg))
			return fail(a, "'%s' is not a register", tok[1]);
		if ((r = parse_mem(a, tok[2], &base, &off)) < 0)
			return r;
		return emit(a, EBPF_CLS_LDX | EBPF_MEMSX | size, reg, base, off, 0) ? 0 : -ENOMEM;
	}
	if (!strncmp(m, "ldx", 3) && !size_code(m + 3, true, &size)) {
		if (!parse_reg(tok[1], &reg))
			return fail(a, "'%s' is not a register", tok[1]);
		if ((r = parse_mem(a, tok[2], &base, &off)) < 0)
			return r;
		return emit(a, EBPF_CLS_LDX | EBPF_MEM | size, reg, base, off, 0) ? 0 : -ENOMEM;
	}
	if (!strncmp(m, "stx", 3) && !size_code(m + 3, true, &size)) {
		if ((r = parse_mem(a, tok[1], &base, &off)) < 0)
			return r;
		if (!parse_reg(tok[2], &reg))
			return fail(a, "'%s' is not a register", tok[2]);
		return emit(a, EBPF_CLS_STX | EBPF_MEM | size, base, reg, off, 0) ? 0 : -ENOMEM;
	}
	if (!strncmp(m, "st", 2) && !size_code(m + 2, true, &size)) {
		if ((r = parse_mem(a, tok[1], &base, &off)) < 0)
			return r;
		if ((r = parse_imm32(a, tok[2], &imm)) < 0)
			return r;
		return emit(a, EBPF_CLS_ST | EBPF_MEM | size, base, 0, off, imm) ? 0 : -ENOMEM;
	}
	return fail(a, "unknown mnemonic '%s'", m);
}

/* lock [fetch] add|or|and|xor[32] [dst+off], src; lock xchg|cmpxchg[32] ... */
static int asm_lock(struct assembler *a, char **tok, int n)
{
	static const struct {
		const char *name;
		int32_t imm;
	} ops[] = {
		{ "add", EBPF_ADD },	{ "or", EBPF_OR },	    { "and", EBPF_AND },
		{ "xor", EBPF_XOR },	{ "xchg", EBPF_XCHG },	    { "cmpxchg", EBPF_CMPXCHG },
	};
	bool fetch = n > 1 && !strcmp(tok[1], "fetch");
	int i = fetch ? 2 : 1;
	unsigned int base, src;
	size_t len;
	bool is32;
	int16_t off;
	int r;

	if (n != i + 3)
		return fail(a, "lock takes [fetch] OP [reg+off], reg");
	len = split_width(tok[i], &is32);
	for (size_t k = 0; k < sizeof(ops) / sizeof(ops[0]); k++) {
		if (strlen(ops[k].name) != len || strncmp(ops[k].name, tok[i], len))
			continue;
		if (fetch && (ops[k].imm & EBPF_FETCH))
			return fail(a, "lock fetch %s: %s always fetches", tok[i], ops[k].name);
		if ((r = parse_mem(a, tok[i + 1], &base, &off)) < 0)
			return r;
		if (!parse_reg(tok[i + 2], &src))
			return fail(a, "'%s' is not a register", tok[i + 2]);
		return emit(a, EBPF_CLS_STX | EBPF_ATOMIC | (is32 ? EBPF_W : EBPF_DW), base, src,
			    off, ops[k].imm | (fetch ? EBPF_FETCH : 0))
			       ? 0
			       : -ENOMEM;
	}
	return fail(a, "unknown atomic operation '%s'", tok[i]);
}

/* call N | call helper N | call NAME | call local L | call runtime N | call %rN */
static int asm_call(struct assembler *a, char **tok, int n)
{
	unsigned int reg;
	int32_t imm;
	int r;

	if (n == 3 && !strcmp(tok[1], "local")) {
		if ((r = parse_target(a, tok[2], true, &imm)) < 0)
			return r;
		return emit(a, EBPF_OP_CALL, 0, EBPF_PSEUDO_CALL_LOCAL, 0, imm) ? 0 : -ENOMEM;
	}
	if (n == 3 && (!strcmp(tok[1], "runtime") || !strcmp(tok[1], "helper"))) {
		if ((r = parse_imm32(a, tok[2], &imm)) < 0)
			return r;
		return emit(a, EBPF_OP_CALL, 0,
			    tok[1][0] == 'r' ? EBPF_PSEUDO_CALL_KFUNC : EBPF_PSEUDO_CALL_HELPER, 0,
			    imm)
			       ? 0
			       : -ENOMEM;
	}
	if ((r = want(a, n, 2, tok[0], "a helper id, a helper name or a register")) < 0)
		return r;
	if (parse_reg(tok[1], &reg))
		return emit(a, EBPF_OP_CALLX, reg, 0, 0, 0) ? 0 : -ENOMEM;
	if (!strcmp(tok[0], "callx"))
		return fail(a, "callx takes a register");
	if (isalpha((unsigned char)tok[1][0])) {
		int id = asm__helper_id(tok[1]);

		if (id < 0)
			return fail(a, "unknown helper '%s'", tok[1]);
		return emit(a, EBPF_OP_CALL, 0, 0, 0, id) ? 0 : -ENOMEM;
	}
	if ((r = parse_imm32(a, tok[1], &imm)) < 0)
		return r;
	return emit(a, EBPF_OP_CALL, 0, 0, 0, imm) ? 0 : -ENOMEM;
}

/* Parses "name(arg[, arg])" into name and up to two argument strings. */
static int split_call(char *s, char **name, char **arg1, char **arg2)
{
	char *open = strchr(s, '('), *close = strrchr(s, ')'), *comma;

	if (!open || !close || close < open || close[1])
		return -1;
	*open = 0;
	*close = 0;
	*name = s;
	*arg1 = open + 1;
	comma = strchr(*arg1, ',');
	*arg2 = NULL;
	if (comma) {
		*comma = 0;
		*arg2 = comma + 1;
	}
	return 0;
}

static int map_index(struct assembler *a, const char *name, int32_t *idx)
{
	for (size_t i = 0; a->maps && i < a->maps->cnt; i++) {
		if (!strcmp(a->maps->names[i], name)) {
			*idx = (int32_t)i;
			return 0;
		}
	}
	return fail(a, "unknown map '%s'", name);
}

/*
 * lddw %rN, IMM64 or one of the pseudo forms: map_by_fd(NAME), map_fd(N),
 * map_value(N, OFF), btf_id(N), func(LABEL), map_idx(N), map_idx_value(N, OFF).
 */
static int asm_lddw(struct assembler *a, char **tok, int n)
{
	static const struct {
		const char *name;
		unsigned int src;
		int args;
	} forms[] = {
		{ "map_fd", EBPF_PSEUDO_MAP_FD, 1 },	  { "map_value", EBPF_PSEUDO_MAP_VALUE, 2 },
		{ "btf_id", EBPF_PSEUDO_BTF_ID, 1 },	  { "func", EBPF_PSEUDO_FUNC, 1 },
		{ "map_idx", EBPF_PSEUDO_MAP_IDX, 1 },	  { "map_idx_value", EBPF_PSEUDO_MAP_IDX_VALUE, 2 },
		{ "map_by_fd", EBPF_PSEUDO_MAP_FD, 1 },
	};
	char *name, *arg1, *arg2;
	int32_t imm = 0, next = 0;
	unsigned int dst;
	uint64_t v;
	int r;

	if ((r = want(a, n, 3, tok[0], "a register and a 64-bit value")) < 0)
		return r;
	if (!parse_reg(tok[1], &dst))
		return fail(a, "'%s' is not a register", tok[1]);
	if (parse_num(tok[2], &v)) {
		if (!emit(a, EBPF_OP_LDDW, dst, 0, 0, (int32_t)(uint32_t)v) ||
		    !emit(a, 0, 0, 0, 0, (int32_t)(uint32_t)(v >> 32)))
			return -ENOMEM;
		return 0;
	}
	if (split_call(tok[2], &name, &arg1, &arg2) < 0)
		return fail(a, "'%s' is not a number or pseudo form like map_fd(3)", tok[2]);
	for (size_t k = 0; k < sizeof(forms) / sizeof(forms[0]); k++) {
		if (strcmp(forms[k].name, name))
			continue;
		if ((forms[k].args == 2) != (arg2 != NULL))
			return fail(a, "%s takes %d argument(s)", name, forms[k].args);
		if (!strcmp(name, "map_by_fd"))
			r = map_index(a, arg1, &imm);
		else if (forms[k].src == EBPF_PSEUDO_FUNC)
			r = parse_target(a, arg1, true, &imm);
		else
			r = parse_imm32(a, arg1, &imm);
		if (r == 0 && arg2)
			r = parse_imm32(a, arg2, &next);
		if (r < 0)
			return r;
		if (!emit(a, EBPF_OP_LDDW, dst, forms[k].src, 0, imm) || !emit(a, 0, 0, 0, 0, next))
			return -ENOMEM;
		return 0;
	}
	return fail(a, "unknown lddw pseudo form '%s'", name);
}

static int asm_insn(struct assembler *a, char **tok, int n)
{
	const char *m = tok[0];
	size_t len;
	bool is32;
	int opi, r;
	uint64_t word;

	if (!strcmp(m, ".insn")) {
		/* A raw instruction word, as in a -- raw section. */
		if ((r = want(a, n, 2, m, "one 64-bit word")) < 0)
			return r;
		if (!parse_num(tok[1], &word))
			return fail(a, "'%s' is not a number", tok[1]);
		return emit(a, (uint8_t)word, (word >> 8) & 0xf, (word >> 12) & 0xf,
			    (int16_t)(uint16_t)(word >> 16), (int32_t)(uint32_t)(word >> 32))
			       ? 0
			       : -ENOMEM;
	}
	if (!strcmp(m, "exit")) {
		if ((r = want(a, n, 1, m, "no operands")) < 0)
			return r;
		if (a->first_exit < 0)
			a->first_exit = (ssize_t)a->cnt;
		return emit(a, EBPF_OP_EXIT, 0, 0, 0, 0) ? 0 : -ENOMEM;
	}
	if (!strcmp(m, "lddw"))
		return asm_lddw(a, tok, n);
	if (!strcmp(m, "call") || !strcmp(m, "callx"))
		return asm_call(a, tok, n);
	if (!strcmp(m, "lock"))
		return asm_lock(a, tok, n);
	if (!strncmp(m, "movsx", 5))
		return asm_movsx(a, tok, n);
	if (!strncmp(m, "le", 2) && isdigit((unsigned char)m[2]))
		return asm_end(a, tok, n, EBPF_CLS_ALU | EBPF_END | EBPF_TO_LE, m + 2);
	if (!strncmp(m, "be", 2) && isdigit((unsigned char)m[2]))
		return asm_end(a, tok, n, EBPF_CLS_ALU | EBPF_END | EBPF_TO_BE, m + 2);
	if (!strncmp(m, "bswap", 5))
		return asm_end(a, tok, n, EBPF_CLS_ALU64 | EBPF_END, m + 5);
	if (!strncmp(m, "swap", 4))
		return asm_end(a, tok, n, EBPF_CLS_ALU64 | EBPF_END, m + 4);
	if (!strncmp(m, "ld", 2) || !strncmp(m, "st", 2))
		return asm_mem(a, tok, n);

	len = split_width(m, &is32);
	if (m[0] == 'j') {
		opi = lookup(jmp_names, m, len);
		if (opi >= 0)
			return asm_jmp(a, tok, n, opi, is32);
	} else if (len == 4 && (!strncmp(m, "sdiv", 4) || !strncmp(m, "smod", 4))) {
		return asm_alu(a, tok, n, m[1] == 'd' ? EBPF_DIV >> 4 : EBPF_MOD >> 4, is32, 1);
	} else {
		opi = lookup(alu_names, m, len);
		if (opi >= 0)
			return asm_alu(a, tok, n, opi, is32, 0);
	}
	return fail(a, "unknown mnemonic '%s'", m);
}

/*
 * Splits a line into tokens at blanks and commas; a bracketed memory operand
 * or a parenthesised pseudo form is one token even if it holds blanks.
 */
static int tokenize(char *line, char **tok)
{
	int n = 0;
	char *p = line, *w;

	while (*p) {
		while (*p && (isspace((unsigned char)*p) || *p == ','))
			p++;
		if (!*p)
			break;
		if (n == MAX_TOKENS)
			return -1;
		tok[n++] = w = p;
		for (int depth = 0; *p && (depth || (!isspace((unsigned char)*p) && *p != ','));
		     p++) {
			if (*p == '[' || *p == '(')
				depth++;
			else if ((*p == ']' || *p == ')') && depth)
				depth--;
			if (!isspace((unsigned char)*p) || !depth)
				*w++ = *p;
		}
		if (*p)
			p++;
		*w = 0;
	}
	return n;
}

static int resolve(struct assembler *a)
{
	for (size_t i = 0; i < a->nfixups; i++) {
		struct fixup *f = &a->fixups[i];
		ssize_t target = -1;
		int64_t rel;

		for (size_t k = 0; k < a->nlabels; k++)
			if (!strcmp(a->labels[k].name, f->name))
				target = (ssize_t)a->labels[k].pc;
		if (target < 0 && !strcmp(f->name, "exit"))
			target = a->first_exit;
		a->line = f->line;
		if (target < 0)
			return fail(a, "undefined label '%s'", f->name);
		rel = (int64_t)target - (int64_t)f->pc - 1;
		if (f->in_imm) {
			a->insns[f->pc].imm = (int32_t)rel;
		} else {
			if (rel < INT16_MIN || rel > INT16_MAX)
				return fail(a, "label '%s' is too far for a 16-bit offset", f->name);
			a->insns[f->pc].off = (int16_t)rel;
		}
	}
	return 0;
}

int asm__assemble(const char *text, const struct asm_maps *maps, struct ebpf_insn **insns,
		  size_t *insn_cnt, char err[ASM_ERRMSG_SIZE])
{
	struct assembler a = { .maps = maps, .first_exit = -1, .err = err };
	char *copy = strdup(text), *line, *next, *hash, *tok[MAX_TOKENS];
	int n, r = 0;

	err[0] = 0;
	if (!copy)
		return -ENOMEM;
	for (line = copy; line && r == 0; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		a.line++;
		hash = strchr(line, '#');
		if (hash)
			*hash = 0;
		n = tokenize(line, tok);
		if (n < 0) {
			r = fail(&a, "too many operands");
			break;
		}
		/* "name:" defines a label; an instruction may follow on the same line. */
		if (n > 0 && tok[0][strlen(tok[0]) - 1] == ':') {
			tok[0][strlen(tok[0]) - 1] = 0;
			r = add_label(&a, tok[0]);
			memmove(tok, tok + 1, sizeof(tok[0]) * (size_t)--n);
		}
		if (r == 0 && n > 0)
			r = asm_insn(&a, tok, n);
	}
	if (r == 0)
		r = resolve(&a);
	if (r == 0 && a.cnt == 0)
		r = fail(&a, "no instructions");
	free(copy);
	free(a.labels);
	free(a.fixups);
	if (r < 0) {
		if (r == -ENOMEM && !err[0])
			snprintf(err, ASM_ERRMSG_SIZE, "out of memory");
		free(a.insns);
		return r;
	}
	*insns = a.insns;
	*insn_cnt = a.cnt;
	return 0;
}

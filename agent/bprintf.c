// SPDX-License-Identifier: MIT
/*
 * bpf_bprintf_prepare() and bstr_printf() of the kernel (kernel/bpf/helpers.c,
 * lib/vsprintf.c), redone for the agent: first the format is checked and the
 * arguments captured into a 512-byte binary buffer exactly as the kernel lays
 * it out (so the same strings are truncated and the same formats run out of
 * room), then the text is produced from that buffer.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "bprintf.h"
#include "uaccess.h"

static bool k_isascii(int c)
{
	return c >= 0 && c < 128;
}

static bool k_isspace(int c)
{
	return c == ' ' || (c >= '\t' && c <= '\r');
}

static bool k_isprint(int c)
{
	return c >= 0x20 && c < 0x7f;
}

static bool k_isdigit(int c)
{
	return c >= '0' && c <= '9';
}

static bool k_isalnum(int c)
{
	return k_isdigit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool k_ispunct(int c)
{
	return k_isprint(c) && !k_isalnum(c) && c != ' ';
}

struct bin {
	uint8_t buf[AGENT_BPRINTF_BIN_ARGS];
	size_t pos;
};

static bool kernel_mem(const struct agent_bprintf_mem *mem, uint64_t addr, uint64_t len)
{
	return mem && mem->is_kernel && mem->is_kernel(mem->user, addr, len);
}

/* bpf_trace_copy_string(): strncpy_from_{user,kernel}_nofault into buf (bufsz > 0). */
static long copy_string(char *buf, uint64_t addr, char ptype, size_t bufsz,
			const struct agent_bprintf_mem *mem)
{
	long n;

	buf[0] = 0;
	if (ptype == 'u' || (ptype == 's' && addr < agent_task_size_max))
		return agent_strncpy_from_user(buf, addr, (long)bufsz);
	if (!kernel_mem(mem, addr, 1))
		return agent_kernel_read_error(addr);
	n = agent_uaccess_strncpy(buf, (const char *)(uintptr_t)addr, bufsz);
	if (n < 0) {
		buf[0] = 0;
		return n;
	}
	if ((size_t)n >= bufsz) {
		n = (long)bufsz;
		buf[n - 1] = 0;
	}
	return n;
}

static void ip_format(char *out, size_t sz, char kind, char ver, const uint8_t *ip)
{
	if (ver == '4') {
		snprintf(out, sz, kind == 'I' ? "%u.%u.%u.%u" : "%03u.%03u.%03u.%03u", ip[0], ip[1],
			 ip[2], ip[3]);
		return;
	}
	/* ip6_string(): eight groups of four hex digits, ':'-separated for %pI6. */
	{
		char tmp[48];
		size_t p = 0;

		for (int i = 0; i < 8; i++) {
			p += (size_t)sprintf(tmp + p, "%02x%02x", ip[2 * i], ip[2 * i + 1]);
			if (kind == 'I' && i != 7)
				tmp[p++] = ':';
		}
		tmp[p] = 0;
		snprintf(out, sz, "%s", tmp);
	}
}

/* bpf_bprintf_prepare(): checks fmt and fills bin; 0 or -errno. */
static int prepare(const char *fmt, size_t fmt_size, const uint64_t *args, uint32_t nargs,
		   struct bin *bin, const struct agent_bprintf_mem *mem)
{
	size_t end = AGENT_BPRINTF_BIN_ARGS;
	uint32_t num_spec = 0;
	bool capture = nargs > 0;

	for (size_t i = 0; i < fmt_size; i++) {
		int sizeof_cur_arg;
		uint64_t cur_arg = 0;
		char ptype;

		if ((!k_isprint(fmt[i]) && !k_isspace(fmt[i])) || !k_isascii(fmt[i]))
			return -EINVAL;
		if (fmt[i] != '%')
			continue;
		if (fmt[i + 1] == '%') {
			i++;
			continue;
		}
		if (num_spec >= nargs)
			return -EINVAL;
		i++;
		while (fmt[i] == '0' || fmt[i] == '+' || fmt[i] == '-' || fmt[i] == ' ')
			i++;
		if (fmt[i] >= '1' && fmt[i] <= '9') {
			i++;
			while (k_isdigit(fmt[i]))
				i++;
		}

		if (fmt[i] == 'p') {
			sizeof_cur_arg = 8;
			if ((fmt[i + 1] == 'k' || fmt[i + 1] == 'u') && fmt[i + 2] == 's') {
				ptype = fmt[i + 1];
				i += 2;
				goto fmt_str;
			}
			if (fmt[i + 1] == 0 || k_isspace(fmt[i + 1]) || k_ispunct(fmt[i + 1]) ||
			    fmt[i + 1] == 'K' || fmt[i + 1] == 'x' || fmt[i + 1] == 's' ||
			    fmt[i + 1] == 'S') {
				/* just kernel pointers */
				cur_arg = args[num_spec];
				i++;
				goto nocopy_fmt;
			}
			if (fmt[i + 1] == 'B') {
				if (capture) {
					int n = snprintf((char *)bin->buf + bin->pos,
							 end - bin->pos, "0x%llx",
							 (unsigned long long)args[num_spec]);

					bin->pos += (size_t)n + 1;
					if (bin->pos > end)
						bin->pos = end;
				}
				i++;
				num_spec++;
				continue;
			}
			/* only "%pI4", "%pi4", "%pI6" and "%pi6" */
			if ((fmt[i + 1] != 'i' && fmt[i + 1] != 'I') ||
			    (fmt[i + 2] != '4' && fmt[i + 2] != '6'))
				return -EINVAL;
			i += 2;
			if (capture) {
				size_t ipsz = fmt[i] == '4' ? 4 : 16;
				uint8_t ip[16] = { 0 };
				uint64_t p = args[num_spec];
				int n;

				if (end - bin->pos < ipsz)
					return -ENOSPC;
				/* copy_from_kernel_nofault(): zeros when it fails */
				if (!kernel_mem(mem, p, ipsz) ||
				    agent_uaccess_read(ip, (const void *)(uintptr_t)p, ipsz) < 0)
					memset(ip, 0, sizeof(ip));
				ip_format((char *)bin->buf + bin->pos, end - bin->pos, fmt[i - 1],
					  fmt[i], ip);
				n = (int)strlen((char *)bin->buf + bin->pos);
				bin->pos += (size_t)n + 1;
			}
			num_spec++;
			continue;
		} else if (fmt[i] == 's') {
			ptype = 's';
fmt_str:
			if (fmt[i + 1] != 0 && !k_isspace(fmt[i + 1]) && !k_ispunct(fmt[i + 1]))
				return -EINVAL;
			if (capture) {
				long n;

				if (bin->pos == end)
					return -ENOSPC;
				n = copy_string((char *)bin->buf + bin->pos, args[num_spec], ptype,
						end - bin->pos, mem);
				if (n < 0) {
					bin->buf[bin->pos] = 0;
					n = 1;
				}
				bin->pos += (size_t)n;
			}
			num_spec++;
			continue;
		} else if (fmt[i] == 'c') {
			if (capture) {
				if (bin->pos == end)
					return -ENOSPC;
				bin->buf[bin->pos++] = (uint8_t)args[num_spec];
			}
			num_spec++;
			continue;
		}

		sizeof_cur_arg = 4;
		if (fmt[i] == 'l') {
			sizeof_cur_arg = 8;
			i++;
		}
		if (fmt[i] == 'l')
			i++;
		if (fmt[i] != 'i' && fmt[i] != 'd' && fmt[i] != 'u' && fmt[i] != 'x' &&
		    fmt[i] != 'X')
			return -EINVAL;
		cur_arg = args[num_spec];
nocopy_fmt:
		if (capture) {
			uint32_t lo = (uint32_t)cur_arg, hi = (uint32_t)(cur_arg >> 32);

			bin->pos = (bin->pos + 3) & ~(size_t)3;
			if (bin->pos > end || end - bin->pos < (size_t)sizeof_cur_arg)
				return -ENOSPC;
			memcpy(bin->buf + bin->pos, &lo, 4);
			if (sizeof_cur_arg == 8)
				memcpy(bin->buf + bin->pos + 4, &hi, 4);
			bin->pos += (size_t)sizeof_cur_arg;
		}
		num_spec++;
	}
	return 0;
}

/* ---- bstr_printf() ---- */

enum {
	F_ZEROPAD = 1,
	F_SIGN = 2,
	F_PLUS = 4,
	F_SPACE = 8,
	F_LEFT = 16,
	F_SMALL = 32,
	F_SPECIAL = 64
};

#define FIELD_WIDTH_MAX ((1 << 23) - 1)

struct spec {
	int flags;
	int width; /* -1: none */
	int base;
};

struct out {
	char *str, *end;
	size_t len;
};

static void put(struct out *o, char c)
{
	if (o->str < o->end)
		*o->str++ = c;
	o->len++;
}

/* lib/vsprintf.c number() without precision (the BPF formats allow none). */
static void number(struct out *o, uint64_t num, struct spec spec)
{
	static const char digits[] = "0123456789ABCDEF";
	char tmp[24], sign = 0;
	int i = 0, width = spec.width, precision;
	char locase = (spec.flags & F_SMALL) ? 0x20 : 0;

	if (spec.flags & F_LEFT)
		spec.flags &= ~F_ZEROPAD;
	if (spec.flags & F_SIGN) {
		if ((int64_t)num < 0) {
			sign = '-';
			num = 0 - num;
			width--;
		} else if (spec.flags & F_PLUS) {
			sign = '+';
			width--;
		} else if (spec.flags & F_SPACE) {
			sign = ' ';
			width--;
		}
	}
	do {
		tmp[i++] = (char)(digits[num % (unsigned)spec.base] | locase);
		num /= (unsigned)spec.base;
	} while (num);
	precision = i;
	width -= precision;
	if (!(spec.flags & (F_ZEROPAD | F_LEFT)))
		while (--width >= 0)
			put(o, ' ');
	if (sign)
		put(o, sign);
	if (!(spec.flags & F_LEFT)) {
		char c = (spec.flags & F_ZEROPAD) ? '0' : ' ';

		while (--width >= 0)
			put(o, c);
	}
	while (--i >= 0)
		put(o, tmp[i]);
	while (--width >= 0)
		put(o, ' ');
}

/* string() with precision -1: the string, then spaces up to the width. */
static void string(struct out *o, const char *s, struct spec spec)
{
	size_t len = strlen(s);
	int pad = spec.width > (int)len ? spec.width - (int)len : 0;

	if (!(spec.flags & F_LEFT))
		while (pad-- > 0)
			put(o, ' ');
	for (size_t k = 0; k < len; k++)
		put(o, s[k]);
	while (pad-- > 0)
		put(o, ' ');
}

struct bin_reader {
	const uint8_t *p, *end;
};

static uint64_t get_arg(struct bin_reader *r, int size)
{
	uint32_t lo = 0, hi = 0;
	uintptr_t a = ((uintptr_t)r->p + 3) & ~(uintptr_t)3;

	if (size == 1) {
		uint8_t c = r->p < r->end ? *r->p : 0;

		r->p++;
		return c;
	}
	r->p = (const uint8_t *)a;
	if (r->p + size <= r->end) {
		memcpy(&lo, r->p, 4);
		if (size == 8)
			memcpy(&hi, r->p + 4, 4);
	}
	r->p += size;
	return (uint64_t)hi << 32 | lo;
}

static const char *get_str(struct bin_reader *r)
{
	const char *s = (const char *)r->p;
	size_t max = r->p < r->end ? (size_t)(r->end - r->p) : 0;
	size_t len = strnlen(s, max);

	if (len == max) /* cannot happen with a buffer prepare() filled */
		return "";
	r->p += len + 1;
	return s;
}

static int format(char *buf, size_t size, const char *fmt, const struct bin *bin)
{
	struct bin_reader r = { bin->buf, bin->buf + sizeof(bin->buf) };
	struct out o = { buf, buf + size, 0 };

	while (*fmt) {
		struct spec spec = { .width = -1, .base = 10 };
		char qualifier = 0;

		if (*fmt != '%') {
			put(&o, *fmt++);
			continue;
		}
		fmt++;
		if (*fmt == '%') {
			put(&o, '%');
			fmt++;
			continue;
		}
		for (;; fmt++) {
			if (*fmt == '-')
				spec.flags |= F_LEFT;
			else if (*fmt == '+')
				spec.flags |= F_PLUS;
			else if (*fmt == ' ')
				spec.flags |= F_SPACE;
			else if (*fmt == '0')
				spec.flags |= F_ZEROPAD;
			else
				break;
		}
		if (k_isdigit(*fmt)) {
			long w = 0;

			while (k_isdigit(*fmt)) {
				if (w <= FIELD_WIDTH_MAX)
					w = w * 10 + (*fmt - '0');
				fmt++;
			}
			spec.width = w > FIELD_WIDTH_MAX ? FIELD_WIDTH_MAX : (int)w;
		}
		if (*fmt == 'l') {
			qualifier = 'l';
			fmt++;
			if (*fmt == 'l') {
				qualifier = 'L';
				fmt++;
			}
		}
		switch (*fmt) {
		case 'c': {
			char c;

			if (!(spec.flags & F_LEFT))
				while (--spec.width > 0)
					put(&o, ' ');
			c = (char)get_arg(&r, 1);
			put(&o, c);
			while (--spec.width > 0)
				put(&o, ' ');
			fmt++;
			continue;
		}
		case 's':
			string(&o, get_str(&r), spec);
			fmt++;
			continue;
		case 'p':
			fmt++;
			if (*fmt == 'S' || *fmt == 's' || *fmt == 'x' || *fmt == 'K' ||
			    !k_isalnum(*fmt)) {
				uint64_t ptr = get_arg(&r, 8);

				if (*fmt == 'S' || *fmt == 's') {
					char sym[24];

					snprintf(sym, sizeof(sym), "0x%llx",
						 (unsigned long long)ptr);
					string(&o, sym, spec);
				} else {
					spec.base = 16;
					spec.flags |= F_SMALL;
					if (spec.width == -1) {
						spec.width = 16;
						spec.flags |= F_ZEROPAD;
					}
					number(&o, ptr, spec);
				}
			} else if (o.len < size) {
				/* formatted by prepare(): %pks, %pus, %pB, %pI4... */
				const char *s = get_str(&r);

				while (*s)
					put(&o, *s++);
			}
			/*
			 * else: bstr_printf() neither counts nor consumes such an
			 * argument once the buffer is full; the kernel's return
			 * value (and the arguments after) reflect that, so ours too.
			 */
			while (k_isalnum(*fmt))
				fmt++;
			continue;
		case 'x':
			spec.flags |= F_SMALL;
			/* fall through */
		case 'X':
			spec.base = 16;
			break;
		case 'd':
		case 'i':
			spec.flags |= F_SIGN;
			break;
		case 'u':
			break;
		default:
			/* prepare() let nothing else through */
			goto out;
		}
		fmt++;
		if (qualifier) {
			number(&o, get_arg(&r, 8), spec);
		} else {
			uint64_t v = get_arg(&r, 4);

			number(&o, (spec.flags & F_SIGN) ? (uint64_t)(int64_t)(int32_t)v : v, spec);
		}
	}
out:
	if (size > 0) {
		if (o.str < o.end)
			*o.str = 0;
		else
			o.end[-1] = 0;
	}
	return (int)o.len;
}

int agent_bprintf(char *out, size_t out_size, const char *fmt, uint32_t fmt_size,
		  const uint64_t *args, uint32_t nargs, const struct agent_bprintf_mem *mem)
{
	const char *nul = memchr(fmt, 0, fmt_size);
	struct bin bin;
	int r;

	if (!nul)
		return -EINVAL;
	memset(bin.buf, 0, sizeof(bin.buf));
	bin.pos = 0;
	r = prepare(fmt, (size_t)(nul - fmt), args, nargs, &bin, mem);
	if (r < 0)
		return r;
	return format(out, out_size, fmt, &bin);
}

// SPDX-License-Identifier: MIT
/* Kernel ids and probe sites of a tool's objects (see resolve.h). */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "resolve.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

int resolve_dup_fd(pid_t pid, int fd)
{
	int pidfd, dup;

	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0)
		return -errno;
	dup = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
	if (dup < 0)
		dup = -errno;
	close(pidfd);
	return dup;
}

static int map_info_of(int fd, struct model_map *map)
{
	struct bpf_map_info info = { 0 };
	uint32_t len = sizeof(info);
	int r = bpf_obj_get_info_by_fd(fd, &info, &len);

	if (r < 0)
		return r;
	*map = (struct model_map){
		.id = info.id,
		.type = info.type,
		.key_size = info.key_size,
		.value_size = info.value_size,
		.max_entries = info.max_entries,
		.flags = info.map_flags,
	};
	memcpy(map->name, info.name, sizeof(map->name));
	return 0;
}

/* The maps behind the program's lddw references: each tool fd once, with its kernel id. */
static int lddw_map_refs(pid_t pid, const struct model_prog *prog, struct model_map_ref **refs,
			 uint32_t *cnt)
{
	struct model_map_ref *out = NULL, *grown;
	uint32_t n = 0;

	for (uint32_t i = 0; prog->insns && i + 1 < prog->insn_cnt; i++) {
		const struct bpf_insn *in = &prog->insns[i];
		struct model_map map;
		bool seen = false;
		int fd, r;

		if (in->code != (BPF_LD | BPF_IMM | BPF_DW))
			continue;
		i++;
		if (in->src_reg != BPF_PSEUDO_MAP_FD && in->src_reg != BPF_PSEUDO_MAP_VALUE)
			continue;
		for (uint32_t k = 0; k < n; k++)
			seen |= out[k].fd == in->imm;
		if (seen)
			continue;
		fd = resolve_dup_fd(pid, in->imm);
		if (fd < 0) {
			free(out);
			return fd;
		}
		r = map_info_of(fd, &map);
		close(fd);
		grown = r < 0 ? NULL : realloc(out, (n + 1) * sizeof(*out));
		if (!grown) {
			free(out);
			return r < 0 ? r : -ENOMEM;
		}
		out = grown;
		out[n++] = (struct model_map_ref){ .fd = in->imm, .id = map.id };
	}
	*refs = out;
	*cnt = n;
	return 0;
}

static bool contains(const uint32_t *ids, uint32_t n, uint32_t id)
{
	for (uint32_t i = 0; i < n; i++)
		if (ids[i] == id)
			return true;
	return false;
}

/*
 * Every map the references name is one the kernel lists. The kernel may list
 * more: libbpf binds .rodata to every program (BPF_PROG_BIND_MAP).
 */
static bool same_maps(const struct model_map_ref *refs, uint32_t nrefs, const uint32_t *ids,
		      uint32_t nids)
{
	for (uint32_t i = 0; i < nrefs; i++)
		if (!contains(ids, nids, refs[i].id))
			return false;
	return true;
}

/*
 * Id, name, type and the kernel's map list of the program behind fd (ours);
 * with the tool's pid, the map ids its lddw references name are checked
 * against that list.
 */
static int prog_info(int fd, pid_t tool, struct model_prog *prog)
{
	struct bpf_prog_info info = { 0 };
	uint32_t len = sizeof(info), *kernel_ids = NULL, nr, ref_cnt = 0;
	struct model_map_ref *refs = NULL;
	int r;

	r = bpf_obj_get_info_by_fd(fd, &info, &len);
	if (r < 0)
		return r;
	prog->id = info.id;
	if (!prog->name[0])
		memcpy(prog->name, info.name, sizeof(prog->name));
	if (!prog->type)
		prog->type = info.type;
	nr = info.nr_map_ids;
	if (nr) {
		kernel_ids = calloc(nr, sizeof(*kernel_ids));
		if (!kernel_ids)
			return -ENOMEM;
		memset(&info, 0, sizeof(info));
		info.nr_map_ids = nr;
		info.map_ids = (uintptr_t)kernel_ids;
		len = sizeof(info);
		r = bpf_obj_get_info_by_fd(fd, &info, &len);
		if (r < 0) {
			free(kernel_ids);
			return r;
		}
		nr = info.nr_map_ids < nr ? info.nr_map_ids : nr;
	}
	/* Map ids through the tool's own references, checked against the kernel's. */
	if (tool && prog->insns && lddw_map_refs(tool, prog, &refs, &ref_cnt) == 0) {
		prog->maps_checked = same_maps(refs, ref_cnt, kernel_ids, nr);
		free(prog->map_refs);
		prog->map_refs = refs;
		prog->map_ref_cnt = ref_cnt;
	}
	free(prog->map_ids);
	prog->map_ids = kernel_ids;
	prog->map_cnt = nr;
	return 0;
}

int resolve_prog(pid_t pid, int fd, struct model_prog *prog)
{
	int dup = resolve_dup_fd(pid, fd), r;

	if (dup < 0)
		return dup;
	r = prog_info(dup, pid, prog);
	close(dup);
	return r;
}

int resolve_map(pid_t pid, int fd, struct model_map *map)
{
	int dup = resolve_dup_fd(pid, fd), r;

	if (dup < 0)
		return dup;
	r = map_info_of(dup, map);
	close(dup);
	return r;
}

int resolve_prog_by_id(uint32_t id, struct model_prog *prog)
{
	int fd = bpf_prog_get_fd_by_id(id), r;

	if (fd < 0)
		return fd;
	r = prog_info(fd, 0, prog);
	close(fd);
	return r;
}

int resolve_link(pid_t pid, int fd, uint32_t *id, uint32_t *prog_id)
{
	struct bpf_link_info info = { 0 };
	uint32_t len = sizeof(info);
	int dup = resolve_dup_fd(pid, fd), r;

	if (dup < 0)
		return dup;
	r = bpf_obj_get_info_by_fd(dup, &info, &len);
	if (r == 0) {
		*id = info.id;
		*prog_id = info.prog_id;
	}
	close(dup);
	return r;
}

void resolve_exe(pid_t pid, char *buf, size_t size)
{
	char link[64];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/%d/exe", pid);
	n = readlink(link, buf, size - 1);
	buf[n > 0 ? n : 0] = 0;
}

/* The function symbols of one symbol table: the one covering vaddr and its neighbours. */
struct func_bounds {
	bool found;
	uint64_t start, end;	      /* of the covering function */
	uint64_t prev_end, next_start; /* 0: none */
};

static bool func_sym(Elf *elf, Elf_Data *data, const GElf_Shdr *sh, size_t i, GElf_Sym *sym)
{
	int type;

	if (!gelf_getsym(data, (int)i, sym))
		return false;
	type = GELF_ST_TYPE(sym->st_info);
	return (type == STT_FUNC || type == STT_GNU_IFUNC) && sym->st_value;
}

static void elf_symbol_in(Elf *elf, Elf_Scn *scn, const GElf_Shdr *sh, uint64_t vaddr,
			  struct model_probe_site *site, struct func_bounds *b)
{
	Elf_Data *data = elf_getdata(scn, NULL);
	size_t n = sh->sh_size / sh->sh_entsize;
	GElf_Sym sym;

	if (!data)
		return;
	for (size_t i = 0; i < n && !b->found; i++) {
		const char *name;

		if (!func_sym(elf, data, sh, i, &sym) || vaddr < sym.st_value ||
		    vaddr >= sym.st_value + (sym.st_size ? sym.st_size : 1))
			continue;
		name = elf_strptr(elf, sh->sh_link, sym.st_name);
		if (!name || !*name)
			continue;
		snprintf(site->symbol, sizeof(site->symbol), "%s", name);
		site->symbol_offset = vaddr - sym.st_value;
		*b = (struct func_bounds){ .found = true, .start = sym.st_value,
					   .end = sym.st_value + sym.st_size };
	}
	if (!b->found || !sym.st_size)
		return;
	/*
	 * Alignment padding lies between a function and its neighbours; a
	 * symbol without a size may run up to us, so it leaves no padding.
	 */
	for (size_t i = 0, prev_start = 0; i < n; i++) {
		uint64_t end;

		if (!func_sym(elf, data, sh, i, &sym))
			continue;
		/* The nearest function before us (the longest of aliases) and its end. */
		end = sym.st_size ? sym.st_value + sym.st_size : b->start;
		if (end > b->start)
			end = b->start;
		if (sym.st_value < b->start && sym.st_value >= prev_start) {
			if (sym.st_value > prev_start || end > b->prev_end)
				b->prev_end = end;
			prev_start = sym.st_value;
		}
		if (sym.st_value >= b->end && (!b->next_start || sym.st_value < b->next_start))
			b->next_start = sym.st_value;
	}
}

/* The function symbol of an ELF file covering a virtual address. */
static void elf_symbol(Elf *elf, uint64_t vaddr, struct model_probe_site *site,
		       struct func_bounds *b)
{
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;

	/* .symtab is the fuller one; .dynsym is what stripped binaries keep. */
	for (int pass = 0; pass < 2 && !b->found; pass++) {
		uint32_t want = pass ? SHT_DYNSYM : SHT_SYMTAB;

		scn = NULL;
		while (!b->found && (scn = elf_nextscn(elf, scn)))
			if (gelf_getshdr(scn, &sh) && sh.sh_type == want && sh.sh_entsize)
				elf_symbol_in(elf, scn, &sh, vaddr, site, b);
	}
}

/* File offset to virtual address through the PT_LOAD segment holding it. */
static bool elf_offset_to_vaddr(Elf *elf, uint64_t offset, uint64_t *vaddr)
{
	size_t n;

	if (elf_getphdrnum(elf, &n) < 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_LOAD || !(ph.p_flags & PF_X))
			continue;
		if (offset >= ph.p_offset && offset < ph.p_offset + ph.p_filesz) {
			*vaddr = offset - ph.p_offset + ph.p_vaddr;
			return true;
		}
	}
	return false;
}

int resolve_probe_site(pid_t pid, const char *path, uint64_t offset,
		       struct model_probe_site *site)
{
	char seen_by_tool[PATH_MAX + 64], resolved[PATH_MAX];
	struct stat st;
	uint64_t vaddr;
	ssize_t n;
	Elf *elf;
	int fd;

	memset(site, 0, sizeof(*site));
	site->offset = offset;
	snprintf(site->path, sizeof(site->path), "%s", path);
	/* The path is the tool's: relative to its cwd, under its root. */
	if (path[0] == '/')
		snprintf(seen_by_tool, sizeof(seen_by_tool), "/proc/%d/root%s", pid, path);
	else
		snprintf(seen_by_tool, sizeof(seen_by_tool), "/proc/%d/cwd/%s", pid, path);
	fd = open(seen_by_tool, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) == 0) {
		site->dev = st.st_dev;
		site->ino = st.st_ino;
	}
	/*
	 * A canonical name in our namespace when the tool shares it (the common
	 * case): relative paths and BCC's /proc/PID/root/... forms resolve to
	 * the file itself. Device and inode stay the identity that counts.
	 */
	if (realpath(seen_by_tool, resolved))
		snprintf(site->path, sizeof(site->path), "%s", resolved);

	n = pread(fd, site->orig, sizeof(site->orig), (off_t)offset);
	site->orig_len = n > 0 ? (uint32_t)n : 0;
	elf_version(EV_CURRENT);
	elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (elf && elf_offset_to_vaddr(elf, offset, &vaddr)) {
		struct func_bounds b = { 0 };
		/* Within one segment file offsets and addresses differ by a constant. */
		uint64_t delta = vaddr - offset;

		elf_symbol(elf, vaddr, site, &b);
		if (b.found && b.end > b.start) {
			site->func_offset = b.start - delta;
			site->func_size = b.end - b.start;
			site->prev_end = b.prev_end > delta ? b.prev_end - delta : 0;
			site->next_start = b.next_start > delta ? b.next_start - delta : 0;
		}
	}
	elf_end(elf);
	close(fd);
	return 0;
}

bool resolve_uprobe_perf(pid_t pid, int fd, struct model_probe_site *site, bool *retprobe,
			 uint32_t *prog_id)
{
	char buf[MODEL_PATH_LEN];
	__u32 len = sizeof(buf), fd_type = 0;
	__u64 offset = 0, addr = 0;

	if (bpf_task_fd_query(pid, fd, 0, buf, &len, prog_id, &fd_type, &offset, &addr) < 0)
		return false;
	if (fd_type != BPF_FD_TYPE_UPROBE && fd_type != BPF_FD_TYPE_URETPROBE)
		return false;
	*retprobe = fd_type == BPF_FD_TYPE_URETPROBE;
	resolve_probe_site(pid, buf, offset, site);
	return true;
}

#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""bpftimed end to end, with real, unchanged tools.

    test-daemon.py BPFTIMED BPFTIMECTL TARGET PROBE_MANY

Starts a private dbus-daemon and bpftimed on it (DBUS_SYSTEM_BUS_ADDRESS),
runs TARGET, then, one scenario at a time, a real tool against it: bpftrace
(uprobe, uretprobe, SIGKILL), BCC funccount and trace, libbpf-tools
funclatency, PROBE_MANY (200 uprobes), and bpftrace with funclatency at once.
For each it polls `bpftimectl list attachments -j` every 100 ms and checks
that every attachment of the tool appears within one second of the tool
saying it attached, with the right fields (checked against the ELF, the
daemon's program and map listings, and the kernel through bpftool), and that
nothing of the tool is left one second after it exits. Prints TAP.
"""

import collections
import ctypes
import json
import os
import pty
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

POLL = 0.1  # seconds between two listings, as a user's watch would
DEADLINE = 1.0  # the bar: appear, and disappear, within a second
TOOL_START_TIMEOUT = 30.0  # BCC compiles its programs with clang first
TOOL_EXIT_TIMEOUT = 10.0
REAP_TIMEOUT = 60.0  # 200 uprobes take the kernel ~20 s to unregister

TESTS = [
    "daemon starts and bpftimectl status -j says running",
    "bpftrace uprobe: attachment listed within 1 s, fields right",
    "bpftrace uprobe: nothing left within 1 s of exit",
    "bpftrace uretprobe: attachment listed within 1 s, fields right",
    "bpftrace uretprobe: nothing left within 1 s of exit",
    "funccount-bpfcc: attachment listed within 1 s, fields right",
    "funccount-bpfcc: nothing left within 1 s of exit",
    "trace-bpfcc -p: attachment listed within 1 s, fields right",
    "trace-bpfcc -p: nothing left within 1 s of exit",
    "funclatency -p: entry and return links listed within 1 s, fields right",
    "funclatency -p: nothing left within 1 s of exit",
    "bpftrace SIGKILLed: attachment listed, then nothing left within 1 s",
    "probe-many: 200 attachments listed within 1 s, fields right",
    "probe-many: nothing left within 1 s of exit",
    "bpftrace and funclatency at once: all listed, distinct pids, fields right",
    "bpftrace and funclatency at once: after bpftrace exits only funclatency's remain",
    "bpftimectl attach: the agent is injected into a running process and listed",
    "the agent's status page: mode 0600, owned by the target's uid, its pid inside",
    "bpftimectl detach: the agent leaves the list, its page is removed; attach again wakes it",
    "bpftimectl attach of a process that does not exist: a clear error",
    "daemon side: 10,000 random and 1,000 mutated messages, each refused and logged "
    "(or a valid HELLO answered), daemon up",
    "agent side (LD_PRELOAD): 10,000 random and 1,000 mutated messages, malformed ones "
    "answered with ERROR, "
    "target and agent up",
    "daemon stops on SIGTERM, exit 0, no crash in its log",
    "bpftimectl status -j exits 3 once the daemon is gone",
]


class Fail(Exception):
    pass


class Skip(Exception):
    pass


# ---- TAP ----

class Tap:
    def __init__(self, names):
        self.names = names
        self.n = 0
        self.failed = 0
        print(f"1..{len(names)}", flush=True)

    def _line(self, status, extra="", diag=""):
        self.n += 1
        print(f"{status} {self.n} - {self.names[self.n - 1]}{extra}")
        for line in diag.rstrip().splitlines():
            print(f"# {line}")
        sys.stdout.flush()

    def ok(self, diag=""):
        self._line("ok", diag=diag)

    def not_ok(self, diag):
        self.failed += 1
        self._line("not ok", diag=diag)

    def skip(self, reason):
        self._line("ok", f" # SKIP {reason}")

    def remaining(self):
        return len(self.names) - self.n


def note(msg):
    for line in msg.rstrip().splitlines():
        print(f"# {line}")
    sys.stdout.flush()


# ---- the target's ELF: where its functions are in the file ----

def elf_file_offsets(path, names):
    """File offset of each named function: st_value through the executable PT_LOAD."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise Fail(f"{path}: not a 64-bit little-endian ELF file")
    e_phoff, e_shoff = struct.unpack_from("<QQ", data, 0x20)
    e_phentsize, e_phnum, e_shentsize, e_shnum = struct.unpack_from("<HHHH", data, 0x36)

    loads = []
    for i in range(e_phnum):
        p_type, p_flags, p_offset, p_vaddr, _, p_filesz = struct.unpack_from(
            "<IIQQQQ", data, e_phoff + i * e_phentsize)
        if p_type == 1 and p_flags & 1:  # PT_LOAD, PF_X
            loads.append((p_offset, p_vaddr, p_filesz))

    sections = [struct.unpack_from("<IIQQQQIIQQ", data, e_shoff + i * e_shentsize)
                for i in range(e_shnum)]
    values = {}
    for sh in sections:
        if sh[1] != 2:  # SHT_SYMTAB
            continue
        sym_off, sym_size, strtab, entsize = sh[4], sh[5], sections[sh[6]], sh[9]
        for k in range(sym_size // entsize):
            st_name, st_info, _, _, st_value, _ = struct.unpack_from(
                "<IBBHQQ", data, sym_off + k * entsize)
            if st_info & 0xf != 2 or not st_value:  # STT_FUNC
                continue
            start = strtab[4] + st_name
            name = data[start:data.index(b"\0", start)].decode()
            if name in names:
                values[name] = st_value

    offsets = {}
    for name in names:
        if name not in values:
            raise Fail(f"{path}: no function symbol {name} in .symtab")
        v = values[name]
        for p_offset, p_vaddr, p_filesz in loads:
            if p_vaddr <= v < p_vaddr + p_filesz:
                offsets[name] = v - p_vaddr + p_offset
                break
        else:
            raise Fail(f"{path}: {name} at {v:#x} is in no executable PT_LOAD segment")
    return offsets


# ---- processes we start ----

def default_signals():
    # Whoever ran us may have ignored SIGINT (a background job); the tools
    # must see it as a user's Ctrl-C.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


class Tool:
    """A tool on a pseudo-terminal, as a user runs it (line-buffered output)."""

    def __init__(self, name, argv, ready, env=None):
        self.name = name
        self.argv = argv
        self.ready_re = re.compile(ready)
        self.t_ready = None
        self.t_exit = None
        self.signals = 0
        self.head = []
        self.tail = collections.deque(maxlen=40)
        self.nlines = 0
        self.lock = threading.Lock()
        master, slave = pty.openpty()
        self.master = master
        self.t_start = time.monotonic()
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=slave,
                                         stderr=slave, start_new_session=True,
                                         preexec_fn=default_signals, env=env)
        finally:
            os.close(slave)
        self.pid = self.proc.pid
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _add(self, now, text):
        with self.lock:
            self.nlines += 1
            if len(self.head) < 300:
                self.head.append(text)
            else:
                self.tail.append(text)
            if self.t_ready is None and self.ready_re.search(text):
                self.t_ready = now

    def _read(self):
        buf = b""
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:  # EIO: every copy of the slave side is closed
                break
            if not data:
                break
            now = time.monotonic()
            buf += data
            *lines, buf = buf.split(b"\n")
            for line in lines:
                self._add(now, line.decode(errors="replace").rstrip("\r"))
        if buf:
            self._add(time.monotonic(), buf.decode(errors="replace").rstrip("\r"))

    def lines(self, want=30):
        with self.lock:
            shown = self.head[:want]
            if self.nlines > len(shown):
                shown = shown + ["..."] + list(self.tail)[-10:]
            return shown

    def output(self):
        return "\n".join(f"  | {line}" for line in self.lines()) or "  (no output)"

    def _exit_began(self):
        if self.proc.poll() is not None:
            return True
        # PF_EXITING: the kernel has started tearing the process down. Closing
        # many uprobes takes it a while (each waits for an RCU grace period),
        # so this, not the reaping, is when the tool is gone.
        try:
            with open(f"/proc/{self.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            return True
        return bool(int(fields[6]) & 0x4)

    def alive(self):
        """False from the moment its exit began; t_exit says when that was seen."""
        if self.t_exit is None and self._exit_began():
            self.t_exit = time.monotonic()
        return self.t_exit is None

    def wait_ready(self, timeout):
        end = time.monotonic() + timeout
        while self.t_ready is None and time.monotonic() < end and self.alive():
            time.sleep(0.01)
        return self.t_ready

    def stop(self, sig=signal.SIGINT, timeout=TOOL_EXIT_TIMEOUT):
        """Signals the tool; returns when its exit began.

        Like a user, presses Ctrl-C again each second it goes unheeded: BCC's
        Python tools lose a KeyboardInterrupt raised inside their perf buffer
        callback ("Exception ignored on calling ctypes callback function").
        """
        self.signals = 0
        end = time.monotonic() + timeout
        again = 0.0
        while self.alive():
            now = time.monotonic()
            if now > end:
                self.kill()
                raise Fail(f"{self.name} did not exit within {timeout:.0f} s of "
                           f"{self.signals} {signal.Signals(sig).name}; killed\n"
                           + self.output())
            if now >= again:
                os.kill(self.pid, sig)
                self.signals += 1
                again = now + 1.0
            time.sleep(0.005)
        return self.t_exit

    def reap(self, timeout):
        """Waits for the exit to finish; the time it took after it began, or None."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        return time.monotonic() - self.t_exit if self.t_exit else 0.0

    def kill(self):
        """Ends it however it is: Ctrl-C first (BCC then removes its tracefs events)."""
        if self.proc.poll() is None and not self._exit_began():
            try:
                os.kill(self.pid, signal.SIGINT)
                self.proc.wait(timeout=5)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        if self.proc.poll() is None and not self._exit_began():
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(timeout=REAP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pass
        self.alive()
        self.reader.join(timeout=2)
        try:
            os.close(self.master)
        except OSError:
            pass


# ---- the environment: bus, daemon, target ----

BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <listen>unix:path={path}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
  </policy>
</busconfig>
"""


class Env:
    def __init__(self, bpftimed, bpftimectl, target, probe_many, agent_library):
        self.bpftimed = bpftimed
        self.agent_library = agent_library
        self.bpftimectl = bpftimectl
        self.target = target
        self.target_real = os.path.realpath(target)
        self.probe_many = probe_many
        self.tmp = tempfile.mkdtemp(prefix="bpftimed-test-")
        self.bus = None
        self.daemon = None
        self.daemon_log = os.path.join(self.tmp, "bpftimed.log")
        self.targets = []
        self.tools = []
        self.env = dict(os.environ)
        self.bpftool = which("bpftool")

    # bus and daemon

    def start_bus(self):
        config = os.path.join(self.tmp, "bus.conf")
        with open(config, "w") as f:
            f.write(BUS_CONFIG.format(path=os.path.join(self.tmp, "bus")))
        self.bus = subprocess.Popen(["dbus-daemon", f"--config-file={config}", "--nofork",
                                     "--print-address=1"],
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                    stdin=subprocess.DEVNULL, text=True)
        address = self.bus.stdout.readline().strip()
        if not address:
            raise Fail(f"dbus-daemon did not start (exit {self.bus.poll()})")
        self.env["DBUS_SYSTEM_BUS_ADDRESS"] = address

    def start_daemon(self, *args):
        args = [f"--agent-socket={os.path.join(self.tmp, 'agent.sock')}",
                f"--agent-library={self.agent_library}", *args]
        with open(self.daemon_log, "w") as log:
            self.daemon = subprocess.Popen([self.bpftimed, *args], stdin=subprocess.DEVNULL,
                                           stdout=log, stderr=subprocess.STDOUT, env=self.env,
                                           preexec_fn=default_signals)
        end = time.monotonic() + 15
        while time.monotonic() < end:
            if self.daemon.poll() is not None:
                raise Fail(f"bpftimed exited with {self.daemon.returncode} at startup\n"
                           + self.log_text())
            rc, out = self.ctl("status")
            if rc == 0 and json.loads(out).get("running"):
                return json.loads(out)
            time.sleep(0.1)
        raise Fail("bpftimed did not come up on the bus within 15 s\n" + self.log_text())

    def daemon_alive(self):
        if self.daemon is None or self.daemon.poll() is not None:
            raise Fail("bpftimed is not running (exit "
                       f"{None if self.daemon is None else self.daemon.returncode})\n"
                       + self.log_text())

    def log_text(self, last=60):
        try:
            with open(self.daemon_log, errors="replace") as f:
                lines = f.read().splitlines()
        except OSError:
            return "bpftimed log: (none)"
        if len(lines) > last:
            lines = [f"... ({len(lines) - last} lines before)"] + lines[-last:]
        return "bpftimed log:\n" + "\n".join(f"  | {line}" for line in lines)

    # bpftimectl

    def ctl(self, *args):
        r = subprocess.run([self.bpftimectl, *args, "-j"], capture_output=True, text=True,
                           env=self.env, timeout=15, stdin=subprocess.DEVNULL)
        return r.returncode, r.stdout

    def listing(self, what):
        rc, out = self.ctl("list", what)
        if rc != 0:
            raise Fail(f"bpftimectl list {what} -j exited {rc}: {out.strip()}\n"
                       + self.log_text())
        try:
            return json.loads(out)
        except json.JSONDecodeError as e:
            raise Fail(f"bpftimectl list {what} -j printed invalid JSON ({e}):\n{out[:2000]}")

    # processes

    def start_target(self, seconds=300):
        t = subprocess.Popen([self.target, str(seconds)], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True, preexec_fn=default_signals)
        self.targets.append(t)
        return t

    def start_tool(self, name, argv, ready):
        tool = Tool(name, argv, ready)
        self.tools.append(tool)
        return tool

    def remove_tracefs_uprobes(self):
        """Removes uprobe_events on our target that a killed BCC tool left behind."""
        events = "/sys/kernel/tracing/uprobe_events"
        try:
            with open(events) as f:
                lines = f.read().splitlines()
        except OSError:
            return
        for line in lines:
            m = re.match(r"^[pr]:(\S+) (\S+):0x[0-9a-f]+", line)
            if m and os.path.realpath(m.group(2)) == self.target_real:
                try:
                    # One write(2), no seek: what tracefs wants (Python's "a" mode fails).
                    fd = os.open(events, os.O_WRONLY | os.O_APPEND)
                    try:
                        os.write(fd, f"-:{m.group(1)}\n".encode())
                    finally:
                        os.close(fd)
                    note(f"removed a stale tracefs uprobe: {line}")
                except OSError as e:
                    note(f"cannot remove a stale tracefs uprobe ({e}): {line}")

    def bpftool_json(self, *args):
        if not self.bpftool:
            return None
        r = subprocess.run([self.bpftool, "-j", *args], capture_output=True, text=True,
                           timeout=30, stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            raise Fail(f"bpftool {' '.join(args)} exited {r.returncode}: {r.stdout}{r.stderr}")
        return json.loads(r.stdout)

    def cleanup(self):
        for tool in self.tools:
            tool.kill()
        self.remove_tracefs_uprobes()
        for t in self.targets:
            if t.poll() is None:
                t.kill()
            t.wait()
        for p in (self.daemon, self.bus):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)


# ---- what the daemon must list ----

def expect(kind, symbol, via, pid_filter=-1, prog=None):
    """One attachment a tool makes: prog, when given, pins prog_id/insn_cnt/map ids."""
    return {"kind": kind, "symbol": symbol, "via": via, "pid_filter": pid_filter, "prog": prog}


def match(atts, specs, offsets):
    """Pairs each spec with one listed attachment; None when some is not listed yet."""
    free = list(atts)
    pairs = []
    for spec in specs:
        for a in free:
            if (a["kind"] == spec["kind"] and a["offset"] == offsets[spec["symbol"]]
                    and (spec["prog"] is None or a["prog_id"] == spec["prog"]["id"])):
                free.remove(a)
                pairs.append((spec, a))
                break
        else:
            return None, free
    return pairs, free


def fd_target(pid, fd):
    try:
        return os.readlink(f"/proc/{pid}/fd/{fd}")
    except OSError as e:
        return f"<{e.strerror}>"


def check_attachment(env, tool, spec, a, offsets, programs, maps, kernel_perf):
    """Every field of one listed attachment against the ELF, the listings and the kernel."""
    errors = []

    def want(field, expected):
        if a.get(field) != expected:
            errors.append(f"{field} is {a.get(field)!r}, expected {expected!r}")

    st = os.stat(env.target_real)
    want("pid", tool.pid)
    want("kind", spec["kind"])
    want("path", env.target_real)
    want("dev", st.st_dev)
    want("ino", st.st_ino)
    want("offset", offsets[spec["symbol"]])
    want("symbol", spec["symbol"])
    want("symbol_offset", 0)
    want("pid_filter", spec["pid_filter"])
    want("enabled", True)
    want("via", spec["via"])
    want("prog_type", "kprobe")
    try:
        with open(f"/proc/{tool.pid}/comm") as f:
            want("comm", f.read().strip())
    except OSError:
        pass

    prog_id = a.get("prog_id", 0)
    if not prog_id:
        errors.append("prog_id is 0")
    if not a.get("insn_cnt", 0) > 0:
        errors.append(f"insn_cnt is {a.get('insn_cnt')!r}, expected > 0")
    if not a.get("map_ids"):
        errors.append("map_ids is empty")

    # The program as the daemon lists it: the same count, captured, same maps.
    mine = [p for p in programs if p["pid"] == tool.pid and p["id"] == prog_id]
    if len(mine) != 1:
        errors.append(f"program id {prog_id} listed {len(mine)} times for pid {tool.pid} "
                      "by bpftimectl list programs")
    else:
        p = mine[0]
        if p["insn_cnt"] != a.get("insn_cnt"):
            errors.append(f"insn_cnt {a.get('insn_cnt')} but list programs says {p['insn_cnt']}")
        if not p["insns_captured"]:
            errors.append(f"program {prog_id} ({p['name']}): insns_captured is false")
        if sorted(p["map_ids"]) != sorted(a.get("map_ids", [])):
            errors.append(f"map_ids {a.get('map_ids')} but list programs says {p['map_ids']}")
        if not p["maps_checked"]:
            errors.append(f"program {prog_id}: maps_checked is false")

    # The maps are the tool's own.
    tool_maps = {m["id"] for m in maps if m["pid"] == tool.pid}
    for mid in a.get("map_ids", []):
        if mid not in tool_maps:
            errors.append(f"map id {mid} is not among the maps listed for pid {tool.pid} "
                          f"({sorted(tool_maps)})")

    # What the tool itself reported (probe-many).
    if spec["prog"] is not None:
        want("prog_id", spec["prog"]["id"])
        want("insn_cnt", spec["prog"]["insns"])
        if sorted(a.get("map_ids", [])) != sorted(spec["prog"]["maps"]):
            errors.append(f"map_ids {a.get('map_ids')}, the tool created {spec['prog']['maps']}")
        want("perf_fd", spec["prog"]["perf_fd"])
        want("link_fd", spec["prog"]["link_fd"])

    # The fds are what the daemon says they are.
    if fd_target(tool.pid, a.get("perf_fd")) != "anon_inode:[perf_event]":
        errors.append(f"perf_fd {a.get('perf_fd')} is {fd_target(tool.pid, a.get('perf_fd'))}")
    if spec["via"] == "link":
        if fd_target(tool.pid, a.get("link_fd")) != "anon_inode:bpf_link":
            errors.append(f"link_fd {a.get('link_fd')} is "
                          f"{fd_target(tool.pid, a.get('link_fd'))}")
    else:
        want("link_fd", -1)

    # The kernel's own view: BPF_TASK_FD_QUERY (bpftool perf list), prog info (map ids).
    if kernel_perf is not None:
        k = kernel_perf.get((tool.pid, a.get("perf_fd")))
        if k is None:
            errors.append(f"bpftool perf list has no pid {tool.pid} fd {a.get('perf_fd')}")
        else:
            if k.get("prog_id") != prog_id:
                errors.append(f"kernel says perf fd {a['perf_fd']} runs prog {k.get('prog_id')}")
            if k.get("fd_type") != spec["kind"]:
                errors.append(f"kernel says perf fd {a['perf_fd']} is a {k.get('fd_type')}")
            if k.get("offset") != a.get("offset"):
                errors.append(f"kernel says offset {k.get('offset')}, listed {a.get('offset')}")
            if os.path.realpath(k.get("filename", "")) != env.target_real:
                errors.append(f"kernel says file {k.get('filename')}")
    return errors


def kernel_prog_maps(env, prog_ids):
    out = {}
    for pid in prog_ids:
        info = env.bpftool_json("prog", "show", "id", str(pid))
        if info is not None:
            out[pid] = sorted(info.get("map_ids", []))
    return out


def kernel_perf_list(env):
    rows = env.bpftool_json("perf", "list")
    if rows is None:
        return None
    return {(r["pid"], r["fd"]): r for r in rows}


def kernel_view(env, pid):
    """What the kernel says the tool attached, and tracefs uprobes on our target: for failures."""
    out = []
    try:
        rows = env.bpftool_json("perf", "list") or []
        out += [f"kernel: {json.dumps(r)}" for r in rows if r.get("pid") == pid]
    except Fail as e:
        out.append(str(e))
    try:
        with open("/sys/kernel/tracing/uprobe_events") as f:
            out += [f"tracefs uprobe_events: {line}" for line in f.read().splitlines()
                    if env.target_real in line or os.path.basename(env.target_real) in line]
    except OSError:
        pass
    return "\n".join(out) or "kernel: no perf event of this pid"


def wait_listed(env, tool, specs, offsets, timeout=TOOL_START_TIMEOUT):
    """Polls until every spec is listed for the tool; returns (time, pairs, extra)."""
    end = tool.t_start + timeout
    while True:
        env.daemon_alive()
        atts = [a for a in env.listing("attachments") if a["pid"] == tool.pid]
        now = time.monotonic()
        pairs, extra = match(atts, specs, offsets)
        if pairs is not None:
            return now, pairs, extra
        if not tool.alive():
            raise Fail(f"{tool.name} exited ({tool.proc.returncode}) before all of its "
                       f"{len(specs)} attachments were listed ({len(atts)} were)\n"
                       + tool.output())
        late = tool.t_ready is not None and now > tool.t_ready + DEADLINE + 2
        if late or now > end:
            shown = json.dumps(atts[:6], indent=1)
            raise Fail(f"{tool.name}: {len(atts)} of {len(specs)} attachments listed "
                       f"{now - tool.t_start:.2f} s after start"
                       + (f", {now - tool.t_ready:.2f} s after it said it attached"
                          if tool.t_ready else ", and it never said it attached")
                       + f"\nlisted: {shown}\n{kernel_view(env, tool.pid)}\n"
                       f"{tool.output()}\n{env.log_text(20)}")
        time.sleep(POLL)


def check_listed(env, tool, specs, offsets):
    """The tool's attachments: listed within DEADLINE of its readiness, every field right."""
    t_listed, pairs, extra = wait_listed(env, tool, specs, offsets)
    # A tool that prints its readiness after attaching (BCC, libbpf-tools)
    # may be listed first; give it the time to say so.
    t_ready = tool.wait_ready(TOOL_START_TIMEOUT)
    if t_ready is None:
        raise Fail(f"{tool.name} never printed /{tool.ready_re.pattern}/\n{tool.output()}")
    programs = env.listing("programs")
    maps = env.listing("maps")
    kernel_perf = kernel_perf_list(env)
    errors = []
    if extra:
        errors.append(f"{len(extra)} unexpected attachments: {json.dumps(extra[:3])}")
    prog_ids = {a["prog_id"] for _, a in pairs}
    kmaps = kernel_prog_maps(env, prog_ids) if len(prog_ids) <= 8 else {}
    for spec, a in pairs:
        errs = check_attachment(env, tool, spec, a, offsets, programs, maps, kernel_perf)
        if a["prog_id"] in kmaps and kmaps[a["prog_id"]] != sorted(a["map_ids"]):
            errs.append(f"map_ids {a['map_ids']}, the kernel says {kmaps[a['prog_id']]}")
        if errs:
            errors.append(f"{spec['kind']} {spec['symbol']} (prog {a['prog_id']}):\n  "
                          + "\n  ".join(errs) + f"\n  listed: {json.dumps(a)}")
    delay = t_listed - t_ready
    timing = (f"{tool.name}: said it attached {t_ready - tool.t_start:.2f} s after start; "
              f"listed {t_listed - tool.t_start:.2f} s after start, "
              f"{delay:+.2f} s after it said so")
    if delay > DEADLINE:
        errors.append(f"listed {delay:.2f} s after the tool said it attached (bar: "
                      f"{DEADLINE:.0f} s)")
    if errors:
        raise Fail(timing + "\n" + "\n".join(errors[:10])
                   + (f"\n... {len(errors) - 10} more" if len(errors) > 10 else ""))
    return timing


def leftovers(env, pid):
    atts = [a for a in env.listing("attachments") if a["pid"] == pid]
    tools = [t for t in env.listing("tools") if t["pid"] == pid]
    return atts, tools


def check_gone(env, tool, sig=signal.SIGINT):
    """Stops the tool; nothing of it may be listed DEADLINE after its exit began."""
    t_exit = tool.stop(sig)
    while True:
        env.daemon_alive()
        atts, tools = leftovers(env, tool.pid)
        now = time.monotonic()
        if not atts and not tools:
            break
        if now > t_exit + DEADLINE + 2:
            raise Fail(f"{tool.name} exited {now - t_exit:.2f} s ago; still listed: "
                       f"{len(atts)} attachments, tool entry {json.dumps(tools)}\n"
                       + env.log_text(20))
        time.sleep(POLL)
    gone = now - t_exit
    # Nothing of it either in the other listings.
    progs = [p for p in env.listing("programs") if p["pid"] == tool.pid]
    maps = [m for m in env.listing("maps") if m["pid"] == tool.pid]
    timing = (f"{tool.name}: exit began ({signal.Signals(sig).name}"
              + (f" x{tool.signals}" if tool.signals > 1 else "")
              + f"); nothing listed {gone:.2f} s later")
    if progs or maps:
        raise Fail(f"{timing}, but {len(progs)} programs and {len(maps)} maps still listed")
    if gone > DEADLINE:
        raise Fail(f"{timing} (bar: {DEADLINE:.0f} s)")
    reaped = tool.reap(REAP_TIMEOUT)
    if reaped is None:
        raise Fail(f"{timing}; the process did not finish exiting in {REAP_TIMEOUT:.0f} s")
    if reaped > 0.5:
        timing += f"; the kernel took {reaped:.1f} s more to finish its exit"
    return timing


# ---- scenarios ----

def which(tool):
    # The tools live in /usr/sbin, which a test runner's PATH may lack.
    path = os.environ.get("PATH", os.defpath) + ":/usr/sbin:/usr/bin:/sbin:/bin"
    return shutil.which(tool, path=path)


def need(*tools):
    """The tools' full paths; skips the scenario when one is missing."""
    found = [which(t) for t in tools]
    for t, f in zip(tools, found):
        if not f:
            raise Skip(f"{t} is not installed")
    return found


def run_pair(tap, env, tool, specs, offsets, sig=signal.SIGINT):
    """Two TAP results: listed right, then gone. The tool is always killed."""
    try:
        try:
            tap.ok(check_listed(env, tool, specs, offsets))
        except Fail as e:
            tap.not_ok(str(e))
        try:
            tap.ok(check_gone(env, tool, sig))
        except Fail as e:
            tap.not_ok(str(e))
    finally:
        tool.kill()


def scenario_bpftrace_uprobe(tap, env, offsets):
    bpftrace, = need("bpftrace")
    tool = env.start_tool("bpftrace", [
        bpftrace, "-e", f"uprobe:{env.target}:tgt_add {{ @ = count(); }}"],
        r"^Attaching \d+ probes?")
    run_pair(tap, env, tool, [expect("uprobe", "tgt_add", "perf_event")], offsets)


def scenario_bpftrace_uretprobe(tap, env, offsets):
    bpftrace, = need("bpftrace")
    tool = env.start_tool("bpftrace", [
        bpftrace, "-e", f"uretprobe:{env.target}:tgt_mul {{ @ = hist(retval); }}"],
        r"^Attaching \d+ probes?")
    run_pair(tap, env, tool, [expect("uretprobe", "tgt_mul", "perf_event")], offsets)


def scenario_funccount(tap, env, offsets):
    funccount, = need("funccount-bpfcc")
    tool = env.start_tool("funccount-bpfcc", [
        funccount, f"{env.target}:tgt_add"], r"^Tracing \d+ functions")
    run_pair(tap, env, tool, [expect("uprobe", "tgt_add", "perf_event")], offsets)


def scenario_trace(tap, env, offsets, target):
    trace, = need("trace-bpfcc")
    tool = env.start_tool("trace-bpfcc", [
        trace, "-p", str(target.pid), f'p:{env.target}:tgt_add "%d", arg1'],
        r"^PID\s+TID\s+COMM\s+FUNC")
    run_pair(tap, env, tool, [expect("uprobe", "tgt_add", "perf_event", target.pid)], offsets)


def scenario_funclatency(tap, env, offsets, target):
    binary, = need("funclatency")  # libbpf-tools' (BCC's own is funclatency-bpfcc)
    # With -p, PROGRAM:FUNCTION names a library mapped by the process; :FUNCTION
    # is the process's own binary (found through /proc/PID/exe).
    tool = env.start_tool("funclatency", [
        binary, "-p", str(target.pid), ":tgt_add"], r"^Tracing ")
    run_pair(tap, env, tool, [expect("uprobe", "tgt_add", "link", target.pid),
                              expect("uretprobe", "tgt_add", "link", target.pid)], offsets)


def scenario_sigkill(tap, env, offsets):
    bpftrace, = need("bpftrace")
    tool = env.start_tool("bpftrace", [
        bpftrace, "-e", f"uprobe:{env.target}:tgt_mul {{ @[tid] = count(); }}"],
        r"^Attaching \d+ probes?")
    try:
        listed = check_listed(env, tool, [expect("uprobe", "tgt_mul", "perf_event")], offsets)
        tap.ok(listed + "\n" + check_gone(env, tool, signal.SIGKILL))
    except Fail as e:
        tap.not_ok(str(e))
    finally:
        tool.kill()


def scenario_probe_many(tap, env, offsets, count=200):
    tool = env.start_tool("probe-many", [
        env.probe_many, env.target, str(offsets["tgt_add"]), str(offsets["tgt_mul"]),
        str(count)], rf"^ready {count}$")
    try:
        if tool.wait_ready(TOOL_START_TIMEOUT) is None:
            raise Fail(f"probe-many did not get ready\n{tool.output()}")
        # What it made, as it reports it.
        with tool.lock:
            lines = tool.head + list(tool.tail)
        map_ids = {m.group(1): int(m.group(2)) for m in
                   (re.match(r"^map (\w) id=(\d+)$", line) for line in lines) if m}
        specs = []
        for line in lines:
            m = re.match(r"^prog \d+ id=(\d+) insns=(\d+) maps=([ab,]+) fn=(\w+) kind=(\w+) "
                         r"via=(\w+) perf_fd=(-?\d+) link_fd=(-?\d+)$", line)
            if m:
                specs.append(expect(m.group(5), m.group(4), m.group(6), -1, {
                    "id": int(m.group(1)), "insns": int(m.group(2)),
                    "maps": [map_ids[x] for x in m.group(3).split(",")],
                    "perf_fd": int(m.group(7)), "link_fd": int(m.group(8))}))
        if len(specs) != count or len(map_ids) != 2:
            raise Fail(f"probe-many reported {len(specs)} programs and {len(map_ids)} maps\n"
                       + tool.output())
        tap.ok(check_listed(env, tool, specs, offsets))
    except Fail as e:
        tap.not_ok(str(e))
    try:
        tap.ok(check_gone(env, tool, signal.SIGTERM))
    except Fail as e:
        tap.not_ok(str(e))
    finally:
        tool.kill()


def scenario_two_tools(tap, env, offsets, target):
    # bpftrace and libbpf-tools' funclatency: both register the uprobe with
    # ref_ctr_offset 0. (BCC registers 6, and the kernel refuses two
    # registrations of one probe that disagree: BCC then goes through tracefs,
    # or fails, depending on what is already there.)
    bpftrace, funclatency = need("bpftrace", "funclatency")
    spec = [expect("uprobe", "tgt_add", "perf_event")]
    fl_spec = [expect("uprobe", "tgt_add", "link", target.pid),
               expect("uretprobe", "tgt_add", "link", target.pid)]
    fl = None
    bt = env.start_tool("bpftrace", [
        bpftrace, "-e", f"uprobe:{env.target}:tgt_add {{ @ = count(); }}"],
        r"^Attaching \d+ probes?")
    try:
        try:
            timings = [check_listed(env, bt, spec, offsets)]
            fl = env.start_tool("funclatency", [
                funclatency, "-p", str(target.pid), ":tgt_add"], r"^Tracing ")
            timings.append(check_listed(env, fl, fl_spec, offsets))
            both = [a for a in env.listing("attachments") if a["pid"] in (bt.pid, fl.pid)]
            pids = {a["pid"] for a in both}
            if pids != {bt.pid, fl.pid} or len(both) != 3:
                raise Fail(f"listed together: {json.dumps(both)}")
            if {a["offset"] for a in both} != {offsets["tgt_add"]}:
                raise Fail(f"offsets differ: {json.dumps(both)}")
            if len({a["prog_id"] for a in both}) != 3:
                raise Fail(f"the tools share a prog_id: {json.dumps(both)}")
            tap.ok("\n".join(timings))
        except Fail as e:
            tap.not_ok(str(e))
        try:
            if fl is None:
                raise Fail("funclatency was not started")
            timing = check_gone(env, bt)
            # The other tool's attachments stay, intact, and stay a while.
            for _ in range(5):
                left = [a for a in env.listing("attachments") if a["pid"] == fl.pid]
                if len(left) != 2 or {a["offset"] for a in left} != {offsets["tgt_add"]} or \
                        {a["symbol"] for a in left} != {"tgt_add"} or \
                        not all(a["enabled"] for a in left):
                    raise Fail(f"{timing}; funclatency's attachments after bpftrace exited: "
                               f"{json.dumps(left)}")
                time.sleep(POLL)
            timing += "; funclatency's attachments still listed 0.5 s later"
            timing += "\n" + check_gone(env, fl)
            tap.ok(timing)
        except Fail as e:
            tap.not_ok(str(e))
    finally:
        bt.kill()
        if fl is not None:
            fl.kill()


CRASH = re.compile(r"AddressSanitizer|LeakSanitizer|runtime error:|Segmentation fault|"
                   r"Assertion .* failed|Aborted|core dumped|double free|stack smashing")


def stop_daemon(tap, env):
    try:
        env.daemon_alive()
        env.daemon.send_signal(signal.SIGTERM)
        try:
            rc = env.daemon.wait(timeout=10)
        except subprocess.TimeoutExpired:
            env.daemon.kill()
            env.daemon.wait()
            raise Fail("bpftimed did not stop within 10 s of SIGTERM\n" + env.log_text())
        with open(env.daemon_log, errors="replace") as f:
            log = f.read()
        crashes = [line for line in log.splitlines() if CRASH.search(line)]
        if rc != 0 or crashes:
            raise Fail(f"bpftimed exited {rc}; {len(crashes)} crash lines\n" + env.log_text())
        warnings = [line for line in log.splitlines()
                    if re.search(r"Failed|Lost|not captured|cannot", line)]
        tap.ok(f"bpftimed exited 0; {len(log.splitlines())} log lines, "
               f"{len(warnings)} warnings" + "".join(f"\n  | {w}" for w in warnings[:10]))
    except Fail as e:
        tap.not_ok(str(e))
    try:
        rc, out = env.ctl("status")
        if rc != 3:
            raise Fail(f"bpftimectl status -j exited {rc}, expected 3: {out.strip()}")
        if json.loads(out).get("running") is not False:
            raise Fail(f"bpftimectl status -j printed {out.strip()}")
        tap.ok(out.strip())
    except (Fail, json.JSONDecodeError) as e:
        tap.not_ok(str(e))


# ---- main ----

def missing_feature():
    if os.geteuid() != 0:
        return "needs root"
    if not os.access("/sys/kernel/btf/vmlinux", os.R_OK):
        return "no kernel BTF (/sys/kernel/btf/vmlinux)"
    if not which("dbus-daemon"):
        return "dbus-daemon is not installed"
    for fs, where in (("tracefs", "/sys/kernel/tracing"), ("bpf", "/sys/fs/bpf")):
        if os.path.ismount(where):
            continue
        r = subprocess.run(["mount", "-t", fs, "nodev", where], capture_output=True, text=True)
        if r.returncode != 0:
            return f"cannot mount {fs} on {where}: {r.stderr.strip()}"
    if not os.path.exists("/sys/bus/event_source/devices/uprobe/type"):
        return "no uprobe PMU"
    return None


def agent_listed(env, pid):
    return [a for a in env.listing("agents") if a["pid"] == pid]


def library_mapped(env, pid):
    with open(f"/proc/{pid}/maps") as f:
        return env.agent_library in f.read()


def page_pid(path):
    """The pid a status page (shm/agentstat.h) says it belongs to."""
    with open(path, "rb") as f:
        return struct.unpack_from("<i", f.read(16), 12)[0]


def scenario_agents(tap, env):
    target = env.start_target()
    time.sleep(0.2)
    try:
        rc, out = env.ctl("attach", str(target.pid))
        if rc != 0:
            raise Fail(f"bpftimectl attach {target.pid} exited {rc}: {out}\n" + env.log_text())
        end = time.monotonic() + DEADLINE
        while not agent_listed(env, target.pid) and time.monotonic() < end:
            time.sleep(POLL)
        agents = agent_listed(env, target.pid)
        if not agents or not library_mapped(env, target.pid):
            raise Fail(f"after attach: agents {env.listing('agents')}, library mapped: "
                       f"{library_mapped(env, target.pid)}\n" + env.log_text())
        a = agents[0]
        if (a["uid"] != os.getuid() or not a["version"] or not a["stop_ns"]
                or a["state"] != "connected" or a["probes"] != 0):
            raise Fail(f"agent fields: {json.dumps(a)}")
        tap.ok(f"agent listed: {json.dumps(a)}; the injection stopped the target "
               f"{a['stop_ns'] / 1e6:.2f} ms")
    except Fail as e:
        tap.not_ok(str(e))
    page = os.path.join(env.tmp, "agents", str(target.pid))
    try:
        st = os.stat(page)
        if st.st_mode & 0o7777 != 0o600 or st.st_uid != os.stat(f"/proc/{target.pid}").st_uid:
            raise Fail(f"status page {page}: mode {st.st_mode & 0o7777:o}, uid {st.st_uid}")
        if st.st_size == 0 or page_pid(page) != target.pid:
            raise Fail(f"status page {page}: {st.st_size} bytes, pid {page_pid(page)}")
        tap.ok(f"status page {page}: mode 0600, owned by the target's uid, {st.st_size} bytes")
    except (Fail, OSError) as e:
        tap.not_ok(str(e))
    try:
        rc, out = env.ctl("detach", str(target.pid))
        if rc != 0:
            raise Fail(f"bpftimectl detach {target.pid} exited {rc}: {out}")
        if agent_listed(env, target.pid):
            raise Fail("still listed after detach")
        if os.path.exists(page):
            raise Fail(f"the status page {page} outlived the agent")
        if target.poll() is not None:
            raise Fail(f"the target exited ({target.returncode}) after detach")
        rc, out = env.ctl("attach", str(target.pid))
        end = time.monotonic() + DEADLINE
        while rc == 0 and not agent_listed(env, target.pid) and time.monotonic() < end:
            time.sleep(POLL)
        if rc != 0 or not agent_listed(env, target.pid):
            raise Fail(f"attach again: exit {rc} {out}; agents {env.listing('agents')}")
        # Its owner may cut its page short: the daemon reads it, never maps it.
        os.truncate(page, 0)
        agents = agent_listed(env, target.pid)
        env.daemon_alive()
        if not agents or agents[0]["state"] != "unknown":
            raise Fail(f"after its page was cut short the agent is listed as {agents}")
        tap.ok("detached, gone from the list and its status page, target alive; "
               "attached again and listed; its page cut short, listed as unknown, daemon up")
    except Fail as e:
        tap.not_ok(str(e))
    try:
        r = subprocess.run([env.bpftimectl, "attach", "999999"], capture_output=True,
                           text=True, env=env.env, timeout=15, stdin=subprocess.DEVNULL)
        if r.returncode == 0 or "999999" not in r.stderr:
            raise Fail(f"exit {r.returncode}, stderr {r.stderr!r}")
        tap.ok(r.stderr.strip())
    except Fail as e:
        tap.not_ok(str(e))


PROTO_CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fuzz", "corpus",
                            "proto")


def garbage_messages(rng, randoms=10000, mutated=1000):
    """Random datagrams, then valid messages (the fuzz corpus) with bytes changed."""
    seeds = []
    for name in sorted(os.listdir(PROTO_CORPUS)):
        with open(os.path.join(PROTO_CORPUS, name), "rb") as f:
            seeds.append(f.read()[1:])  # byte 0 is the fuzzer's fd count
    for _ in range(randoms):
        yield bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 200)))
    n = 0
    while n < mutated:
        m = bytearray(seeds[n % len(seeds)])
        for _ in range(rng.randrange(1, 4)):
            m[rng.randrange(len(m))] = rng.getrandbits(8)
        # A message turned into a well-formed BYE would end the conversation.
        if struct.unpack_from("<H", m, 6)[0] == 8:
            continue
        n += 1
        yield bytes(m)


def scenario_daemon_garbage(tap, env):
    # The daemon keeps connections from processes with the agent mapped: map it here.
    ctypes.CDLL(env.agent_library)
    path = os.path.join(env.tmp, "agent.sock")
    rng = random.Random(4)
    sent = hellos = 0
    t0 = time.monotonic()
    try:
        for msg in garbage_messages(rng):
            with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as s:
                s.connect(path)
                s.send(msg)
                s.settimeout(5)
                # The daemon closes the connection, or answers a well-formed HELLO with its own.
                reply = s.recv(65536)
                if reply:
                    if struct.unpack_from("<IHH", reply) != (0x4d545042, 1, 1) or \
                            struct.unpack_from("<H", msg, 6)[0] != 1:
                        raise Fail(f"the daemon answered message {sent} {msg!r} with {reply!r}")
                    hellos += 1
            sent += 1
        env.daemon_alive()
        rc, out = env.ctl("status")
        if rc != 0:
            raise Fail(f"status after the garbage: exit {rc} {out}")
        with open(env.daemon_log, errors="replace") as f:
            refused = sum(1 for line in f if "sent a malformed message" in line or
                          "did not start with HELLO" in line or
                          "speaks another version" in line)
        if refused + hellos != sent:
            raise Fail(f"{sent} messages sent, {refused} refusals logged, {hellos} HELLOs")
        tap.ok(f"{sent} messages in {time.monotonic() - t0:.1f} s, {refused} refusals logged, "
               f"{hellos} well-formed HELLOs answered, daemon up")
    except (Fail, OSError) as e:
        tap.not_ok(f"after {sent} messages: {e}\n" + env.log_text(10))


def scenario_agent_garbage(tap, env):
    path = os.path.join(env.tmp, "fake-daemon.sock")
    rng = random.Random(5)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(path)
    listener.listen(1)
    listener.settimeout(10)
    target = subprocess.Popen([env.target, "60"], stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env=dict(env.env, LD_PRELOAD=env.agent_library,
                                       BPFTIME_AGENT_SOCKET=path),
                              start_new_session=True, preexec_fn=default_signals)
    env.targets.append(target)
    sent = errors = 0
    try:
        conn, _ = listener.accept()
        conn.settimeout(5)
        hello = conn.recv(65536)
        if len(hello) < 24 or struct.unpack_from("<IHH", hello) != (0x4d545042, 1, 1):
            raise Fail(f"the agent's first message is not a HELLO: {hello[:24]!r}")
        for msg in garbage_messages(rng):
            conn.send(msg)
            sent += 1
            # A malformed message is answered with ERROR; a valid one may be too
            # (a program that does not load, a file not mapped) or not at all.
            while True:
                try:
                    conn.settimeout(0.0 if sent % 100 else 5)
                    reply = conn.recv(65536)
                except (BlockingIOError, socket.timeout):
                    break
                if not reply:
                    raise Fail(f"the agent closed the connection after message {sent}")
                if struct.unpack_from("<H", reply, 6)[0] == 7:
                    errors += 1
                if sent % 100:
                    continue
                break
        conn.settimeout(5)
        conn.send(struct.pack("<IHHIIHHI", 0x4d545042, 1, 8, 24, 1, 0, 0, 0))  # BYE
        while conn.recv(65536):
            errors += 1
        conn.close()
        time.sleep(0.2)
        if target.poll() is not None:
            raise Fail(f"the target exited ({target.returncode})")
        with open(f"/proc/{target.pid}/status") as f:
            state = [line for line in f if line.startswith("State:")]
        if errors < sent * 9 // 10:
            raise Fail(f"{sent} messages, only {errors} ERROR replies")
        tap.ok(f"{sent} messages, {errors} ERROR replies; target alive ({state[0].strip()}), "
               "the agent asleep after BYE")
    except (Fail, OSError) as e:
        tap.not_ok(f"after {sent} messages: {e}")
    finally:
        listener.close()
        target.kill()


def main(argv):
    if len(argv) != 6:
        print("usage: test-daemon.py BPFTIMED BPFTIMECTL TARGET PROBE_MANY AGENT_LIBRARY",
              file=sys.stderr)
        return 2
    why = missing_feature()
    if why:
        print(f"1..0 # SKIP {why}")
        return 0

    tap = Tap(TESTS)
    env = Env(*argv[1:])
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # meson's timeout: clean up
    t0 = time.monotonic()
    try:
        try:
            offsets = elf_file_offsets(env.target_real, ["tgt_add", "tgt_mul"])
            note(f"{env.target_real}: tgt_add at file offset {offsets['tgt_add']:#x}, "
                 f"tgt_mul at {offsets['tgt_mul']:#x}")
            env.start_bus()
            status = env.start_daemon()
            version = subprocess.run([env.bpftimed, "--version"], capture_output=True,
                                     text=True, timeout=10).stdout.split()
            if version[-1:] != [status.get("version")]:
                raise Fail(f"status says version {status.get('version')!r}, "
                           f"bpftimed --version says {' '.join(version)!r}")
            tap.ok(json.dumps(status))
        except Fail as e:
            tap.not_ok(str(e))
            while tap.remaining():
                tap.not_ok("the daemon did not start")
            return 1

        target = env.start_target()
        scenarios = [
            (2, lambda: scenario_bpftrace_uprobe(tap, env, offsets)),
            (2, lambda: scenario_bpftrace_uretprobe(tap, env, offsets)),
            (2, lambda: scenario_funccount(tap, env, offsets)),
            (2, lambda: scenario_trace(tap, env, offsets, target)),
            (2, lambda: scenario_funclatency(tap, env, offsets, target)),
            (1, lambda: scenario_sigkill(tap, env, offsets)),
            (2, lambda: scenario_probe_many(tap, env, offsets)),
            (2, lambda: scenario_two_tools(tap, env, offsets, target)),
            (4, lambda: scenario_agents(tap, env)),
            (1, lambda: scenario_daemon_garbage(tap, env)),
            (1, lambda: scenario_agent_garbage(tap, env)),
        ]
        for count, run in scenarios:
            first = tap.n
            t = time.monotonic()
            try:
                if target.poll() is not None:
                    raise Fail(f"the target exited ({target.returncode})")
                env.daemon_alive()
                run()
            except Skip as e:
                while tap.n < first + count:
                    tap.skip(str(e))
            except Fail as e:
                while tap.n < first + count:
                    tap.not_ok(str(e))
            except Exception as e:  # a bug here must still end the plan properly
                while tap.n < first + count:
                    tap.not_ok(f"{type(e).__name__}: {e}")
            note(f"scenario took {time.monotonic() - t:.1f} s")

        stop_daemon(tap, env)
        if tap.failed:
            note(env.log_text(200))
    finally:
        while tap.remaining():
            tap.not_ok("not run: the test was interrupted")
        env.cleanup()
        note(f"total {time.monotonic() - t0:.1f} s")
    return 1 if tap.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The stock tools print the same answers with bpftimed as without it.

    test-e2e.py BPFTIMED BPFTIMECTL AGENT_LIBRARY TARGET MIXED [SCENARIO...]

Each comparison scenario runs one tool command twice against fresh targets:
kernel only (no bpftimed of ours running), then offloaded (bpftimed on a
private dbus-daemon, serving only copies of the binaries made in this run's
temporary directory). A target prints "ready", the tool attaches (the kernel
must list its uprobes with their programs), with bpftimed the target must be
served ("bpftimectl list serving": served_by agent, or kernel with a reason
where the stock tool keeps it there), and only then is the target told to
make its calls: a fixed number with fixed arguments. The answers must be the
same: counts, histograms bucket by bucket, printf lines as multisets, sums of
return values, and each must agree with what the target says it did. With
bpftimed the agent must also have served the calls (hits > 0).

Scenarios: bpftrace count(), hist(arg0), printf, uretprobe sum(retval),
malloc of a private libc copy filtered by pid; BCC funccount and trace;
libbpf-tools funclatency and bashreadline (a private bash copy on a pty); a
target started after the tool; a forking target; a libbpf tool of ours with a
tracepoint and a uprobe on one hash map. Then two where something dies: the
tool SIGKILLed (the target lives on, its text is the file's again within a
second) and bpftimed SIGKILLed (the target lives on, no call is lost, a new
bpftimed lists the tool's uprobe as kept in the kernel: it never saw the
program's instructions). The malloc scenario allows the mallocs the agent's
injection makes (at most INJECTION_MALLOCS). SCENARIO numbers pick some; all
run by default.
Prints TAP, one line per scenario.

The plumbing (TAP, tools on a pty, the bus and the daemon, bpftimectl) is
tests/daemon/test-daemon.py's, imported.
"""

import collections
import importlib.util
import os
import pty
import queue
import re
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))


def load_harness():
    path = os.path.join(HERE, "..", "daemon", "test-daemon.py")
    spec = importlib.util.spec_from_file_location("test_daemon", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


harness = load_harness()
Fail, Skip, Tap, note = harness.Fail, harness.Skip, harness.Tap, harness.note

CALLS = 50000  # per run, where each call costs the kernel ~5-12 us
OUTPUT_CALLS = 10000  # where each call also sends a record to the tool
PACE = 100  # calls between two 1 ms sleeps, where the tool prints each call
# The mallocs the injection of the agent makes in the target (dlopen; 66 measured).
INJECTION_MALLOCS = 200
FORK_PACE = 25  # the forked child's 25,000 calls then take over a second
FUNCTION = "e2e_add"
ATTACH_TIMEOUT = 30.0  # BCC compiles its programs first
SERVE_TIMEOUT = 10.0
HITS_TIMEOUT = 3.0  # read from the agent's status page: current, but the tool may lag
CALLS_TIMEOUT = 60.0
OUTPUT_TIMEOUT = 10.0
UNHOOK_TIMEOUT = 1.0
INJECT_DELAY = "300ms"  # for the target started after the tool
# A new process that maps its libraries after the daemon's first look gets a
# second one 50 ms after its exec (planner.c); Popen itself takes ~15 ms.
NEWCOMER_LIBS_S = 0.2
BASH_LINES = 20


# ---- processes ----

class Tool(harness.Tool):
    """A tool on a pseudo-terminal that keeps every line it printed; exits: the exit
    statuses it stops with on SIGINT."""

    def __init__(self, name, argv, ready=None, outfile=None, exits=(0,)):
        self.every_line = []
        self.outfile = outfile
        self.exits = exits
        self.says_ready = ready is not None
        super().__init__(name, argv, ready or r"(?!)")

    def _add(self, now, text):
        with self.lock:
            self.every_line.append(text)
        super()._add(now, text)

    def printed(self):
        """Every line, from its output file when it has one (read after it exited)."""
        if self.outfile is None:
            with self.lock:
                return list(self.every_line)
        try:
            with open(self.outfile, errors="replace") as f:
                return f.read().splitlines()
        except OSError as e:
            raise Fail(f"{self.name} left no output file: {e}\n" + self.output())


class Target:
    """The target: "ready", then its calls once told, "done" lines, and its exit at EOF."""

    def __init__(self, argv, env=None):
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True, env=env,
                                     start_new_session=True,
                                     preexec_fn=harness.default_signals)
        self.pid = self.proc.pid
        self.lines = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.t_go = None
        self.seconds = None
        line = self._line(10.0)
        if line != "ready":
            raise Fail(f"{' '.join(argv)}: printed {line!r}, not 'ready' (exit "
                       f"{self.proc.poll()})")

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def _line(self, timeout):
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            return None

    def tell(self, line="go"):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        if self.t_go is None:
            self.t_go = time.monotonic()

    def wait_done(self, count=1, timeout=CALLS_TIMEOUT):
        """The "done PID CALLS SUM" lines, as {pid: (calls, sum)}."""
        done = {}
        end = time.monotonic() + timeout
        while len(done) < count:
            line = self._line(max(0.0, end - time.monotonic()))
            m = re.match(r"^done (\d+) (\d+) (\d+)$", line or "")
            if not m:
                raise Fail(f"the target printed {line!r} before {count} 'done' lines "
                           f"(exit {self.proc.poll()})")
            done[int(m.group(1))] = (int(m.group(2)), int(m.group(3)))
        self.seconds = time.monotonic() - self.t_go
        return done

    def finish(self):
        """Closes its stdin; its exit status (negative: the signal that killed it)."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            return self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            raise Fail(f"the target {self.pid} did not exit within 10 s of EOF")

    def kill(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait()


class Bash:
    """A private copy of bash, interactive on a pseudo-terminal, as a user runs it."""

    def __init__(self, path):
        env = {"PATH": "/usr/bin:/bin", "HOME": "/", "TERM": "dumb", "PS1": "e2e$ ",
               "HISTFILE": "/dev/null", "INPUTRC": "/dev/null"}
        self.pid, self.master = pty.fork()
        if self.pid == 0:
            try:
                os.execve(path, [path, "--norc", "--noprofile", "-i"], env)
            finally:
                os._exit(127)
        self.output = b""
        self.status = None
        self.wait_for(b"e2e$ ", 10.0)

    def wait_for(self, text, timeout):
        end = time.monotonic() + timeout
        while text not in self.output:
            if time.monotonic() > end:
                raise Fail(f"bash did not print {text!r} within {timeout:.0f} s: "
                           f"{self.output[-300:]!r}")
            self.read(0.1)

    def read(self, timeout):
        if select.select([self.master], [], [], timeout)[0]:
            try:
                self.output += os.read(self.master, 65536)
            except OSError:  # EIO: bash is gone
                time.sleep(timeout)

    def type(self, line):
        os.write(self.master, line.encode() + b"\n")

    def wait_exit(self, timeout=10.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(status)
                return self.status
            self.read(0.05)
        raise Fail(f"bash did not exit within {timeout:.0f} s: {self.output[-300:]!r}")

    def kill(self):
        if self.status is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
            self.status = -signal.SIGKILL
        try:
            os.close(self.master)
        except OSError:
            pass


# ---- one run of a tool against a target ----

class Run:
    """What one run gave: the tool's lines, the target's "done" lines, where it was served."""

    def __init__(self, offload, target_pid, done, seconds, serving, log, t_served=None,
                 unit="calls"):
        self.label = "bpftimed" if offload else "kernel"
        self.target_pid = target_pid
        self.done = done
        self.seconds = seconds
        self.serving = serving
        self.log = log if offload else None
        self.t_served = t_served
        self.unit = unit
        self.output = []

    def calls(self):
        return sum(calls for calls, _ in self.done.values())

    def sum(self):
        return sum(total for _, total in self.done.values())

    def summary(self):
        text = f"{self.label}: {self.calls()} {self.unit} in {self.seconds:.2f} s"
        if self.serving is not None:
            text += f"; {describe_serving(self.serving)}"
        return text

    def shown(self, last=15):
        lines = self.output
        if len(lines) > 2 * last:
            lines = lines[:last] + [f"... ({len(lines) - 2 * last} lines)"] + lines[-last:]
        return f"{self.label} output:\n" + "\n".join(f"  | {line}" for line in lines)


def describe_serving(rows):
    parts = collections.Counter()
    for r in rows:
        text = f"pid {r['pid']} served by {r['served_by']}"
        if r["served_by"] == "agent":
            text += f", {r['hits']} hits, {r['ns_per_hit']} ns/hit"
        if r["reason"]:
            text += f" ({r['reason']})"
        parts[text] += 1
    return "; ".join(f"{n} probes: {text}" if n > 1 else text
                     for text, n in parts.items()) or "no serving rows"


def log_excerpt(log, title="bpftimed log", last=40):
    """The end of a daemon log, without what it says about other tools' binaries."""
    try:
        with open(log, errors="replace") as f:
            lines = [line.rstrip("\n") for line in f
                     if "is not served (Serve=, Exclude=)" not in line]
    except OSError:
        return f"{title}: (none)"
    if len(lines) > last:
        lines = [f"... ({len(lines) - last} lines before)"] + lines[-last:]
    return f"{title} ({log}):\n" + "\n".join(f"  | {line}" for line in lines)


def agent_hits(rows):
    return sum(r["hits"] for r in rows if r["served_by"] == "agent")


class Suite:
    """The private bus, our bpftimed when it runs, and everything the scenarios start."""

    def __init__(self, bpftimed, bpftimectl, agent_library, target, mixed):
        self.env = harness.Env(bpftimed, bpftimectl, target, None, agent_library)
        self.tmp = self.env.tmp
        # Copies in our temporary directory: nobody else probes them, and the
        # daemon serves nothing else (Serve=). The Env removes tracefs uprobes
        # a BCC tool may leave on env.target.
        self.target = os.path.join(self.tmp, "e2e-target")
        shutil.copy(target, self.target)
        self.env.target = self.env.target_real = self.target
        self.agent_library = os.path.realpath(agent_library)
        self.mixed = mixed
        self.offset = harness.elf_file_offsets(self.target, [FUNCTION])[FUNCTION]
        self.bashes = []
        self.files = 0
        self.log = None

    def path(self, name):
        self.files += 1
        return os.path.join(self.tmp, f"{self.files:02d}-{name}")

    # the daemon

    def start_daemon(self, inject_delay="0"):
        config = self.path("bpftimed.conf")
        with open(config, "w") as f:
            f.write(f"[Service]\nServe={self.tmp}/*\nInjectDelaySec={inject_delay}\n")
        self.log = self.env.daemon_log = self.path("bpftimed.log")
        self.env.start_daemon(f"--config={config}")

    def stop_daemon(self):
        daemon = self.env.daemon
        self.env.daemon = None
        if daemon.poll() is not None:
            raise Fail(f"bpftimed exited with {daemon.returncode} during the run\n"
                       + self.log_excerpt())
        daemon.send_signal(signal.SIGTERM)
        try:
            rc = daemon.wait(timeout=10)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
            raise Fail("bpftimed did not stop within 10 s of SIGTERM\n" + self.log_excerpt())
        with open(self.log, errors="replace") as f:
            crashes = [line for line in f if harness.CRASH.search(line)]
        if rc != 0 or crashes:
            raise Fail(f"bpftimed exited {rc} after SIGTERM, {len(crashes)} crash lines\n"
                       + self.log_excerpt())

    def log_excerpt(self):
        return log_excerpt(self.log)

    def both(self, run, inject_delay="0"):
        """run(offload) kernel only, then with a bpftimed of ours."""
        kernel = run(False)
        self.start_daemon(inject_delay)
        offloaded = run(True)
        self.stop_daemon()
        return kernel, offloaded

    # processes

    def start_target(self, *args, env=None):
        target = Target([self.target, *map(str, args)], env)
        self.env.targets.append(target)
        return target

    def start_tool(self, name, argv, ready=None, outfile=None, exits=(0,)):
        tool = Tool(name, argv, ready, outfile, exits)
        self.env.tools.append(tool)
        return tool

    def stop_tool(self, tool):
        tool.stop()
        tool.kill()
        if tool.proc.returncode not in tool.exits:
            raise Fail(f"{tool.name} exited with {tool.proc.returncode}\n" + tool.output())
        return tool.printed()

    # what the kernel and the daemon say

    def wait_attached(self, tool, paths, probes=1):
        """Until the kernel lists the tool's uprobes on paths, each with its program."""
        paths = {os.path.realpath(p) for p in paths}
        end = tool.t_start + ATTACH_TIMEOUT
        while True:
            rows = [r for r in self.env.bpftool_json("perf", "list")
                    if r.get("pid") == tool.pid and r.get("fd_type") in ("uprobe", "uretprobe")
                    and os.path.realpath(r.get("filename", "")) in paths]
            if len(rows) >= probes and (tool.t_ready or not tool.says_ready):
                return
            if not tool.alive():
                raise Fail(f"{tool.name} exited ({tool.proc.poll()}) before it attached\n"
                           + tool.output())
            if time.monotonic() > end:
                raise Fail(f"{tool.name}: {len(rows)} of {probes} uprobes attached after "
                           f"{ATTACH_TIMEOUT:.0f} s\n" + tool.output())
            time.sleep(0.05)

    def serving(self, tool, pid):
        return [r for r in self.env.listing("serving")
                if r["tool_pid"] == tool.pid and r["pid"] == pid]

    def wait_served(self, tool, pid, where="agent"):
        """Until every probe of the tool is served in pid by the agent (where="agent"),
        or by the agent or the kernel with a reason (where="either")."""
        t0 = time.monotonic()
        while True:
            self.env.daemon_alive()
            rows = self.serving(tool, pid)
            kept = [r for r in rows if r["served_by"] == "kernel" and r["reason"]]
            if rows and all(r["served_by"] == "agent" for r in rows):
                return rows
            if rows and kept and where == "agent":
                raise Fail(f"{tool.name}'s probe is kept in the kernel in pid {pid}: "
                           f"{describe_serving(rows)}\n" + self.log_excerpt())
            if rows and where == "either" and \
                    all(r["served_by"] == "agent" or r in kept for r in rows):
                return rows
            if time.monotonic() > t0 + SERVE_TIMEOUT:
                atts = [f"{a['kind']} {a['symbol']}: served {a['served']}, reason "
                        f"{a['reason'] or '-'}" for a in self.env.listing("attachments")
                        if a["pid"] == tool.pid]
                raise Fail(f"pid {pid} not served within {SERVE_TIMEOUT:.0f} s: "
                           f"{describe_serving(rows)}; {tool.name}'s attachments: "
                           f"{'; '.join(atts) or 'none listed'}\n" + self.log_excerpt())
            time.sleep(0.05)

    def wait_hits(self, tool, pid, calls):
        """The serving rows once the agent's hits reached calls, or after HITS_TIMEOUT."""
        end = time.monotonic() + HITS_TIMEOUT
        while True:
            rows = self.serving(tool, pid)
            if agent_hits(rows) >= calls or time.monotonic() > end:
                return rows
            time.sleep(0.1)

    def check_served(self, rows, where):
        """After the calls: the agent served them (hits), or the kernel keeps them and says why."""
        if not rows:
            raise Fail("after the calls: no serving rows for the target\n" + self.log_excerpt())
        for r in rows:
            if r["served_by"] == "agent" and r["hits"] > 0:
                continue
            if r["served_by"] == "kernel" and r["reason"] and where == "either":
                continue
            raise Fail(f"after the calls: {describe_serving(rows)}\n" + self.log_excerpt())

    def check_agent_counters(self, pid, rows):
        """What `bpftimectl list agents` reads from the agent's status page."""
        agents = [a for a in self.env.listing("agents") if a["pid"] == pid]
        if (not agents or agents[0]["state"] != "serving" or agents[0]["probes"] < 1
                or agents[0]["hits"] < max(r["hits"] for r in rows)):
            raise Fail(f"agent of pid {pid} listed as {agents}; serving "
                       f"{describe_serving(rows)}")

    def check_agents(self, pid, offload):
        """Our agent only where we offload; another bpftimed's in a target spoils the run."""
        try:
            with open(f"/proc/{pid}/maps") as f:
                mapped = {line.split(None, 5)[5].strip() for line in f
                          if "libbpftime-agent" in line}
        except OSError as e:
            raise Fail(f"cannot read the maps of pid {pid}: {e}")
        foreign = mapped - {self.agent_library}
        if foreign:
            raise Fail(f"another bpftimed injected its agent into pid {pid} ({sorted(foreign)}): "
                       "this run does not compare what it should")
        if mapped and not offload:
            raise Fail(f"the agent is mapped into pid {pid} in the kernel-only run")

    # the run

    def run(self, offload, make_tool, target_args, *, paths=None, probes=1, where="agent",
            target_env=None, tool_first=False, processes=1, complete=None):
        """One run: target and tool up, the calls, the tool stopped. make_tool(pid) starts
        the tool (pid: the target's, None when the tool comes first); complete(lines, run),
        when given, says whether the tool printed everything it will."""
        paths = paths or [self.target]
        if tool_first:
            tool = make_tool(None)
            self.wait_attached(tool, paths, probes)
            t_started = time.time()
            target = self.start_target(*target_args, env=target_env)
        else:
            target = self.start_target(*target_args, env=target_env)
            tool = make_tool(target.pid)
            self.wait_attached(tool, paths, probes)
        t_attached = time.monotonic()
        serving = self.wait_served(tool, target.pid, where) if offload else None
        t_served = time.monotonic() - t_attached
        if offload and tool_first:
            # When its agent connected (CLOCK_REALTIME), from its start.
            connected = [g["connected_usec"] for g in self.env.listing("agents")
                         if g["pid"] == target.pid]
            t_served = connected[0] / 1e6 - t_started if connected else t_served
        self.check_agents(target.pid, offload)
        target.tell()
        done = target.wait_done(processes)
        if offload:
            serving = self.wait_hits(tool, target.pid, done[target.pid][0])
            self.check_served(serving, where)
            if where == "agent":
                self.check_agent_counters(target.pid, serving)
        self.check_agents(target.pid, offload)
        rc = target.finish()
        run = Run(offload, target.pid, done, target.seconds, serving, self.log, t_served)
        if rc != 0:
            raise Fail(f"{run.label} run: the target exited with {rc}"
                       + ("\n" + self.log_excerpt() if offload else ""))
        if complete is not None:
            end = time.monotonic() + OUTPUT_TIMEOUT
            while not complete(tool.printed(), run) and time.monotonic() < end:
                time.sleep(0.1)
        run.output = self.stop_tool(tool)
        return run

    def cleanup(self):
        """Ends what a scenario left running."""
        for bash in self.bashes:
            bash.kill()
        self.bashes = []
        for tool in self.env.tools:
            tool.kill()
        self.env.tools = []
        for target in self.env.targets:
            target.kill()
        self.env.targets = []
        if self.env.daemon is not None:
            self.env.daemon.kill()
            self.env.daemon.wait()
            self.env.daemon = None

    def close(self):
        self.cleanup()
        self.env.cleanup()


# ---- what the tools print ----

def bpftrace_maps(lines):
    """bpftrace's maps at exit: {"@name": value} and {"@name": {key or bucket: value}}."""
    maps = {}
    current = None
    for line in lines:
        m = re.match(r"^(@\w*)(?:\[(.*)\])?: ?(-?\d+)?$", line)
        if m:
            name, key, value = m.groups()
            if key is not None:
                maps.setdefault(name, {})[key] = int(value)
            elif value is not None:
                maps[name] = int(value)
            else:
                current = maps.setdefault(name, {})
            continue
        m = re.match(r"^(\[[^\]]*[\])])\s+(\d+) \|", line)
        if m and current is not None:
            current[m.group(1)] = int(m.group(2))
    return maps


def compare(what, value, truth, k, a):
    """value(run) must equal truth(run) (what the target did; None: nothing to check) in
    both runs, and the two must be the same; returns it."""
    for r in (k, a):
        got = value(r)
        if truth is not None and got != truth(r):
            raise Fail(f"{r.label} run: {what} is {show(got)}, the target says "
                       f"{show(truth(r))}\n{r.summary()}\n{r.shown()}"
                       + ("\n" + log_excerpt(r.log) if r.log else ""))
    if value(k) != value(a):
        raise Fail(f"{what} differ: kernel {show(value(k))}, bpftimed {show(value(a))}\n"
                   f"{k.summary()}\n{a.summary()}\n{k.shown()}\n{a.shown()}\n"
                   + log_excerpt(a.log))
    return value(k)


def show(value, limit=600):
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def report(k, a, *figures):
    return "\n".join([*figures, k.summary(), a.summary()])


# ---- the comparisons ----

def bpftrace_run(s, offload, script, target_args, **kw):
    """bpftrace with its output in a file (a terminal loses printf events); script(pid)."""
    bpftrace, = harness.need("bpftrace")

    def make(pid):
        out = s.path("bpftrace.out")
        return s.start_tool("bpftrace", [bpftrace, "-o", out, "-e", script(pid)], outfile=out)
    return s.run(offload, make, target_args, **kw)


def bpftrace_map(name):
    """A function of a run: its bpftrace map name."""
    return lambda r: bpftrace_maps(r.output).get(name)


def probe(s, kind="uprobe"):
    return f"{kind}:{s.target}:{FUNCTION}"


def scenario_count(s):
    k, a = s.both(lambda offload: bpftrace_run(
        s, offload, lambda _: f"{probe(s)} {{ @calls = count(); }}", [CALLS]))
    count = compare("@calls", bpftrace_map("@calls"), Run.calls, k, a)
    return report(k, a, f"@calls: {count} in both runs")


def scenario_hist(s):
    k, a = s.both(lambda offload: bpftrace_run(
        s, offload, lambda _: f"{probe(s)} {{ @h = hist(arg0); }}", [CALLS]))
    compare("the sum of @h's buckets", lambda r: sum((bpftrace_map("@h")(r) or {}).values()),
            Run.calls, k, a)
    h = compare("@h's buckets", bpftrace_map("@h"), None, k, a)
    return report(k, a, f"@h: {len(h)} buckets, the same counts in each "
                        f"({', '.join(f'{b} {n}' for b, n in list(h.items())[-3:])}, ...)")


def printf_lines(r):
    """bpftrace's printf lines: everything but the Attaching line and the maps."""
    return collections.Counter(line for line in r.output if re.match(r"^-?\d+ -?\d+$", line))


def scenario_printf(s):
    k, a = s.both(lambda offload: bpftrace_run(
        s, offload, lambda _: f'{probe(s)} {{ printf("%d %d\\n", arg0, arg1); }}',
        ["-p", PACE, OUTPUT_CALLS]))
    compare("the number of printf lines", lambda r: sum(printf_lines(r).values()), Run.calls, k, a)
    lines = compare("printf lines (as multisets)", printf_lines, None, k, a)
    return report(k, a, f"{sum(lines.values())} printf lines, {len(lines)} distinct, "
                        "the same multiset in both runs")


def scenario_uretprobe(s):
    k, a = s.both(lambda offload: bpftrace_run(
        s, offload, lambda _: f"{probe(s, 'uretprobe')} {{ @ret = sum(retval); }}", [CALLS]))
    total = compare("@ret", bpftrace_map("@ret"), Run.sum, k, a)
    return report(k, a, f"@ret (sum of {FUNCTION}'s return values): {total} in both runs")


def system_libc():
    """The C library this process runs on."""
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.split(None, 5)[-1].strip()
            if os.path.basename(path) == "libc.so.6":
                return os.path.realpath(path)
    raise Skip("no libc.so.6 mapped in this process")


def private_libc(s):
    """A copy of libc only our target loads (LD_LIBRARY_PATH): nothing else is probed."""
    libdir = os.path.join(s.tmp, "lib")
    libc = os.path.join(libdir, "libc.so.6")
    os.makedirs(libdir, exist_ok=True)
    if not os.path.exists(libc):
        shutil.copy(system_libc(), libc)
    return libc, dict(os.environ, LD_LIBRARY_PATH=libdir)


def scenario_malloc(s):
    libc, env = private_libc(s)
    k, a = s.both(lambda offload: bpftrace_run(
        s, offload, lambda pid: f"uprobe:{libc}:malloc /pid == {pid}/ {{ @mallocs = count(); }}",
        ["-m", CALLS], paths=[libc], where="either", target_env=env))
    mallocs = bpftrace_map("@mallocs")
    if mallocs(k) != k.calls():
        raise Fail(f"kernel run: @mallocs is {mallocs(k)}, the target says {k.calls()}\n"
                   f"{k.summary()}\n{k.shown()}")
    # Injecting the agent (its dlopen, its thread) calls malloc in the target too,
    # while the kernel still serves it: those are counted, and only those.
    extra = (mallocs(a) or 0) - a.calls()
    if not 0 <= extra <= INJECTION_MALLOCS:
        raise Fail(f"bpftimed run: @mallocs is {mallocs(a)}, the target made {a.calls()} "
                   f"and the injection at most {INJECTION_MALLOCS} more\n{a.summary()}\n"
                   f"{a.shown()}\n" + log_excerpt(a.log))
    return report(k, a, f"@mallocs: {mallocs(k)} in the kernel run; {mallocs(a)} with "
                        f"bpftimed, {extra} of them the agent's injection "
                        f"(the private copy {libc})")


def funccount_counts(r):
    return {m.group(1): int(m.group(2)) for m in
            (re.match(r"^(\S+)\s+(\d+)$", line) for line in r.output) if m}


def scenario_funccount(s):
    funccount, = harness.need("funccount-bpfcc")
    k, a = s.both(lambda offload: s.run(offload, lambda _: s.start_tool(
        "funccount-bpfcc", [funccount, f"{s.target}:{FUNCTION}"],
        r"^Tracing \d+ functions"), [CALLS]))
    count = compare(f"funccount's {FUNCTION}", lambda r: funccount_counts(r).get(FUNCTION),
                    Run.calls, k, a)
    compare("funccount's counts", funccount_counts, None, k, a)
    return report(k, a, f"funccount: {FUNCTION} {count} in both runs")


def trace_messages(lines):
    """trace's formatted messages, without its PID, TID, COMM and FUNC columns."""
    out = collections.Counter()
    for line in lines:
        parts = line.split(None, 4)
        if len(parts) == 5 and parts[0].isdigit() and parts[3] == FUNCTION:
            out[parts[4]] += 1
    return out


def scenario_trace(s):
    trace, = harness.need("trace-bpfcc")

    def complete(lines, run):
        return sum(trace_messages(lines).values()) >= run.calls()

    # 1,024 pages per CPU: room for every record while trace's Python prints.
    # trace exits 1 on Ctrl-C (it prints the KeyboardInterrupt).
    k, a = s.both(lambda offload: s.run(offload, lambda _: s.start_tool(
        "trace-bpfcc", [trace, "-b", "1024", f'p:{s.target}:{FUNCTION} "%d %d", arg1, arg2'],
        r"^PID\s+TID\s+COMM\s+FUNC", exits=(0, 1)), ["-p", PACE, OUTPUT_CALLS],
        complete=complete))
    compare("trace's lost-sample lines", lambda r: [line for line in r.output
                                                    if "Possibly lost" in line], lambda _: [],
            k, a)
    compare("the number of trace lines", lambda r: sum(trace_messages(r.output).values()),
            Run.calls, k, a)
    messages = compare("trace's messages (as multisets)", lambda r: trace_messages(r.output),
                       None, k, a)
    return report(k, a, f"{sum(messages.values())} trace lines, {len(messages)} distinct "
                        "messages, the same multiset in both runs")


def funclatency_total(r):
    return sum(int(m.group(1)) for m in
               (re.match(r"^\s*\d+ -> \d+\s*: (\d+)", line) for line in r.output) if m)


def scenario_funclatency(s):
    funclatency, = harness.need("funclatency")  # libbpf-tools' (BCC's is funclatency-bpfcc)
    # With -p, ":FUNCTION" is the process's own binary (a path is looked up
    # among its libraries).
    k, a = s.both(lambda offload: s.run(offload, lambda pid: s.start_tool(
        "funclatency", [funclatency, "-p", str(pid), f":{FUNCTION}"], r"^Tracing "),
        [CALLS], probes=2, where="either"))
    total = compare("funclatency's histogram total", funclatency_total, Run.calls, k, a)
    return report(k, a, f"funclatency: {total} calls in the histogram in both runs "
                        "(latencies differ by design)")


def run_bash(s, offload, bashreadline, bash_path, typed):
    """bashreadline against a private bash, the lines typed (the last one ends it)."""
    bash = Bash(bash_path)
    s.bashes.append(bash)
    tool = s.start_tool("bashreadline", [bashreadline, "-s", bash_path],
                        r"^TIME\s+PID\s+COMMAND")
    s.wait_attached(tool, [bash_path])
    serving = s.wait_served(tool, bash.pid) if offload else None
    s.check_agents(bash.pid, offload)
    # bash entered readline() before the uretprobe existed: that first
    # return is never seen; the line after it is the first one traced.
    bash.type("true")
    t0 = time.monotonic()
    for line in typed[:-1]:
        bash.type(line)
    bash.wait_for(b"\n" + typed[-2].split(None, 1)[1].encode() + b"\r", 10.0)
    seconds = time.monotonic() - t0
    if offload:
        serving = s.wait_hits(tool, bash.pid, len(typed) - 1)
        s.check_served(serving, "agent")
    s.check_agents(bash.pid, offload)
    bash.type(typed[-1])
    status = bash.wait_exit()
    if status != 0:
        raise Fail(f"bash exited with {status}")
    run = Run(offload, bash.pid, {bash.pid: (len(typed), 0)}, seconds, serving, s.log,
              unit="lines typed")
    end = time.monotonic() + OUTPUT_TIMEOUT
    while len(bash_commands(tool.printed())) < len(typed) and time.monotonic() < end:
        time.sleep(0.1)
    run.output = s.stop_tool(tool)
    return run


def bash_commands(lines):
    """bashreadline's COMMAND column."""
    return [m.group(1) for m in
            (re.match(r"^\d\d:\d\d:\d\d\s+\d+\s+(.*)$", line) for line in lines) if m]


def scenario_bashreadline(s):
    bashreadline, = harness.need("bashreadline")
    bindir = os.path.join(s.tmp, "bin")
    bash = os.path.join(bindir, "bash")  # bashreadline wants the comm "bash"
    os.makedirs(bindir, exist_ok=True)
    shutil.copy(harness.which("bash"), bash)
    typed = [f"echo e2e {i}" for i in range(BASH_LINES)] + ["exit"]
    k, a = s.both(lambda offload: run_bash(s, offload, bashreadline, bash, typed))
    lines = compare("the commands bashreadline printed", lambda r: bash_commands(r.output),
                    lambda _: typed, k, a)
    return report(k, a, f"bashreadline: the {len(lines)} lines typed, in order, in both runs")


def scenario_tool_first(s):
    k, a = s.both(lambda offload: bpftrace_run(
        s, offload, lambda _: f"{probe(s)} {{ @calls = count(); }}", [CALLS], tool_first=True),
        inject_delay=INJECT_DELAY)
    count = compare("@calls", bpftrace_map("@calls"), Run.calls, k, a)
    return report(k, a, f"@calls: {count} in both runs; with InjectDelaySec={INJECT_DELAY} the "
                        f"new target's agent connected {a.t_served * 1000:.0f} ms after it "
                        f"started")


def scenario_exec_at_entry(s):
    k, a = s.both(lambda offload: bpftrace_run(
        s, offload, lambda _: f"{probe(s)} {{ @calls = count(); }}", [CALLS], tool_first=True))
    count = compare("@calls", bpftrace_map("@calls"), Run.calls, k, a)
    said = f"Injected the agent into process {a.target_pid} at its entry point"
    with open(a.log, errors="replace") as f:
        if said not in f.read():
            raise Fail(f"the daemon did not say \"{said}\"\n" + s.log_excerpt())
    return report(k, a, f"@calls: {count} in both runs; with InjectDelaySec=0 the new target "
                        f"got its agent at its entry point, connected {a.t_served * 1000:.0f} ms "
                        f"after it started")


def scenario_library_first(s):
    libc, env = private_libc(s)
    k, a = s.both(lambda offload: bpftrace_run(
        s, offload, lambda _: f"uprobe:{libc}:malloc {{ @mallocs = count(); }}",
        ["-m", CALLS], paths=[libc], where="either", target_env=env, tool_first=True))
    mallocs = bpftrace_map("@mallocs")
    # The same process start in both runs; the injection's own mallocs on top.
    extra = (mallocs(a) or 0) - (mallocs(k) or 0)
    if mallocs(k) is None or mallocs(k) < k.calls() or not 0 <= extra <= INJECTION_MALLOCS:
        raise Fail(f"@mallocs: {mallocs(k)} in the kernel run for {k.calls()} calls, "
                   f"{mallocs(a)} with bpftimed (at most {INJECTION_MALLOCS} more)\n"
                   f"{a.summary()}\n" + log_excerpt(a.log))
    if a.t_served > NEWCOMER_LIBS_S:
        raise Fail(f"the new target's agent connected {a.t_served * 1000:.0f} ms after it "
                   f"started, past the look {NEWCOMER_LIBS_S * 1000:.0f} ms after its exec\n"
                   + log_excerpt(a.log))
    return report(k, a, f"@mallocs: {mallocs(k)} in the kernel run, {mallocs(a)} with "
                        f"bpftimed ({extra} the injection's); with InjectDelaySec=0 the new "
                        f"target's agent connected {a.t_served * 1000:.0f} ms after it started")


def per_role(r, counts):
    """{"parent"/"child": value} from {pid: value}: pids differ between runs."""
    return {("parent" if int(pid) == r.target_pid else "child"): v
            for pid, v in (counts or {}).items()}


def scenario_fork(s):
    # Paced so that the child calls for over a second: it is found by the
    # daemon's scan (every 500 ms) and gets an agent of its own meanwhile.
    k, a = s.both(lambda offload: bpftrace_run(
        s, offload, lambda _: f"{probe(s)} {{ @calls[pid] = count(); }}",
        ["-f", "-p", FORK_PACE, CALLS], processes=2))
    counts = compare("@calls per process", lambda r: per_role(r, bpftrace_map("@calls")(r)),
                     lambda r: per_role(r, {pid: n for pid, (n, _) in r.done.items()}), k, a)
    return report(k, a, f"@calls: parent {counts['parent']}, child {counts['child']} in both "
                        "runs")


def mixed_entries(r):
    """The uprobe's entries ((process, arg): count; the target's pid as "target") and the
    tracepoint's for the target's pid (fd: count)."""
    calls, writes = {}, {}
    for line in r.output:
        m = re.match(r"^(write|call) (\d+) (-?\d+) (\d+)$", line)
        if not m:
            continue
        kind, pid, value, count = m.group(1), int(m.group(2)), int(m.group(3)), int(m.group(4))
        if kind == "call":
            calls[("target" if pid == r.target_pid else pid, value)] = count
        elif pid == r.target_pid:
            writes[value] = count
    return calls, writes


def scenario_mixed(s):
    k, a = s.both(lambda offload: s.run(offload, lambda _: s.start_tool(
        "e2e-mixed", [s.mixed, s.target, FUNCTION], r"^ready$"), ["-w", PACE, CALLS]))
    compare("the uprobe's total", lambda r: sum(mixed_entries(r)[0].values()), Run.calls, k, a)
    entries = compare("the uprobe's entries", lambda r: mixed_entries(r)[0], None, k, a)
    writes = compare("the tracepoint's entries for the target", lambda r: mixed_entries(r)[1],
                     None, k, a)
    return report(k, a, f"{len(entries)} uprobe entries ({sum(entries.values())} calls) and "
                        f"the target's writes per fd {writes} equal in both runs")


# ---- when something dies ----

def file_bytes(path, offset, size):
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(size)


def text_bytes(target, path, offset, size):
    """The bytes the target has where path's file offset is mapped; None once it is gone."""
    path = os.path.realpath(path)
    try:
        with open(f"/proc/{target.pid}/maps") as f:
            for line in f:
                fields = line.split(None, 5)
                if len(fields) < 6 or fields[5].strip() != path:
                    continue
                start, end = (int(x, 16) for x in fields[0].split("-"))
                pgoff = int(fields[2], 16)
                if pgoff <= offset and offset + size <= pgoff + end - start:
                    with open(f"/proc/{target.pid}/mem", "rb") as mem:
                        mem.seek(start + offset - pgoff)
                        return mem.read(size)
    except OSError:
        if target.proc.poll() is not None:
            return None
        raise
    if target.proc.poll() is not None:
        return None
    raise Fail(f"pid {target.pid} does not map {path} at file offset {offset:#x}")


def start_looping(s):
    """bpftimed, a target calling in a loop, bpftrace counting, all served by the agent."""
    bpftrace, = harness.need("bpftrace")
    s.start_daemon()
    target = s.start_target("-l", "-p", 1000, 1000)
    out = s.path("bpftrace.out")
    tool = s.start_tool("bpftrace", [bpftrace, "-o", out, "-e",
                                     f"{probe(s)} {{ @calls = count(); }}"], outfile=out)
    s.wait_attached(tool, [s.target])
    s.wait_served(tool, target.pid)
    target.tell()
    time.sleep(0.3)
    return target, tool


def stop_looping(target):
    """Ends the target's loop: the calls it made, None if it died."""
    try:
        target.tell("stop")
        return target.wait_done()[target.pid][0]
    except (OSError, Fail):
        return None


def end_target(target):
    """Lets the target exit: None, or what is wrong with its exit status."""
    rc = target.finish()
    if rc == 0:
        return None
    return f"the target exited with {rc}" + (f" ({signal.Signals(-rc).name})" if rc < 0 else "")


def scenario_tool_sigkill(s):
    window = (s.offset - 16, 32)  # the padding before the function and its start
    original = file_bytes(s.target, *window)
    target, tool = start_looping(s)
    hooked = text_bytes(target, s.target, *window)
    if hooked == original:
        raise Fail("the target's text is the file's while the agent serves it: no hook")
    os.kill(tool.pid, signal.SIGKILL)
    t_kill = time.monotonic()
    while True:
        now = time.monotonic()
        current = text_bytes(target, s.target, *window)
        if current in (original, None) or now > t_kill + UNHOOK_TIMEOUT:
            break
        time.sleep(0.002)
    elapsed = now - t_kill
    time.sleep(0.2)  # the target calls on, unhooked
    calls = stop_looping(target)
    problems = [p for p in [end_target(target)] if p]
    if current is None:
        problems.append(f"the target was gone {elapsed * 1000:.0f} ms after bpftrace's SIGKILL")
    elif current != original:
        problems.append(f"{UNHOOK_TIMEOUT:.0f} s after bpftrace's SIGKILL the target's text at "
                        f"{FUNCTION} is still not the file's:\n  file   {original.hex(' ')}\n"
                        f"  target {current.hex(' ')}")
    if problems:
        raise Fail("\n".join(problems) + "\n" + s.log_excerpt())
    s.stop_daemon()
    return (f"the hook was in place ({hooked[16:21].hex(' ')}...); {elapsed * 1000:.0f} ms "
            f"after bpftrace's SIGKILL the text was the file's again; the target made "
            f"{calls} calls and exited 0")


def scenario_daemon_sigkill(s):
    target, tool = start_looping(s)
    s.env.daemon.kill()
    s.env.daemon.wait()
    s.env.daemon = None
    killed_log = s.log
    time.sleep(0.3)  # the kernel serves the target meanwhile
    first = text_bytes(target, s.target, s.offset, 1)
    if first is None:
        raise Fail(f"{end_target(target)} after bpftimed's SIGKILL\n"
                   + log_excerpt(killed_log, "the SIGKILLed bpftimed's log"))
    facts = [f"bpftimed SIGKILLed mid-run; 0.3 s later {FUNCTION}'s first byte is {first.hex()}"
             + (" (int3: the kernel's breakpoint is back)" if first == b"\xcc" else "")]
    problems = []
    # A bpftimed started after the tool loaded its program never saw its instructions:
    # it lists the uprobe and leaves it to the kernel, saying why.
    s.start_daemon()
    reason = None
    deadline = time.monotonic() + SERVE_TIMEOUT
    while reason is None and time.monotonic() < deadline:
        reason = next((a["reason"] for a in s.env.listing("attachments")
                       if a["pid"] == tool.pid and "not captured" in a["reason"]), None)
        time.sleep(0.1)
    if reason is None:
        problems.append("the restarted bpftimed does not list the tool's uprobe as kept in "
                        "the kernel because its instructions were not captured")
    else:
        facts.append(f"the restarted bpftimed keeps the uprobe in the kernel: {reason}")
    calls = stop_looping(target)
    problems += [p for p in [end_target(target)] if p]
    count = bpftrace_maps(s.stop_tool(tool)).get("@calls")
    facts.append(f"the target made {calls} calls, bpftrace counted {count}")
    if calls is not None and count != calls:
        problems.append(f"bpftrace counted {count} calls, the target made {calls}")
    if problems:
        raise Fail("\n".join(problems + facts) + "\n"
                   + log_excerpt(killed_log, "the SIGKILLed bpftimed's log"))
    s.stop_daemon()
    return "\n".join(facts + ["the target exited 0"])


# ---- main ----

SCENARIOS = [
    ("bpftrace uprobe count(): same count, served by the agent", scenario_count),
    ("bpftrace hist(arg0): same buckets, served by the agent", scenario_hist),
    ("bpftrace printf of two arguments: same lines, served by the agent", scenario_printf),
    ("bpftrace uretprobe sum(retval): same sum, served by the agent", scenario_uretprobe),
    ("bpftrace on a private libc's malloc, /pid == N/: the target's count (with bpftimed, "
     "plus the injection's own mallocs); agent, or kernel with a reason", scenario_malloc),
    ("funccount-bpfcc: same count, served by the agent", scenario_funccount),
    ("trace-bpfcc with a format: same messages, served by the agent", scenario_trace),
    ("funclatency (libbpf-tools): same histogram total; agent, or kernel with a reason",
     scenario_funclatency),
    ("bashreadline (libbpf-tools) on a private bash: same lines, served by the agent",
     scenario_bashreadline),
    ("a target started after the tool: same count, served by the agent", scenario_tool_first),
    ("a target started after the tool, InjectDelaySec=0: its agent comes at its entry point, "
     "same count", scenario_exec_at_entry),
    ("a target started after a tool on its private libc's malloc, InjectDelaySec=0: its agent "
     "comes once the loader mapped the library, same count plus the injection's",
     scenario_library_first),
    ("a target that forks: same count per process, served by the agent", scenario_fork),
    ("our tracepoint + uprobe tool on one hash map: same entries, served by the agent",
     scenario_mixed),
    ("the tool SIGKILLed mid-run: the target lives on, its text is the file's within 1 s",
     scenario_tool_sigkill),
    ("bpftimed SIGKILLed mid-run: the target lives on, no call lost, a new bpftimed "
     "leaves the tool's uprobe to the kernel and says why", scenario_daemon_sigkill),
]


def main(argv):
    if len(argv) < 6:
        print("usage: test-e2e.py BPFTIMED BPFTIMECTL AGENT_LIBRARY TARGET MIXED [SCENARIO...]",
              file=sys.stderr)
        return 2
    picked = [int(n) for n in argv[6:]] or range(1, len(SCENARIOS) + 1)
    selected = [SCENARIOS[n - 1] for n in picked]
    why = harness.missing_feature()
    if why:
        print(f"1..0 # SKIP {why}")
        return 0

    suite = Suite(*argv[1:6])
    tap = Tap([name for name, _ in selected])
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # meson's timeout: clean up
    t0 = time.monotonic()
    try:
        suite.env.start_bus()
        for _, scenario in selected:
            t = time.monotonic()
            try:
                tap.ok(scenario(suite))
            except Skip as e:
                tap.skip(str(e))
            except Fail as e:
                tap.not_ok(str(e))
            except Exception:  # a bug here must still end the plan properly
                tap.not_ok(traceback.format_exc())
            finally:
                suite.cleanup()
            note(f"scenario took {time.monotonic() - t:.1f} s")
    except Fail as e:  # the bus did not start
        while tap.remaining():
            tap.not_ok(str(e))
    finally:
        while tap.remaining():
            tap.not_ok("not run: the test was interrupted")
        suite.close()
        note(f"total {time.monotonic() - t0:.1f} s")
    return 1 if tap.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

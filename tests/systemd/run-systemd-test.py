#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""bpftimed under a real systemd, as a user would run it. Prints TAP.

1. A minimal Debian bookworm tree (debootstrap) is built once and cached
   outside the build tree ($BPFTIMED_TEST_CACHE, default
   /var/cache/bpftimed-test/bookworm, valid while its stamp matches).
2. Each run boots a copy-on-write overlay of it with systemd-nspawn, with
   the build installed into it by `meson install --destdir`.
3. From outside, through nsenter into the container: systemctl, busctl,
   bpftimectl, bpftrace and journalctl, the way an administrator would.

The container is always powered off and the overlay removed, also on
failure, SIGTERM (meson's timeout) or Ctrl-C. The test is skipped (TAP
"1..0 # SKIP") only when no container can run here: not root, no
systemd-nspawn/debootstrap, or no cached tree and no network to build one.
"""

import argparse
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

SUITE = "bookworm"
PACKAGES = [
    "systemd", "systemd-sysv", "dbus", "libbpf1", "libelf1", "libsystemd0",
    "bpftrace",
]
# Bump when the tree needs rebuilding for another reason than the package list.
TREE_VERSION = 1
MIRROR = os.environ.get("BPFTIMED_TEST_MIRROR", "http://deb.debian.org/debian")
CACHE = os.environ.get("BPFTIMED_TEST_CACHE", "/var/cache/bpftimed-test")
# What bpftimed needs from the kernel, on top of nspawn's default filter.
SYSCALLS = "bpf perf_event_open pidfd_open pidfd_getfd ptrace process_vm_readv process_vm_writev"
BUS = ["org.bpftime.bpftimed1", "/org/bpftime/bpftimed1", "org.bpftime.bpftimed1.Manager"]
TARGET_IN_CONTAINER = "/usr/local/libexec/bpftimed-test/target"
PROBE_FN = "bpftimed_test_probe"
# The highest `systemd-analyze security` exposure we accept (lower is better).
MAX_EXPOSURE = 4.0
CONTAINER_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "SYSTEMD_PAGER": "cat",
    "SYSTEMD_COLORS": "0",
    "TERM": "dumb",
}


class Skip(Exception):
    pass


class Fatal(Exception):
    """A step the rest depends on failed: report it and tear down."""


class Tap:
    def __init__(self):
        self.n = 0
        self.failed = 0

    def ok(self, cond, desc, diag=""):
        self.n += 1
        if not cond:
            self.failed += 1
        print(f"{'ok' if cond else 'not ok'} {self.n} - {desc}", flush=True)
        if diag and not cond:
            self.diag(diag)
        return cond

    def todo(self, cond, desc, why, diag=""):
        """A known gap: reported, not counted as a failure until fixed."""
        self.n += 1
        print(f"{'ok' if cond else 'not ok'} {self.n} - {desc} # TODO {why}", flush=True)
        if diag and not cond:
            self.diag(diag)

    def diag(self, text):
        for line in str(text).rstrip().splitlines():
            print(f"# {line}", flush=True)


tap = Tap()


def log(msg):
    tap.diag(msg)


def run(cmd, timeout=60, check=False, **kw):
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    kw.setdefault("stdin", subprocess.DEVNULL)
    p = subprocess.run(cmd, timeout=timeout, text=True, **kw)
    if check and p.returncode != 0:
        raise Fatal(f"{' '.join(cmd)} exited {p.returncode}: {p.stderr.strip() or p.stdout.strip()}")
    return p


# ---- The cached tree ----

def stamp_text():
    return f"suite={SUITE}\nversion={TREE_VERSION}\npackages={','.join(sorted(PACKAGES))}\n"


def ensure_tree():
    """Returns the cached tree, building it under a lock when missing or stale."""
    os.makedirs(CACHE, exist_ok=True)
    tree = os.path.join(CACHE, SUITE)
    stamp = tree + ".stamp"
    with open(os.path.join(CACHE, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            with open(stamp) as f:
                if f.read() == stamp_text() and os.path.isdir(tree):
                    return tree, 0.0
        except FileNotFoundError:
            pass
        start = time.monotonic()
        log(f"building {tree} with debootstrap ({MIRROR}); cached for later runs")
        tmp = tree + ".tmp"
        for d in (tmp, tree):
            shutil.rmtree(d, ignore_errors=True)
        if os.path.exists(stamp):
            os.unlink(stamp)
        debs = os.path.join(CACHE, "debs")
        os.makedirs(debs, exist_ok=True)
        try:
            p = run(["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}",
                     f"--cache-dir={debs}", SUITE, tmp, MIRROR], timeout=420)
        except subprocess.TimeoutExpired:
            shutil.rmtree(tmp, ignore_errors=True)
            raise Fatal("debootstrap took more than 7 minutes")
        if p.returncode != 0:
            out = (p.stdout + p.stderr).strip().splitlines()
            shutil.rmtree(tmp, ignore_errors=True)
            text = "\n".join(out[-15:])
            if re.search(r"(Failed getting release file|Temporary failure|Could not resolve|"
                         r"Network is unreachable|Connection refused|couldn't download)",
                         text, re.I):
                raise Skip(f"no cached tree in {CACHE} and debootstrap cannot reach {MIRROR}")
            raise Fatal(f"debootstrap failed:\n{text}")
        os.rename(tmp, tree)
        with open(stamp, "w") as f:
            f.write(stamp_text())
        return tree, time.monotonic() - start


# ---- The container ----

class Container:
    def __init__(self, tree, workdir):
        self.tree = tree
        self.work = workdir
        self.root = os.path.join(workdir, "root")
        self.mounted = False
        self.nspawn = None
        self.init_pid = None
        self.name = f"bpftimed-test-{os.getpid()}"
        self.console = os.path.join(workdir, "console.log")
        self.bg = []  # host processes we started inside the container

    def prepare(self):
        """An overlay over the cached tree: the cache stays pristine."""
        upper, wd = os.path.join(self.work, "upper"), os.path.join(self.work, "ovl-work")
        for d in (upper, wd, self.root):
            os.makedirs(d)
        p = run(["mount", "-t", "overlay", "overlay", "-o",
                 f"lowerdir={self.tree},upperdir={upper},workdir={wd}", self.root])
        if p.returncode == 0:
            self.mounted = True
            return "overlay"
        log(f"overlay mount failed ({p.stderr.strip()}), copying the tree instead")
        os.rmdir(self.root)
        run(["cp", "-a", "--reflink=auto", self.tree, self.root], timeout=300, check=True)
        return "copy"

    def boot(self):
        cmd = ["systemd-nspawn", "-D", self.root, "--boot", "--register=no", "--keep-unit",
               f"--machine={self.name}", "--private-network", "--capability=all",
               f"--system-call-filter={SYSCALLS}", "--bind=/sys/fs/bpf",
               "--console=read-only"]
        out = open(self.console, "w")
        # Its own session, so a terminal's Ctrl-C reaches us, not the container.
        self.nspawn = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        out.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.nspawn.poll() is not None:
                raise Fatal(f"systemd-nspawn exited {self.nspawn.returncode}:\n{self.tail()}")
            self.init_pid = self.find_init()
            if self.init_pid:
                break
            time.sleep(0.1)
        else:
            raise Fatal(f"no init process in the container after 30 s:\n{self.tail()}")
        # Boot done (running, or degraded when some unrelated unit failed). The
        # first tries can come before PID 1 listens on its private socket.
        # Until then systemctl says "offline" (or nothing) at once.
        def state():
            p = self.sh(["systemctl", "is-system-running", "--wait"], timeout=60)
            st = p.stdout.strip()
            return st if st not in ("", "offline", "unknown") else None

        return wait_for(state, 60, 0.2) or "offline"

    def find_init(self):
        """The container's PID 1: a descendant of nspawn whose innermost pid is 1."""
        children = {}
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open(f"/proc/{d}/status") as f:
                    st = f.read()
            except OSError:
                continue
            ppid = int(re.search(r"^PPid:\s+(\d+)", st, re.M).group(1))
            nspid = re.search(r"^NSpid:\s+(.*)$", st, re.M).group(1).split()
            children.setdefault(ppid, []).append((int(d), nspid))
        todo = [self.nspawn.pid]
        while todo:
            for pid, nspid in children.get(todo.pop(), []):
                if len(nspid) > 1 and nspid[-1] == "1":
                    return pid
                todo.append(pid)
        return None

    def sh(self, cmd, timeout=60, check=False, user=None):
        """Runs cmd in every namespace of the container (as `user` if given)."""
        if user:
            cmd = ["setpriv", f"--reuid={user}", f"--regid={user if user != 'nobody' else 'nogroup'}",
                   "--clear-groups", "--"] + cmd
        return run(["nsenter", "-t", str(self.init_pid), "-a", "--"] + cmd, timeout=timeout,
                   check=check, env=CONTAINER_ENV)

    def spawn(self, cmd, out_path):
        """A long-running command in the container, stopped at teardown."""
        f = open(out_path, "w")
        p = subprocess.Popen(["nsenter", "-t", str(self.init_pid), "-a", "--"] + cmd,
                             stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT,
                             env=CONTAINER_ENV, start_new_session=True)
        f.close()
        self.bg.append(p)
        return p

    @staticmethod
    def stop_bg(p):
        """nsenter forks the command: end its whole process group (its own session)."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(p.pid, sig)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=5)
                return
            except subprocess.TimeoutExpired:
                pass

    def tail(self, n=20):
        try:
            with open(self.console, errors="replace") as f:
                text = re.sub(r"\x1b\[[0-9;]*m|\r", "", f.read())
            return "\n".join([l for l in text.splitlines() if l.strip()][-n:])
        except OSError:
            return ""

    def pids_in_container(self):
        """Host pid -> (comm, TracerPid) for every process of the container's pid namespace."""
        try:
            ns = os.readlink(f"/proc/{self.init_pid}/ns/pid")
        except OSError:
            return {}
        found = {}
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                if os.readlink(f"/proc/{d}/ns/pid") != ns:
                    continue
                with open(f"/proc/{d}/status") as f:
                    st = f.read()
            except OSError:
                continue
            comm = re.search(r"^Name:\s+(.*)$", st, re.M).group(1)
            tracer = int(re.search(r"^TracerPid:\s+(\d+)", st, re.M).group(1))
            found[int(d)] = (comm, tracer)
        return found

    def teardown(self):
        for p in self.bg:
            self.stop_bg(p)
        if self.nspawn and self.nspawn.poll() is None:
            if self.init_pid:
                # SIGRTMIN+4 asks systemd for a clean poweroff.
                try:
                    os.kill(self.init_pid, signal.SIGRTMIN + 4)
                except ProcessLookupError:
                    pass
            try:
                self.nspawn.wait(timeout=20)
            except subprocess.TimeoutExpired:
                log("container did not power off in 20 s; killing it")
                if self.init_pid:
                    try:
                        os.kill(self.init_pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                try:
                    self.nspawn.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.nspawn.kill()
                    self.nspawn.wait()
        if self.mounted:
            if run(["umount", self.root]).returncode != 0:
                run(["umount", "-l", self.root])
            self.mounted = False
        shutil.rmtree(self.work, ignore_errors=True)


# ---- Helpers for the checks ----

def wait_for(fn, timeout, interval=0.2):
    """Polls fn until it returns something true; returns that, or the last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


def show(c, *props):
    p = c.sh(["systemctl", "show", "bpftimed"] + [f"-p{x}" for x in props])
    return dict(line.split("=", 1) for line in p.stdout.splitlines() if "=" in line)


def get_property(c, name):
    p = c.sh(["busctl", "get-property", "--json=short"] + BUS + [name])
    if p.returncode != 0:
        return None
    return json.loads(p.stdout)["data"]


def journal(c, unit="bpftimed", *extra):
    p = c.sh(["journalctl", "-u", unit, "-o", "json", "--no-pager"] + list(extra))
    entries = []
    for line in p.stdout.splitlines():
        try:
            entries.append(json.loads(line))
        except ValueError:
            pass
    return entries


def messages(entries, ident="bpftimed"):
    return [(e.get("PRIORITY"), e.get("MESSAGE")) for e in entries
            if e.get("SYSLOG_IDENTIFIER") == ident and isinstance(e.get("MESSAGE"), str)]


def attachments(c, user=None):
    p = c.sh(["bpftimectl", "list", "attachments", "-j"], user=user)
    if p.returncode != 0:
        return None
    return json.loads(p.stdout)


# ---- The test ----

def install(c, args):
    """meson install --destdir into a staging dir, then into the container's tree."""
    stage = os.path.join(c.work, "stage")
    meson = shutil.which("meson")
    cmd = [meson] if meson else [sys.executable, "-m", "mesonbuild.mesonmain"]
    p = run(cmd + ["install", "-C", args.build_root, "--destdir", stage, "--no-rebuild",
                   "--quiet"], timeout=120)
    if not tap.ok(p.returncode == 0, "meson install --destdir", p.stdout + p.stderr):
        raise Fatal("meson install failed")
    # tar keeps the tree's /lib -> usr/lib (merged /usr) symlinks as they are.
    tar = subprocess.Popen(["tar", "-C", stage, "-cf", "-", "."], stdout=subprocess.PIPE)
    p = run(["tar", "-C", c.root, "-xf", "-", "--keep-directory-symlink"], stdin=tar.stdout)
    tar.stdout.close()
    tar.wait()
    if p.returncode or tar.returncode:
        raise Fatal(f"copying the installed files into the container failed: {p.stderr}")
    os.makedirs(os.path.dirname(c.root + TARGET_IN_CONTAINER), exist_ok=True)
    shutil.copy2(args.target, c.root + TARGET_IN_CONTAINER)
    installed = {
        "unit": "/lib/systemd/system/bpftimed.service",
        "D-Bus policy": "/usr/share/dbus-1/system.d/org.bpftime.bpftimed1.conf",
        "default config": args.config_path,
        "bpftimed": os.path.join(args.sbindir, "bpftimed"),
        "bpftimectl": os.path.join(args.bindir, "bpftimectl"),
    }
    if not args.no_man:
        installed.update({
            "bpftimed(8)": os.path.join(args.mandir, "man8", "bpftimed.8"),
            "bpftimectl(8)": os.path.join(args.mandir, "man8", "bpftimectl.8"),
            "bpftimed.conf(5)": os.path.join(args.mandir, "man5", "bpftimed.conf.5"),
        })
    missing = [f"{k}: {v}" for k, v in installed.items() if not os.path.exists(c.root + v)]
    tap.ok(not missing, "installed: unit, D-Bus policy, config, binaries"
           + (" (man pages not built: no scdoc)" if args.no_man else ", man pages"),
           "missing:\n" + "\n".join(missing))


def test_service(c, args):
    conf_d = args.config_path + ".d"
    host_conf_d = c.root + conf_d

    p = c.sh(["systemd-analyze", "verify", "--man=no", "/lib/systemd/system/bpftimed.service"])
    tap.ok(p.returncode == 0 and "bpftimed" not in p.stderr,
           "systemd-analyze verify bpftimed.service", p.stdout + p.stderr)

    # A short watchdog for the test, so that the keep-alives can be seen.
    dropin = c.root + "/etc/systemd/system/bpftimed.service.d"
    os.makedirs(dropin, exist_ok=True)
    with open(dropin + "/50-test.conf", "w") as f:
        f.write("[Service]\nWatchdogSec=2s\n")
    c.sh(["systemctl", "daemon-reload"], check=True)

    # --- start: returns once READY=1 was sent, which is after the bus name ---
    t0 = time.monotonic()
    p = c.sh(["systemctl", "start", "bpftimed"], timeout=90)
    took = time.monotonic() - t0
    if not tap.ok(p.returncode == 0, f"systemctl start bpftimed ({took:.2f} s)",
                  p.stderr + "\n" + c.sh(["journalctl", "-u", "bpftimed", "--no-pager"]).stdout):
        raise Fatal("bpftimed did not start")
    owner = c.sh(["busctl", "call", "org.freedesktop.DBus", "/org/freedesktop/DBus",
                  "org.freedesktop.DBus", "NameHasOwner", "s", BUS[0]])
    st = show(c, "ActiveState", "SubState", "StatusText", "MainPID", "Type")
    tap.ok(owner.stdout.strip() == "b true" and st.get("SubState") == "running"
           and st.get("StatusText", "").startswith("Watching"),
           "when start returns: running, bus name owned, STATUS= set",
           f"{owner.stdout} {st}")
    msgs = [m for _, m in messages(journal(c))]
    started = [e for e in journal(c) if e.get("SYSLOG_IDENTIFIER") == "systemd"
               and "Started bpftimed.service" in str(e.get("MESSAGE"))]
    serving = [e for e in journal(c) if e.get("SYSLOG_IDENTIFIER") == "bpftimed"
               and str(e.get("MESSAGE", "")).startswith("Serving D-Bus")]
    tap.ok(started and serving and int(serving[0]["__REALTIME_TIMESTAMP"])
           <= int(started[0]["__REALTIME_TIMESTAMP"]),
           "journal: 'Serving D-Bus' comes before systemd's 'Started'", "\n".join(msgs))

    p = c.sh(["systemctl", "is-active", "bpftimed"])
    tap.ok(p.stdout.strip() == "active", "systemctl is-active bpftimed", p.stdout)
    main_pid = st.get("MainPID")

    # --- D-Bus API ---
    p = c.sh(["busctl", "introspect", "--no-pager"] + BUS[:2])
    need = ["ListTools", "ListPrograms", "ListMaps", "ListAttachments", "Reload",
            "AttachmentsChanged", ".Version", ".Attachments"]
    tap.ok(p.returncode == 0 and all(n in p.stdout for n in need),
           "busctl introspect org.bpftime.bpftimed1 /org/bpftime/bpftimed1", p.stdout + p.stderr)
    p = c.sh(["busctl", "introspect", "--xml-interface"] + BUS[:2])
    names = ['name="tools"', 'name="programs"', 'name="maps"', 'name="attachments"']
    tap.ok(all(n in p.stdout for n in names), "introspection names the arguments",
           p.stdout[-2000:])

    p = c.sh(["bpftimectl", "status", "-j"])
    try:
        status = json.loads(p.stdout)
    except ValueError:
        status = {}
    tap.ok(p.returncode == 0 and status.get("running") is True and "version" in status,
           "bpftimectl status -j", p.stdout + p.stderr)

    # --- Who may do what ---
    p = c.sh(["bpftimectl", "status", "-j"], user="nobody")
    tap.ok(p.returncode == 0 and '"running": true' in p.stdout,
           "an unprivileged user can read (bpftimectl status -j as nobody)", p.stdout + p.stderr)
    p = c.sh(["busctl", "call"] + BUS + ["ListTools"], user="nobody")
    tap.ok(p.returncode == 0, "an unprivileged user can call ListTools", p.stderr)
    # dbus-send prints the error's message, busctl only its errno.
    reload_as_nobody = ["dbus-send", "--system", "--print-reply", f"--dest={BUS[0]}", BUS[1],
                        f"{BUS[2]}.Reload"]
    p = c.sh(reload_as_nobody, user="nobody")
    tap.ok(p.returncode != 0 and "AccessDenied: Rejected send message" in p.stderr,
           "an unprivileged user cannot Reload (D-Bus policy)", p.stdout + p.stderr)
    # With the policy opened up, bpftimed's own check still refuses.
    open_policy = c.root + "/etc/dbus-1/system.d/zz-bpftimed-test-open.conf"
    os.makedirs(os.path.dirname(open_policy), exist_ok=True)
    with open(open_policy, "w") as f:
        f.write('<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"'
                ' "https://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">\n'
                '<busconfig><policy context="default"><allow send_destination='
                f'"{BUS[0]}" send_interface="{BUS[2]}" send_member="Reload"/></policy>'
                '</busconfig>\n')
    c.sh(["busctl", "call", "org.freedesktop.DBus", "/org/freedesktop/DBus",
          "org.freedesktop.DBus", "ReloadConfig"])
    p = c.sh(reload_as_nobody, user="nobody")
    tap.ok(p.returncode != 0 and "AccessDenied: Only root may reload bpftimed." in p.stderr,
           "bpftimed itself refuses Reload from non-root (sd_bus_query_sender_privilege)",
           p.stdout + p.stderr)
    os.unlink(open_policy)
    c.sh(["busctl", "call", "org.freedesktop.DBus", "/org/freedesktop/DBus",
          "org.freedesktop.DBus", "ReloadConfig"])

    # --- A bpftrace uprobe inside the container ---
    mon_log = os.path.join(c.work, "dbus-monitor.log")
    mon = c.spawn(["stdbuf", "-oL", "dbus-monitor", "--system", f"type='signal',sender='{BUS[0]}'"], mon_log)
    p = c.sh(["systemd-run", "--unit=bpftimed-test-target", TARGET_IN_CONTAINER])
    # SIGINT: bpftrace prints its maps on the way out.
    p = c.sh(["systemd-run", "--unit=bpftimed-test-bpftrace", "-pKillSignal=SIGINT",
              "bpftrace", "-e",
              f"uprobe:{TARGET_IN_CONTAINER}:{PROBE_FN} {{ @hits = count(); }}"])
    tap.ok(p.returncode == 0, "bpftrace uprobe started as a unit", p.stderr)
    target_pid = show_unit(c, "bpftimed-test-target", "MainPID")
    bt_pid = show_unit(c, "bpftimed-test-bpftrace", "MainPID")

    def seen():
        a = attachments(c) or []
        return [x for x in a if x["path"] == TARGET_IN_CONTAINER and x["symbol"] == PROBE_FN]

    found = wait_for(seen, 30, 0.5)
    tap.ok(bool(found), "bpftimectl list attachments -j shows the bpftrace uprobe",
           json.dumps(attachments(c), indent=1)[-3000:] + "\n" +
           c.sh(["journalctl", "-u", "bpftimed-test-bpftrace", "--no-pager"]).stdout[-1500:])
    if found:
        a = found[0]
        tap.ok(a["comm"] == "bpftrace" and a["kind"] == "uprobe" and a["enabled"]
               and a["offset"] > 0 and a["insn_cnt"] > 0,
               "the attachment: bpftrace, uprobe, enabled, offset and instructions known",
               json.dumps(a))
        # Inside a pid namespace the monitor's pids are the host's: bpftimed
        # then cannot find the tool in its /proc, nor the program's kernel id.
        why = ("the monitor reports pids of the initial pid namespace "
               "(bpf/monitor.bpf.c: bpf_get_current_pid_tgid)")
        tap.todo(str(a["pid"]) == bt_pid, "the attachment's pid is bpftrace's pid in the container",
                 why, f"attachment pid {a['pid']}, bpftrace {bt_pid}")
        tap.todo(a["prog_id"] > 0, "the attachment's program id is known", why,
                 f"prog_id {a['prog_id']}")
    p = c.sh(["bpftimectl", "list", "attachments", "-j"], user="nobody")
    tap.ok(p.returncode == 0 and PROBE_FN in p.stdout,
           "an unprivileged user sees it too", p.stdout + p.stderr)
    status_text = wait_for(lambda: "1 uprobe attachment." in
                           show(c, "StatusText").get("StatusText", ""), 5)
    tap.ok(status_text, "STATUS= counts the attachment", str(show(c, "StatusText")))

    c.sh(["systemctl", "stop", "bpftimed-test-bpftrace"], timeout=30)
    gone = wait_for(lambda: not seen(), 15, 0.5)
    tap.ok(gone, "the attachment goes away when bpftrace stops",
           json.dumps(attachments(c))[-2000:])
    hits = re.findall(r"@hits: (\d+)",
                      c.sh(["journalctl", "-u", "bpftimed-test-bpftrace", "--no-pager"]).stdout)
    tap.ok(hits and int(hits[-1]) > 0, f"the kernel kept serving the probe ({hits[-1] if hits else 0} hits)",
           c.sh(["journalctl", "-u", "bpftimed-test-bpftrace", "--no-pager"]).stdout[-1500:])
    time.sleep(0.5)
    c.stop_bg(mon)
    with open(mon_log, errors="replace") as f:
        seen_signals = f.read()
    n_sig = seen_signals.count("member=AttachmentsChanged")
    tap.ok(n_sig >= 2 and "member=PropertiesChanged" in seen_signals
           and PROBE_FN in seen_signals,
           f"AttachmentsChanged signalled on attach and detach ({n_sig} signals)",
           seen_signals[-2000:])

    # --- Journal: our lines, with priorities ---
    entries = journal(c)
    ours = messages(entries)
    info = [m for pr, m in ours if pr == "6"]
    tap.ok(any(m.startswith("Monitor attached") for m in info)
           and any(m.startswith("Serving D-Bus") for m in info),
           "journalctl -u bpftimed: our lines at PRIORITY=6, SYSLOG_IDENTIFIER=bpftimed",
           "\n".join(f"<{pr}> {m}" for pr, m in ours[-20:]))
    tap.ok(not any(m.startswith("<") for _, m in ours),
           "no raw '<N>' prefixes left in messages (journald parsed them)",
           "\n".join(m for _, m in ours if m.startswith("<")))

    # --- Reload: a good drop-in, then a bad one, then SIGHUP ---
    os.makedirs(host_conf_d, exist_ok=True)
    with open(host_conf_d + "/50-test.conf", "w") as f:
        f.write("# written by the systemd test\n[Service]\nInjectDelaySec=1.5s\nLogLevel=debug\n")
    p = c.sh(["systemctl", "reload", "bpftimed"], timeout=30)
    tap.ok(p.returncode == 0 and get_property(c, "InjectDelayUSec") == 1500000
           and get_property(c, "LogLevel") == "debug",
           "systemctl reload applies a drop-in (InjectDelaySec=1.5s, LogLevel=debug)",
           f"{p.stderr} {get_property(c, 'InjectDelayUSec')} {get_property(c, 'LogLevel')}")
    with open(host_conf_d + "/60-bad.conf", "w") as f:
        f.write("[Service]\nJIT=perhaps\n")
    p = c.sh(["systemctl", "reload", "bpftimed"], timeout=30)
    st = show(c, "ActiveState", "MainPID")
    tap.ok(p.returncode != 0 and st.get("ActiveState") == "active"
           and st.get("MainPID") == main_pid,
           "a bad drop-in fails the reload; bpftimed runs on, same PID", f"{p.stderr} {st}")
    where = f"{conf_d}/60-bad.conf:2: JIT=: invalid boolean \"perhaps\""
    errors = [m for pr, m in messages(journal(c)) if pr == "3" and where in m]
    tap.ok(len(errors) == 1, "the journal has the error as file:line at PRIORITY=3",
           "\n".join(f"<{pr}> {m}" for pr, m in messages(journal(c))[-10:]))
    tap.ok(get_property(c, "InjectDelayUSec") == 1500000 and get_property(c, "JIT") is True,
           "the configuration in force stays", f"{get_property(c, 'JIT')}")
    p = c.sh(["journalctl", "-u", "bpftimed", "-p", "err", "--no-pager", "-o", "cat"])
    tap.ok(where in p.stdout and "Serving D-Bus" not in p.stdout,
           "journalctl -p err shows the error and not the info lines", p.stdout)
    c.sh(["systemctl", "kill", "-s", "HUP", "bpftimed"], check=True)
    again = wait_for(lambda: len([m for pr, m in messages(journal(c))
                                  if pr == "3" and where in m]) == 2, 10)
    tap.ok(again, "SIGHUP reloads too (and refuses the bad drop-in again)",
           "\n".join(m for _, m in messages(journal(c))[-6:]))
    os.unlink(host_conf_d + "/60-bad.conf")
    os.unlink(host_conf_d + "/50-test.conf")
    c.sh(["systemctl", "kill", "-s", "HUP", "bpftimed"], check=True)
    # InjectDelaySec= defaults to 200 ms (daemon/config.h)
    back = wait_for(lambda: get_property(c, "InjectDelayUSec") == 200000, 10)
    tap.ok(back and get_property(c, "LogLevel") == "info",
           "SIGHUP with the drop-ins removed: back to the defaults",
           f"{get_property(c, 'InjectDelayUSec')} {get_property(c, 'LogLevel')}")

    # --- The watchdog (2 s for the test): kept alive by the event loop ---
    w0 = int(show(c, "WatchdogTimestampMonotonic").get("WatchdogTimestampMonotonic", "0"))
    time.sleep(3)
    st = show(c, "WatchdogTimestampMonotonic", "ActiveState", "MainPID", "WatchdogUSec")
    w1 = int(st.get("WatchdogTimestampMonotonic", "0"))
    tap.ok(w1 > w0 and st.get("ActiveState") == "active" and st.get("MainPID") == main_pid,
           "watchdog keep-alives arrive (WatchdogSec=2s, 3 s later still the same PID)", str(st))

    # --- Restart=on-failure ---
    c.sh(["systemctl", "kill", "-s", "KILL", "--kill-who=main", "bpftimed"])
    restarted = wait_for(lambda: (lambda s: s.get("ActiveState") == "active"
                                  and s.get("MainPID") not in ("0", main_pid)
                                  and s.get("NRestarts") == "1")(
                                      show(c, "ActiveState", "MainPID", "NRestarts")), 15, 0.5)
    tap.ok(restarted, "a crash is restarted (Restart=on-failure)",
           str(show(c, "ActiveState", "MainPID", "NRestarts", "Result")))
    main_pid = show(c, "MainPID").get("MainPID")

    # --- stop: clean exit, nothing left behind ---
    t0 = time.monotonic()
    p = c.sh(["systemctl", "stop", "bpftimed"], timeout=60)
    took = time.monotonic() - t0
    st = show(c, "ActiveState", "Result", "ExecMainStatus", "ExecMainCode", "MainPID")
    tap.ok(p.returncode == 0 and st.get("ActiveState") == "inactive"
           and st.get("Result") == "success" and st.get("ExecMainStatus") == "0",
           f"systemctl stop bpftimed: exit status 0 ({took:.2f} s)", f"{p.stderr} {st}")
    procs = c.pids_in_container()
    left = [f"{pid} {comm}" for pid, (comm, _) in procs.items() if comm == "bpftimed"]
    traced = [f"{pid} {comm} traced by {tr}" for pid, (comm, tr) in procs.items() if tr]
    tap.ok(not left, "no bpftimed process left", "\n".join(left))
    tap.ok(not traced, "no process left under ptrace", "\n".join(traced))
    alive = c.sh(["systemctl", "is-active", "bpftimed-test-target"]).stdout.strip()
    tap.ok(alive == "active" and show_unit(c, "bpftimed-test-target", "MainPID") == target_pid,
           "the traced process runs on", alive)
    tap.ok(any(m == "Received SIGTERM, stopping." for _, m in messages(journal(c))),
           "the journal has the stop", "")

    # --- A configuration that does not parse at start: exit 78, no restart loop ---
    os.makedirs(host_conf_d, exist_ok=True)
    with open(host_conf_d + "/70-broken.conf", "w") as f:
        f.write("[Service]\nServe=relative/path\n")
    p = c.sh(["systemctl", "start", "bpftimed"], timeout=60)
    n0 = show(c, "NRestarts").get("NRestarts")
    time.sleep(2.5)  # longer than RestartSec=
    st = show(c, "ActiveState", "ExecMainStatus", "NRestarts")
    tap.ok(p.returncode != 0 and st.get("ExecMainStatus") == "78"
           and st.get("ActiveState") == "failed" and st.get("NRestarts") == n0,
           "a bad configuration at start: exit 78, failed, not restarted", f"{p.stderr} {st}")
    os.unlink(host_conf_d + "/70-broken.conf")
    c.sh(["systemctl", "reset-failed", "bpftimed"])

    # --- systemd-analyze security ---
    p = c.sh(["systemd-analyze", "security", "--no-pager", "bpftimed"])
    m = re.search(r"Overall exposure level for bpftimed\.service: ([\d.]+) (\S+)", p.stdout)
    score = float(m.group(1)) if m else None
    if m:
        log(f"systemd-analyze security bpftimed: {m.group(1)} {m.group(2)}")
        log("\n".join(l for l in p.stdout.splitlines() if l.startswith("✗")))
    tap.ok(score is not None and score <= MAX_EXPOSURE,
           f"systemd-analyze security bpftimed: exposure {score} (at most {MAX_EXPOSURE})",
           p.stdout[-3000:] + p.stderr)


def show_unit(c, unit, prop):
    p = c.sh(["systemctl", "show", unit, f"-p{prop}", "--value"])
    return p.stdout.strip()


def preflight():
    if os.geteuid() != 0:
        raise Skip("needs root (systemd-nspawn, overlay mounts)")
    for tool in ("systemd-nspawn", "debootstrap", "nsenter", "setpriv"):
        if not shutil.which(tool):
            raise Skip(f"{tool} not found (tools/setup-debian installs it)")
    try:
        with open("/proc/self/mounts") as f:
            if not any(l.split()[1] == "/sys/fs/bpf" and l.split()[2] == "bpf" for l in f):
                raise Skip("bpffs is not mounted at /sys/fs/bpf (tools/setup-debian mounts it)")
    except OSError as e:
        raise Skip(f"cannot read /proc/self/mounts: {e}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build-root", required=True)
    ap.add_argument("--target", required=True)
    ap.add_argument("--config-path", required=True)
    ap.add_argument("--sbindir", required=True)
    ap.add_argument("--bindir", required=True)
    ap.add_argument("--mandir", required=True)
    ap.add_argument("--no-man", action="store_true", help="the man pages were not built")
    args = ap.parse_args()

    # meson's timeout sends SIGTERM: unwind through the finally below.
    def on_signal(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    t_start = time.monotonic()
    try:
        preflight()
        tree, built = ensure_tree()
    except Skip as e:
        print(f"1..0 # SKIP {e}", flush=True)
        return 0
    except Fatal as e:
        tap.ok(False, "Debian tree for the container", str(e))
        print(f"1..{tap.n}", flush=True)
        return 1
    tap.ok(True, f"Debian {SUITE} tree at {tree}"
           + (f" (built in {built:.0f} s)" if built else " (cached)"))

    c = Container(tree, tempfile.mkdtemp(prefix="bpftimed-test.", dir="/var/tmp"))
    try:
        how = c.prepare()
        install(c, args)
        t0 = time.monotonic()
        state = c.boot()
        tap.ok(state in ("running", "degraded"),
               f"container boots ({how}, {time.monotonic() - t0:.1f} s): {state}",
               c.sh(["systemctl", "--failed", "--no-pager"]).stdout)
        test_service(c, args)
    except Fatal as e:
        tap.ok(False, "the test could not go on", f"{e}\n{c.tail()}")
    except subprocess.TimeoutExpired as e:
        tap.ok(False, "a command timed out", f"{e}\n{c.tail()}")
    except KeyboardInterrupt as e:
        tap.ok(False, "interrupted", str(e))
    finally:
        t0 = time.monotonic()
        c.teardown()
        log(f"container torn down in {time.monotonic() - t0:.1f} s; "
            f"whole test {time.monotonic() - t_start:.0f} s")
    print(f"1..{tap.n}", flush=True)
    return 1 if tap.failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""What a netdoctor run leaves on the host while it works, written down before it is made.

Every object a run creates outside its own process (a tracefs instance, a tracefs mount, an
nftrace table with --allow-trace-rules) is recorded in /run/netdoctor/runs/<pid>.json
*before* it is created and struck off after it is removed. A run that ends normally, on an error or on Ctrl-C/SIGTERM removes its objects in
`finally` blocks; a run that was SIGKILLed leaves its record behind, and `netdoctor cleanup`
uses it (and the run tag in the objects' names, in case the record itself was lost) to
remove what is left.

Capture sockets and child processes need no record: the kernel closes the sockets of a dead
process, and the children (`ip`, `iptables-save`) read a pipe that closes with it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Iterator, Optional

RUN_DIR = "/run/netdoctor/runs"
MOUNT_DIR = "/run/netdoctor/mnt"
TAG = "netdoctor-"
# Tags in object names: netdoctor-<pid>-<starttime>-<n> (starttime tells a reused pid apart).
_TAGGED = re.compile(r"^netdoctor-(?P<pid>\d+)-(?P<start>\d+)-\d+$")
_OLD_TAGGED = re.compile(r"^netdoctor-(?P<pid>\d+)-\d+$")  # before starttime was in the tag
_lock = threading.Lock()
_counter = iter(range(1, 1 << 62))


def parse_stat_start(stat: str) -> Optional[int]:
    """Field 22 (starttime) of /proc/<pid>/stat; the command name in field 2 may hold spaces
    and parentheses, so fields are counted from its last ')'."""
    try:
        value = stat.rsplit(")", 1)[1].split()[19]
        return int(value) if value.isascii() and value.isdigit() else None
    except IndexError:
        return None


def process_start(pid: int) -> Optional[int]:
    """The start time (clock ticks since boot) of a live process, None if there is none."""
    try:
        with open(f"/proc/{pid}/stat", errors="replace") as f:
            return parse_stat_start(f.read())
    except OSError:
        return None


def is_alive(pid: int, start: Optional[int]) -> bool:
    now = process_start(pid)
    return now is not None and (start is None or now == start)


@dataclass
class Run:
    """This process's record of what it has on the host."""

    pid: int
    start: int
    objects: list = field(default_factory=list)  # [{"kind": ..., "path": ...}]

    @property
    def file(self) -> str:
        return os.path.join(RUN_DIR, f"{self.pid}.json")

    def tag(self) -> str:
        return f"{TAG}{self.pid}-{self.start}-{next(_counter)}"

    def _save(self) -> None:
        if not self.objects:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.file)
            return
        os.makedirs(RUN_DIR, exist_ok=True)
        tmp = self.file + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"pid": self.pid, "start": self.start, "objects": self.objects}, f)
        os.replace(tmp, self.file)

    def _try_save(self) -> None:
        # Best effort: on a host whose /run is full or read-only the objects can still be
        # found by the tag in their names.
        try:
            self._save()
        except OSError:
            pass

    def record(self, kind: str, path: str) -> None:
        with _lock:
            self.objects.append({"kind": kind, "path": path})
            self._try_save()

    def forget(self, kind: str, path: str) -> None:
        with _lock:
            entry = {"kind": kind, "path": path}
            if entry in self.objects:
                self.objects.remove(entry)
            self._try_save()
            if not self.objects:
                _prune_dirs()


_current: Optional[Run] = None


def current() -> Run:
    global _current
    with _lock:
        if _current is None or _current.pid != os.getpid():
            _current = Run(os.getpid(), process_start(os.getpid()) or 0)
        return _current


def _prune_dirs() -> None:
    """Remove /run/netdoctor's run folders when they are empty (and /run/netdoctor with them),
    so a run leaves no folder it made behind."""
    for d in (RUN_DIR, MOUNT_DIR, os.path.dirname(RUN_DIR)):
        with contextlib.suppress(OSError):
            os.rmdir(d)


_deferring = 0


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM while a host object is being made or removed, so that an
    interruption never lands between creating an object and owning it. The signal is
    delivered (as KeyboardInterrupt) when the outermost such block ends."""
    global _deferring
    if threading.current_thread() is not threading.main_thread() or _deferring:
        yield  # signals go to the main thread; or an outer block already holds them
        return
    pending = []

    def hold(signum, frame):
        pending.append(signum)

    old = {s: signal.signal(s, hold) for s in (signal.SIGINT, signal.SIGTERM)}
    _deferring = 1
    try:
        yield
    finally:
        _deferring = 0
        for s, h in old.items():
            signal.signal(s, h)
        if pending:
            raise KeyboardInterrupt


# ------------------------------------------------------------------ tracefs

def parse_tracefs_mounts(mountinfo: str) -> list:
    """Mount points of tracefs in a /proc/<pid>/mountinfo text (octal escapes undone)."""
    out = []
    for line in mountinfo.splitlines():
        head, sep, tail = line.partition(" - ")
        fields = head.split()
        if not sep or len(fields) < 5 or not tail.split() or tail.split()[0] != "tracefs":
            continue
        out.append(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4]))
    return out


def tracefs_mounts() -> list:
    """Mount points of tracefs in this mount namespace."""
    try:
        with open("/proc/self/mountinfo", errors="replace") as f:
            return parse_tracefs_mounts(f.read())
    except OSError:
        return []


def usable_tracefs() -> Optional[str]:
    """The host's own tracefs mount, if it has one. Other runs' private mounts do not count:
    they go away when those runs end."""
    for mp in tracefs_mounts():
        if mp.startswith(MOUNT_DIR + "/"):
            continue
        if os.path.isdir(os.path.join(mp, "instances")):
            return mp
    return None


class TracefsUnavailable(Exception):
    pass


@contextlib.contextmanager
def tracefs() -> Iterator[str]:
    """A tracefs mount point for the duration of the block: the host's own if it has one,
    else a private mount under /run/netdoctor/mnt that is recorded and removed afterwards.
    The host's /sys/kernel/tracing is never touched."""
    existing = usable_tracefs()
    if existing:
        yield existing
        return
    run = current()
    mp = os.path.join(MOUNT_DIR, run.tag())
    with signals_deferred():
        run.record("tracefs-mount", mp)
        try:
            os.makedirs(mp, exist_ok=True)
        except OSError as e:
            run.forget("tracefs-mount", mp)
            raise TracefsUnavailable(f"tracefs is not mounted and no mount point can be made "
                                     f"at {mp}: {e.strerror or e}") from None
        res = subprocess.run(["mount", "-t", "tracefs", "nodev", mp],
                             capture_output=True, text=True)
        if res.returncode != 0:
            _unmount(mp)
            run.forget("tracefs-mount", mp)
            raise TracefsUnavailable(f"tracefs is not mounted and cannot be mounted: "
                                     f"{res.stderr.strip() or 'mount failed'}")
    try:
        yield mp
    finally:
        with signals_deferred():
            _unmount(mp)
            run.forget("tracefs-mount", mp)


def _unmount(mp: str) -> bool:
    if mp in tracefs_mounts():
        if subprocess.run(["umount", mp], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", mp], capture_output=True)
    with contextlib.suppress(OSError):
        os.rmdir(mp)
    return not os.path.exists(mp)


def remove_instance(path: str) -> bool:
    """Turn off and remove one tracefs instance; True when it is gone."""
    if not os.path.isdir(path):
        return True
    for switch in ("tracing_on", "events/enable"):  # one write turns every event off
        try:
            with open(os.path.join(path, switch), "w") as f:
                f.write("0")
        except OSError:
            pass
    # Busy while any process holds one of its files: a child another thread of netdoctor
    # is starting (the rule counters' programs, started as the probes are answered) holds
    # the trace pipe from its fork to its exec. That lasts milliseconds: asked again.
    for _ in range(100):
        try:
            os.rmdir(path)
        except OSError as e:
            if e.errno != errno.EBUSY:
                break
            time.sleep(0.01)
            continue
        break
    return not os.path.isdir(path)


def release_own() -> None:
    """Remove every object this process has recorded, without importing anything (the
    watchdog's last resort when normal unwinding is stuck)."""
    run = _current
    if run is None or run.pid != os.getpid():
        return
    for obj in reversed(list(run.objects)):
        try:
            if obj["kind"] == "tracefs-instance":
                remove_instance(obj["path"])
            elif obj["kind"] == "tracefs-mount":
                _unmount(obj["path"])
            elif obj["kind"] == "nft-table":
                _delete_table(obj["path"])
            run.objects.remove(obj)
        except Exception:
            pass
    try:
        run._save()
        _prune_dirs()
    except OSError:
        pass


def _delete_table(recorded: str) -> bool:
    """An nft-table record is "<netns path> <family> <table>" (--allow-trace-rules)."""
    from .nftrace import delete_table

    parts = recorded.rsplit(" ", 2)
    return len(parts) == 3 and delete_table(*parts)


# ------------------------------------------------------------------ cleanup

@dataclass
class Residue:
    kind: str  # tracefs-instance, tracefs-mount, nft-table, run-record
    path: str
    owner: Optional[int]  # the pid that made it
    removed: bool = False
    error: Optional[str] = None

    def to_dict(self) -> dict:
        return {"kind": self.kind, "path": self.path, "owner_pid": self.owner,
                "removed": self.removed, "error": self.error}


def _owner(name: str) -> Optional[tuple]:
    m = _TAGGED.match(name) or _OLD_TAGGED.match(name)
    if not m:
        return None
    start = m.groupdict().get("start")
    return int(m.group("pid")), (int(start) if start else None)


def find_residue() -> tuple:
    """(residue, live_runs): objects of runs whose process is gone, and pids still at work."""
    found, live = [], set()
    records = []
    if os.path.isdir(RUN_DIR):
        for name in sorted(os.listdir(RUN_DIR)):
            path = os.path.join(RUN_DIR, name)
            try:
                with open(path) as f:
                    rec = json.load(f)
                pid, start = int(rec["pid"]), rec.get("start")
                objects = [(str(o["kind"]), str(o["path"])) for o in rec.get("objects", ())]
            except (OSError, ValueError, KeyError, TypeError):
                found.append(Residue("run-record", path, None))
                continue
            if is_alive(pid, start):
                live.add(pid)
                continue
            records.append(Residue("run-record", path, pid))
            for kind, obj in objects:
                if kind in ("tracefs-mount", "tracefs-instance") and os.path.exists(obj):
                    found.append(Residue(kind, obj, pid))
                elif kind == "nft-table" and os.path.exists(obj.split(" ", 1)[0]):
                    found.append(Residue(kind, obj, pid))
    # Tagged objects whose record was lost (killed between record and creation is not
    # possible; but a record can be deleted by hand): find them by name.
    if os.path.isdir(MOUNT_DIR):
        for name in sorted(os.listdir(MOUNT_DIR)):
            owner = _owner(name)
            path = os.path.join(MOUNT_DIR, name)
            if owner and not is_alive(*owner) and all(r.path != path for r in found):
                found.append(Residue("tracefs-mount", path, owner[0]))
            elif owner and is_alive(*owner):
                live.add(owner[0])
    found.extend(records)
    return found, sorted(live)


def stale_instances(root: str) -> list:
    out = []
    inst = os.path.join(root, "instances")
    with contextlib.suppress(OSError):
        for name in sorted(os.listdir(inst)):
            owner = _owner(name)
            if owner and not is_alive(*owner):
                out.append(Residue("tracefs-instance", os.path.join(inst, name), owner[0]))
    return out


def cleanup(dry_run: bool = False) -> tuple:
    """Find, and unless dry_run remove, what dead netdoctor runs left. Returns
    (residue, live_runs). tracefs instances are looked for through the host's tracefs mount,
    or through a mount of its own made for the look (and removed again)."""
    found, live = find_residue()
    mounts = [r for r in found if r.kind == "tracefs-mount"]
    try:
        with tracefs() as root:
            insts = stale_instances(root)
            # An instance's name is its tag; do not list it twice through two mounts.
            found = [r for r in found if r.kind != "tracefs-instance"] + insts
            if not dry_run:
                for r in insts:
                    r.removed = remove_instance(r.path)
                    if not r.removed:
                        r.error = "still there (in use?)"
    except TracefsUnavailable as e:
        for r in found:
            if r.kind == "tracefs-instance":
                r.error = str(e)
    if not dry_run:
        for r in found:
            if r.kind == "nft-table":
                r.removed = _delete_table(r.path)
                if not r.removed:
                    r.error = "nft could not delete it"
        for r in mounts:
            r.removed = _unmount(r.path)
            if not r.removed:
                r.error = "could not unmount"
        for r in found:
            if r.kind == "run-record":
                others = [o for o in found if o.owner == r.owner and o is not r]
                if all(o.removed for o in others):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(r.path)
                    r.removed = True
        if not live:
            _prune_dirs()
    order = {"tracefs-instance": 0, "nft-table": 0, "tracefs-mount": 1, "run-record": 2}
    found.sort(key=lambda r: (r.owner or 0, order.get(r.kind, 3), r.path))
    return found, live

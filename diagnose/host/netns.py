"""Network namespaces: identify them, enumerate them, and run code inside one.

Namespaces are only ever *opened* by path (never created: no pyroute2 NetNS, which
creates a missing namespace by default). Code runs inside a namespace in a worker thread
that has called setns(2) and goes back home after: a network namespace switch is per
thread, sockets opened there stay bound to that namespace, /proc/sys/net reads see its
sysctls, and programs started from that thread inherit it.
"""

from __future__ import annotations

import ctypes
import errno
import os
import queue
import re
import threading
from dataclasses import dataclass
from typing import Callable, Iterator, Optional, TypeVar

from ..errors import NetdoctorError, NoPermission, TargetNotFound

NETNS_RUN_DIR = "/run/netns"  # iproute2's NETNS_RUN_DIR (/var/run/netns is a link to it)
CLONE_NEWNET = 0x40000000

T = TypeVar("T")

_libc = None


def libc():
    """The C library, for the calls the os module lacks (setns before Python 3.12, prctl)."""
    global _libc
    if _libc is None:
        # The interpreter's own symbols include the C library's (no search for the file).
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def _setns(fd: int) -> None:
    if hasattr(os, "setns"):  # Python 3.12+
        os.setns(fd, CLONE_NEWNET)
        return
    if libc().setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def _nsfs_device() -> int:
    return os.stat("/proc/self/ns/net").st_dev


@dataclass(frozen=True)
class Netns:
    """A network namespace, known by a path that opens it and its inode (its identity)."""

    path: str
    inode: int
    name: Optional[str] = None  # the `ip netns` name, when it has one

    @property
    def label(self) -> str:
        return self.name or f"net:[{self.inode}]"

    def to_dict(self) -> dict:
        return {"name": self.name, "inode": self.inode, "path": self.path}

    def present(self) -> bool:
        """Whether the path still leads to this namespace (a container that exited, a
        deleted netns, a reused pid all say no)."""
        try:
            return os.stat(self.path).st_ino == self.inode
        except OSError:
            return False

    @classmethod
    def from_dict(cls, d: dict) -> "Netns":
        return cls(d["path"], d["inode"], d.get("name"))


_OWN = None


def own() -> Netns:
    """The namespace netdoctor runs in: "the host" unless a path proves otherwise.

    Looked up once per process (netdoctor never moves its main thread)."""
    global _OWN
    inode = os.stat("/proc/self/ns/net").st_ino
    if _OWN is None or _OWN.inode != inode:
        _OWN = Netns(f"/proc/{os.getpid()}/ns/net", inode, name=_name_of_inode(inode))
    return _OWN


def open_path(path: str, name: Optional[str] = None) -> Netns:
    """Identify the namespace at path, refusing anything that is not a network namespace."""
    try:
        st = os.stat(path)
        # Reading the link also proves it is a *network* namespace file of procfs.
        if path.startswith("/proc/"):
            kind = os.readlink(path)
            if not kind.startswith("net:["):
                raise TargetNotFound(f"{path} is not a network namespace")
    except FileNotFoundError:
        raise TargetNotFound(f"no network namespace at {path}") from None
    except PermissionError:
        raise NoPermission(f"cannot open {path}: permission denied (run netdoctor as root)") from None
    except OSError as e:
        if e.errno in (errno.ESRCH, errno.ENOENT):
            raise TargetNotFound(f"no network namespace at {path}") from None
        raise
    if st.st_dev != _nsfs_device():
        raise TargetNotFound(f"{path} is not a network namespace (is the netns mounted?)")
    return Netns(path, st.st_ino, name=name if name is not None else _name_of_inode(st.st_ino))


def named(name: str) -> Netns:
    """The `ip netns` namespace NAME; TargetNotFound if there is none."""
    if not name or "/" in name or name in (".", ".."):
        raise TargetNotFound(f"'{name}' is not a valid netns name")
    path = os.path.join(NETNS_RUN_DIR, name)
    if not os.path.exists(path):
        raise TargetNotFound(f"no network namespace named '{name}' (see `ip netns list`)")
    return open_path(path, name=name)


def of_pid(pid: int) -> Netns:
    if pid <= 0:
        raise TargetNotFound(f"{pid} is not a process id")
    if not os.path.exists(f"/proc/{pid}"):
        raise TargetNotFound(f"no process with pid {pid}")
    return open_path(f"/proc/{pid}/ns/net")


def list_named() -> list:
    """Every `ip netns` namespace, sorted by name; unreadable or stale entries are skipped."""
    try:
        names = sorted(os.listdir(NETNS_RUN_DIR))
    except FileNotFoundError:
        return []
    out = []
    dev = _nsfs_device()
    for n in names:
        p = os.path.join(NETNS_RUN_DIR, n)
        try:
            st = os.stat(p)
        except OSError:
            continue
        if st.st_dev == dev:
            out.append(Netns(p, st.st_ino, name=n))
    return out


def _name_of_inode(inode: int) -> Optional[str]:
    for ns in list_named():
        if ns.inode == inode:
            return ns.name
    return None


def mounted() -> list:
    """Every network namespace bound to a file of this mount namespace, as
    /proc/self/mountinfo lists them (`ip netns` ones, and those no process holds: Docker's
    overlay sandboxes under its exec-root, a CNI runtime's pinned namespaces): (path,
    inode) pairs, in mount order."""
    out = []
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return out
    for line in lines:
        fields = line.split(" ")
        if len(fields) < 5 or not fields[3].startswith("net:[") or " - nsfs " not in line:
            continue
        try:
            inode = int(fields[3][5:-1])
        except ValueError:
            continue
        # mountinfo writes a space, tab, newline or backslash in a path as an octal escape
        path = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4])
        out.append((path, inode))
    return out


def candidates() -> Iterator[Netns]:
    """Every network namespace we can open: named ones first, then the others bound to a
    file, then those of processes.

    Yields each namespace once (by inode). Processes whose namespace we may not open
    (another user's, a process outside our reach) are skipped.
    """
    seen = set()
    for ns in list_named():
        if ns.inode not in seen:
            seen.add(ns.inode)
            yield ns
    for path, inode in mounted():
        if inode not in seen:
            try:
                ns = open_path(path)
            except (NetdoctorError, OSError):
                continue
            if ns.inode == inode:
                seen.add(inode)
                yield ns
    try:
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return
    for pid in sorted(pids):
        path = f"/proc/{pid}/ns/net"
        try:
            st = os.stat(path)
        except OSError:
            continue
        if st.st_ino in seen:
            continue
        seen.add(st.st_ino)
        yield Netns(path, st.st_ino)


def _enter(ns: Netns) -> Optional[BaseException]:
    """Move the calling thread into ns: None, or the error that stopped it. Never a
    namespace other than the one resolved (a reused pid leads elsewhere: refused)."""
    try:
        fd = os.open(ns.path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return TargetNotFound(f"network namespace {ns.label} disappeared")
    except PermissionError:
        return NoPermission(f"cannot open {ns.path}: permission denied (run as root)")
    except OSError as e:
        return e
    try:
        if os.fstat(fd).st_ino != ns.inode:
            # The process behind /proc/<pid>/ns/net has gone and its pid now belongs to
            # another process: never act in a namespace that is not the one resolved.
            return TargetNotFound(f"network namespace {ns.label} went away "
                                  f"({ns.path} now leads to another one)")
        _setns(fd)
    except OSError as e:
        if e.errno == errno.EPERM:
            return NoPermission(
                f"cannot enter network namespace {ns.label}: need CAP_SYS_ADMIN (run as root)"
            )
        return e
    finally:
        os.close(fd)
    return None


class _Worker:
    """A thread that runs calls inside namespaces, one at a time, and goes back to the
    namespace it started in after each, so that it never keeps a namespace alive. Starting a
    thread per call cost 1 ms, 3 s of path discovery on a host with a thousand containers."""

    def __init__(self):
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=self._loop, name="netns:worker", daemon=True).start()

    def _loop(self) -> None:
        # the process's own namespace (a worker started inside a call would inherit that one)
        home = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        while True:
            ns, fn, args, kwargs, box, done = self.jobs.get()
            failed = _enter(ns)
            if failed is not None:
                box["error"] = failed
            else:
                try:
                    box["value"] = fn(*args, **kwargs)
                except BaseException as e:  # handed to the caller's thread
                    box["error"] = e
                try:
                    _setns(home)
                except OSError:  # cannot go back: this thread serves no one again
                    done.release()
                    return
            with _IDLE_LOCK:
                _IDLE.append(self)
            done.release()


_IDLE: list = []
_IDLE_LOCK = threading.Lock()


_HOPPING = threading.local()


def call_in(ns: Netns, fn: Callable[..., T], *args, **kwargs) -> T:
    """Run fn(*args, **kwargs) inside namespace ns and return its result (or raise its error).
    In a thread of hopping() the thread itself enters ns and comes back; elsewhere an idle
    worker thread takes the call (a new one when none is idle: calls from several threads,
    or from inside a call, run at once)."""
    if getattr(_HOPPING, "on", False):
        return _hop(ns, fn, args, kwargs)
    if ns.inode == os.stat("/proc/thread-self/ns/net").st_ino:
        return fn(*args, **kwargs)
    with _IDLE_LOCK:
        worker = _IDLE.pop() if _IDLE else None
    if worker is None:
        worker = _Worker()
    box: dict = {}
    done = threading.Lock()
    done.acquire()
    worker.jobs.put((ns, fn, args, kwargs, box, done))
    done.acquire()
    if "error" in box:
        raise box["error"]
    return box["value"]


def _hop(ns: Netns, fn: Callable[..., T], args: tuple, kwargs: dict) -> T:
    """call_in in a thread of hopping(): the thread enters ns itself and comes back to where
    it was, by the descriptor of its home kept open for the run when it was home (a path
    discovery makes thousands of such hops), else by one opened for this hop."""
    if ns.inode == _HOPPING.here:
        return fn(*args, **kwargs)
    at_home = _HOPPING.here == _HOPPING.home
    back = _HOPPING.home_fd if at_home else os.open("/proc/thread-self/ns/net",
                                                    os.O_RDONLY | os.O_CLOEXEC)
    try:
        failed = _enter(ns)
        if failed is not None:
            raise failed
        outer, _HOPPING.here = _HOPPING.here, ns.inode
        try:
            return fn(*args, **kwargs)
        finally:
            _setns(back)
            _HOPPING.here = outer
    finally:
        if not at_home:
            os.close(back)


def hopping(fn: Callable[..., T], *args, **kwargs) -> T:
    """fn(*args, **kwargs) run by a thread of its own that enters namespaces itself when fn
    calls call_in: a hand-over to another thread and back costs 0.3 ms on a VM, and path
    discovery on a host with a thousand containers makes thousands of calls."""
    box: dict = {}

    def runner() -> None:
        try:
            _HOPPING.home_fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            _HOPPING.home = _HOPPING.here = os.fstat(_HOPPING.home_fd).st_ino
            _HOPPING.on = True
            try:
                box["value"] = fn(*args, **kwargs)
            finally:
                os.close(_HOPPING.home_fd)
        except BaseException as e:  # handed to the caller's thread
            box["error"] = e

    t = threading.Thread(target=runner, name="netns:hopping", daemon=True)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def call_in_each(calls: list) -> list:
    """[(ns, fn, args)] -> fn(*args) run inside each ns, in order, by one thread that enters
    them in turn (a thread per namespace costs its start and join: 3 ms each, 3 s for a
    thousand containers). Each result is the value, or the exception it raised."""
    out: list = []

    def runner() -> None:
        for ns, fn, args in calls:
            failed = _enter(ns)
            if failed is not None:
                out.append(failed)
                continue
            try:
                out.append(fn(*args))
            except Exception as e:  # handed to the caller, per call
                out.append(e)

    t = threading.Thread(target=runner, name="netns:each", daemon=True)
    t.start()
    t.join()
    return out


def has_link(ns: Netns, name: str, ifindex: int) -> bool:
    """Whether ns is still there and still holds interface `name` with this ifindex."""
    import socket

    try:
        return ns.present() and call_in(ns, socket.if_nametoindex, name) == ifindex
    except OSError:
        return False

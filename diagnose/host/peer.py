"""The near side of a trace across hosts: one connection to the far host's `netdoctor agent`
(over OpenSSH, or `ip netns exec` for a lab host), spoken as JSON lines. ssh is the user's:
keys, users, jump hosts and multiplexing come from their ssh config (`--ssh-config FILE` is
passed as `-F FILE`), as with ansible and rsync; netdoctor adds only BatchMode, so that a
password prompt fails instead of hanging.
"""

from __future__ import annotations

import json
import os
import select
import shlex
import shutil
import subprocess
import sys
import time
from typing import Optional
from urllib.parse import urlsplit

from .. import __version__
from ..errors import PeerError, UsageError

ANSWER_TIMEOUT = 20.0  # seconds for one answer (ssh's own connection setup included)


def check_peer(spec: str) -> None:
    """--peer before any I/O: ssh://[user@]host[:port], netns:NAME, or auto."""
    if spec == "auto" or spec.startswith("netns:") and len(spec) > 6:
        return
    if spec.startswith("ssh://"):
        u = urlsplit(spec)
        try:
            u.port
        except ValueError:
            raise UsageError(f"--peer {spec}: the port must be a number") from None
        if u.hostname and not u.path.strip("/"):
            return
    raise UsageError(f"--peer '{spec}': give ssh://[USER@]HOST[:PORT], netns:NAME (a lab "
                     f"host) or auto (the remote VTEP the path finds, over ssh)")


def agent_argv(spec: str, ssh_config: Optional[str] = None) -> list:
    """The command that starts the far host's agent."""
    if spec.startswith("netns:"):
        exe = shutil.which("netdoctor") or sys.argv[0]
        return ["ip", "netns", "exec", spec[6:], exe, "agent"]
    u = urlsplit(spec)
    argv = ["ssh", "-T", "-o", "BatchMode=yes"]
    if ssh_config:
        argv += ["-F", ssh_config]
    if u.port:
        argv += ["-p", str(u.port)]
    argv.append(f"{u.username}@{u.hostname}" if u.username else u.hostname)
    return argv + ["netdoctor", "agent"]


def run_there(spec: str, ssh_config: Optional[str] = None) -> str:
    """The prefix that runs one command on the peer from here, as a user pastes it: the
    far host's findings print their commands with it."""
    if spec.startswith("netns:"):
        return f"ip netns exec {spec[6:]} "
    u = urlsplit(spec)
    words = ["ssh"] + (["-F", ssh_config] if ssh_config else []) + \
        (["-p", str(u.port)] if u.port else []) + \
        [f"{u.username}@{u.hostname}" if u.username else u.hostname]
    return " ".join(shlex.quote(w) for w in words) + " "


def command_there(spec: str, ssh_config: Optional[str], command: str) -> str:
    """One whole command (its pipes and `;` included) run on the peer, as pasted here."""
    if spec.startswith("netns:"):
        return f"{run_there(spec)}sh -c {shlex.quote(command)}"
    return run_there(spec, ssh_config) + shlex.quote(command)


class Peer:
    """An open agent connection; use as a context manager (it always says bye)."""

    def __init__(self, spec: str, ssh_config: Optional[str] = None):
        self.spec = spec
        self.argv = agent_argv(spec, ssh_config)
        self.proc: Optional[subprocess.Popen] = None
        self.where = spec
        self.ssh_config = ssh_config
        self.there = run_there(spec, ssh_config)  # prefix: run a command on the peer

    def command(self, command: str) -> str:
        """command as a user runs it on this peer from here."""
        return command_there(self.spec, self.ssh_config, command)

    def __enter__(self) -> "Peer":
        if shutil.which(self.argv[0]) is None:
            raise PeerError(f"--peer {self.spec}: {self.argv[0]} is not installed here")
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, bufsize=1,
                                     start_new_session=True)
        try:
            hello = self.ask({"op": "hello", "version": __version__})
        except BaseException:
            self.close()
            raise
        self.where = f"{self.spec} ({hello.get('netns')})"
        return self

    def ask(self, request: dict, timeout: float = ANSWER_TIMEOUT) -> dict:
        assert self.proc is not None
        try:
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise PeerError(self._gone()) from None
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise PeerError(f"--peer {self.spec}: no answer to {request['op']} within "
                                f"{timeout:g} s")
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            if ready:
                break
        line = self.proc.stdout.readline()
        if not line:
            raise PeerError(self._gone())
        try:
            answer = json.loads(line)
        except ValueError:
            raise PeerError(f"--peer {self.spec}: the agent answered something that is not "
                            f"JSON: {line.strip()[:80]!r}") from None
        if not answer.get("ok"):
            raise PeerError(f"--peer {self.spec}: {answer.get('error')}")
        return answer

    def _gone(self) -> str:
        assert self.proc is not None
        try:
            self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            pass
        err = (self.proc.stderr.read() or "").strip().splitlines() if self.proc.poll() \
            is not None else []
        last = err[-1] if err else "it closed the connection"
        return f"--peer {self.spec}: the agent could not be used ({last})"

    def close(self) -> None:
        if self.proc is None:
            return
        try:
            if self.proc.poll() is None:
                self.proc.stdin.write(json.dumps({"op": "bye"}) + "\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired, ValueError):
            pass
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, 15)
            except OSError:
                pass
            self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                f.close()
            except OSError:
                pass
        self.proc = None

    def __exit__(self, *exc) -> None:
        self.close()


def host_list(spec: str) -> list:
    """--on HOSTS: comma-separated hosts (ssh://[USER@]HOST[:PORT], [USER@]HOST as ssh takes
    it, netns:NAME in the lab), or @FILE with one per line (# comments)."""
    if spec.startswith("@"):
        try:
            with open(spec[1:], encoding="utf-8") as f:
                words = [l.split("#", 1)[0].strip() for l in f]
        except OSError as e:
            raise UsageError(f"--on {spec}: {e.strerror or e}") from None
    else:
        words = [w.strip() for w in spec.split(",")]
    hosts = [w for w in words if w]
    if not hosts:
        raise UsageError(f"--on '{spec}' names no host")
    out = []
    for h in hosts:
        full = h if h.startswith(("ssh://", "netns:")) else f"ssh://{h}"
        if any(c in h for c in " \t;|&$`'\"") or h.startswith("-"):
            raise UsageError(f"--on: '{h}' is not a host name")
        check_peer(full)
        out.append(full)
    return list(dict.fromkeys(out))


def run_on(spec: str, args: list, ssh_config: Optional[str], timeout: float) -> dict:
    """`netdoctor ARGS` on one host: {"host", "ok", "status", "stdout", "error"}. A host that
    cannot be reached, or that runs out of time, is an answer too, never an exception."""
    import shlex

    # ssh hands the words to the far host's shell: each is quoted for it.
    words = [shlex.quote(a) for a in args] if spec.startswith("ssh://") else list(args)
    argv = agent_argv(spec, ssh_config)[:-1] + words
    if shutil.which(argv[0]) is None:
        return {"host": spec, "ok": False, "status": None, "stdout": "",
                "error": f"{argv[0]} is not installed here"}
    try:
        res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                             stdin=subprocess.DEVNULL, start_new_session=True)
    except subprocess.TimeoutExpired:
        return {"host": spec, "ok": False, "status": None, "stdout": "",
                "error": f"no answer within {timeout:g} s"}
    err = (res.stderr or "").strip().splitlines()
    # netdoctor's own statuses: 0 and 1 carry a report; ssh's failure is 255.
    ok = res.returncode in (0, 1) and bool(res.stdout.strip())
    return {"host": spec, "ok": ok, "status": res.returncode, "stdout": res.stdout,
            "error": None if ok else (err[-1] if err else f"exit status {res.returncode}")}


def run_on_each(hosts: list, args: list, ssh_config: Optional[str], timeout: float,
                workers: int = 8) -> list:
    """run_on for every host at once (at most `workers` connections), in the hosts' order."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(hosts)))) as pool:
        return list(pool.map(lambda h: run_on(h, args, ssh_config, timeout), hosts))

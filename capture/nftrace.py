"""--allow-trace-rules: nftables names the rule that decided each of the probe's packets.

The one place netdoctor writes a ruleset, and only when asked. In every namespace the probe
crosses, a private table `inet netdoctor_<pid>_<start>_<n>` with two chains at priority -350
(before raw, conntrack and NAT) sets the nftrace bit on the probe's packets only, matched by
its tag: the ICMP payload cookie, or the probe's own source port (requests) and destination
port (answers). `nft -a monitor` in the same namespace then prints every chain and rule
those packets pass through, with the rule's handle and verdict. Each table is recorded in
the run's record before it is made (so `netdoctor cleanup` finds it after a SIGKILL) and
deleted when the window closes, whatever happens.

The nftrace bit is per namespace (the kernel clears it when a packet changes namespace), so
each namespace gets its own table and monitor. Rules of iptables-legacy never appear in an
nftables trace: their counters remain the only evidence for them.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import threading
from dataclasses import dataclass, field
from typing import Optional

from . import runs
from netdoctor.diagnose.host import netns

PRIORITY = -350  # before raw (-300), conntrack (-200) and every NAT and filter chain
READY_WAIT = 2.0  # seconds for a monitor to show it listens (it echoes our own table)
KIND = "nft-table"


def table_name(tag: str) -> str:
    """nft names take no '-': netdoctor-123-456-7 -> netdoctor_123_456_7."""
    return tag.replace("-", "_")


def marking_rules(kind: str, cookie: int = 0, port: int = 0) -> list:
    """The rule bodies that set nftrace on the probe's packets (requests and answers)."""
    if kind == "icmp":
        return [f"meta l4proto {{ icmp, ipv6-icmp }} @th,64,32 0x{cookie & 0xFFFFFFFF:08x} "
                f"meta nftrace set 1"]
    return [f"meta l4proto {kind} th sport {port} meta nftrace set 1",
            f"meta l4proto {kind} th dport {port} meta nftrace set 1"]


def table_text(name: str, rules: list) -> str:
    body = " ".join(f"{r};" for r in rules)
    return (f"table inet {name} {{\n"
            f" chain pre {{ type filter hook prerouting priority {PRIORITY}; policy accept; "
            f"{body} }}\n"
            f" chain out {{ type filter hook output priority {PRIORITY}; policy accept; "
            f"{body} }}\n}}\n")


@dataclass
class NsTrace:
    """One namespace's table, monitor and what the monitor printed."""

    ns: netns.Netns
    table: str
    lines: list = field(default_factory=list)
    passages: list = field(default_factory=list)  # the lines parsed (parse.nft_trace)
    chains: dict = field(default_factory=dict)  # (family, table, chain) -> `nft -a -j` doc
    error: Optional[str] = None
    proc: Optional[subprocess.Popen] = None
    made: bool = False
    _seen: dict = field(default_factory=dict)  # text -> threading.Event

    @property
    def record(self) -> str:
        """How the run record names the table: "<netns path> inet <table>"."""
        return f"{self.ns.path} inet {self.table}"

    def wait_for(self, text: str, timeout: float) -> bool:
        event = self._seen.setdefault(text, threading.Event())
        if any(text in line for line in self.lines):
            return True
        return event.wait(timeout)

    def read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)
            for text, event in list(self._seen.items()):
                if text in line:
                    event.set()


def _nft(ns: netns.Netns, args: list, input: Optional[str] = None) -> subprocess.CompletedProcess:
    return netns.call_in(ns, subprocess.run, ["nft", *args], input=input, capture_output=True,
                         text=True, timeout=5)


class RuleTrace:
    """A context manager around the probe window: tables and monitors in, tables out."""

    def __init__(self, namespaces: list, rules: list):
        self.rules = rules
        seen, self.traces = set(), []
        run = runs.current()
        for ns in namespaces:
            if ns.inode not in seen:
                seen.add(ns.inode)
                self.traces.append(NsTrace(ns, table_name(run.tag())))

    def __enter__(self) -> "RuleTrace":
        try:
            with runs.signals_deferred():  # a table is recorded and made, or neither
                for t in self.traces:
                    self._arm(t)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _arm(self, t: NsTrace) -> None:
        try:
            t.proc = netns.call_in(t.ns, subprocess.Popen, ["nft", "-a", "monitor"],
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                   stdin=subprocess.DEVNULL, text=True, bufsize=1)
        except FileNotFoundError:
            t.error = "nft is not installed"
            return
        threading.Thread(target=t.read, daemon=True, name=f"nftrace:{t.ns.label}").start()
        runs.current().record(KIND, t.record)
        res = _nft(t.ns, ["-f", "-"], input=table_text(t.table, self.rules))
        if res.returncode != 0:
            t.error = f"could not add the trace table: {res.stderr.strip().splitlines()[-1:]}"
            runs.current().forget(KIND, t.record)
            return
        t.made = True
        if not t.wait_for(f"add table inet {t.table}", READY_WAIT):
            t.error = "nft monitor did not start listening in time"

    def __exit__(self, *exc) -> None:
        with runs.signals_deferred():
            for t in self.traces:
                with contextlib.suppress(Exception):
                    self._disarm(t)

    def _disarm(self, t: NsTrace) -> None:
        try:
            if t.made:
                res = _nft(t.ns, ["delete", "table", "inet", t.table])
                if res.returncode == 0 or "No such file" in res.stderr:
                    runs.current().forget(KIND, t.record)
                    t.made = False
                # Netlink keeps order: once the monitor prints the deletion, every trace
                # event of the window has been printed before it.
                if t.proc is not None:
                    t.wait_for(f"delete table inet {t.table}", 1.0)
        finally:
            if t.proc is not None:
                t.proc.terminate()
                try:
                    t.proc.wait(1)
                except subprocess.TimeoutExpired:
                    t.proc.kill()
                    t.proc.wait()
        if t.made:
            t.error = "the trace table could not be removed: run `netdoctor cleanup`"

    def list_chains(self, t: NsTrace, wanted: set) -> None:
        """Read the chains (family, table, chain) the traced packets met in t's namespace
        (`nft -a -j list chain`), so that a rule handle is a rule again."""
        for key in sorted(wanted):
            res = _nft(t.ns, ["-a", "-j", "list", "chain", *key])
            if res.returncode == 0:
                with contextlib.suppress(ValueError):
                    t.chains[key] = json.loads(res.stdout)


def delete_table(ns_path: str, family: str, table: str) -> bool:
    """Remove a table a dead run left (for `netdoctor cleanup`): True when it is gone."""
    try:
        res = subprocess.run(["nsenter", f"--net={ns_path}", "nft", "delete", "table", family,
                              table], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return res.returncode == 0 or "No such file" in res.stderr

"""Kernel evidence without eBPF: skb:kfree_skb (drop reason and location), skb:consume_skb
(the end of an skb that was delivered: its memory is someone else's afterwards) and the device
events net:net_dev_queue / net:netif_receive_skb (skbaddr and device), recorded in a private
tracefs instance for the probe window only. With a JournalFilter, also the kernel's own
decisions: fib:fib_table_lookup (the routing decision, filtered in the kernel to the probe's
protocol and port) and neigh:* (neighbour resolution), parsed into Decisions.

The instance is named by the run's tag (netdoctor-<pid>-<starttime>-<n>) and removed
afterwards, on any exit. If the host has no tracefs mounted, a private mount under
/run/netdoctor/mnt is made for the window and removed again; /sys/kernel/tracing is not
touched, so two runs at once never pull tracefs from under each other.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from dataclasses import dataclass
from typing import Optional

from . import runs


_LINE = re.compile(r"^\s*(?P<task>.+?)-(?P<pid>\d+)\s+\[(?P<cpu>\d+)\]\s+\S+\s+"
                   r"(?P<ts>\d+\.\d+):\s+(?P<event>\w+):\s+(?P<rest>.*)$")
_FIELD = re.compile(r"(\w+)=(\S+)")


@dataclass(frozen=True)
class KernelEvent:
    ts: float  # seconds, kernel clock
    event: str  # kfree_skb, consume_skb, net_dev_queue, netif_receive_skb
    skbaddr: str
    dev: Optional[str] = None
    length: Optional[int] = None
    reason: Optional[str] = None
    location: Optional[str] = None
    protocol: Optional[int] = None


@dataclass(frozen=True)
class Decision:
    """One decision of the kernel: a FIB lookup ("route") or a neighbour event
    ("neighbour"), with the fields the tracepoint printed."""

    ts: float
    kind: str  # "route" or "neighbour"
    event: str  # fib_table_lookup, neigh_update, neigh_timer_handler, ...
    fields: tuple  # ((name, value), ...)

    def get(self, name: str) -> Optional[str]:
        return dict(self.fields).get(name)


@dataclass(frozen=True)
class JournalFilter:
    """Which routing decisions to record: the sender's own lookups carry the probe's IP
    protocol (and source port, for TCP and UDP); a router's lookups for a packet it forwards
    carry neither (protocol 0), so they are taken by the interface the packet came in on."""

    proto: int
    port: Optional[int] = None
    iifs: tuple = ()

    def fib_filter(self) -> str:
        own = f"proto == {self.proto}"
        if self.port:
            own += f" && (sport == {self.port} || dport == {self.port})"
        if not self.iifs:
            return own
        routed = " || ".join(f"iif == {i}" for i in sorted(set(self.iifs)))
        return f"({own}) || (proto == 0 && ({routed}))"


_FIB = re.compile(r"table (?P<table>\d+) oif (?P<oif>-?\d+) iif (?P<iif>-?\d+) proto (?P<proto>\d+) "
                  r"(?P<src>\S+)/(?P<sport>\d+) -> (?P<dst>\S+)/(?P<dport>\d+) .*==> "
                  r"dev (?P<dev>\S*) gw (?P<gw4>[^/\s]+)/(?P<gw6>\S+) err (?P<err>-?\d+)")
_NEIGH_FIELDS = ("dev", "nud_state", "primary_key4", "new_state", "err")
SKB_EVENTS = ("kfree_skb", "consume_skb", "net_dev_queue", "netif_receive_skb")
NEIGH_EVENTS = ("neigh_create", "neigh_update", "neigh_timer_handler", "neigh_event_send_dead")


def _decision(ts: float, event: str, rest: str) -> Optional[Decision]:
    if event == "fib_table_lookup":
        m = _FIB.search(rest)
        if not m:
            return None
        return Decision(ts, "route", event, tuple(m.groupdict().items()))
    if event in NEIGH_EVENTS:
        words = rest.split()
        fields = tuple((k, words[i + 1]) for i, k in enumerate(words[:-1]) if k in _NEIGH_FIELDS)
        if ("family", "2") not in tuple(zip(words, words[1:])):
            return None
        return Decision(ts, "neighbour", event, fields)
    return None


def _skbaddr(line: str) -> Optional[str]:
    i = line.find("skbaddr=")
    if i < 0:
        return None
    j = line.find(" ", i)
    return line[i + 8:j if j >= 0 else len(line)]


def parse_trace(text: str, seen_only: bool = False) -> list:
    """Events of interest from tracefs text (the `trace` or `trace_pipe` file); other lines
    are skipped. With seen_only, a drop counts only for an skb that an earlier device event
    of the probe's lengths named: on a busy host the buffer is mostly other packets' drops,
    which are passed over without being parsed."""
    return TraceParser(seen_only).feed(text)


class TraceParser:
    """parse_trace for text that arrives in pieces: which skbs the probe's device events
    named is remembered from one piece to the next."""

    def __init__(self, seen_only: bool = False):
        self.seen: Optional[set] = set() if seen_only else None
        self.decisions: list = []  # Decision, in the order the kernel recorded them
        # A FIB lookup is recorded once per packet; the same lookup with the same answer
        # (a flood along the probe's flow: forwarded packets carry no protocol or port to
        # filter on) is kept the first time only, as the journal says it once anyway.
        self._lookups: set = set()

    def feed(self, text: str) -> list:
        out = []
        seen = self.seen
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            at = line.find(" fib_table_lookup: ")
            if at >= 0:
                said = line[at + 19:]
                if said in self._lookups:
                    continue
                self._lookups.add(said)
            if seen is not None and "skbaddr=" in line:
                addr = _skbaddr(line)
                if "kfree_skb:" not in line and "consume_skb:" not in line:
                    seen.add(addr)
                elif addr in seen:
                    seen.discard(addr)  # the skb ends; its memory is the next one's
                else:
                    continue
            m = _LINE.match(line)
            if not m:
                continue
            if m.group("event") not in SKB_EVENTS:
                d = _decision(float(m.group("ts")), m.group("event"), m.group("rest"))
                if d is not None:
                    self.decisions.append(d)
                continue
            rest = m.group("rest")
            fields = dict(_FIELD.findall(rest))
            reason = None
            if "reason:" in rest:
                reason = (rest.split("reason:", 1)[1].split() or [None])[0]
            try:
                length = int(fields["len"]) if "len" in fields else None
                protocol = int(fields["protocol"]) if "protocol" in fields else None
            except ValueError:
                continue
            if "skbaddr" not in fields:
                continue
            out.append(KernelEvent(ts=float(m.group("ts")), event=m.group("event"),
                                   skbaddr=fields["skbaddr"], dev=fields.get("dev"),
                                   length=length, reason=reason,
                                   location=fields.get("location"), protocol=protocol))
        return out


BUFFER_KB = "4096"  # per CPU: room for a busy host's other drops during the window


class Ahead:
    """A tracefs instance made in a thread while the path is still being read, for the
    KernelTrace that arms it later: mounting tracefs and sizing the instance's buffer take
    20-30 ms, which the reading hides. `with Ahead() as ahead:` ... KernelTrace(..., ahead);
    whatever no KernelTrace took is removed when the block ends.

    The objects are recorded before they are made, as KernelTrace's own are, so a run
    interrupted while the thread works leaves nothing `netdoctor cleanup` cannot find."""

    def __init__(self):
        self.root: Optional[str] = None
        self.instance: Optional[str] = None
        self.unavailable: Optional[str] = None
        self._stack = contextlib.ExitStack()
        self._thread: Optional[threading.Thread] = None

    def __enter__(self) -> "Ahead":
        self._thread = threading.Thread(target=self._make, name="tracefs-ahead", daemon=True)
        # A signal while the thread starts (the caller waits for it to run) would leave the
        # block without its Ahead and the thread making an instance nothing removes: held
        # until the thread runs, then, if one came, everything is undone here.
        try:
            with runs.signals_deferred():
                self._thread.start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    @classmethod
    def made_now(cls) -> "Ahead":
        """One made in the calling thread, for a KernelTrace that was given none."""
        ahead = cls()
        ahead._make()
        return ahead

    def _join(self) -> None:
        if self._thread is not None:
            self._thread.join()

    def _make(self) -> None:
        try:
            self.root = self._stack.enter_context(runs.tracefs())
        except runs.TracefsUnavailable as e:
            self.unavailable = str(e)
            return
        except OSError as e:
            self.unavailable = f"tracefs: {e.strerror or e}"
            return
        if not os.path.isdir(os.path.join(self.root, "events", "skb", "kfree_skb")):
            self.unavailable = "this kernel has no skb:kfree_skb tracepoint"
            return
        run = runs.current()
        instance = os.path.join(self.root, "instances", run.tag())
        run.record("tracefs-instance", instance)
        try:
            os.mkdir(instance)
        except OSError as e:
            run.forget("tracefs-instance", instance)
            self.unavailable = f"tracefs: {e.strerror or e}"
            return
        self.instance = instance
        try:
            for rel, value in (("buffer_size_kb", BUFFER_KB), ("tracing_on", "0")):
                with open(os.path.join(instance, rel), "w") as f:
                    f.write(value)
        except OSError as e:
            self.unavailable = f"tracefs: {e.strerror or e}"

    def take(self) -> tuple:
        """(root, instance, unavailable, the mount's release): the instance is the caller's
        to remove from now on."""
        self._join()
        taken = (self.root, self.instance, self.unavailable, self._stack.pop_all())
        self.instance = None
        return taken

    def __exit__(self, *exc) -> None:
        with runs.signals_deferred():
            self._join()
            try:
                if self.instance and runs.remove_instance(self.instance):
                    runs.current().forget("tracefs-instance", self.instance)
            finally:
                self.instance = None
                self._stack.close()


class KernelTrace:
    """with KernelTrace(lengths) as kt: ... ; kt.events afterwards (or kt.unavailable).

    The instance (and a private tracefs mount when the host has none) is recorded in the
    run's record before it is made and removed on every exit; signals are held while either
    is being made or removed, so an interruption cannot orphan it. With an Ahead, its
    instance is armed instead of a new one."""

    def __init__(self, lengths: tuple, journal: Optional[JournalFilter] = None,
                 ahead: Optional[Ahead] = None):
        self.lengths = tuple(sorted(set(lengths)))
        self.journal = journal
        self.ahead = ahead
        self.instance: Optional[str] = None
        self.events: list = []
        self.unavailable: Optional[str] = None
        self._stack = contextlib.ExitStack()
        self._pipe: Optional[int] = None  # trace_pipe, read without blocking
        self._parser = TraceParser(seen_only=True)
        self._partial = b""

    def _write(self, rel: str, value: str) -> None:
        with open(os.path.join(self.instance, rel), "w") as f:
            f.write(value)

    def __enter__(self) -> "KernelTrace":
        try:
            with runs.signals_deferred():
                self._arm()
        except BaseException:
            self._release()
            raise
        return self

    def _arm(self) -> None:
        # Without an instance made ahead, the same is made here (signals are held).
        root, instance, unavailable, mount = (self.ahead or Ahead.made_now()).take()
        self._stack.enter_context(mount)
        self.instance = instance
        if unavailable or not instance:
            self.unavailable = unavailable or "tracefs: no instance was made"
            self._release()
            return
        try:
            lens = " || ".join(f"len == {n}" for n in self.lengths) or "len > 0"
            for ev in ("net/net_dev_queue", "net/netif_receive_skb"):
                self._write(f"events/{ev}/filter", lens)
                self._write(f"events/{ev}/enable", "1")
            self._write("events/skb/kfree_skb/filter",
                        "protocol == 2048 || protocol == 34525")
            self._write("events/skb/kfree_skb/enable", "1")
            # Every delivered skb: many on a busy host, but only the probe's are parsed.
            if os.path.isdir(os.path.join(root, "events", "skb", "consume_skb")):
                self._write("events/skb/consume_skb/enable", "1")
            if self.journal is not None:
                self._arm_journal(root)
            self._write("tracing_on", "1")
            # trace_pipe consumes what it returns: each event is formatted and parsed once,
            # and what has been read leaves room in the buffer (re-reading `trace` formatted
            # the whole buffer again at every look, on a busy host megabytes of other drops).
            self._pipe = os.open(os.path.join(instance, "trace_pipe"),
                                 os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as e:
            self.unavailable = f"tracefs: {e.strerror or e}"
            self._release()

    def _arm_journal(self, root: str) -> None:
        """The decision tracepoints, where this kernel has them (each one on its own)."""
        if os.path.isdir(os.path.join(root, "events", "fib", "fib_table_lookup")):
            self._write("events/fib/fib_table_lookup/filter", self.journal.fib_filter())
            self._write("events/fib/fib_table_lookup/enable", "1")
        for ev in NEIGH_EVENTS:
            if os.path.isdir(os.path.join(root, "events", "neigh", ev)):
                self._write(f"events/neigh/{ev}/filter", "family == 2")
                self._write(f"events/neigh/{ev}/enable", "1")

    @property
    def decisions(self) -> list:
        return self._parser.decisions

    def _read(self, most: Optional[int] = None) -> None:
        """Parse what the kernel recorded since the last read into self.events: at most
        `most` reads of 64 KB (a flood of drops can fill the pipe faster than it is parsed;
        the rest waits for the next look), all of it when None (tracing is off: it ends)."""
        chunks = [self._partial]
        while most is None or len(chunks) <= most:
            try:
                data = os.read(self._pipe, 1 << 16)
            except BlockingIOError:
                break
            if not data:
                break
            chunks.append(data)
        text = b"".join(chunks)
        cut = text.rfind(b"\n") + 1  # a line cut short waits for the next read
        self._partial = text[cut:]
        self.events.extend(self._parser.feed(text[:cut].decode(errors="replace")))

    def peek(self) -> list:
        """The events so far, tracing left on (for deciding whether to wait longer)."""
        if self._pipe is None:
            return []
        try:
            self._read(most=64)
        except OSError:
            pass
        return self.events

    def stop(self) -> None:
        if self._pipe is None:
            return
        try:
            self._write("tracing_on", "0")
            self._read()
        except OSError as e:
            self.unavailable = f"tracefs: {e.strerror or e}"

    def _release(self) -> None:
        if self._pipe is not None:
            os.close(self._pipe)  # an open file keeps the instance from being removed
            self._pipe = None
        if self.instance:
            if runs.remove_instance(self.instance):
                runs.current().forget("tracefs-instance", self.instance)
            self.instance = None
        self._stack.close()

    def __exit__(self, *exc) -> None:
        with runs.signals_deferred():
            try:
                self.stop()
            finally:
                self._release()

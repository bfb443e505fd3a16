"""take(targets) -> Snapshot: every fact the checks judge, gathered once, savable as JSON.

The snapshot holds, for each host namespace (the namespace netdoctor runs in, and any
namespace that holds a target's veth peer): its links, routes, neighbours, sysctls and
netfilter ruleset; for each target: its namespace, its discovered path, its resolv.conf
and the answer of one DNS query per nameserver (the only packets `checks` sends; skipped
with probe_dns=False). `netdoctor checks --from FILE` judges a saved snapshot anywhere,
without root.
"""

from __future__ import annotations

import os
import platform
import socket
import time
from dataclasses import dataclass, field, replace
from typing import Optional

from netdoctor.diagnose import __version__
from netdoctor.diagnose.host import resolver
from netdoctor.diagnose.parse import dns_wire
from netdoctor.diagnose.parse import resolv_conf
from netdoctor.diagnose.host import gather, netns
from netdoctor.diagnose.errors import MissingDependency, NetdoctorError, ParseError
from netdoctor.diagnose.facts.namespace import NamespaceSnapshot, check_types
from netdoctor.diagnose.facts.ruleset import Ruleset

SCHEMA = "netdoctor.snapshot/1"
# Where checks send container traffic when no destination is given: an address only
# the default route covers (RFC 2544 benchmarking range). Nothing is sent to it.
DEFAULT_DESTINATION = "198.18.0.1"


@dataclass(frozen=True)
class HostFacts:
    namespace: NamespaceSnapshot
    ruleset: Ruleset

    def to_dict(self) -> dict:
        return {"namespace": self.namespace.to_dict(), "ruleset": self.ruleset.to_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> "HostFacts":
        return cls(NamespaceSnapshot.from_dict(d["namespace"]), Ruleset.from_dict(d["ruleset"]))


@dataclass(frozen=True)
class ContainerFacts:
    target: dict  # Target.to_dict()
    path: dict  # PathReport.to_dict()
    namespace: NamespaceSnapshot
    host_inode: Optional[int]
    resolv_conf: Optional[str] = None  # its text, as the container reads it
    dns_probe: Optional[list] = None  # [{"server", "answered", "rcode", "error"}]; None: not probed
    # The container's own netfilter rules (its OUTPUT chain decides before anything leaves);
    # None when its namespace has no tables, or is the host's.
    ruleset: Optional[Ruleset] = None

    @property
    def label(self) -> str:
        return f"{self.target['kind']}:{self.target['name']}"

    def to_dict(self) -> dict:
        return {"target": self.target, "path": self.path, "namespace": self.namespace.to_dict(),
                "host_inode": self.host_inode, "resolv_conf": self.resolv_conf,
                "dns_probe": self.dns_probe,
                "ruleset": self.ruleset.to_dict() if self.ruleset is not None else None}

    @classmethod
    def from_dict(cls, d: dict) -> "ContainerFacts":
        return cls(target=d["target"], path=d["path"],
                   namespace=NamespaceSnapshot.from_dict(d["namespace"]),
                   host_inode=d.get("host_inode"), resolv_conf=d.get("resolv_conf"),
                   dns_probe=d.get("dns_probe"),
                   ruleset=Ruleset.from_dict(d["ruleset"]) if d.get("ruleset") else None)


def _check_shape(c: "ContainerFacts") -> None:
    """The parts of a container's free-form records that the checks rely on."""
    def need(ok: bool, what: str) -> None:
        if not ok:
            raise ParseError(f"snapshot: container {str(c.target.get('name'))[:40]!r}: {what}")

    need(all(isinstance(c.target.get(k), str) for k in ("kind", "name")),
         "target needs a kind and a name")
    need(c.target.get("network_mode") is None or isinstance(c.target["network_mode"], str),
         "network_mode must be text")
    need(isinstance(c.path.get("hops", []), list), "path hops must be a list")
    for h in c.path.get("hops", []):
        need(isinstance(h, dict) and isinstance(h.get("role"), str)
             and isinstance(h.get("name"), str) and isinstance(h.get("ifindex"), int),
             "every hop needs a role, a name and an ifindex")
    for key in ("destination", "host_netns"):
        need(c.path.get(key) is None or isinstance(c.path[key], dict), f"path {key} must be an "
                                                                      f"object")
    need(isinstance(c.path.get("mode"), (str, type(None))), "path mode must be text")
    lookups = c.path.get("route_lookups", [])
    need(isinstance(lookups, list) and all(
        isinstance(l, dict) and isinstance(l.get("netns"), str)
        and isinstance(l.get("query"), str)
        and all(isinstance(l.get(k), (str, type(None))) for k in ("dev", "gateway", "error"))
        for l in lookups), "route_lookups must be objects with a netns and a query")
    need(c.dns_probe is None or all(isinstance(p, dict) and isinstance(p.get("server"), str)
                                    for p in c.dns_probe), "dns_probe entries need a server")


@dataclass(frozen=True)
class Snapshot:
    hosts: dict  # str(inode) -> HostFacts
    containers: tuple = ()
    own_inode: Optional[int] = None
    destination: str = DEFAULT_DESTINATION
    meta: dict = field(default_factory=dict)
    problems: tuple = ()  # what could not be gathered, one line each

    def host(self, inode: Optional[int]) -> Optional[HostFacts]:
        return self.hosts.get(str(inode)) if inode is not None else None

    def to_dict(self) -> dict:
        return {"schema": SCHEMA, "meta": self.meta, "own_inode": self.own_inode,
                "destination": self.destination,
                "hosts": {k: h.to_dict() for k, h in self.hosts.items()},
                "containers": [c.to_dict() for c in self.containers],
                "problems": list(self.problems)}

    @classmethod
    def from_dict(cls, d: dict) -> "Snapshot":
        if not isinstance(d, dict) or d.get("schema") != SCHEMA:
            raise ParseError(f"not a netdoctor snapshot (expected schema {SCHEMA})")
        try:
            snap = cls(hosts={k: HostFacts.from_dict(h) for k, h in d["hosts"].items()},
                       containers=tuple(ContainerFacts.from_dict(c) for c in d["containers"]),
                       own_inode=d.get("own_inode"),
                       destination=d.get("destination", DEFAULT_DESTINATION),
                       meta=d.get("meta", {}), problems=tuple(d.get("problems", ())))
        except (KeyError, TypeError, AttributeError, ValueError) as e:
            raise ParseError(f"snapshot is incomplete or malformed: {e}") from None
        for inode, host in snap.hosts.items():
            if not inode.isascii() or not inode.isdigit():
                raise ParseError(f"snapshot: host key {inode[:20]!r} is not a namespace inode")
            check_types(host.namespace, f"snapshot: host {inode}")
            check_types(host.ruleset, f"snapshot: rules of host {inode}")
        for c in snap.containers:
            check_types(c, "snapshot: a container")
            _check_shape(c)
        if not isinstance(snap.destination, str) or not all(isinstance(p, str)
                                                              for p in snap.problems):
            raise ParseError("snapshot: destination and problems must be text")
        return snap


def _read_text(path: Optional[str]) -> Optional[str]:
    if not path:
        return None
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read(65536)
    except OSError:
        return None


def _probe_dns(ns: netns.Netns, conf_text: Optional[str]) -> list:
    """One query per nameserver (for ".", type NS): does anything answer at all?"""
    conf = resolv_conf.parse_resolv_conf(conf_text or "")
    results = []
    for server in conf.nameservers:
        try:
            answer = netns.call_in(ns, resolver.ask, server, ".", dns_wire.QTYPE_NS, 1.0)
            results.append({"server": server, "answered": True, "rcode": answer.rcode,
                            "error": None})
        except socket.timeout:
            results.append({"server": server, "answered": False, "rcode": None,
                            "error": "no answer within 1 s"})
        except (OSError, ParseError) as e:
            results.append({"server": server, "answered": False, "rcode": None,
                            "error": getattr(e, "strerror", None) or str(e)})
    return results


def take(targets: list, destination: Optional[str] = None, probe_dns: bool = True,
         strict: bool = False) -> Snapshot:
    """The snapshot of targets. A target whose path cannot be read is a problem of the
    snapshot, and the others go on; strict=True raises its error instead (one target, as
    trace has: its error, with its exit status, is the answer)."""
    read = gather.NamespaceReader()
    me = netns.own()
    read.prefetch([me] + [t.netns for t in targets])
    read(me)
    containers, probe_from, problems, host_inodes = [], [], [], {me.inode: me}
    for t in targets:
        try:
            report = discover_path(t, destination, read)
        except NetdoctorError as e:
            if strict:
                raise
            problems.append(f"{t.label}: {e}")
            continue
        host = report.host_netns
        host_inode = host["inode"] if host else None
        if host_inode is not None and host_inode not in host_inodes:
            host_inodes[host_inode] = netns.open_path(host["path"], host.get("name"))
        conf_text = _read_text(t.resolv_conf)
        containers.append(ContainerFacts(
            target=t.to_dict(), path=report.to_dict(), namespace=read(t.netns),
            host_inode=host_inode, resolv_conf=conf_text))
        probe_from.append(t.netns)
    containers = _with_own_rules(containers, probe_from, problems, me.inode)
    if probe_dns and containers:
        # Silent nameservers cost their timeout each: ask them all at once.
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(32, len(containers))) as pool:
            probes = list(pool.map(lambda pair: _probe_dns(pair[0], pair[1].resolv_conf),
                                   zip(probe_from, containers)))
        containers = [replace(c, dns_probe=p) for c, p in zip(containers, probes)]
    hosts = {}
    for inode, ns in host_inodes.items():
        try:
            hosts[str(inode)] = HostFacts(read(ns), gather.read_netfilter(ns))
        except MissingDependency:
            raise  # no rule reader at all: every verdict about rules would be a guess
        except NetdoctorError as e:
            problems.append(f"host {ns.label}: {e}")
    meta = {"taken_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "hostname": socket.gethostname(), "kernel": platform.release(),
            "netdoctor": __version__, "uid": os.geteuid()}
    return Snapshot(hosts=hosts, containers=tuple(containers), own_inode=me.inode,
                    destination=destination or DEFAULT_DESTINATION, meta=meta,
                    problems=tuple(problems))


def _can_filter(tables: tuple) -> bool:
    """Whether netfilter tables may hold a rule that drops what the container sends. nat
    tables cannot (Docker's DNS redirection lives there, in every container of a
    user-defined network); a native nft table's chain types are only known by reading it."""
    return any(not t.endswith(" nat") for t in tables)


def _with_own_rules(containers: list, namespaces: list, problems: list, own_inode: int) -> list:
    """The containers, each with its own firewall rules where its namespace may filter."""
    todo = [i for i, c in enumerate(containers)
            if _can_filter(c.namespace.netfilter_tables)
            and c.namespace.netns.get("inode") not in (c.host_inode, own_inode)]
    if not todo:
        return containers

    def read(i):
        try:
            return i, gather.read_netfilter(namespaces[i]), None
        except NetdoctorError as e:
            return i, None, f"{containers[i].label}: its own firewall rules: {e}"

    from concurrent.futures import ThreadPoolExecutor

    out = list(containers)
    with ThreadPoolExecutor(max_workers=min(8, len(todo))) as pool:
        for i, ruleset, why in pool.map(read, todo):
            if why:
                problems.append(why)
            else:
                out[i] = replace(out[i], ruleset=ruleset)
    return out


def discover_path(target, destination: Optional[str], read):
    from netdoctor.diagnose.pipeline import path as discover

    return discover.discover(target, destination or DEFAULT_DESTINATION, read=read)

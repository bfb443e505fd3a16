"""discover(target, dest) -> PathReport: resolve DEST from inside the container, then follow
the path with the live kernel's answers (reason/path.py decides, host/ answers)."""

from __future__ import annotations

import ipaddress
from typing import Optional

from ..errors import TargetNotFound, Unresolved, UsageError
from ..host import gather, netns, resolver
from ..parse import dns_wire
from ..reason import path as engine
from ..reason.path import PathReport
from ..targets.destination import container_reference, parse_destination


class LiveKernel:
    """The path engine's questions, asked of this machine's namespaces."""

    def __init__(self, read=None):
        self.read = read or gather.read_namespace  # a gather.NamespaceReader shares reads

    def route(self, ns, dst, src=None, iif=None):
        return gather.route_get(ns, dst, src=src, iif=iif)

    def nsids(self, viewer, others):
        return gather.nsids_of(viewer, others)

    def own(self):
        return netns.own()

    def namespaces(self):
        return list(netns.candidates())


def resolve_destination(target, query: Optional[str]) -> dict:
    """{"query", "address", "nameserver"}: DEST resolved from inside the container (or, for
    a container given as DEST, its address; "container" then names it)."""
    if query is None:
        return {"query": None, "address": None, "nameserver": None}
    ref = container_reference(query, None)
    if ref is not None:
        from .. import targets

        return dict(container_destination(target, targets.resolve(ref[0])), query=query,
                    nameserver=None)
    host, _, _ = parse_destination(query, None, None)
    if dns_wire.is_address(host):
        return {"query": query, "address": str(ipaddress.ip_address(host)), "nameserver": None}
    conf = resolver.read_resolv_conf(target.resolv_conf)
    try:
        found = resolver.resolve_in(target.netns, conf, host)
    except Unresolved:
        other = container_named(host)
        if other is None:
            raise
        return dict(container_destination(target, other), query=query, nameserver=None)
    return {"query": query, "address": found.address, "nameserver": found.server,
            "name": found.name}


def container_named(name: str):
    """The container (a Target) a bare name that DNS did not resolve names, or None."""
    from .. import targets

    try:
        return targets.resolve(name)
    except (TargetNotFound, UsageError):
        return None


def container_destination(source, other) -> dict:
    """{"address", "container"}: the container `other` (a Target) at its address on a
    network the source container shares with it (else its first IPv4 address)."""
    if other.netns.inode == source.netns.inode:
        raise UsageError(f"DEST {other.ref} is {source.label}'s own network namespace")
    mine = [a.interface for l in gather.read_namespace(source.netns).links
            for a in l.addresses if a.scope == "global"]
    theirs = [a for l in gather.read_namespace(other.netns).links if not l.is_loopback
              for a in l.addresses if a.scope == "global" and a.family == "inet"]
    if not theirs:
        raise Unresolved(f"{other.label} has no IPv4 address to send to")
    shared = [a for a in theirs if any(a.interface.ip in m.network for m in mine
                                       if m.version == 4)]
    return {"address": (shared or theirs)[0].local, "container": other.label}


def discover(target, dest_query: Optional[str] = None, read=None) -> PathReport:
    """The path from target toward dest_query (or its default route)."""
    return engine.build(target, resolve_destination(target, dest_query), LiveKernel(read))

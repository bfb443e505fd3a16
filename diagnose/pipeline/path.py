"""discover(target, dest) -> PathReport: resolve DEST from inside the container, then follow
the path with the live kernel's answers (reason/path.py decides, host/ answers)."""

from __future__ import annotations

import ipaddress
from typing import Optional

from ..host import gather, netns, resolver
from ..parse import dns_wire
from ..reason import path as engine
from ..reason.path import PathReport
from ..targets.destination import parse_destination


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
    """{"query", "address", "nameserver"}: DEST resolved from inside the container."""
    if query is None:
        return {"query": None, "address": None, "nameserver": None}
    host, _, _ = parse_destination(query, None, None)
    if dns_wire.is_address(host):
        return {"query": query, "address": str(ipaddress.ip_address(host)), "nameserver": None}
    conf = resolver.read_resolv_conf(target.resolv_conf)
    found = resolver.resolve_in(target.netns, conf, host)
    return {"query": query, "address": found.address, "nameserver": found.server,
            "name": found.name}


def discover(target, dest_query: Optional[str] = None, read=None) -> PathReport:
    """The path from target toward dest_query (or its default route)."""
    return engine.build(target, resolve_destination(target, dest_query), LiveKernel(read))

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
from ..targets.destination import (FAMILY_WORDS, check_family, container_reference,
                                  parse_destination)


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


def resolve_destination(target, query: Optional[str], family: Optional[str] = None) -> dict:
    """{"query", "address", "nameserver"}: DEST resolved from inside the container (or, for
    a container given as DEST, its address; "container" then names it). family ("inet",
    "inet6") keeps to one address family, as ping -4/-6 do."""
    if query is None:
        return {"query": None, "address": None, "nameserver": None}
    ref = container_reference(query, None)
    if ref is not None:
        from .. import targets

        return dict(container_destination(target, targets.resolve(ref[0]), family),
                    query=query, nameserver=None)
    host, _, _ = parse_destination(query, None, None)
    check_family(host, family)
    if dns_wire.is_address(host):
        return {"query": query, "address": str(ipaddress.ip_address(host)), "nameserver": None}
    try:
        found = resolver.resolve_for(target, host)
    except Unresolved:
        other = container_named(host)
        if other is None:
            raise
        return dict(container_destination(target, other, family), query=query,
                    nameserver=None)
    return dict({"query": query, "nameserver": found.server, "name": found.name},
                **choose_address(target, found, family))


def choose_address(target, found, family: Optional[str] = None) -> dict:
    """{"address", "addresses", "choice"}: of a name's addresses, the one the container's
    program would connect to first (getaddrinfo's order, asked of the container's own
    routes), or the first of the family asked for."""
    from ..reason import address_order as order

    addresses = [a for a in found.addresses
                 if family is None or ("inet6" if ":" in a else "inet") == family]
    if not addresses:
        raise Unresolved(f"'{found.name}' has no {FAMILY_WORDS[family]} address (the answer "
                         f"was {', '.join(found.addresses)}); leave out --"
                         f"{FAMILY_WORDS[family].lower()} or trace another name")
    candidates = []
    for a in addresses:
        lookup = gather.route_get(target.netns, a)
        candidates.append(order.Candidate(a, lookup.prefsrc if lookup.dev else None))
    policy = _gai_policy(target) or order.Policy()
    ranked, rule = order.order(candidates, policy)
    first = ranked[0]
    if family:
        why = f"--{FAMILY_WORDS[family].lower()} asked for {FAMILY_WORDS[family]}"
    else:
        why = (f"getaddrinfo in the container tries it first (RFC 6724 "
               f"{rule or 'rule 10: the order of the answer'}; {policy.origin})")
    return {"address": first.address, "addresses": [c.address for c in ranked], "choice": why}


def _gai_policy(target):
    """The container's own /etc/gai.conf, where its root can be seen."""
    from ..reason import address_order as order

    if not target.pid:
        return None
    try:
        with open(f"/proc/{target.pid}/root/etc/gai.conf", encoding="utf-8",
                  errors="replace") as f:
            return order.parse_gai_conf(f.read(65536))
    except OSError:
        return None


def container_named(name: str):
    """The container (a Target) a bare name that DNS did not resolve names, or None."""
    from .. import targets

    try:
        return targets.resolve(name)
    except (TargetNotFound, UsageError):
        return None


def container_destination(source, other, family: Optional[str] = None) -> dict:
    """{"address", "container"}: the container `other` (a Target) at its address on a
    network the source container shares with it (else its first address), IPv4 unless
    family says "inet6"."""
    if other.netns.inode == source.netns.inode:
        raise UsageError(f"DEST {other.ref} is {source.label}'s own network namespace")
    family = family or "inet"
    version = 6 if family == "inet6" else 4
    mine = [a.interface for l in gather.read_namespace(source.netns).links
            for a in l.addresses if a.scope == "global"]
    theirs = [a for l in gather.read_namespace(other.netns).links if not l.is_loopback
              for a in l.addresses if a.scope == "global" and a.family == family]
    if not theirs:
        raise Unresolved(f"{other.label} has no {FAMILY_WORDS[family]} address to send to")
    shared = [a for a in theirs if any(a.interface.ip in m.network for m in mine
                                       if m.version == version)]
    return {"address": (shared or theirs)[0].local, "container": other.label}


def discover(target, dest_query: Optional[str] = None, read=None,
             family: Optional[str] = None) -> PathReport:
    """The path from target toward dest_query (or its default route)."""
    return engine.build(target, resolve_destination(target, dest_query, family),
                        LiveKernel(read))


def next_host(hops: list, spec: str) -> tuple:
    """(peer spec, the address the path leaves this machine toward) for --peer: the remote
    VTEP of an overlay, or the next hop a routed design (flannel host-gw, Calico without
    encapsulation) sends the packet to over the uplink; --peer auto is that address, over
    ssh. hops: the path's hop dicts."""
    under = next((h for h in hops if h["role"] == "underlay"), None) or \
        next((h for h in hops if h["role"] == "uplink"), None)
    if under is None or not under.get("via"):
        raise UsageError("--peer observes the next host on the path: this path leaves by no "
                         "tunnel and no next-hop router (see `netdoctor path`)")
    return (f"ssh://{under['via']}" if spec == "auto" else spec), under["via"]


def observe_far(report: PathReport, spec: str, ssh_config: Optional[str]) -> PathReport:
    """The report with the far host's hops, as its agent finds them (path --peer)."""
    from dataclasses import replace

    from ..host.peer import Peer

    hops = [h.to_dict() for h in report.hops]
    spec, vtep = next_host(hops, spec)
    tunnel = next((h for h in hops if h["role"] == "tunnel"), None)
    link = gather.read_namespace(netns.Netns(tunnel["netns_path"], tunnel["netns_inode"]))\
        .link(ifindex=tunnel["ifindex"]) if tunnel is not None else None
    port, vni = engine.tunnel_ids(link)
    src = next((a.split("/")[0] for a in hops[0]["addresses"]), None) if hops else None
    with Peer(spec, ssh_config) as peer:
        far = peer.ask({"op": "far_path", "dst": report.destination.get("address"),
                        "src": src, "vtep": vtep, "tunnel_port": port, "vni": vni})["hops"]
        where = peer.where
    notes = report.notes + (() if far else (
        f"the far host ({where}) found none of its hops for {vtep}",))
    return replace(report, far_hops=tuple(far), peer=where, notes=notes)


MAX_OUTWARD = 3  # hosts followed out from a container: a pod in a node in a node


def outer_host(path: dict, host_ns, destination: str, family: Optional[str] = None):
    """(the host namespace as a target, its own path toward destination) when the host of a
    path is itself a container of an outer host on this machine: its uplink is a veth whose
    other end is a port of a bridge in another namespace, and that bridge holds the host's
    next hop (a kind or k3d node, Docker in Docker, a node namespace). None otherwise (an
    uplink that is a NIC, a veth to a router namespace: the labs' "internet")."""
    from ..errors import NetdoctorError
    from .. import targets

    up = next((h for h in path.get("hops", ()) if h["role"] == "uplink"), None)
    if host_ns is None or up is None or up.get("kind") != "veth" or not up.get("via"):
        return None
    host = targets.Target(ref=f"netns:{host_ns.label}", kind="netns", name=host_ns.label,
                          netns=host_ns)
    try:
        outer = discover(host, destination, family=family).to_dict()
    except NetdoctorError:
        return None
    via = ipaddress.ip_address(up["via"])
    bridged = any(h["role"] == "bridge" and h.get("netns") != host_ns.label
                  and any(ipaddress.ip_interface(a).ip == via for a in h.get("addresses") or ())
                  for h in outer.get("hops", ()))
    return (host, outer) if outer.get("mode") == "bridge" and bridged else None

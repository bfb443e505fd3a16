"""The path engine: the hops a container's packets take, from facts and the kernel's answers.

container eth0 --veth-peer--> host veth --bridge-member--> bridge --egress-route--> uplink
                                                             |
                         (a destination on this machine)     +--> bridge-port --> destination
                                                             +--> out-bridge --> bridge-port --> destination
                                                             +--> far-veth --> destination

Each step follows the kernel's decision: the container's route lookup picks its interface,
the veth's peer (by namespace id) is the host's end, the host's lookup for the packet as it
arrives (source, input interface) picks the device it leaves by; a bridge hands a frame to
the port that leads to the destination's address, a veth to its peer's namespace. ROLES
lists every role a hop can have.

Pure: everything it knows comes through a Kernel, which reads a namespace, answers a route
lookup (`ip route get`), names namespace ids and lists namespaces. pipeline/path.py passes
the live one (host/); a saved snapshot can stand in for it. The host is the namespace that
holds the container's veth peer, found by the namespace id the container's kernel gives the
peer (IFLA_LINK_NETNSID), never by ifindex alone: ifindexes repeat across namespaces.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, replace
from typing import Optional, Protocol

from ..facts.namespace import Link, NamespaceSnapshot, RouteLookup
from . import topology

# The roles a hop can have, in the order a request meets them (README: "Path roles").
ROLES = {
    "container": "the interface the container's packet leaves by",
    "host-veth": "the host's end of the container's veth pair",
    "bridge": "the bridge the host veth is a port of (the container network's gateway)",
    "uplink": "the host interface the packet leaves the machine by (a macvlan's parent too)",
    "out-bridge": "another bridge on the same host the host routes the packet onto",
    "bridge-port": "the bridge port that leads to the destination (its host veth)",
    "far-veth": "the host veth the host routes the packet into (routed veth, no bridge)",
    "destination": "the destination container's own interface",
    "tunnel": "an overlay's tunnel device (vxlan) the host routes the packet into",
    "underlay": "the host interface the tunnel's encapsulated packet leaves by, to the "
                "remote VTEP",
    # Seen by the far host's agent (trace --peer):
    "far-underlay": "the far host's interface holding the remote VTEP address",
    "far-tunnel": "the far host's VXLAN device that decapsulates the packet",
    "far-bridge": "the far host's bridge its kernel routes the decapsulated packet onto",
    "far-uplink": "the far host's interface a routed design (host-gw) sends the packet to",
}
# The roles of the hop a container's request leaves the host's IP layer by.
HOST_EGRESS_ROLES = ("uplink", "out-bridge", "far-veth", "tunnel")
VXLAN_OVERHEAD = 50  # outer Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8
# Tunnels other than VXLAN (Calico's IPIP tunl0, GRE, GENEVE, WireGuard): a hop of the path,
# whose encapsulation netdoctor does not follow. The L3 ones carry no Ethernet header, which
# its captures do not decode: such a hop is blind (its silence is no evidence).
OTHER_TUNNELS = ("ipip", "sit", "ip6tnl", "gre", "ip6gre", "gretap", "ip6gretap", "geneve",
                 "wireguard")
L3_TUNNELS = ("ipip", "sit", "ip6tnl", "gre", "ip6gre", "wireguard")
SCHEMA = "netdoctor.path/2"


class Kernel(Protocol):
    """What the path engine asks of the machine (each namespace is a host.netns.Netns)."""

    def read(self, ns) -> NamespaceSnapshot: ...

    def route(self, ns, dst: str, src: Optional[str] = None,
              iif: Optional[str] = None) -> RouteLookup: ...

    def nsids(self, viewer, others: list) -> list: ...

    def own(self): ...

    def namespaces(self) -> list: ...


@dataclass(frozen=True)
class PathReport:
    target: dict
    destination: dict  # {"query": ..., "address": ..., "nameserver": ...}
    mode: str  # "bridge", "routed", "macvlan", "host", "none"
    host_netns: Optional[dict]
    hops: tuple
    complete: bool
    notes: tuple = ()  # why the path is incomplete, or what is unusual about it
    lookups: tuple = ()  # the route lookups made, as evidence
    far_netns: Optional[dict] = None  # the destination's namespace, when it is on this machine
    direction: str = "outbound"  # outbound: from the container (inbound: toward it)
    # The host's own answer for the reply: `ip route get CONTAINER from DEST iif UPLINK`,
    # and the device the request came in by (where the reply should go back out).
    reply_lookups: tuple = ()  # ((netns label, RouteLookup, expected device), ...)
    # The far host's hops (path --peer): its agent's hop dicts, and where it was reached.
    far_hops: tuple = ()
    peer: Optional[str] = None

    def to_dict(self) -> dict:
        return {
            "schema": SCHEMA,
            "direction": self.direction,
            "target": self.target,
            "destination": self.destination,
            "mode": self.mode,
            "host_netns": self.host_netns,
            "far_netns": self.far_netns,
            "complete": self.complete,
            "hops": [h.to_dict() for h in self.hops],
            "notes": list(self.notes),
            "route_lookups": [
                {"query": l.query, "netns": ns, "dev": l.dev, "gateway": l.gateway,
                 "prefsrc": l.prefsrc, "error": l.error}
                for ns, l in self.lookups
            ],
            "reply_lookups": [
                {"query": l.query, "netns": ns, "dev": l.dev, "gateway": l.gateway,
                 "error": l.error, "expected_dev": expected}
                for ns, l, expected in self.reply_lookups
            ],
            **({"peer": self.peer, "far_hops": [
                {k: h.get(k) for k in ("role", "name", "netns", "ifindex", "kind", "mac",
                                       "addresses", "mtu", "state")}
                for h in self.far_hops]} if self.peer else {}),
        }


@dataclass
class _Discovery:
    target: object  # targets.Target
    dest: Optional[str]
    kernel: "Kernel"
    notes: list = field(default_factory=list)
    lookups: list = field(default_factory=list)
    replies: list = field(default_factory=list)  # (netns label, RouteLookup, expected dev)
    container_unrouted: bool = False  # the container itself has no route toward dest


def _primary_address(link: Link, family: str = "inet") -> Optional[str]:
    for a in link.addresses:
        if a.family == family and a.scope == "global":
            return a.local
    return None


def _family(dest: Optional[str]) -> str:
    if dest and ":" in dest:
        return "inet6"
    return "inet"


def _container_egress(d: _Discovery, snap: NamespaceSnapshot) -> Optional[Link]:
    """The interface the container's kernel routes toward dest (or its default route)."""
    ns = d.target.netns
    candidates = [l for l in snap.links if not l.is_loopback]
    if d.dest:
        lookup = d.kernel.route(ns, d.dest)
        d.lookups.append((ns.label, lookup))
        if lookup.dev:
            return snap.link(name=lookup.dev)
        d.notes.append(f"container has no route to {d.dest} ({lookup.error})")
        d.container_unrouted = True
    else:
        defaults = snap.default_routes()
        if defaults and defaults[0].dev:
            return snap.link(name=defaults[0].dev)
        d.notes.append("container has no default route")
        d.container_unrouted = True
    # Without a route, still show the path its only interface would take.
    return candidates[0] if len(candidates) == 1 else None


def _find_host(d: _Discovery, c_snap: NamespaceSnapshot, egress: Link) -> tuple:
    """(host Netns, host snapshot, nsids) for the namespace that holds egress's peer."""
    c_ns = d.target.netns
    if egress.peer_netnsid is None:
        return None, None, {}
    if d.target.host_netns is not None:
        batches = [lambda: [d.target.host_netns]]
    else:
        # Our own namespace first (the usual case, and `ip netns exec HOST netdoctor`),
        # then every other namespace on the machine, asked in one go.
        # The second list is only made when the first did not hold the host: listing every
        # namespace for every container would make N containers cost N^2.
        me = d.kernel.own()
        batches = [lambda: [me],
                   lambda: [n for n in d.kernel.namespaces() if n.inode not in (me.inode,
                                                                             c_ns.inode)]]
    for make in batches:
        batch = [n for n in make() if n.inode != c_ns.inode]
        for cand, nsid in zip(batch, d.kernel.nsids(c_ns, batch)):
            if nsid is None or nsid != egress.peer_netnsid:
                continue
            snap = d.kernel.read(cand)
            nsids = {c_ns.inode: {nsid: cand.inode}}
            back = d.kernel.nsids(cand, [c_ns])[0]
            if back is not None:
                nsids[cand.inode] = {back: c_ns.inode}
            return cand, snap, nsids
    return None, None, {}


def build(target, destination: dict, kernel: "Kernel") -> PathReport:
    """The path from target toward destination["address"] (or its default route), from
    what kernel answers."""
    d = _Discovery(target, destination["address"], kernel)
    if target.shares_with:
        d.notes.append(f"the container joined the network namespace of container "
                       f"'{target.shares_with}' (network mode container:{target.shares_with})")
    c_snap = kernel.read(target.netns)
    host_mode = target.network_mode == "host" or (
        target.host_netns is None and target.netns.inode == kernel.own().inode
    )
    if host_mode:
        return _host_mode(d, destination, c_snap)

    interfaces = [l for l in c_snap.links if not l.is_loopback]
    if not interfaces:
        return PathReport(
            target=target.to_dict(), destination=destination, mode="none", host_netns=None,
            hops=(), complete=False,
            notes=("the container has no network interface besides lo (network mode none): "
                   "it cannot reach anything",),
        )

    egress = _container_egress(d, c_snap)
    if egress is None:
        return PathReport(target.to_dict(), destination, "bridge", None, (), False,
                          tuple(d.notes), tuple(d.lookups))
    host_ns, h_snap, nsids = _find_host(d, c_snap, egress)
    if h_snap is None:
        hops = (topology.Hop.of("container", egress, c_snap.netns),)
        d.notes.append(
            f"the peer of {egress.name} (ifindex {egress.peer_ifindex}) is in no namespace "
            "netdoctor can open" if egress.peer_netnsid is not None else
            f"{egress.name} ({egress.kind or 'device'}) has no peer in another namespace"
        )
        return PathReport(target.to_dict(), destination, "bridge", None, hops, False,
                          tuple(d.notes), tuple(d.lookups))

    g = topology.build_graph([c_snap, _around_peer(h_snap, egress)], nsids)
    c_node = topology.iface_node(c_snap, egress)
    gw = _container_gateway(d, c_snap)
    hops = [topology.hop_at(g, c_node, "container", via=gw)]
    mode = "bridge"
    peer_node = topology.neighbour_by_rel(g, c_node, "veth-peer")
    lower_node = topology.neighbour_by_rel(g, c_node, "lower-device")
    # The source the container's kernel picks (its lookup answered it), else the first.
    src = next((l.prefsrc for ns, l in d.lookups if ns == target.netns.label and l.prefsrc),
               None) or _primary_address(egress, _family(d.dest))
    if peer_node is not None:
        hops.append(topology.hop_at(g, peer_node, "host-veth"))
        bridge_node = topology.neighbour_by_rel(g, peer_node, "bridge-member")
        if bridge_node is not None and g.nodes[bridge_node]["link"].kind == "openvswitch":
            d.notes.append(f"host veth {hops[-1].name} is a port of Open vSwitch "
                           f"({g.nodes[bridge_node]['link'].name}): netdoctor does not model "
                           f"OVS flows, so the path past it is not followed")
            return PathReport(target.to_dict(), destination, "openvswitch", host_ns.to_dict(),
                              tuple(hops), False, tuple(d.notes), tuple(d.lookups))
        if bridge_node is not None:
            hops.append(topology.hop_at(g, bridge_node, "bridge"))
            ingress = bridge_node
        else:
            d.notes.append(f"host veth {hops[-1].name} is no bridge port: the host routes "
                           f"the container's packets itself (a routed veth)")
            mode = "routed"
            ingress = peer_node
    elif lower_node is not None:
        mode = g.nodes[c_node]["link"].kind
        hops.append(topology.hop_at(g, lower_node, "uplink"))
        return PathReport(target.to_dict(), destination, mode, host_ns.to_dict(), tuple(hops),
                          True, tuple(d.notes), tuple(d.lookups))
    else:
        d.notes.append(f"could not match {egress.name}'s peer in {host_ns.label}")
        return PathReport(target.to_dict(), destination, mode, host_ns.to_dict(), tuple(hops),
                          False, tuple(d.notes), tuple(d.lookups))

    ingress_link = g.nodes[ingress]["link"]
    uplink = _host_egress(d, host_ns, h_snap, ingress_link, src)
    complete, far = False, None
    if uplink is not None:
        link, via = uplink
        if link.is_loopback:
            d.notes.append(f"{d.dest} is an address of the host {host_ns.label} itself: the "
                           f"path ends there")
            complete = True
        else:
            far_hops, far = ([], None)
            bridged_tunnel = _bridged_tunnel(h_snap, link, d.dest) \
                if link.ifindex == ingress_link.ifindex and link.kind == "bridge" else None
            if via is None and _may_lead_to_a_container(link, d.dest):
                far_hops, far = _far_end(d, host_ns, h_snap, link)
            if far is not None:
                if link.ifindex != ingress_link.ifindex:
                    role = "out-bridge" if link.kind == "bridge" else "far-veth"
                    hops.append(topology.Hop.of(role, link, h_snap.netns))
                hops.extend(far_hops)
                complete = True
            elif link.kind == "vxlan":
                hops.append(topology.Hop.of("tunnel", link, h_snap.netns, via=via))
                underlay = _underlay(d, host_ns, h_snap, link, via)
                if underlay is not None:
                    hops.append(underlay)
                    complete = True
            elif link.kind in OTHER_TUNNELS:
                hops.append(topology.Hop.of("tunnel", link, h_snap.netns, via=via))
                remote = link.tunnel.get("remote")  # "any" on Calico's tunl0: per route
                outer = remote if remote and remote not in ("any", "0.0.0.0", "::") else via
                d.notes.append(
                    f"{link.name} is a tunnel ({link.kind}): the packet leaves encapsulated"
                    + (f" toward {outer}" if outer else "") + "; netdoctor follows VXLAN's "
                    "encapsulation only, so the underlay and the far side are not followed"
                    + (f", and {link.name} carries no Ethernet header its captures decode: "
                       f"its silence is no evidence" if link.kind in L3_TUNNELS else ""))
            elif bridged_tunnel is not None:
                # An L2 overlay (Docker's): the bridge forwards the frame to its VXLAN port,
                # which sends it to the VTEP its FDB names for the destination's MAC.
                tunnel = bridged_tunnel
                mode = "overlay"
                hops.append(topology.Hop.of("tunnel", tunnel, h_snap.netns, via=d.dest,
                                            master=link.name))
                underlay = _underlay(d, host_ns, h_snap, tunnel, d.dest)
                if underlay is not None:
                    hops.append(underlay)
                    complete = True
            elif link.ifindex == ingress_link.ifindex and via is not None:
                # Routed back out of the device it came in by: the gateway there is the
                # next hop (its neighbour entry is what the trace asks about).
                hops = [replace(h, via=via) if h.ifindex == link.ifindex and
                        h.netns.get("inode") == h_snap.netns.get("inode") else h for h in hops]
                d.notes.append(f"the host routes {d.dest} via {via} back out of {link.name}, "
                               f"the container network it came from: the path goes on only "
                               f"if {via} answers the host's ARP question there (netdoctor "
                               f"follows it no further)")
            elif link.ifindex == ingress_link.ifindex:
                d.notes.append(f"{d.dest} is on the container network itself, and no "
                               f"namespace behind {link.name} holds it: the host's ARP "
                               f"question for it has nobody to answer")
            else:
                hops.append(topology.Hop.of("uplink", link, h_snap.netns, via=via))
                complete = True
                if src and d.dest:
                    # The reply path, asked the same way: arriving on the uplink from DEST
                    # (NAT undone first, as conntrack does before routing), where does the
                    # host send it? Back by the device the request came in, or not.
                    back = d.kernel.route(host_ns, src, src=d.dest, iif=link.name)
                    d.replies.append((host_ns.label, back, ingress_link.name))
    for hop in hops:
        if hop.state in ("DOWN", "NO-CARRIER"):
            d.notes.append(f"{hop.role} {hop.name} is {hop.state}")
    return PathReport(target.to_dict(), destination, mode, host_ns.to_dict(), tuple(hops),
                      complete and not d.container_unrouted, tuple(d.notes), tuple(d.lookups),
                      far_netns=far, reply_lookups=tuple(d.replies))


def _bridged_tunnel(h_snap: NamespaceSnapshot, bridge: Link, dest: Optional[str]):
    """The VXLAN port of bridge behind which dest's MAC is (the neighbour entry for dest, on
    the port or on the bridge): the port's FDB sends that MAC to a remote VTEP, or the
    bridge's own FDB puts it on that port (whether the port then has a VTEP for it is
    the tunnel's question: _underlay says)."""
    if not dest:
        return None
    for port in h_snap.links:
        if port.master != bridge.ifindex or port.kind != "vxlan":
            continue
        mac = _mac_of(h_snap, dest, port)
        if mac and any(e.dev == port.name and e.mac.lower() == mac.lower()
                       for e in h_snap.fdb):
            return port
    return None


def _mac_of(h_snap: NamespaceSnapshot, address: str, tunnel: Link) -> Optional[str]:
    """address's MAC by the neighbour entry on the tunnel, or, for a bridge's port (Docker
    writes them on the VXLAN port; a bridge may hold them itself), on its bridge."""
    mac = h_snap.neighbour_mac(address, tunnel.name)
    if mac is None and tunnel.master is not None:
        bridge = h_snap.link(ifindex=tunnel.master)
        mac = h_snap.neighbour_mac(address, bridge.name) if bridge is not None else None
    return mac


def _underlay(d: _Discovery, host_ns, h_snap: NamespaceSnapshot, tunnel: Link,
              via: Optional[str]):
    """The underlay hop of a VXLAN tunnel: the next hop's MAC (the host's neighbour entry on
    the tunnel), the FDB entry that sends it to a remote VTEP, and the route to that VTEP
    (in the namespace the tunnel's socket lives in: where it was made, when it was moved
    since, as Docker moves an overlay's into its sandbox). None, with a note saying which
    of them is missing, when the kernel could not send it."""
    nexthop = via or d.dest
    t = tunnel.tunnel
    mac = _mac_of(h_snap, nexthop, tunnel)
    vtep = h_snap.tunnel_destination(tunnel.name, mac) or t.get("remote")
    if vtep is None:
        if mac is None:
            d.notes.append(f"{tunnel.name} has no neighbour entry for {nexthop} (and no FDB "
                           f"default): the kernel cannot tell which VTEP to send it to")
        else:
            d.notes.append(f"{tunnel.name} has no FDB entry for {nexthop}'s MAC {mac}: the "
                           f"kernel drops the packet (NO_TX_TARGET)")
        return None
    under_ns, under_snap = host_ns, h_snap
    if tunnel.peer_netnsid is not None:  # its socket is in another namespace
        under_ns = _namespaces_by_nsid(d, host_ns).get(tunnel.peer_netnsid)
        if under_ns is None:
            d.notes.append(f"{tunnel.name} sends from another namespace (nsid "
                           f"{tunnel.peer_netnsid} of {host_ns.label}) that netdoctor cannot "
                           f"open: the underlay is not followed")
            return None
        under_snap = d.kernel.read(under_ns)
    lookup = d.kernel.route(under_ns, vtep)
    d.lookups.append((under_ns.label, lookup))
    lower = under_snap.link(name=lookup.dev) if lookup.dev else None
    if lower is None:
        d.notes.append(f"{under_ns.label} has no route to the remote VTEP {vtep} "
                       f"({lookup.error})")
        return None
    d.notes.append(f"VXLAN vni {t.get('vni', '?')}, UDP port {t.get('port', '?')}: {nexthop} "
                   f"({mac or 'no neighbour entry'}) is behind the VTEP {vtep}, reached by "
                   f"{lower.name}" + (f" in {under_ns.label}" if under_ns is not host_ns else "")
                   + f"; encapsulation adds {VXLAN_OVERHEAD} bytes")
    return topology.Hop.of("underlay", lower, under_snap.netns, via=vtep)


def tunnel_ids(link: Optional[Link]) -> tuple:
    """(UDP port, VNI) of a VXLAN link: (0, None) when there is none, or it says none."""
    if link is None:
        return 0, None
    vni = str(link.tunnel.get("vni", ""))
    return int(link.tunnel.get("port") or 0), int(vni) if vni.isdigit() else None


def _namespaces_by_nsid(d: _Discovery, viewer) -> dict:
    """{nsid: namespace} of every other namespace netdoctor can open, by the ids viewer
    knows them under (a veth's or a moved tunnel's IFLA_LINK_NETNSID)."""
    others = [n for n in d.kernel.namespaces() if n.inode != viewer.inode]
    return {i: n for n, i in zip(others, d.kernel.nsids(viewer, others)) if i is not None}


def _may_lead_to_a_container(link: Link, dest: Optional[str]) -> bool:
    """A bridge, or a veth the host routes dest into without sharing a network with it (a
    routed container's veth: a /32 route, or proxy ARP), may have the destination behind it.
    A veth whose own network holds dest is a link to a router, as an uplink is."""
    if link.kind == "bridge":
        return True
    if link.kind != "veth" or not dest:
        return False
    try:
        ip = ipaddress.ip_address(dest)
    except ValueError:
        return False
    return not any(a.scope == "global" and a.prefixlen < ip.max_prefixlen
                   and ip in a.interface.network for a in link.addresses
                   if a.family == ("inet" if ip.version == 4 else "inet6"))


def _far_end(d: _Discovery, host_ns, h_snap: NamespaceSnapshot, out: Link) -> tuple:
    """([hops], far namespace dict) past `out`, a bridge or veth the host sends the packet
    into on-link: the port and the interface in another namespace that hold the
    destination's address. A bridge delivers to the port behind which the destination's
    MAC lives: the port whose peer holds the address."""
    target = d.dest
    if out.kind == "veth":
        ports = [out]
    else:
        ports = [l for l in h_snap.links if l.master == out.ifindex and l.kind == "veth"]
    ports = [p for p in ports if p.peer_netnsid is not None and p.peer_ifindex is not None]
    if not ports:
        return [], None
    by_nsid = _namespaces_by_nsid(d, host_ns)
    for port in ports:
        ns = by_nsid.get(port.peer_netnsid)
        if ns is None:
            continue
        snap = d.kernel.read(ns)
        inner = snap.link(ifindex=port.peer_ifindex)
        if inner is None or not any(a.local == target for a in inner.addresses):
            continue
        hops = [] if out.kind == "veth" else [topology.Hop.of("bridge-port", port, h_snap.netns,
                                                             master=out.name)]
        hops.append(topology.Hop.of("destination", inner, snap.netns))
        return hops, snap.netns
    return [], None


def _around_peer(h_snap: NamespaceSnapshot, egress: Link) -> NamespaceSnapshot:
    """The host's links this container's path can touch: its peer and the peer's master.
    A host with thousands of veths would otherwise be graphed once per container."""
    peer = h_snap.link(ifindex=egress.peer_ifindex)
    master = h_snap.link(ifindex=peer.master) if peer is not None and peer.master else None
    # looked up, not filtered out of every link: a thousand containers x a thousand veths
    keep = sorted((l for l in (peer, master) if l is not None),
                  key=lambda l: h_snap.position(l.ifindex))
    return replace(h_snap, links=tuple(keep))


def _container_gateway(d: _Discovery, c_snap: NamespaceSnapshot) -> Optional[str]:
    """The next hop the container's kernel sends to: its lookup's gateway (none when the
    destination is on its link), else its default route's."""
    own = d.target.netns.label
    for ns, lookup in d.lookups:
        if ns == own and lookup.dev:
            return lookup.gateway
    defaults = c_snap.default_routes(_family(d.dest))
    return defaults[0].gateway if defaults else None


def _host_egress(d: _Discovery, host_ns, h_snap: NamespaceSnapshot,
                 ingress: Link, src: Optional[str]) -> Optional[tuple]:
    """(uplink Link, gateway) the host forwards the container's packets out of."""
    if d.dest:
        lookup = None
        if src:
            lookup = d.kernel.route(host_ns, d.dest, src=src, iif=ingress.name)
            d.lookups.append((host_ns.label, lookup))
        if lookup is None or not lookup.dev:
            plain = d.kernel.route(host_ns, d.dest)
            d.lookups.append((host_ns.label, plain))
            # On the ingress bridge's own network the frame is bridged, never forwarded.
            bridged = ingress.kind == "bridge" and plain.dev == ingress.name \
                and not plain.gateway
            if lookup is not None and not bridged:
                d.notes.append(f"the host would not forward {src} -> {d.dest} arriving on "
                               f"{ingress.name}: {lookup.error}")
            lookup = plain
        if not lookup.dev:
            d.notes.append(f"the host has no route to {d.dest} ({lookup.error})")
            return None
        link = h_snap.link(name=lookup.dev)
        return (link, lookup.gateway) if link else None
    defaults = h_snap.default_routes()
    if not defaults or not defaults[0].dev:
        d.notes.append("the host has no default route")
        return None
    link = h_snap.link(name=defaults[0].dev)
    return (link, defaults[0].gateway) if link else None


def _host_mode(d: _Discovery, destination: dict, snap: NamespaceSnapshot) -> PathReport:
    t = d.target
    d.notes.append("the container shares the host's network namespace (network mode host): "
                   "the path starts at the host NIC")
    link, via = None, None
    if d.dest:
        lookup = d.kernel.route(t.netns, d.dest)
        d.lookups.append((t.netns.label, lookup))
        if lookup.dev:
            link, via = snap.link(name=lookup.dev), lookup.gateway
        else:
            d.notes.append(f"the host has no route to {d.dest} ({lookup.error})")
    else:
        defaults = snap.default_routes()
        if defaults and defaults[0].dev:
            link, via = snap.link(name=defaults[0].dev), defaults[0].gateway
        else:
            d.notes.append("the host has no default route")
    hops = (topology.Hop.of("uplink", link, snap.netns, via=via),) if link else ()
    return PathReport(t.to_dict(), destination, "host", t.netns.to_dict(), hops, bool(hops),
                      tuple(d.notes), tuple(d.lookups))

"""The path graph: namespaces, interfaces and the links between them (pure; no I/O).

Nodes are ("netns", inode) and ("if", inode, ifindex). Edges carry a `rel`:
  in-netns       interface -> its namespace
  veth-peer      a veth -> its peer (across namespaces through IFLA_LINK_NETNSID)
  lower-device   a macvlan/ipvlan -> its parent device
  bridge-member  a port -> its master bridge
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Optional

from ..facts.namespace import Link, NamespaceSnapshot


def iface_node(snap: NamespaceSnapshot, link: Link) -> tuple:
    return ("if", snap.netns["inode"], link.ifindex)


class PathGraph:
    """Nodes with their data, and directed edges that each carry a `rel`.

    The graphs built here have one node per interface of the container and of the host links
    around its peer: a handful. (networkx did this before; importing it cost 0.2 s of every
    run, for no algorithm the walk needs.)"""

    def __init__(self):
        self.nodes: dict = {}
        self._out: dict = {}

    def add_node(self, node, **data) -> None:
        self.nodes.setdefault(node, {}).update(data)
        self._out.setdefault(node, [])

    def add_edge(self, src, dst, rel: str) -> None:
        for n in (src, dst):
            self.add_node(n)
        self._out[src].append((dst, rel))

    def out_edges(self, node) -> list:
        """(dst, rel) for each edge leaving node, in the order they were added."""
        return list(self._out.get(node, ()))

    def edges(self) -> list:
        return [(src, dst, rel) for src, out in self._out.items() for dst, rel in out]


def build_graph(snapshots: list, nsids: dict) -> PathGraph:
    """Graph of every link in `snapshots`.

    nsids maps a viewer namespace inode to {nsid: inode of the namespace it names}, the
    translation IFLA_LINK_NETNSID needs to find a veth's peer in another namespace.
    """
    g = PathGraph()
    by_inode = {s.netns["inode"]: s for s in snapshots}
    for snap in snapshots:
        ns_node = ("netns", snap.netns["inode"])
        g.add_node(ns_node, label=snap.netns.get("name") or f"net:[{snap.netns['inode']}]")
        for link in snap.links:
            node = iface_node(snap, link)
            g.add_node(node, link=link, netns=snap.netns)
            g.add_edge(node, ns_node, rel="in-netns")
    for snap in snapshots:
        inode = snap.netns["inode"]
        for link in snap.links:
            node = iface_node(snap, link)
            if link.master is not None and snap.link(ifindex=link.master):
                g.add_edge(node, ("if", inode, link.master), rel="bridge-member")
            if link.peer_ifindex is None:
                continue
            if link.peer_netnsid is None:
                peer_inode = inode
            else:
                peer_inode = nsids.get(inode, {}).get(link.peer_netnsid)
            peer_snap = by_inode.get(peer_inode)
            if peer_snap is None:
                continue
            peer = peer_snap.link(ifindex=link.peer_ifindex)
            if peer is None:
                continue
            if link.kind == "veth" and peer.kind == "veth":
                # A veth pair names each other; require both directions to agree, the
                # namespace too where we know how the peer's namespace names ours.
                if peer.peer_ifindex != link.ifindex:
                    continue
                if peer.peer_netnsid is not None and peer_inode in nsids:
                    if nsids[peer_inode].get(peer.peer_netnsid) != inode:
                        continue
                g.add_edge(node, iface_node(peer_snap, peer), rel="veth-peer")
            elif link.kind in ("macvlan", "macvtap", "ipvlan", "vlan"):
                g.add_edge(node, iface_node(peer_snap, peer), rel="lower-device")
    return g


def neighbour_by_rel(g, node, rel: str) -> Optional[tuple]:
    for dst, edge_rel in g.out_edges(node):
        if edge_rel == rel:
            return dst
    return None


@dataclass(frozen=True)
class Hop:
    role: str
    name: str
    netns: dict
    ifindex: int
    kind: Optional[str]
    mac: Optional[str]
    addresses: tuple
    mtu: int
    state: str
    via: Optional[str] = None  # next-hop gateway the kernel routes to from here
    master: Optional[str] = None

    @classmethod
    def of(cls, role: str, link: Link, netns_dict: dict, via: Optional[str] = None,
           master: Optional[str] = None) -> "Hop":
        return cls(
            role=role,
            name=link.name,
            netns=netns_dict,
            ifindex=link.ifindex,
            kind=link.kind,
            mac=link.mac,
            addresses=tuple(str(a) for a in link.addresses if a.scope != "link"),
            mtu=link.mtu,
            state=link.state,
            via=via,
            master=master,
        )

    def to_dict(self) -> dict:
        # every field is a scalar or a tuple of text: no deep copy (asdict) needed
        d = {name: getattr(self, name) for name in _HOP_FIELDS}
        d["addresses"] = list(self.addresses)
        d["netns"] = self.netns.get("name") or f"net:[{self.netns.get('inode')}]"
        d["netns_inode"] = self.netns.get("inode")
        d["netns_path"] = self.netns.get("path")
        return d


_HOP_FIELDS = tuple(f.name for f in fields(Hop))


def hop_at(g, node, role: str, via: Optional[str] = None) -> Hop:
    data = g.nodes[node]
    link: Link = data["link"]
    master = None
    m = neighbour_by_rel(g, node, "bridge-member")
    if m is not None:
        master = g.nodes[m]["link"].name
    return Hop.of(role, link, data["netns"], via=via, master=master)

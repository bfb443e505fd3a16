"""`netdoctor map`: a host's container network as a graph, from a snapshot (pure).

Nodes are the interfaces the containers' paths cross (each container's own interface, host
veths, bridges, macvlan parents, tunnels, uplinks), one node per (namespace, ifindex), so
that the paths of all containers merge where they share a device. Over the graph,
networkx answers what a map is for: which networks a container's traffic can reach
(the host's FORWARD rules judged for each pair of networks), and so the isolation groups.
networkx is imported here only, by the `map` command.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .rules import Packet, evaluate

# How a hop reaches the next, by the next hop's role.
LINKS = {"host-veth": "veth pair", "bridge": "bridge port", "uplink": "routed",
         "tunnel": "routed", "underlay": "encapsulated", "out-bridge": "routed",
         "bridge-port": "bridge port", "far-veth": "veth pair", "destination": "veth pair"}


@dataclass
class NetMap:
    graph: object  # networkx.DiGraph: node id -> attributes; edge -> {"how"}
    networks: list = field(default_factory=list)  # {"id", "device", "containers", "subnet"}
    reach: list = field(default_factory=list)  # {"from", "to", "verdict", "rule"}
    groups: list = field(default_factory=list)  # isolation groups: lists of network ids
    notes: list = field(default_factory=list)

    def to_dict(self) -> dict:
        g = self.graph
        return {"schema": "netdoctor.map/1",
                "nodes": [dict(id=n, **g.nodes[n]) for n in g.nodes],
                "edges": [{"from": a, "to": b, **g.edges[a, b]} for a, b in g.edges],
                "networks": self.networks, "reach": self.reach,
                "isolation_groups": self.groups, "notes": self.notes}


def node_id(hop: dict) -> str:
    return f"{hop.get('netns_inode')}/{hop.get('ifindex')}"


def build(snapshot, findings: list = ()) -> NetMap:
    import networkx as nx

    g = nx.DiGraph()
    for c in snapshot.containers:
        hops = [h for h in c.path.get("hops", ()) if h.get("direction", "request") == "request"
                and h["role"] in ("container", "host-veth", "bridge", "uplink", "tunnel",
                                  "underlay", "out-bridge")]
        previous = None
        for h in hops:
            nid = node_id(h)
            kind = h["role"] if h["role"] != "container" else "container"
            if nid not in g:
                g.add_node(nid, role=kind, name=h["name"], netns=h.get("netns"),
                           device_kind=h.get("kind"), addresses=list(h.get("addresses", ())),
                           state=h.get("state"), containers=[], findings=[])
            if h["role"] == "container":
                g.nodes[nid]["containers"].append(c.label)
                g.nodes[nid]["mode"] = c.path.get("mode")
            if previous is not None and not g.has_edge(previous, nid):
                g.add_edge(previous, nid, how=LINKS.get(h["role"], "routed"))
            previous = nid
    m = NetMap(g)
    _networks(m, snapshot)
    _reach(m, snapshot)
    _problems(m, snapshot, findings)
    return m


def _networks(m: NetMap, snapshot) -> None:
    """A network is the device its containers' traffic meets first on the host: their
    bridge, a routed veth's own veth, a macvlan parent."""
    g = m.graph
    for c in snapshot.containers:
        hops = c.path.get("hops", ())
        first = next((h for h in hops if h["role"] == "bridge"), None) \
            or next((h for h in hops if h["role"] in ("host-veth", "uplink")), None)
        if first is None:
            continue
        nid = node_id(first)
        net = next((n for n in m.networks if n["id"] == nid), None)
        if net is None:
            net = {"id": nid, "device": first["name"], "netns": first.get("netns"),
                   "subnet": (first.get("addresses") or [None])[0], "containers": [],
                   "mode": c.path.get("mode")}
            m.networks.append(net)
        net["containers"].append(c.label)
        g.nodes[nid]["network"] = True


def _address(c, family: str = "inet"):
    hop = next((h for h in c.path.get("hops", ()) if h["role"] == "container"), None)
    for a in (hop or {}).get("addresses", ()):
        if (":" in a) == (family == "inet6"):
            return a.split("/")[0]
    return None


def _reach(m: NetMap, snapshot) -> None:
    """For each ordered pair of networks on one host: what the host's FORWARD rules do to a
    new connection from the first container of one to the first of the other. Networks
    whose containers reach each other both ways form an isolation group."""
    import networkx as nx

    by_host = {}
    for net in m.networks:
        first = next(c for c in snapshot.containers if c.label == net["containers"][0])
        by_host.setdefault(first.host_inode, []).append((net, first))
    reach = nx.DiGraph()
    for inode, nets in by_host.items():
        host = snapshot.host(inode)
        for net, _ in nets:
            reach.add_node(net["id"])
        if host is None or len(nets) < 2:
            continue
        for a, ca in nets:
            for b, cb in nets:
                if a is b:
                    continue
                src, dst = _address(ca), _address(cb)
                if not (src and dst):
                    continue
                out = evaluate(host.ruleset, "forward",
                               Packet(src, dst, a["device"], b["device"], "tcp", 80))
                allowed = out.verdict in ("accept", "none")
                m.reach.append({"from": a["id"], "to": b["id"], "verdict": out.verdict,
                                "rule": out.describe() if out.rule or out.chain else None,
                                "judged_for": f"{ca.label} -> {cb.label}"})
                if allowed:
                    reach.add_edge(a["id"], b["id"])
    m.groups = sorted(sorted(group) for group in nx.strongly_connected_components(reach))
    if any(len(v) > 1 for v in by_host.values()):
        m.notes.append("reach between networks is the host's FORWARD rules judged for a new "
                       "TCP connection from each network's first container to the other's; "
                       "the destination's own firewall is not read")


def _named_hop(hops: list, message: str):
    """The hop whose device the finding's message names (with its namespace, where two
    devices share a name), or None."""
    import re

    named = [h for h in hops if re.search(rf"(?<![\w.-]){re.escape(h['name'])}(?![\w-])",
                                          message)]
    if len(named) > 1:
        named = [h for h in named if (h.get("netns") or "") in message] or named
    return named[0] if named else None


def _problems(m: NetMap, snapshot, findings: list) -> None:
    """Each finding drawn on the device it is about: the one its message names, else the
    container's own interface (a container's finding) or its network's device (a host's)."""
    g = m.graph
    for f in findings:
        entry = f"{f.severity} {f.id}"
        c = next((c for c in snapshot.containers if c.label == f.subject), None)
        if c is None:  # a host finding: on the host's networks, or the device it names
            nets = [n for n in m.networks if f.subject == f"host {n['netns']}"]
            hops = [h for cc in snapshot.containers for h in cc.path.get("hops", ())
                    if f.subject == f"host {h.get('netns')}"]
            hop = _named_hop(hops, f.message)
            targets = [node_id(hop)] if hop is not None else [n["id"] for n in nets]
        else:
            hops = c.path.get("hops", ())
            hop = _named_hop(hops, f.message) or next(
                (h for h in hops if h["role"] == "container"), None)
            targets = [node_id(hop)] if hop is not None else []
        for nid in targets:
            if nid in g and entry not in g.nodes[nid]["findings"]:
                g.nodes[nid]["findings"].append(entry)

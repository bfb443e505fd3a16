"""The path graph, built from a recorded snapshot of the lab's host and container."""

import json

from netdoctor.diagnose.reason import topology
from netdoctor.diagnose.facts.namespace import NamespaceSnapshot

import recorded


def load():
    raw = recorded.document("lab-snapshot.json")
    c = NamespaceSnapshot.from_dict(raw["ndlab-test"])
    h = NamespaceSnapshot.from_dict(raw["ndlab-host"])
    nsids = {int(k): {int(n): i for n, i in v.items()} for k, v in raw["nsids"].items()}
    return c, h, nsids


def test_snapshot_round_trips_through_json():
    c, h, _ = load()
    for ns in (c, h):
        assert NamespaceSnapshot.from_dict(json.loads(json.dumps(ns.to_dict()))) == ns


def test_container_eth0_leads_to_bridge():
    c, h, nsids = load()
    g = topology.build_graph([c, h], nsids)
    eth0 = topology.iface_node(c, c.link(name="eth0"))
    peer = topology.neighbour_by_rel(g, eth0, "veth-peer")
    assert peer is not None and g.nodes[peer]["link"].name == "veth-test"
    bridge = topology.neighbour_by_rel(g, peer, "bridge-member")
    assert g.nodes[bridge]["link"].name == "ndbr0"
    hop = topology.hop_at(g, peer, "host-veth")
    assert hop.master == "ndbr0" and hop.to_dict()["netns"] == "ndlab-host"


def test_without_the_namespace_id_no_peer_is_guessed():
    # ifindex numbers repeat across namespaces; without knowing which namespace the
    # container's IFLA_LINK_NETNSID names, the graph must not link anything.
    c, h, _ = load()
    g = topology.build_graph([c, h], {})
    eth0 = topology.iface_node(c, c.link(name="eth0"))
    assert topology.neighbour_by_rel(g, eth0, "veth-peer") is None


def test_veth_peer_must_point_back():
    c, h, nsids = load()
    eth0 = c.link(name="eth0")
    other = [l for l in h.links if l.kind == "veth" and l.ifindex != eth0.peer_ifindex][0]
    # Rewire the container to name a veth whose own peer is someone else.
    from dataclasses import replace
    links = tuple(replace(l, peer_ifindex=other.ifindex) if l.name == "eth0" else l for l in c.links)
    g = topology.build_graph([replace(c, links=links), h], nsids)
    node = topology.iface_node(c, eth0)
    assert topology.neighbour_by_rel(g, node, "veth-peer") is None


def test_lab_graph_edges():
    # The recorded lab: eth0 and veth-test name each other, veth-test is a port of ndbr0, and
    # every interface belongs to its namespace. Nothing else is linked.
    c, h, nsids = load()
    g = topology.build_graph([c, h], nsids)

    def name(node):
        data = g.nodes[node]
        return data["link"].name if "link" in data else data["label"]

    edges = {(name(s), name(d), rel) for s, d, rel in g.edges() if rel != "in-netns"}
    # The lab's wiring (diagnose/lab/layout.py), not a count taken from the same file.
    assert edges == {("eth0", "veth-test", "veth-peer"), ("veth-test", "eth0", "veth-peer"),
                     ("veth-test", "ndbr0", "bridge-member"),
                     ("veth-web", "ndbr0", "bridge-member")}
    in_netns = {(name(s), name(d)) for s, d, rel in g.edges() if rel == "in-netns"}
    assert {(i, ns) for i, ns in in_netns if i in ("eth0", "veth-test", "ndbr0")} >= {
        ("veth-test", "ndlab-host"), ("ndbr0", "ndlab-host")}

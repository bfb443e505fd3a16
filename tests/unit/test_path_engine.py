"""The path engine on recorded facts alone: no root, no namespace opened. The kernel's
answers come from the recorded namespaces (routes by longest prefix, the recorded ids)."""

import ipaddress

from netdoctor.diagnose.facts.namespace import NamespaceSnapshot, RouteLookup
from netdoctor.diagnose.host.netns import Netns
from netdoctor.diagnose.reason import path as engine
from netdoctor.diagnose.targets import Target

import recorded


class RecordedKernel:
    """A Kernel (reason/path.py) that answers from tests/data/lab-snapshot.json."""

    def __init__(self, doc, forwarding=True):
        self.spaces = {d["netns"]["inode"]: NamespaceSnapshot.from_dict(d)
                       for k, d in doc.items() if k != "nsids"}
        self.ids = {int(v): {int(i): n for i, n in m.items()} for v, m in doc["nsids"].items()}
        self.forwarding = forwarding
        self.asked = []

    def netns(self, name):
        snap = next(s for s in self.spaces.values() if s.netns["name"] == name)
        return Netns(snap.netns["path"], snap.netns["inode"], name)

    def read(self, ns):
        return self.spaces[ns.inode]

    def route(self, ns, dst, src=None, iif=None):
        self.asked.append((ns.name, dst, src, iif))
        if iif and not self.forwarding:
            return RouteLookup(dst=dst, dev=None, error="Network is unreachable", query="q")
        addr = ipaddress.ip_address(dst)
        best = max((r for r in self.spaces[ns.inode].routes if r.table == "main"
                    and r.family == "inet" and addr in r.network),
                   key=lambda r: r.network.prefixlen, default=None)
        if best is None:
            return RouteLookup(dst=dst, dev=None, error="Network is unreachable", query="q")
        return RouteLookup(dst=dst, dev=best.dev, gateway=best.gateway, query="q")

    def nsids(self, viewer, others):
        mine = self.ids.get(viewer.inode, {})
        return [next((i for i, inode in mine.items() if inode == o.inode), None) for o in others]

    def own(self):
        return Netns("/proc/1/ns/net", 1, None)  # neither of the recorded namespaces

    def namespaces(self):
        return [self.netns(s.netns["name"]) for s in self.spaces.values()]


def lab_target(kernel):
    return Target(ref="lab:test", kind="lab", name="test", netns=kernel.netns("ndlab-test"))


def test_the_lab_path_from_recorded_facts():
    kernel = RecordedKernel(recorded.document("lab-snapshot.json"))
    report = engine.build(lab_target(kernel), {"query": "203.0.113.80",
                                               "address": "203.0.113.80"}, kernel)
    assert [(h.role, h.name) for h in report.hops] == [
        ("container", "eth0"), ("host-veth", "veth-test"), ("bridge", "ndbr0"),
        ("uplink", "eth0")]
    assert report.complete and report.mode == "bridge"
    assert report.hops[0].via == "172.29.0.1" and report.hops[-1].via == "198.51.100.1"
    # The host's forwarding decision was asked as the container's packet meets it.
    assert ("ndlab-host", "203.0.113.80", "172.29.0.2", "ndbr0") in kernel.asked


def test_a_host_that_refuses_to_forward_is_a_note_and_the_plain_route_is_shown():
    kernel = RecordedKernel(recorded.document("lab-snapshot.json"), forwarding=False)
    report = engine.build(lab_target(kernel), {"query": "203.0.113.80",
                                               "address": "203.0.113.80"}, kernel)
    assert any("would not forward 172.29.0.2 -> 203.0.113.80" in n for n in report.notes)
    assert report.hops[-1].name == "eth0"


def test_a_container_on_the_same_bridge_is_followed_to_its_own_interface():
    kernel = RecordedKernel(recorded.document("lab-snapshot.json"))
    report = engine.build(lab_target(kernel), {"query": "172.29.0.3",
                                               "address": "172.29.0.3"}, kernel)
    assert [(h.role, h.name, h.netns["name"]) for h in report.hops] == [
        ("container", "eth0", "ndlab-test"), ("host-veth", "veth-test", "ndlab-host"),
        ("bridge", "ndbr0", "ndlab-host"), ("bridge-port", "veth-web", "ndlab-host"),
        ("destination", "eth0", "ndlab-web")]
    assert report.complete and report.far_netns["name"] == "ndlab-web"
    d = report.to_dict()
    assert d["schema"] == "netdoctor.path/2" and d["direction"] == "outbound"
    assert all(h["role"] in engine.ROLES for h in d["hops"])


def test_an_address_nobody_holds_on_the_bridge_ends_the_path_there_incomplete():
    kernel = RecordedKernel(recorded.document("lab-snapshot.json"))
    report = engine.build(lab_target(kernel), {"query": "172.29.0.99",
                                               "address": "172.29.0.99"}, kernel)
    assert [h.role for h in report.hops] == ["container", "host-veth", "bridge"]
    assert not report.complete
    assert any("no namespace behind ndbr0 holds it" in n for n in report.notes)


def test_the_uplink_is_not_mistaken_for_a_routed_container_veth():
    """The lab's uplink is a veth too; its own network holds the upstream router."""
    kernel = RecordedKernel(recorded.document("lab-snapshot.json"))
    report = engine.build(lab_target(kernel), {"query": "198.51.100.1",
                                               "address": "198.51.100.1"}, kernel)
    assert [h.role for h in report.hops][-1] == "uplink" and report.far_netns is None


def test_an_open_vswitch_port_ends_the_path_with_a_note_not_a_guess():
    from dataclasses import replace

    kernel = RecordedKernel(recorded.document("lab-snapshot.json"))
    host = kernel.netns("ndlab-host")
    snap = kernel.spaces[host.inode]
    kernel.spaces[host.inode] = replace(snap, links=tuple(
        replace(l, kind="openvswitch", name="ovs-system") if l.name == "ndbr0" else l
        for l in snap.links))
    report = engine.build(lab_target(kernel), {"query": "203.0.113.80",
                                               "address": "203.0.113.80"}, kernel)
    assert [h.role for h in report.hops] == ["container", "host-veth"]
    assert not report.complete and report.mode == "openvswitch"
    assert any("Open vSwitch (ovs-system)" in n for n in report.notes)


def test_a_tunnel_other_than_vxlan_is_a_hop_whose_far_side_is_not_followed():
    """Calico's IPIP (tunl0), GRE, WireGuard: the host routes the packet into a tunnel
    netdoctor does not decapsulate. It is the path's tunnel hop (never an uplink, whose
    silence or untranslated source would be read as the upstream's), the path says what is
    not followed, and a trace treats an L3 tunnel's capture as blind."""
    from dataclasses import replace

    from netdoctor.diagnose.facts.namespace import Route
    from netdoctor.diagnose.pipeline.trace import _observes
    from netdoctor.diagnose.reason import evidence as E

    kernel = RecordedKernel(recorded.document("lab-snapshot.json"))
    host = kernel.netns("ndlab-host")
    snap = kernel.spaces[host.inode]
    uplink = snap.link(name="eth0")
    tunl0 = replace(uplink, name="tunl0", ifindex=uplink.ifindex + 50, kind="ipip",
                    addresses=(), tunnel={"remote": "any"}, peer_netnsid=None,
                    peer_ifindex=None)
    kernel.spaces[host.inode] = replace(snap, links=snap.links + (tunl0,), routes=snap.routes
                                        + (Route(dst="10.244.1.0/26", dev="tunl0",
                                                 gateway="198.51.100.7", scope="global"),))
    report = engine.build(lab_target(kernel), {"query": "10.244.1.2",
                                               "address": "10.244.1.2"}, kernel)
    hops = [h.to_dict() for h in report.hops]
    assert [h["role"] for h in hops] == ["container", "host-veth", "bridge", "tunnel"]
    assert not report.complete
    assert any("tunl0 is a tunnel (ipip)" in n and "not followed" in n and "198.51.100.7" in n
               for n in report.notes), report.notes
    assert _observes(hops, 3) == E.NOT_DECODED and _observes(hops, 2) == "all"

"""A macvlan child of the lab host's uplink, in the uplink's own subnet (how Docker's macvlan
driver wires it): its parent is no ip-conflict, no fix touches the uplink, and a trace to the
internet is reachable."""

import pytest

from sandbox import netdoctor_json, sh

NS = "ndt-macvlan"


@pytest.fixture
def macvlan_child(lab):
    sh("ip", "netns", "add", NS)
    try:
        sh("ip", "-n", "ndlab-host", "link", "add", "mv0", "link", "eth0", "type", "macvlan",
           "mode", "bridge")
        sh("ip", "-n", "ndlab-host", "link", "set", "mv0", "netns", NS)
        sh("ip", "-n", NS, "addr", "add", "198.51.100.7/24", "dev", "mv0")
        sh("ip", "-n", NS, "link", "set", "mv0", "up")
        sh("ip", "-n", NS, "link", "set", "lo", "up")
        sh("ip", "-n", NS, "route", "add", "default", "via", "198.51.100.1")
        yield f"netns:{NS}"
    finally:
        sh("ip", "netns", "del", NS, check=False)


def test_a_macvlan_child_is_checked_and_traced_without_a_false_conflict(macvlan_child):
    rc, path = netdoctor_json("path", macvlan_child, "203.0.113.80")
    assert rc == 0 and path["mode"] == "macvlan", path
    assert [(h["role"], h["name"]) for h in path["hops"]] == [("container", "mv0"),
                                                             ("uplink", "eth0")]
    rc, checks = netdoctor_json("checks", macvlan_child, "--no-dns-probe")
    assert [f["id"] for f in checks["findings"]] == [], checks["findings"]
    assert rc == 0
    rc, trace = netdoctor_json("trace", macvlan_child, "203.0.113.80")
    assert rc == 0 and trace["verdict"]["reachable"] is True, trace["verdict"]
    assert not [f for f in trace["findings"] if f["id"] == "ip-conflict"]
    for f in checks["findings"] + trace["findings"]:
        assert "dev eth0" not in f["fix"] or "addr del" not in f["fix"], f


def test_a_macvlan_childs_gateway_pinned_to_a_wrong_mac_is_found_by_asking(macvlan_child):
    """The child's static entry for its gateway names a MAC the router does not have, and
    the host had learnt nothing from the router to compare with: the trace blamed the
    network beyond the host. netdoctor asks ARP once from the child: the router answers
    from another MAC, and deleting the entry, as printed, heals."""
    sh("ip", "-n", "ndlab-host", "neigh", "flush", "dev", "eth0")
    sh("ip", "-n", NS, "neigh", "replace", "198.51.100.1", "lladdr", "02:00:00:00:00:99",
       "dev", "mv0", "nud", "permanent")
    rc, trace = netdoctor_json("trace", macvlan_child, "203.0.113.80")
    assert rc == 1 and trace["verdict"]["cause"] == "neighbour-failed", trace["verdict"]
    f = next(f for f in trace["findings"] if f["id"] == "neighbour-failed")
    assert "answered netdoctor's ARP request" in f["message"], f
    sh("sh", "-c", f["fix"])
    rc, trace = netdoctor_json("trace", macvlan_child, "203.0.113.80")
    assert rc == 0 and trace["verdict"]["reachable"], (f["fix"], trace["verdict"])

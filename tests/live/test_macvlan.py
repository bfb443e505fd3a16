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

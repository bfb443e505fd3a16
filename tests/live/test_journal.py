"""The decision journal: the kernel's own routing and neighbour decisions for the probe, read
from tracefs, hop by hop; a decision that leaves by another device than the path the facts
predicted is reported as a divergence."""

import pytest

from sandbox import netdoctor, netdoctor_json, sh

pytestmark = [pytest.mark.live]
HOST = "ndlab-host"


def decisions(doc, hop=None, kind=None):
    return [e for e in doc["evidence"]["journal"]
            if (hop is None or e["hop"] == hop) and (kind is None or e["kind"] == kind)]


def test_a_healthy_trace_journals_each_routing_decision(lab):
    rc, doc = netdoctor_json("trace", "lab:test", "203.0.113.80")
    assert rc == 0
    (container,) = decisions(doc, "container", "route")
    assert container["dev"] == "eth0" and container["gateway"] == "172.29.0.1"
    (host,) = decisions(doc, "bridge", "route")
    assert host["said"] == ("table main iif ndbr0: 172.29.0.2 -> 203.0.113.80 ==> dev eth0 "
                            "via 198.51.100.1")
    (back,) = decisions(doc, "uplink", "route")
    assert back["direction"] == "reply" and back["dev"] == "ndbr0"
    assert doc["evidence"]["divergences"] == []
    text = netdoctor("trace", "lab:test", "203.0.113.80").stdout
    assert "kernel decisions (tracefs):" in text and "DIVERGES" not in text


def test_policy_routing_by_mark_is_a_divergence_from_the_facts(lab, healed):
    """A mark set in mangle PREROUTING sends the packet to another table: `ip route get`
    (the facts) cannot know, the kernel's decision shows it."""
    sh("ip", "netns", "exec", HOST, "iptables", "-t", "mangle", "-A", "PREROUTING", "-s",
       "172.29.0.2", "-j", "MARK", "--set-mark", "7")
    sh("ip", "-n", HOST, "rule", "add", "fwmark", "7", "table", "77")
    sh("ip", "-n", HOST, "route", "add", "203.0.113.0/24", "dev", "ndbr0", "table", "77")
    try:
        rc, doc = netdoctor_json("trace", "lab:test", "203.0.113.80")
        assert rc == 1
        assert [h["name"] for h in doc["hops"]][-1] == "eth0"  # what the facts predicted
        routed = decisions(doc, "bridge", "route")
        assert routed and routed[0]["dev"] == "ndbr0" and "table 77" in routed[0]["said"]
        (diverged,) = doc["evidence"]["divergences"]
        assert "out of ndbr0" in diverged and "leaves by eth0" in diverged
        assert diverged in doc["verdict"]["explanation"], doc["verdict"]
        assert doc["verdict"]["cause"] == "path-diverged", doc["verdict"]
    finally:
        sh("ip", "-n", HOST, "rule", "del", "fwmark", "7", "table", "77", check=False)
        sh("ip", "-n", HOST, "route", "flush", "table", "77", check=False)


def test_a_neighbour_that_fails_is_journalled(lab, healed):
    sh("ip", "-n", "ndlab-inet", "addr", "flush", "dev", "wan0")
    sh("ip", "-n", HOST, "neigh", "flush", "dev", "eth0")
    rc, doc = netdoctor_json("trace", "lab:test", "203.0.113.80", "--timeout", "3")
    assert rc == 1 and doc["verdict"]["cause"] == "neighbour-failed", doc["verdict"]
    states = [e.get("state") for e in decisions(doc, "uplink", "neighbour")]
    assert "incomplete" in states, decisions(doc)

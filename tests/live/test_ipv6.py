"""IPv6 parity on the dual-stack lab: a unique-local container network behind NAT66 reaching
the fake internet's 2001:db8::/32, traced with ICMPv6 and TCP over IPv6, its faults named;
an IPv4-only container asked for an IPv6 address gets a clear answer."""

import pytest

from sandbox import netdoctor, netdoctor_json, sh

pytestmark = [pytest.mark.live]
WEB6 = "2001:db8:80::80"


def test_healthy_dual_stack_icmpv6_and_tcp(lab):
    rc, doc = netdoctor_json("trace", "lab:test", WEB6)
    assert rc == 0 and doc["verdict"]["reachable"], doc["verdict"]
    up = next(h for h in doc["hops"] if h["role"] == "uplink")
    # NAT66: the container's unique-local source leaves as the host's address.
    assert up["addresses_seen"]["request"] == f"2001:db8:1::2 -> {WEB6}", up
    assert doc["hops"][0]["addresses_seen"]["request"] == f"fd00:29::2 -> {WEB6}"
    assert doc["pmtu"]["answered"] is True
    # TCP over IPv6: the server answers (its HTTP server listens on IPv4 only: a RST from
    # it, seen on the uplink, is an answer from the far end all the same).
    rc, doc = netdoctor_json("trace", "lab:test", f"[{WEB6}]:80")
    assert rc == 0 and doc["probe"]["outcome"] in ("reply", "refused"), doc["probe"]
    assert next(h for h in doc["hops"] if h["role"] == "uplink")["reply_seen"] >= 1


@pytest.mark.parametrize("fault, cause, stopped", [
    ("ipv6-forward-off", "ip-forward-disabled", "bridge"),
    ("nat66-missing", "nat-missing", "uplink"),
    # Never sent: the container has no IPv6 source at all.
    ("ipv6-disabled", "container-ipv6-disabled", None),
    # Sent from the link-local address (the only one left), which the host never forwards.
    ("dad-failed", "ipv6-dad-failed", "bridge"),
    ("ra-ignored", "ipv6-ra-ignored", "bridge"),
])
def test_ipv6_faults(lab, healed, fault, cause, stopped):
    assert netdoctor("lab", "break", fault).returncode == 0
    rc, doc = netdoctor_json("trace", "lab:test", WEB6)
    v = doc["verdict"]
    assert rc == 1 and v["cause"] == cause and v["stopped_at"] == stopped, v
    if fault == "nat66-missing":
        f = next(f for f in doc["findings"] if f["id"] == "nat-missing")
        assert "ip6tables -t nat -A POSTROUTING -s fd00:29::/64" in f["fix"], f["fix"]


def test_an_unanswered_neighbour_solicitation_is_seen(lab, healed):
    sh("ip", "-n", "ndlab-inet", "-6", "addr", "flush", "dev", "wan0", "scope", "global")
    sh("ip", "-n", "ndlab-host", "-6", "neigh", "flush", "dev", "eth0")
    rc, doc = netdoctor_json("trace", "lab:test", WEB6, "--timeout", "3")
    assert rc == 1 and doc["verdict"]["cause"] == "neighbour-failed", doc["verdict"]
    up = next(h for h in doc["hops"] if h["role"] == "uplink")
    assert "2001:db8:1::1" in up["arp_unanswered"], up


def test_an_ipv4_only_container_asked_for_ipv6(lab, healed):
    """A verdict, not a crash: the container's network has no IPv6."""
    sh("ip", "-n", "ndlab-test", "-6", "addr", "flush", "dev", "eth0", "scope", "global")
    rc, doc = netdoctor_json("trace", "lab:test", WEB6)
    assert rc == 1 and doc["verdict"]["cause"] == "container-no-address", doc["verdict"]
    f = next(f for f in doc["findings"] if f["id"] == "container-no-address")
    assert "no global IPv6 address" in f["message"]
    assert not {"container-wrong-gateway", "container-no-default-route"} & {
        f["id"] for f in doc["findings"]}

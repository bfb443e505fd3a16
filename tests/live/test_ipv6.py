"""IPv6 parity on the dual-stack lab: a unique-local container network behind NAT66 reaching
the fake internet's 2001:db8::/32, traced with ICMPv6 and TCP over IPv6, its faults named;
an IPv4-only container asked for an IPv6 address gets a clear answer."""

import time

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
    # The upstream's neighbour solicitation for the container's own address is the evidence.
    ("no-route-back", "no-route-back", "uplink"),
])
def test_ipv6_faults(lab, healed, fault, cause, stopped):
    assert netdoctor("lab", "break", fault).returncode == 0
    rc, doc = netdoctor_json("trace", "lab:test", WEB6)
    v = doc["verdict"]
    assert rc == 1 and v["cause"] == cause and v["stopped_at"] == stopped, v
    found = {f["id"]: f for f in doc["findings"]}
    if fault == "ipv6-forward-off":
        # The forwarding lookup's refusal is forwarding's, not a policy's (host-no-route).
        assert "host-no-route" not in found, doc["findings"]
    if fault == "ra-ignored":
        # The expired default route is the RA's: no route is true, and its consequence.
        assert found["host-no-route"]["evidence"]["likely_consequence_of"] == \
            ["ipv6-ra-ignored"], found["host-no-route"]
    if fault == "nat66-missing":
        f = next(f for f in doc["findings"] if f["id"] == "nat-missing")
        assert "ip6tables -t nat -I POSTROUTING -s fd00:29::/64" in f["fix"], f["fix"]


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


def test_a_name_with_a_and_aaaa_follows_the_containers_choice(lab, healed):
    """www.baidu.com has both. From a unique-local source the container's getaddrinfo tries
    IPv4 first (RFC 6724 rule 5), so netdoctor follows IPv4 and says why; --ipv6 follows
    the AAAA answer, as ping -6 would."""
    rc, doc = netdoctor_json("trace", "lab:test", "www.baidu.com")
    d = doc["destination"]
    assert rc == 0 and d["address"] == "203.0.113.80", d
    assert d["addresses"] == ["203.0.113.80", WEB6] and "rule 5" in d["choice"], d
    rc, doc = netdoctor_json("trace", "lab:test", "www.baidu.com", "--ipv6")
    assert rc == 0 and doc["destination"]["address"] == WEB6, doc["destination"]
    assert doc["hops"][0]["addresses_seen"]["request"] == f"fd00:29::2 -> {WEB6}"


def test_a_global_ipv6_source_makes_the_container_prefer_ipv6(lab, healed):
    sh("ip", "-n", "ndlab-test", "addr", "add", "2001:db8:29::2/64", "dev", "eth0", "nodad")
    rc, doc = netdoctor_json("path", "lab:test", "www.baidu.com")
    d = doc["destination"]
    assert d["address"] == WEB6 and "rule 6" in d["choice"], d
    rc, doc = netdoctor_json("path", "lab:test", "www.baidu.com", "-4")
    assert doc["destination"]["address"] == "203.0.113.80"


def test_a_family_that_does_not_fit_is_a_usage_error(lab):
    res = netdoctor("trace", "lab:test", WEB6, "--ipv4")
    assert res.returncode == 2 and res.stderr.count("\n") == 1, res
    assert "is an IPv6 address" in res.stderr


def test_a_routed_prefix_without_a_route_back_is_named_as_unseen(lab, healed):
    """Without the upstream's question on the uplink there is no evidence of why nothing
    came back: the verdict says where to look and that netdoctor cannot see it."""
    assert netdoctor("lab", "break", "no-route-back").returncode == 0
    sh("ip", "-n", "ndlab-inet", "-6", "route", "del", "2001:db8:29::/64")
    rc, doc = netdoctor_json("trace", "lab:test", WEB6)
    v = doc["verdict"]
    assert rc == 1 and v["cause"] == "upstream-no-reply" and v["stopped_at"] == "uplink", v
    assert "2001:db8:29::2, untranslated" in v["explanation"]
    assert "cannot see the upstream" in v["explanation"]


def test_an_ip6tables_forward_drop_is_named_with_its_rule(lab, healed):
    sh("ip", "netns", "exec", "ndlab-host", "ip6tables", "-I", "FORWARD", "1", "-s",
       "fd00:29::2", "-j", "DROP")
    rc, doc = netdoctor_json("trace", "lab:test", WEB6)
    v = doc["verdict"]
    assert rc == 1 and v["cause"] == "forward-dropped" and v["stopped_at"] == "bridge", v
    assert v["kernel_drop_reason"] == "NETFILTER_DROP"
    assert "fd00:29::2" in (v["rule"] or ""), v


@pytest.mark.parametrize("dest", ["203.0.113.80:53", f"[{WEB6}]:53"])
def test_a_closed_udp_port_at_the_destination_is_reachable(lab, dest):
    """The web server's host answers a DNS query with ICMP port unreachable (nothing listens
    on 53 there): the destination was reached and said the port is closed, as a TCP RST
    does. It was a wrong "stopped at uplink, upstream-no-reply"."""
    rc, doc = netdoctor_json("trace", "lab:test", dest, "--proto", "udp")
    v = doc["verdict"]
    assert rc == 0 and v["reachable"] and v["cause"] is None, v
    assert "port unreachable" in doc["probe"]["detail"]


def test_the_containers_ipv6_address_also_on_the_host_is_an_ip_conflict(lab, healed):
    """As with IPv4: the host holds fd00:29::2 on its uplink, answers for it and keeps the
    replies (was reply-path-asymmetric, "out of lo")."""
    sh("ip", "-n", "ndlab-host", "-6", "addr", "add", "fd00:29::2/64", "dev", "eth0", "nodad")
    try:
        rc, doc = netdoctor_json("trace", "lab:test", WEB6)
    finally:
        sh("ip", "-n", "ndlab-host", "-6", "addr", "del", "fd00:29::2/64", "dev", "eth0",
           check=False)
    v = doc["verdict"]
    assert rc == 1 and v["cause"] == "ip-conflict", v
    f = next(f for f in doc["findings"] if f["id"] == "ip-conflict")
    assert f["fix"] == "ip netns exec ndlab-host ip addr del fd00:29::2/64 dev eth0", f


def test_the_uplink_gateway_pinned_to_a_wrong_mac_is_asked_by_neighbour_discovery(lab,
                                                                                   healed):
    """The host's static NDP entry for its IPv6 uplink gateway names a MAC the gateway does
    not have: everything it routes out goes nowhere, and the kernel never asks again. The
    verdict blamed the network beyond the host; one Neighbor Solicitation from the uplink
    finds the gateway's real MAC, and deleting the entry, as printed, heals."""
    try:
        sh("ip", "-n", "ndlab-host", "-6", "neigh", "replace", "2001:db8:1::1", "lladdr",
           "02:00:00:00:00:99", "dev", "eth0", "nud", "permanent")
        rc, doc = netdoctor_json("trace", "test", WEB6)
        v = doc["verdict"]
        assert rc == 1 and v["cause"] == "neighbour-failed", v
        f = next(f for f in doc["findings"] if f["id"] == "neighbour-failed")
        assert "neighbour discovery" in f["message"] and "02:00:00:00:00:99" in f["message"]
        sh("sh", "-c", f["fix"])
        rc, doc = netdoctor_json("trace", "test", WEB6)
        assert rc == 0 and doc["verdict"]["reachable"], (f["fix"], doc["verdict"])
    finally:
        sh("ip", "-n", "ndlab-host", "-6", "neigh", "del", "2001:db8:1::1", "dev", "eth0",
           check=False)


def test_a_bridge_taken_down_and_up_again_gives_its_ipv6_gateway_back(lab, healed):
    """The kernel removes a link's IPv6 addresses when it goes down. Traced over IPv6 with
    the bridge down, the printed fix brought it up, and the container's gateway was still
    gone (bridge-no-address next). The fix puts the address back too, and heals."""
    sh("ip", "netns", "exec", "ndlab-host", "ip", "link", "set", "ndbr0", "down")
    rc, doc = netdoctor_json("trace", "lab:test", WEB6)
    assert rc == 1 and doc["verdict"]["cause"] == "bridge-down", doc["verdict"]
    f = next(f for f in doc["findings"] if f["id"] == "bridge-down")
    assert "addr add fd00:29::1/64" in f["fix"], f
    sh("sh", "-c", f["fix"])
    # Traced at once, the new address is tentative, which the verdict says (not "silent")
    rc, doc = netdoctor_json("trace", "lab:test", WEB6)
    if rc == 1:
        assert any("tentative" in f["message"] for f in doc["findings"]), doc["findings"]
        assert "ARP" not in doc["verdict"]["explanation"], doc["verdict"]
    # (a new IPv6 address answers once duplicate address detection is done, a second on)
    end = time.monotonic() + 5
    while sh("ip", "netns", "exec", "ndlab-host", "ip", "-6", "addr", "show", "dev", "ndbr0",
             "tentative").stdout.strip() and time.monotonic() < end:
        time.sleep(0.1)
    rc, doc = netdoctor_json("trace", "lab:test", WEB6)
    assert rc == 0 and doc["verdict"]["reachable"], (f["fix"], doc["verdict"])

"""No fix netdoctor prints may cut a host off: remove or down its uplink's address or link,
its default route, or its whole ruleset. Every check's fix, on every recorded snapshot and
every edited one the check tests use (tests/unit/test_checks.py), plus a macvlan container
whose network is the uplink's own."""

import ipaddress
import re
from dataclasses import replace

import pytest

from netdoctor.checks import run_checks
from netdoctor.diagnose.facts.namespace import Address, Route

import snapshot_edits as E
from test_checks import CASES, HEALTHY


def macvlan_container(snap):
    """lab:test as a macvlan child of the host's uplink eth0, in the uplink's own subnet (the
    way `docker network create -d macvlan --subnet 198.51.100.0/24 -o parent=eth0` wires it)."""
    _, c = E.container(snap, "test")
    host_ns = snap.host(c.host_inode).namespace
    parent = host_ns.link(name="eth0")
    ns = E.link(c.namespace, "eth0", kind="macvlan", master=None,
                addresses=(Address("inet", "198.51.100.7", 24),))
    ns = replace(ns, routes=(Route(dst="198.51.100.0/24", dev="eth0", table="main"),
                             Route(dst="default", dev="eth0", gateway="198.51.100.1",
                                   table="main")))
    hops = [dict(c.path["hops"][0], kind="macvlan", addresses=["198.51.100.7/24"],
                 via="198.51.100.1"),
            dict(c.path["hops"][3], ifindex=parent.ifindex)]
    path = dict(c.path, mode="macvlan", hops=hops, route_lookups=[
        dict(c.path["route_lookups"][0], gateway="198.51.100.1")])
    return E.edit_container(snap, "test", namespace=ns, path=path)


SNAPSHOTS = [("healthy lab", HEALTHY), ("healthy docker", E.load("docker-checks-snapshot.json")),
             ("macvlan child of the uplink", macvlan_container(HEALTHY))] + [
    (f"{cid}: {name}", snap) for cid, cases in CASES.items() for name, snap, _ in cases]


def uplinks(snap):
    """{interface: its addresses that hold the gateway} of every host's default routes."""
    out = {}
    for h in snap.hosts.values():
        for r in h.namespace.default_routes():
            link = h.namespace.link(name=r.dev) if r.dev else None
            if link is None:
                continue
            out.setdefault(link.name, set()).update(
                str(a) for a in link.addresses if a.family == "inet"
                and (r.gateway is None or ipaddress.ip_address(r.gateway) in a.interface.network))
    return out


def cuts_the_host_off(fix: str, links: dict) -> bool:
    for dev, addresses in links.items():
        d = re.escape(dev)
        for a in addresses:
            if re.search(rf"\bip (-\w+ )*addr(ess)? (del|delete) {re.escape(a)} dev {d}\b", fix):
                return True
        if re.search(rf"\bip (-\w+ )*addr(ess)? flush (dev )?{d}\b", fix):
            return True
        if re.search(rf"\bip (-\w+ )*link (set (dev )?{d} down|del(ete)? (dev )?{d})\b", fix):
            return True
    return bool(re.search(r"\bip (-\w+ )*route (del|delete|flush) default\b", fix)
                or re.search(r"\bip (-\w+ )*route flush\b", fix)
                or re.search(r"\b(ip6?tables(-legacy|-nft)?) (-t \w+ )?(-F|--flush|-X)\s*($|;|&)",
                             fix)
                or re.search(r"\bnft (flush|delete) (ruleset|table)\b", fix))


def test_the_safety_rule_itself_knows_a_cut_from_a_fix():
    links = {"eth0": {"198.51.100.2/24"}}
    for bad in ("ip netns exec ndlab-host ip addr del 198.51.100.2/24 dev eth0",
                "ip route del default", "iptables -F", "nft flush ruleset",
                "ip link set eth0 down"):
        assert cuts_the_host_off(bad, links), bad
    for fine in ("ip addr del 172.29.0.2/32 dev eth0", "iptables -t filter -D FORWARD 1",
                 "ip link set veth-test up", "iptables -F DOCKER-USER"):
        assert not cuts_the_host_off(fine, links), fine


@pytest.mark.parametrize("name, snap", SNAPSHOTS, ids=[n for n, _ in SNAPSHOTS])
def test_no_fix_cuts_the_host_off(name, snap):
    links = uplinks(snap)
    for f in run_checks(snap):
        assert not cuts_the_host_off(f.fix, links), (f.id, f.subject, f.fix)


def test_a_macvlan_parent_in_its_childrens_subnet_is_no_conflict():
    found = [(f.id, f.severity) for f in run_checks(macvlan_container(HEALTHY))
             if f.subject == "lab:test"]
    assert ("ip-conflict", "error") not in found, found


PLACEHOLDER = re.compile(r"\{[a-z_][a-z0-9_]*\}")


@pytest.mark.parametrize("name, snap", SNAPSHOTS, ids=[n for n, _ in SNAPSHOTS])
def test_every_runbook_in_a_report_has_its_names_filled_in(name, snap):
    # The Markdown report is pasted into tickets: each finding's runbook (Why, Confirm, Fix,
    # Revert) must read with the real interfaces, addresses and namespace prefixes.
    from netdoctor.diagnose.report.markdown import checks_markdown

    findings = run_checks(snap)
    text = checks_markdown(snap, findings)
    left = sorted(set(PLACEHOLDER.findall(text)))
    assert not left, (left, sorted({f.id for f in findings}))

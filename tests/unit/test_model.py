"""The indexed route lookups of a namespace snapshot agree with the obvious scan."""

import ipaddress

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings, strategies as st  # noqa: E402

from netdoctor.diagnose.model import NamespaceSnapshot, Route  # noqa: E402

prefixes = st.builds(lambda a, p: str(ipaddress.ip_network(f"{ipaddress.IPv4Address(a)}/{p}",
                                                             strict=False)),
                     st.integers(0, 2**32 - 1), st.integers(0, 32))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(prefixes, st.sampled_from(["main", "local"])), max_size=30), prefixes)
def test_routes_overlapping_matches_a_scan(routes, query):
    ns = NamespaceSnapshot(netns={}, links=(), routes=tuple(
        Route(dst=d, table=t, dev=f"d{i}") for i, (d, t) in enumerate(routes)))
    net = ipaddress.ip_network(query)
    expected = [r for r in ns.routes if r.table == "main" and not r.is_default
                and ipaddress.ip_network(r.dst).overlaps(net)]
    assert ns.routes_overlapping(net) == expected


addresses = st.one_of(
    st.integers(0, 2**32 - 1).map(lambda a: str(ipaddress.IPv4Address(a))),
    st.integers(0, 2**128 - 1).map(lambda a: str(ipaddress.IPv6Address(a))))
values = st.one_of(prefixes, addresses, st.tuples(addresses, addresses).map("-".join),
                   st.sampled_from(["bogus", "10.0.0.0/33", "010.0.0.1", "10.0.0.1/08"]))


@settings(max_examples=500, deadline=None)
@given(st.lists(values, min_size=1, max_size=4), st.booleans(), addresses, addresses)
def test_address_prefilter_only_skips_rules_that_cannot_match(vals, negate, src, dst):
    from netdoctor.diagnose import netfilter as nf

    rule = nf.Rule("iptables-nft", "ip", "filter", "FORWARD", 1,
                   (nf.Match("saddr", tuple(vals), negate),), "drop")
    chain = nf.Chain("iptables-nft", "ip", "filter", "FORWARD", rules=(rule,))
    (sranges, dranges), = chain.address_prefilter
    packet = nf.Packet(src, dst, "br0", "eth0")
    if nf._outside(sranges, nf._as_int(src)):
        assert nf.rule_matches(rule, packet) is False

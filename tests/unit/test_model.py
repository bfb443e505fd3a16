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

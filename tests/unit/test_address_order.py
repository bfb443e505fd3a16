"""Which of a name's addresses a container's program tries first (getaddrinfo's RFC 6724
order with glibc's table), from the source the container's kernel would use for each."""

import pytest

from netdoctor.diagnose.reason.address_order import Candidate, order, parse_gai_conf

V4, V6 = "203.0.113.80", "2001:db8:80::80"


@pytest.mark.parametrize("v4_source, v6_source, first, rule", [
    # Docker's and the lab's unique-local prefix behind NAT66: IPv4 wins on labels.
    ("172.29.0.2", "fd00:29::2", V4, "rule 5"),
    # A global IPv6 address: both pairs match, IPv6 has the higher precedence.
    ("172.29.0.2", "2001:db8:29::2", V6, "rule 6"),
    # No IPv6 route or address: the IPv6 answer is unusable.
    ("172.29.0.2", None, V4, "rule 1"),
    # An IPv6-only container.
    (None, "2001:db8:29::2", V6, "rule 1"),
])
def test_the_container_tries_first(v4_source, v6_source, first, rule):
    for answer in ([V4, V6], [V6, V4]):  # whatever order the DNS answer had
        sources = {V4: v4_source, V6: v6_source}
        ranked, why = order([Candidate(a, sources[a]) for a in answer])
        assert ranked[0].address == first and why.startswith(rule), why


def test_a_gai_conf_that_prefers_ipv4():
    """The classic `precedence ::ffff:0:0/96 100` line puts IPv4 first even with global
    IPv6; a gai.conf without label or precedence lines keeps glibc's table."""
    policy = parse_gai_conf("# prefer IPv4\nprecedence  ::ffff:0:0/96  100\nreload yes\n")
    ranked, why = order([Candidate(V6, "2001:db8:29::2"), Candidate(V4, "172.29.0.2")], policy)
    assert ranked[0].address == V4 and why.startswith("rule 6"), why
    assert "gai.conf" in policy.origin
    assert parse_gai_conf("reload yes\n# label ::/0 1\n") is None


def test_one_family_keeps_the_answer_order():
    ranked, why = order([Candidate("198.51.100.7", "10.0.0.2"), Candidate(V4, "10.0.0.2")])
    assert [c.address for c in ranked] == ["198.51.100.7", V4] and why == ""

"""The ip -j parser, on output recorded from the lab's real namespaces."""

import json

import pytest

from netdoctor.diagnose.parse import iproute
from netdoctor.diagnose.errors import ParseError

import recorded

def read(name):
    return recorded.text(name)


def test_batch_output_splits_into_three_documents():
    docs = iproute.split_documents(read("ndlab-host.batch.json"))
    assert len(docs) == 3 and all(isinstance(d, list) for d in docs)


def test_host_links_bridge_membership_and_veth_peers():
    links = iproute.parse_links(iproute.split_documents(read("ndlab-host.batch.json"))[0])
    by_name = {l.name: l for l in links}
    bridge, veth, uplink = by_name["ndbr0"], by_name["veth-test"], by_name["eth0"]
    assert bridge.kind == "bridge"
    assert [str(a) for a in bridge.addresses if a.scope == "global"] == ["172.29.0.1/24"]
    assert veth.kind == "veth" and veth.master == bridge.ifindex
    assert veth.peer_netnsid is not None and veth.peer_ifindex is not None
    assert uplink.up and uplink.state == "UP" and uplink.mac
    assert by_name["lo"].is_loopback and by_name["lo"].mac is None


def test_container_routes_and_default_gateway():
    docs = iproute.split_documents(read("ndlab-test.batch.json"))
    routes = iproute.parse_routes(docs[1])
    default = [r for r in routes if r.is_default and r.table == "main"]
    assert len(default) == 1 and default[0].gateway == "172.29.0.1" and default[0].dev == "eth0"
    local = [r for r in routes if r.table == "local" and r.type == "local"]
    assert any(r.dst == "172.29.0.2/32" for r in local)
    routes6 = iproute.parse_routes(json.loads(read("ndlab-test.route6.json")), "inet6")
    assert all(r.family == "inet6" for r in routes6)
    # `route show table all` lists IPv6 routes too: they must not pass for IPv4 ones.
    assert {(r.dst, r.table) for r in routes if r.family == "inet6"} == \
        {(r.dst, r.table) for r in routes6}
    assert all(":" not in r.dst for r in routes if r.family == "inet")


def test_an_ipv6_default_route_is_not_an_ipv4_one():
    doc = [{"dst": "10.9.0.0/24", "dev": "d0", "protocol": "kernel", "scope": "link"},
           {"dst": "default", "dev": "d0", "metric": 1024, "pref": "medium"},
           {"dst": "default", "gateway": "fe80::1", "dev": "d0"}]
    routes = iproute.parse_routes(doc)
    assert [r.family for r in routes] == ["inet", "inet6", "inet6"]
    assert [r.dst for r in routes if r.is_default and r.family == "inet"] == []


def test_route_get_answer_and_refusal():
    ok = iproute.parse_route_get(read("route-get-forward.json"), "", "203.0.113.80", "q")
    assert ok.dev == "eth0" and ok.gateway == "198.51.100.1" and ok.error is None
    refused = iproute.parse_route_get(read("route-get-noforward.out"),
                                      read("route-get-noforward.err"), "203.0.113.80", "q")
    assert refused.dev is None and refused.error == "No route to host"


@pytest.mark.parametrize("text", ["{", "[1, 2]", '{"ifindex": 1}', '[{"ifindex": "x", "ifname": "a"}]'])
def test_garbage_is_a_parse_error(text):
    with pytest.raises(ParseError):
        iproute.parse_links(iproute.split_documents(text)[0])


def test_link_without_ifname_is_a_parse_error():
    with pytest.raises(ParseError):
        iproute.parse_links([{"ifindex": 3}])


def test_address_flags_and_route_lifetimes():
    """What `ip -j` says of an IPv6 address after DAD failed or SLAAC configured it, and of
    a route learnt from an RA (captured from this kernel's iproute2 6.1)."""
    addr = json.loads('[{"ifindex":5,"ifname":"vb","flags":["UP","LOWER_UP"],"mtu":1500,'
                      '"operstate":"UP","addr_info":[{"family":"inet6","local":"fd00:9::1",'
                      '"prefixlen":64,"scope":"global","dadfailed":true,"tentative":true},'
                      '{"family":"inet6","local":"2001:db8:7::5","prefixlen":64,"scope":'
                      '"global","dynamic":true,"valid_life_time":3600}]}]')
    (link,) = iproute.parse_links(addr)
    assert [a.flags for a in link.addresses] == [("dadfailed", "tentative"), ("dynamic",)]
    routes = iproute.parse_routes(json.loads(
        '[{"dst":"default","gateway":"fe80::1","dev":"va","protocol":"ra","metric":1024,'
        '"flags":[],"expires":600,"pref":"medium"}]'))
    assert routes[0].protocol == "ra" and routes[0].expires == 600
    assert routes[0].family == "inet6"

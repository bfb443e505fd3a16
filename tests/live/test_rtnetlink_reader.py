"""netdoctor reads a namespace over rtnetlink, without starting `ip`; the records must be the
ones iproute2's own JSON gives, field for field, on every kind of object the checks judge:
veths across namespaces, bridges and hairpin ports, macvlan modes, VXLAN settings and FDB
entries, IPv6 address flags, routes of every type, table and protocol, multipath routes,
lifetimes, neighbour states."""

import dataclasses
import json
import os
import subprocess
import time

import pytest

from sandbox import sh, unique

from netdoctor.diagnose.host import gather, netns, rtdump
from netdoctor.diagnose.parse import iproute

ODD_NAMESPACE = """\
link set lo up
link add up0 type veth peer name up0p
link set up0p up
link set up0 up
addr add 10.9.0.1/24 dev up0
addr add 10.9.0.2/24 dev up0
addr add 2001:db8::5/64 dev up0 nodad
addr add 2001:db8::6/64 dev up0 nodad preferred_lft 0
addr add 2001:db8::7/64 dev up0 valid_lft 300 preferred_lft 200 nodad
link add br9 type bridge
link add v9a type veth peer name v.9
link set v9a master br9
link set dev v9a type bridge_slave hairpin on
link set dev v9a type bridge_slave isolated on
link set v9a up
link add v9b type veth peer name v9bp
link set v9b master br9
link set dev v9b type bridge_slave learning off flood off bcast_flood off
link set v9b up
link set br9 up
link add mv1 link up0 type macvlan mode private
link add mv2 link up0 type macvlan mode bridge
link add vx9 type vxlan id 42 group 239.1.1.1 dev up0 dstport 4789
link add vx10 type vxlan id 43 remote 10.9.0.9 local 10.9.0.1 dstport 8472 nolearning
link set vx10 up
route add 10.50.0.0/16 via 10.9.0.254 proto bird
route add blackhole 10.60.0.0/16
route add unreachable 10.61.0.0/16 table 100
route add prohibit 10.64.0.0/16 metric 5
route add 10.62.0.0/16 nexthop via 10.9.0.253 nexthop via 10.9.0.252
route add 2001:db8:1::/48 via 2001:db8::1 dev up0 expires 600
route add 10.63.0.0/16 dev up0 table 200 metric 77 src 10.9.0.1
route add 10.9.0.99 dev up0 proto static
route add 10.65.0.0/16 via 10.200.0.1 dev up0 onlink
rule add from 10.9.0.0/24 iif up0 blackhole pref 100
rule add not to 10.0.0.0/8 fwmark 0x1/0xff lookup 100 pref 200
rule add to 10.70.0.0/16 tos 0x10 prohibit pref 150
neigh add 10.9.0.77 lladdr 02:00:00:00:00:77 dev up0 nud permanent
neigh add 10.9.0.79 lladdr 02:00:00:00:00:79 dev up0 nud reachable
neigh add 2001:db8::77 lladdr 02:00:00:00:00:78 dev up0 nud stale
"""


@pytest.fixture(scope="module")
def odd():
    name = unique("ndt-rd")
    sh("ip", "netns", "add", name)
    try:
        sh("ip", "-n", name, "-batch", "-", input=ODD_NAMESPACE)
        sh("bridge", "-n", name, "fdb", "append", "00:00:00:00:00:00", "dev", "vx10",
           "dst", "10.9.0.10")
        sh("bridge", "-n", name, "fdb", "add", "02:aa:00:00:00:01", "dev", "vx10", "dst",
           "10.9.0.11")
        sh("bridge", "-n", name, "fdb", "add", "02:bb:00:00:00:01", "dev", "v9b", "master",
           "static")
        sh("bridge", "-n", name, "fdb", "add", "02:cc:00:00:00:01", "dev", "v9a", "master",
           "static", "sticky")
        sh("ip", "-n", name, "-6", "rule", "add", "to", "2001:db8:5::/48", "unreachable",
           "pref", "300")
        for key, value in (("net.ipv4.ip_forward", 1), ("net.ipv4.conf.default.rp_filter", 1),
                           ("net.ipv4.conf.all.proxy_arp", 1), ("net.ipv4.conf.up0.rp_filter", 2),
                           ("net.ipv4.conf.v9a.proxy_arp", 1), ("net.ipv4.conf.br9.route_localnet", 1),
                           ("net.ipv6.conf.up0.accept_ra", 2), ("net.ipv6.conf.mv2.disable_ipv6", 1),
                           ("net.ipv6.conf.all.forwarding", 1), ("net.ipv4.conf.vx10.forwarding", 0)):
            sh("ip", "netns", "exec", name, "sysctl", "-qw", f"{key}={value}")
        # an INCOMPLETE then FAILED entry: a neighbour that never answers
        subprocess.run(["ip", "netns", "exec", name, "ping", "-c1", "-W1", "10.9.0.98"],
                       capture_output=True)
        yield name
    finally:
        sh("ip", "netns", "del", name)


def both_readings(name):
    """(ip's and bridge's reading plus /proc/sys's, rtnetlink's), each (links, routes,
    neighbours, fdb, sysctls); the sysctls are those rtnetlink reports."""
    def read():
        with_netlink = rtdump.read_all()
        with_ip = gather._read_with_ip({"name": name, "path": f"/run/netns/{name}"})
        files = gather.read_sysctls([_spelt(k, with_netlink[0]) for k in with_netlink[4]])
        by_key = {k: files.get(_spelt(k, with_netlink[0])) for k in with_netlink[4]}
        return with_ip + (by_key,), with_netlink
    return netns.call_in(netns.named(name), read)


def _spelt(key, links):
    """sysctl(8)'s spelling of a key whose interface name may hold dots."""
    for link in links:
        for family in ("ipv4", "ipv6"):
            prefix = f"net.{family}.conf.{link.name}."
            if key.startswith(prefix):
                return f"net.{family}.conf.{link.name.replace('.', '/')}." + key[len(prefix):]
    return key


def differences(with_ip, with_netlink) -> list:
    out = []
    ip_links = {l.ifindex: l for l in with_ip[0]}
    nl_links = {l.ifindex: l for l in with_netlink[0]}
    for index in sorted(set(ip_links) | set(nl_links)):
        a, b = ip_links.get(index), nl_links.get(index)
        if a is None or b is None:
            out.append(f"link {index}: ip {a}, netlink {b}")
            continue
        out += [f"link {a.name} {f.name}: ip {getattr(a, f.name)!r}, netlink "
                f"{getattr(b, f.name)!r}" for f in dataclasses.fields(a)
                if getattr(a, f.name) != getattr(b, f.name)]
    out += [f"sysctl {k}: /proc/sys {with_ip[4][k]!r}, netlink {v!r}"
            for k, v in with_netlink[4].items() if with_ip[4][k] != v]
    for what, a, b in zip(("route", "neighbour", "fdb"), with_ip[1:4], with_netlink[1:4]):
        # a lifetime counts down between the two readings
        norm = (lambda r: dataclasses.replace(r, expires=r.expires is not None)) \
            if what == "route" else (lambda r: r)
        only_ip = set(map(norm, a)) - set(map(norm, b))
        only_nl = set(map(norm, b)) - set(map(norm, a))
        out += [f"{what} only in ip's: {r}" for r in only_ip]
        out += [f"{what} only in netlink's: {r}" for r in only_nl]
    return out


def settled_differences(name, tries=10):
    """differences() of two readings taken one after the other: a namespace that is still
    changing (an address finishing duplicate detection, a neighbour entry ageing) may
    change between them, so they are read again; a parser's difference persists."""
    for _ in range(tries):
        found = differences(*both_readings(name))
        if not found:
            return found
        time.sleep(0.5)
    return found


def test_every_kind_of_object_reads_as_ip_prints_it(odd):
    assert settled_differences(odd) == []
    with_ip, with_netlink = both_readings(odd)
    kinds = {l.kind for l in with_netlink[0]}
    assert {"veth", "bridge", "macvlan", "vxlan"} <= kinds
    assert {r.type for r in with_netlink[1]} >= {"unicast", "blackhole", "unreachable",
                                                 "prohibit", "local", "broadcast"}
    assert {n.state for n in with_netlink[2]} >= {("PERMANENT",), ("REACHABLE",),
                                                  ("STALE",)}
    # vx9's group, vx10's two defaults and one MAC
    assert len([e for e in with_netlink[3] if e.dev.startswith("vx")]) == 4
    # a port that does not learn: its forwarding entries are read, the static one among them
    assert ("02:bb:00:00:00:01", "static") in {(e.mac, e.state) for e in with_netlink[3]
                                              if e.dev == "v9b"}
    # it learns: only what was put there is read (a sticky entry), not its own or learnt
    assert [(e.mac, e.state, e.sticky) for e in with_netlink[3] if e.dev == "v9a"] == [
        ("02:cc:00:00:00:01", "static", True)]
    assert [r.dst for r in with_netlink[1] if r.onlink] == ["10.65.0.0/16"]
    assert [l.name for l in with_netlink[0] if l.isolated] == ["v9a"]
    ports = {l.name: (l.learning, l.unicast_flood, l.broadcast_flood) for l in with_netlink[0]
             if l.master is not None}
    assert ports == {"v9a": (True, True, True), "v9b": (False, False, False)}, ports
    assert with_netlink[4]["net.ipv4.conf.up0.rp_filter"] == "2"
    assert with_netlink[4]["net.ipv6.conf.mv2.disable_ipv6"] == "1"
    assert with_netlink[4]["net.ipv4.ip_forward"] == "1"
    assert "net.ipv4.conf.v.9.rp_filter" in with_netlink[4]
    lifetime = next(r.expires for r in with_netlink[1] if r.dst == "2001:db8:1::/48")
    assert 500 < lifetime <= 600


def test_policy_rules_read_as_ip_prints_them(odd):
    def both():
        with_ip = ()
        for flag, family in (("-4", "inet"), ("-6", "inet6")):
            out = subprocess.run(["ip", flag, "-j", "rule", "show"], capture_output=True,
                                 text=True, check=True).stdout
            with_ip += iproute.parse_policy_rules(json.loads(out), family)
        return with_ip, rtdump.read_policy_rules()
    with_ip, with_netlink = netns.call_in(netns.named(odd), both)
    assert with_ip == with_netlink
    texts = [r.text() for r in with_netlink]
    assert "100: from 10.9.0.0/24 iif up0 blackhole" in texts
    assert "200: not from all to 10.0.0.0/8 fwmark 0x1/0xff lookup 100" in texts
    assert "150: from all to 10.70.0.0/16 tos 0x10 prohibit" in texts
    assert "300: from all to 2001:db8:5::/48 unreachable" in texts


def test_the_lab_reads_as_ip_prints_it(lab):
    for name in ("ndlab-host", "ndlab-test", "ndlab-inet", "ndlab-web"):
        assert settled_differences(name) == [], name


def test_a_dotted_interface_name_has_its_sysctls(odd):
    # /proc/sys keeps the dot of "v.9" in one path component; sysctl(8)'s spelling of the
    # key has a slash there.
    snap = gather.read_namespace(netns.named(odd))
    assert snap.sysctls.get("net.ipv4.conf.v.9.rp_filter") in ("0", "1", "2")
    assert snap.sysctls.get("net.ipv4.conf.v9a.forwarding") in ("0", "1")
    assert snap.sysctls["net.ipv4.ip_forward"] in ("0", "1")
    assert os.path.exists(f"/run/netns/{odd}")

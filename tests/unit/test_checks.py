"""Every check, on a recorded snapshot of the healthy lab: silent as recorded (the passing
case), and naming the fault when exactly the fact it reads is broken (the failing cases)."""

import json
import re
from dataclasses import replace

import pytest

from netdoctor.checks import REGISTRY, load_all, run_checks  # noqa: F401
from netdoctor.diagnose.facts.ruleset import Ruleset
from netdoctor.diagnose.parse import iptables_save
from netdoctor.diagnose.parse import nft_json

import snapshot_edits as E

HEALTHY = E.load()


def _routed(proxy_arp="1", host_route=True):
    """The lab's test container rewired Calico-style: a /32 behind a veth with no bridge,
    the link-local gateway 169.254.1.1 answered by proxy ARP, a host route to the /32."""
    from netdoctor.diagnose.facts.namespace import Route

    _, c = E.container(HEALTHY, "test")
    path = dict(c.path, mode="routed",
                hops=[h for h in c.path["hops"] if h["role"] != "bridge"])
    snap = E.edit_container(HEALTHY, "test", path=path)
    snap = E.edit_container_ns(snap, "test", lambda ns: E.routes(E.link(
        ns, "eth0", addresses=(E.Address("inet", "172.29.0.2", 32),)),
        keep=lambda r: False, add=[
            Route(dst="169.254.1.1/32", dev="eth0", scope="link"),
            E.route("default", "eth0", "169.254.1.1")]))
    extra = [Route(dst="172.29.0.2/32", dev="veth-test", scope="link")] if host_route else []
    snap = E.edit_host_ns(snap, lambda ns: E.sysctl(E.routes(E.link(E.link(
        ns, "veth-test", master=None), "ndbr0", addresses=()),
        keep=lambda r: r.dev != "ndbr0", add=extra),
        "net.ipv4.conf.veth-test.proxy_arp", proxy_arp))
    # The lab's forwarding rules, for the veth instead of the bridge.
    return E.set_ruleset(snap, E.lab_rules(lambda text: text.replace("ndbr0", "veth-test")))


def _macvlan_to_the_host():
    """The test container as a macvlan child of the host's uplink, traced to the host's own
    uplink address."""
    _, c = E.container(HEALTHY, "test")
    hops = [h for h in c.path["hops"] if h["role"] in ("container", "uplink")]
    path = dict(c.path, mode="macvlan", hops=hops,
                destination={"query": "198.51.100.2", "address": "198.51.100.2",
                             "nameserver": None})
    return E.edit_container(HEALTHY, "test", path=path)


def _macvlan_out():
    """The test container as a macvlan child of the host's uplink, traced to the internet."""
    _, c = E.container(HEALTHY, "test")
    hops = [h for h in c.path["hops"] if h["role"] in ("container", "uplink")]
    return E.edit_container(HEALTHY, "test", path=dict(c.path, mode="macvlan", hops=hops))


ROUTED = _routed()
ROUTED_HOST = "ndlab-host"  # the recorded lab's host namespace


def _with_neighbour_tables(snap, **arp):
    """The lab snapshot with the machine's ARP table as given (ip -s ntable's counts)."""
    key = E.host_key(snap)
    hosts = dict(snap.hosts)
    table = dict({"thresh1": 128, "thresh2": 512, "thresh3": 1024, "entries": 40,
                  "table_fulls": 0, "forced_gc_runs": 0, "table_fulls_during_run": 0}, **arp)
    hosts[key] = replace(hosts[key], neighbour_tables={"arp_cache": table})
    return replace(snap, hosts=hosts)


def _with_tc_hook(snap, device, kind="clsact"):
    from dataclasses import replace

    key = E.host_key(snap)
    hosts = dict(snap.hosts)
    hosts[key] = replace(hosts[key], tc_hooks={device: kind})
    return replace(snap, hosts=hosts)

DNAT = "-A PREROUTING -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.29.0.2:80\n"


def _published(port=None, listeners=("0.0.0.0",), dnat=DNAT, user_rule="", accept=True):
    """The lab's test container publishing tcp 8080 -> 80 (as `docker run -p 8080:80`
    makes it), with its listeners and the host's DNAT as given (and Docker's accept for the
    port in FORWARD, or not)."""
    _, c = E.container(HEALTHY, "test")
    port = port or {"host_port": 8080, "container_port": 80, "proto": "tcp", "host_ip": "",
                    "source": "runtime"}
    snap = E.edit_container(HEALTHY, "test", target=dict(c.target, ports=[port]),
                            listeners=[{"proto": "tcp", "address": a, "port": 80}
                                       for a in listeners])

    def rules(text):
        text = text.replace(":POSTROUTING ACCEPT [0:0]\n", ":POSTROUTING ACCEPT [0:0]\n" + dnat)
        # Docker's accept for a published port, in FORWARD.
        if accept:
            text = text.replace("-A NDLAB-FORWARD -o ndbr0 -m conntrack",
                                "-A NDLAB-FORWARD -d 172.29.0.2/32 ! -i ndbr0 -o ndbr0 -p tcp "
                                "-m tcp --dport 80 -j ACCEPT\n-A NDLAB-FORWARD -o ndbr0 -m "
                                "conntrack", 1)
        return text.replace("-A NDLAB-USER -j RETURN", user_rule + "-A NDLAB-USER -j RETURN")
    return E.set_ruleset(snap, E.lab_rules(rules))


def _published_untracked():
    """The published port of _published, with a raw rule that marks its connections
    untracked: the DNAT, conntrack's, never applies to them."""
    snap = _published()
    raw = iptables_save.parse_iptables_save(
        "*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
        "-A PREROUTING -p tcp -m tcp --dport 8080 -j CT --notrack\nCOMMIT\n")
    chains = snap.hosts[E.host_key(snap)].ruleset.chains
    return E.set_ruleset(snap, tuple(chains) + tuple(raw))


SELF_MASQ = ("-A POSTROUTING -s 172.29.0.2/32 -d 172.29.0.2/32 -p tcp -m tcp --dport 80 -j "
             "MASQUERADE\n")  # as Docker adds it per published port (hairpin NAT)
PUBLISHED = _published(dnat=DNAT + SELF_MASQ)
LOOPBACK_PORT = {"host_port": 8080, "container_port": 80, "proto": "tcp", "host_ip": "127.0.0.1",
                 "source": "runtime"}
LOOPBACK_DNAT = ("-A PREROUTING -d 127.0.0.1/32 ! -i ndbr0 -p tcp -m tcp --dport 8080 -j DNAT "
                 "--to-destination 172.29.0.2:80\n-A OUTPUT -d 127.0.0.1/32 -p tcp -m tcp "
                 "--dport 8080 -j DNAT --to-destination 172.29.0.2:80\n")


def _hairpin(hairpin=False, masquerade=True):
    """The published port reached by the container itself through the host's address, its
    bridge port's hairpin_mode and a self-MASQUERADE as given (br_netfilter on)."""
    snap = _published(dnat=DNAT + (SELF_MASQ if masquerade else ""))
    return E.edit_host_ns(snap, lambda ns: E.sysctl(E.link(
        ns, "veth-test", hairpin=hairpin), "net.bridge.bridge-nf-call-iptables", "1"))


def _route_localnet(value):
    """The loopback-published port, with route_localnet as given on the bridge."""
    snap = _published(port=LOOPBACK_PORT, dnat=LOOPBACK_DNAT)
    return E.edit_host_ns(snap, lambda ns: E.sysctl(E.sysctl(
        ns, "net.ipv4.conf.ndbr0.route_localnet", value), "net.ipv4.conf.all.route_localnet", "0"))

FLANNEL = E.load("flannel-snapshot.json")
POD = FLANNEL.containers[0].target["name"]
POD_SUBJECT = FLANNEL.containers[0].label


def _flannel(fn):
    """The recorded flannel host, its namespace changed by fn."""
    return E.edit_host_ns(FLANNEL, fn, name=POD)


FLANNEL_INTENT = {"flannel": {"network": "10.244.0.0/16", "subnet": "10.244.0.1/24",
                               "mtu": 1450, "ipmasq": True,
                               "source": "/run/flannel/subnet.env"}}


def _flannel_intent(snap, route_to_peer=True):
    """The recorded flannel host with its subnet file's intent, its route to the peer's
    pod subnet kept or deleted."""
    from dataclasses import replace

    key = E.host_key(snap, POD)
    hosts = dict(snap.hosts)
    ns = hosts[key].namespace
    if not route_to_peer:
        ns = E.routes(ns, keep=lambda r: r.dst != "10.244.1.0/24")
    hosts[key] = replace(hosts[key], intent=FLANNEL_INTENT, namespace=ns)
    return replace(snap, hosts=hosts)


def _flannel_offloads(errors):
    """The recorded flannel host with flannel.1's checksum offload on and `errors` UDP
    checksum errors counted."""
    from dataclasses import replace

    key = E.host_key(FLANNEL, POD)
    hosts = dict(FLANNEL.hosts)
    hosts[key] = replace(hosts[key], offloads={
        "features": {"flannel.1": {"tx-checksum-ip-generic": "on"}},
        "udp_in_csum_errors": errors})
    return replace(FLANNEL, hosts=hosts)


FLANNEL_HOST = "ndt-rec-h0-5f1b3b"  # the recorded flannel host namespace


def _vtep_refused(error, routes=()):
    """The recorded flannel pod with its host's lookup of the remote VTEP refused (error),
    routes added to the host, and the underlay hop gone (nothing left by it)."""
    _, pod = E.container(FLANNEL, POD)
    lookups = [dict(l, dev=None, gateway=None, prefsrc=None, error=error)
               if l["query"] == "ip route get 192.168.77.2" else l
               for l in pod.path["route_lookups"]]
    hops = [h for h in pod.path["hops"] if h["role"] != "underlay"]
    snap = E.edit_container(FLANNEL, POD, path=dict(pod.path, route_lookups=lookups, hops=hops))
    return E.edit_host_ns(snap, lambda ns: E.routes(ns, add=routes), name=POD)


def _without_fdb(ns):
    from dataclasses import replace

    return replace(ns, fdb=())


def _fdb_to(ns, dst):
    from dataclasses import replace

    return replace(ns, fdb=tuple(replace(e, dst=dst) for e in ns.fdb))


def _without_tunnel_neighbours(ns):
    from dataclasses import replace

    return replace(ns, neighbours=tuple(n for n in ns.neighbours if n.dev != "flannel.1"))



# --- IPv6: the lab recorded as IPv4-only, given IPv6 by edits ---
WEB6 = "2001:db8:80::80"


def _toward6(snap, dest=WEB6):
    """The snapshot as if its containers were checked against an IPv6 destination."""
    return _toward(snap, dest)


BGP_INTENT = {"bgp": {"pools": ["10.244.0.0/16"], "blocks": ["10.244.0.0/26"],
                      "peers": [{"address": "198.51.100.7", "as": 64512}],
                      "source": "/etc/calico/confd/config/bird.cfg, as bird (pid 7) sees it",
                      "socket": "/var/run/calico/bird.ctl"}}


def _bgp(snap, dest="10.244.1.2", block_route=False):
    """The routed container toward a pod on another node, the host with Calico's BGP intent,
    with or without the route BIRD writes for that node's block."""
    from netdoctor.diagnose.facts.namespace import Route

    key = E.host_key(snap)
    hosts = dict(snap.hosts)
    ns = hosts[key].namespace
    if block_route:
        ns = E.routes(ns, add=(Route(dst="10.244.1.0/26", gateway="198.51.100.7", dev="eth0",
                                     protocol="bird"),))
    hosts[key] = replace(hosts[key], intent=BGP_INTENT, namespace=ns)
    return _toward(replace(snap, hosts=hosts), dest)


def _bgp_sessions(snap, *states):
    """_bgp's snapshot with BIRD's BGP sessions read: (bgp_state, state, last_error) each."""
    snap = _bgp(snap)
    key = E.host_key(snap)
    hosts = dict(snap.hosts)
    sessions = [{"name": f"Mesh_198_51_100_{7 + n}", "proto": "BGP", "state": state,
                 "bgp_state": bgp_state, "neighbor": f"198.51.100.{7 + n}",
                 "last_error": error} for n, (bgp_state, state, error) in enumerate(states)]
    hosts[key] = replace(hosts[key], intent={"bgp": dict(BGP_INTENT["bgp"],
                                                         sessions=sessions)})
    return replace(snap, hosts=hosts)


ESTABLISHED = ("Established", "up", None)


def _docker_overlay(snap, node, name=FLANNEL_HOST):
    """The recorded flannel host as if an engine's overlay network said the next hop
    10.244.1.0 is an endpoint ("c1") living on node."""
    key = next(k for k, h in snap.hosts.items() if h.namespace.netns.get("name") == name)
    hosts = dict(snap.hosts)
    hosts[key] = replace(hosts[key], intent={"docker_overlay": {
        "name": "ndov", "id": "aswwe3yqd1", "vnis": [], "peers": ["192.168.77.1", node],
        "endpoints": [{"name": "c1", "ip": "10.244.1.0", "node": node}], "local": [],
        "source": "docker network inspect --verbose aswwe3yqd1"}})
    return replace(snap, hosts=hosts)


def _toward(snap, dest):
    """The snapshot as if its containers were checked against dest."""
    cs = tuple(replace(c, path=dict(c.path, destination={"query": dest, "address": dest,
                                                         "nameserver": None}))
               for c in snap.containers)
    return replace(snap, destination=dest, containers=cs)


def _to_the_host(snap, dest):
    """lab:test toward an address of its host: its path ends at the bridge (no uplink)."""
    snap = _toward(snap, dest)
    _, c = E.container(snap, "test")
    hops = [h for h in c.path["hops"] if h["role"] != "uplink"]
    return E.edit_container(snap, "test", path=dict(c.path, hops=hops))


def _address6(ns, name, local, flags=()):
    from netdoctor.diagnose.facts.namespace import Address

    l = ns.link(name=name)
    return E.link(ns, name, addresses=l.addresses + (Address("inet6", local, 64, "global",
                                                             tuple(flags)),))


def _dual_stack(snap):
    """The test container and the host with IPv6 as the dual-stack lab has it."""
    from netdoctor.diagnose.facts.namespace import Route

    snap = E.edit_container_ns(snap, "test", lambda ns: E.routes(
        _address6(ns, "eth0", "fd00:29::2"),
        add=(Route("default", "inet6", "fd00:29::1", "eth0"),)))
    return E.edit_host_ns(snap, lambda ns: E.sysctl(E.routes(
        _address6(_address6(ns, "ndbr0", "fd00:29::1"), "eth0", "2001:db8:1::2"),
        add=(Route("default", "inet6", "2001:db8:1::1", "eth0"),)),
        "net.ipv6.conf.all.forwarding", "1"))


def _dad_failed(snap):
    def fail(ns):
        l = ns.link(name="eth0")
        return E.link(ns, "eth0", addresses=tuple(
            replace(a, flags=("dadfailed", "tentative")) if a.local == "fd00:29::2" else a
            for a in l.addresses))
    return E.edit_container_ns(_dual_stack(snap), "test", fail)


def _ipv6_disabled(snap):
    return E.edit_container_ns(snap, "test", lambda ns: E.sysctl(
        ns, "net.ipv6.conf.eth0.disable_ipv6", "1"))


def _ttl(snap, value, key="net.ipv4.ip_default_ttl"):
    """The test container sending with another default TTL (or hop limit)."""
    return E.edit_container_ns(snap, "test", lambda ns: E.sysctl(ns, key, value))


def _routed_back(snap, web_forwards=False, web_route=None, only=None):
    """The lab host routing the destination via lab:web's address back out of ndbr0 (as
    the path's lookup of the host then answers), lab:web forwarding or not, with a route
    of its own (web_route) or its default via the host; only: the snapshot keeps that
    container alone, as a trace's does."""
    dest = "198.18.0.1"
    snap = E.edit_host_ns(snap, lambda ns: E.routes(
        ns, add=(E.route(f"{dest}/32", "ndbr0", "172.29.0.3"),)))
    for name in ("test", "web"):
        _, c = E.container(snap, name)
        looked = [dict(l, dev="ndbr0", gateway="172.29.0.3") if l["netns"] == "ndlab-host"
                  else l for l in c.path["route_lookups"]]
        snap = E.edit_container(snap, name, path=dict(c.path, route_lookups=looked))
    snap = E.edit_container_ns(snap, "web", lambda ns: E.routes(E.sysctl(E.sysctl(
        ns, "net.ipv4.conf.eth0.forwarding", "1" if web_forwards else "0"),
        "net.ipv4.ip_forward", "1" if web_forwards else "0"),
        add=(web_route,) if web_route else ()))
    if only:
        snap = replace(snap, containers=tuple(c for c in snap.containers
                                              if c.label == f"lab:{only}"))
    return snap


def _uplink_gateway_pinned(snap, mac="02:00:00:00:00:99", answered=("5e:d9:c6:9b:aa:01",)):
    """The host's PERMANENT entry for its uplink gateway naming mac, and the gateway's
    answers to netdoctor's ARP request."""
    from netdoctor.diagnose.facts.namespace import Neighbour

    return E.edit_host_ns(snap, lambda ns: replace(ns, neighbours=tuple(
        n for n in ns.neighbours if n.dst != "198.51.100.1") + (
        Neighbour("198.51.100.1", "eth0", mac, ("PERMANENT",)),),
        asked={"198.51.100.1 eth0": list(answered)}))


def _web_holds(snap, address):
    """lab:web given another address on its eth0 (lab:test's, or the gateway's)."""
    return E.edit_container_ns(snap, "web", lambda ns: E.add_address(ns, "eth0", address, 24))


def _host_learnt(snap, address, mac, state="REACHABLE"):
    """The host's neighbour entry for address on ndbr0 naming mac."""
    from netdoctor.diagnose.facts.namespace import Neighbour

    return E.edit_host_ns(snap, lambda ns: replace(ns, neighbours=tuple(
        n for n in ns.neighbours if n.dst != address) + (
        Neighbour(address, "ndbr0", mac, (state,)),)))


NAT_AWAY = ("*nat\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n"
            "-A PREROUTING {match} -j {target}\nCOMMIT\n")


def _nat_away(match="-d 198.18.0.1", target="DNAT --to-destination 198.51.100.77",
              listeners=None, failed=None):
    """The lab host's nat PREROUTING sending the container's requests elsewhere; with
    listeners, the host's listening sockets as read; with failed, a FAILED entry for it."""
    from netdoctor.diagnose.facts.namespace import Neighbour

    snap = E.set_ruleset(HEALTHY, E.lab_rules() + iptables_save.parse_iptables_save(
        NAT_AWAY.format(match=match, target=target)))
    key = E.host_key(snap)
    hosts = dict(snap.hosts)
    hosts[key] = replace(hosts[key], listeners=listeners)
    snap = replace(snap, hosts=hosts)
    if failed:
        snap = E.edit_host_ns(snap, lambda ns: replace(ns, neighbours=ns.neighbours + (
            Neighbour(failed, "eth0", None, ("FAILED",)),)))
    return snap


MANGLE_TTL = ("*mangle\n:PREROUTING ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n"
              ":POSTROUTING ACCEPT [0:0]\n-A {chain} -s 172.29.0.2/32 -j TTL --ttl-{how} {n}\n"
              "COMMIT\n")


def _ttl_rule(chain="PREROUTING", how="set", n=1):
    """The lab host with a mangle rule changing the test container's TTL."""
    return E.set_ruleset(HEALTHY, E.lab_rules() + iptables_save.parse_iptables_save(
        MANGLE_TTL.format(chain=chain, how=how, n=n)))


def _nft_ttl(hook="prerouting", value=1, field="ttl", protocol="ip"):
    """The lab host with a native nft chain setting the TTL (hop limit) of what it meets."""
    return E.set_ruleset(HEALTHY, E.lab_rules() + nft_json.parse_nft_json({"nftables": [
        {"table": {"family": "inet", "name": "ndt"}},
        {"chain": {"family": "inet", "table": "ndt", "name": "c", "type": "filter",
                   "hook": hook, "prio": -150, "policy": "accept"}},
        {"rule": {"family": "inet", "table": "ndt", "chain": "c", "handle": 3, "expr": [
            {"mangle": {"key": {"payload": {"protocol": protocol, "field": field}},
                        "value": value}}]}}]}))


def _ra_expired(snap, accept_ra="1", route=None):
    """The host's uplink configured by SLAAC, forwarding on: its RA default route gone (or
    still there, learnt from an RA, when route is given)."""
    from netdoctor.diagnose.facts.namespace import Route

    def host(ns):
        ns = E.routes(ns, keep=lambda r: not (r.family == "inet6" and r.is_default),
                      add=(route,) if route else ())
        ns = E.link(ns, "eth0", addresses=tuple(
            replace(a, flags=("dynamic",)) if a.local == "2001:db8:1::2" else a
            for a in ns.link(name="eth0").addresses))
        ns = E.sysctl(ns, "net.ipv6.conf.eth0.forwarding", "1")
        return E.sysctl(ns, "net.ipv6.conf.eth0.accept_ra", accept_ra)
    del Route
    return E.edit_host_ns(_dual_stack(snap), host)


def _ra_route(expires=300):
    from netdoctor.diagnose.facts.namespace import Route

    return Route("default", "inet6", "fe80::1", "eth0", protocol="ra", expires=expires)


def _reply_routed(dev, gateway, error=None):
    """The lab with the host's answer for the test container's replies changed."""
    _, c = E.container(HEALTHY, "test")
    query = "ip route get 172.29.0.2 from 198.18.0.1 iif eth0"
    return E.edit_container(HEALTHY, "test", path=dict(c.path, reply_lookups=[
        {"query": query, "netns": "ndlab-host", "dev": dev, "gateway": gateway,
         "error": error, "expected_dev": "ndbr0"}]))


def _macvlan_siblings(mode):
    """lab:test as a macvlan child in `mode`, traced to lab:web, another child."""
    _, c = E.container(HEALTHY, "test")
    snap = E.edit_container(HEALTHY, "test", path=dict(
        c.path, mode="macvlan", destination={"query": "lab:web", "address": "172.29.0.3",
                                             "container": "lab:web"}))
    return E.edit_container_ns(snap, "test", lambda ns: E.link(ns, "eth0", kind="macvlan",
                                                               mode=mode))


def _pinned(dev, state, snap=None, sticky=False):
    """HEALTHY with an FDB entry for lab:test's MAC on dev of its bridge, in state."""
    from netdoctor.diagnose.facts.namespace import FdbEntry

    snap = snap or HEALTHY
    mac = E.container(snap, "test")[1].namespace.link(name="eth0").mac
    return E.edit_host_ns(snap, lambda ns: replace(ns, fdb=ns.fdb + (
        FdbEntry(dev, mac, None, state, sticky),)))


def _bridged_drop(rule):
    """The lab with br_netfilter on and `rule` first in NDLAB-USER."""
    return E.edit_host_ns(E.set_ruleset(HEALTHY, E.lab_rules(
        lambda t: t.replace("-A NDLAB-USER -j RETURN\n", rule + "-A NDLAB-USER -j RETURN\n"))),
        lambda ns: E.sysctl(ns, "net.bridge.bridge-nf-call-iptables", "1"))


def ids(findings, subject=None):
    return {f.id for f in findings if subject is None or f.subject == subject}


def native_nft_drop(match_saddr="172.29.0.2", match=("ip", "saddr")):
    """A native `inet fw` table whose forward chain drops what `match` (payload protocol and
    field) equals match_saddr."""
    protocol, fld = match
    doc = {"nftables": [
        {"table": {"family": "inet", "name": "fw"}},
        {"chain": {"family": "inet", "table": "fw", "name": "fwd", "type": "filter",
                   "hook": "forward", "prio": -10, "policy": "accept"}},
        {"rule": {"family": "inet", "table": "fw", "chain": "fwd", "handle": 4, "expr": [
            {"match": {"op": "==", "left": {"payload": {"protocol": protocol, "field": fld}},
                       "right": match_saddr}},
            {"counter": {"packets": 3, "bytes": 252}}, {"drop": None}]}}]}
    return nft_json.parse_nft_json(doc)


def bridge_family_drop(hook, iface_key, iface, protocol="icmp"):
    """A native `bridge ndt` table whose `hook` chain drops ICMP by the given port name, as
    ebtables-nft or a hand-written bridge filter would."""
    doc = {"nftables": [
        {"table": {"family": "bridge", "name": "ndt"}},
        {"chain": {"family": "bridge", "table": "ndt", "name": hook, "type": "filter",
                   "hook": hook, "prio": 0, "policy": "accept"}},
        {"rule": {"family": "bridge", "table": "ndt", "chain": hook, "handle": 2, "expr": [
            {"match": {"op": "==", "left": {"meta": {"key": iface_key}}, "right": iface}},
            {"match": {"op": "==", "left": {"payload": {"protocol": "ip",
                                                        "field": "protocol"}},
                       "right": protocol}},
            {"drop": None}]}}]}
    return nft_json.parse_nft_json(doc)


def device_hook_drop(hook, device, match=None, policy="accept", family="netdev"):
    """A native `netdev ndt` table (or inet, for ingress) with a chain on `hook` (ingress,
    egress) of device: dropping what match ((protocol, field, value)) selects, or all with
    policy "drop". `nft -j` leaves the device out; netdoctor reads it by netlink."""
    from dataclasses import replace

    rules = []
    if match is not None:
        protocol, fld, value = match
        rules.append({"rule": {"family": family, "table": "ndt", "chain": hook, "handle": 3,
                               "expr": [{"match": {"op": "==", "left": {"payload": {
                                   "protocol": protocol, "field": fld}}, "right": value}},
                                   {"drop": None}]}})
    doc = {"nftables": [
        {"table": {"family": family, "name": "ndt"}},
        {"chain": {"family": family, "table": "ndt", "name": hook, "type": "filter",
                   "hook": hook, "prio": 0, "policy": policy}}] + rules}
    return tuple(replace(c, devices=(device,)) for c in nft_json.parse_nft_json(doc))


RAW_NOTRACK = ("*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
               "-A PREROUTING -i {iface} -j CT --notrack\nCOMMIT\n")


def _untracked(iface="ndbr0", nft_priority=None):
    """The lab with the container's requests marked untracked before conntrack sees them:
    an iptables raw rule (`-j CT --notrack`), or with nft_priority a native prerouting chain
    of that priority with `notrack`. NAT is for tracked connections only."""
    if nft_priority is None:
        extra = iptables_save.parse_iptables_save(RAW_NOTRACK.format(iface=iface))
    else:
        extra = nft_json.parse_nft_json({"nftables": [
            {"table": {"family": "inet", "name": "ndt"}},
            {"chain": {"family": "inet", "table": "ndt", "name": "pre", "type": "filter",
                       "hook": "prerouting", "prio": nft_priority, "policy": "accept"}},
            {"rule": {"family": "inet", "table": "ndt", "chain": "pre", "handle": 3, "expr": [
                {"match": {"op": "==", "left": {"meta": {"key": "iifname"}},
                           "right": iface}},
                {"notrack": None}]}}]})
    return E.set_ruleset(HEALTHY, tuple(E.lab_rules()) + tuple(extra))


def _bypassing(gateway=None, dst="198.18.0.0/16", proxy_arp="0"):
    """The test container with a route of its own for the checks' destination (198.18.0.1):
    on its link (no gateway: it asks for the destination itself by ARP), or via gateway;
    the kernel's lookup in the container answers by that route. proxy_arp: the bridge's."""
    from netdoctor.diagnose.facts.namespace import Route

    _, c = E.container(HEALTHY, "test")
    lookups = [dict(l, gateway=gateway) if l["netns"] == "ndlab-test" else l
               for l in c.path["route_lookups"]]
    snap = E.edit_container(HEALTHY, "test", path=dict(c.path, route_lookups=lookups))
    route = E.route(dst, "eth0", gateway) if gateway else Route(dst=dst, dev="eth0",
                                                                scope="link")
    snap = E.edit_container_ns(snap, "test", lambda ns: E.routes(ns, add=[route]))
    return E.edit_host_ns(snap, lambda ns: E.sysctl(ns, "net.ipv4.conf.ndbr0.proxy_arp",
                                                    proxy_arp))


def _off_network(onlink=True):
    """lab:test renumbered by hand to 10.0.0.2/24 on the 172.29.0.0/24 bridge, its default
    route still via the bridge's 172.29.0.1 (onlink: the kernel takes it on the link)."""
    from netdoctor.diagnose.facts.namespace import Route

    return E.edit_container_ns(HEALTHY, "test", lambda ns: E.routes(E.link(
        ns, "eth0", addresses=(E.Address("inet", "10.0.0.2", 24),)),
        keep=lambda r: r.family != "inet",
        add=[Route(dst="10.0.0.0/24", dev="eth0", scope="link", prefsrc="10.0.0.2"),
             Route(dst="default", dev="eth0", gateway="172.29.0.1", onlink=onlink)]))


def _host_pins(mac, state):
    """HEALTHY with the host's entry for lab:test's address on ndbr0 replaced: mac, state."""
    return E.edit_host_ns(HEALTHY, lambda ns: replace(ns, neighbours=tuple(
        n for n in ns.neighbours if n.dst != "172.29.0.2") + (E.Neighbour(
            "172.29.0.2", "ndbr0", mac, (state,)),)))


def test_a_routed_containers_gateway_cached_with_a_mac_its_veth_does_not_have():
    """Calico-style: the container's gateway 169.254.1.1 is answered by the host veth's
    proxy ARP. A permanent entry naming another MAC sends every frame to a MAC nobody has
    (the host veth drops them as OTHERHOST); the trace said unknown."""
    snap = _routed()
    _, test = E.container(snap, "test")
    gw = next(r.gateway for r in test.namespace.routes if r.is_default)
    pinned = E.edit_container_ns(snap, "test", lambda ns: replace(ns, neighbours=(
        E.Neighbour(gw, "eth0", "02:00:00:00:00:99", ("PERMANENT",)),)))
    f = next(f for f in run_checks(pinned) if f.id == "neighbour-failed")
    assert "02:00:00:00:00:99" in f.message and "veth-test, which answers ARP for it" in \
        f.message, f.message
    veth_mac = snap.hosts[E.host_key(snap)].namespace.link(name="veth-test").mac
    right = E.edit_container_ns(snap, "test", lambda ns: replace(ns, neighbours=(
        E.Neighbour(gw, "eth0", veth_mac, ("PERMANENT",)),)))
    assert "neighbour-failed" not in ids(run_checks(right), "lab:test")


def test_strict_rp_filter_on_a_misrouted_routed_container_is_the_missing_route():
    """A routed container whose /32 the host routes out of its uplink, with strict
    rp_filter: the kernel drops its ARP for the gateway and its requests on the veth. The
    route is the cause (it stops the request where it never leaves the container);
    loosening rp_filter would only let the replies go out of the uplink, so it is no fix
    of its own."""
    from netdoctor.diagnose.reason import evidence as Ev, verdict as V

    snap = E.edit_host_ns(_routed(host_route=False),
                          lambda ns: E.sysctl(ns, "net.ipv4.conf.all.rp_filter", "1"))
    found = [f for f in run_checks(snap) if f.subject == "lab:test"]
    assert "container-route-missing" in ids(found) and "rp-filter-drop" not in ids(found)
    flow = Ev.Flow("udp", "172.29.0.2", "203.0.113.53", cookie=1)
    for stop in (None, "container", "host-veth"):
        v = V.decide(V.Case(Ev.HopVerdict(False, stop, "request"), [], found, [], [], flow))
        assert v.cause == "container-route-missing", (stop, v)
    # Without rp_filter the request leaves: the route blocks only the replies.
    loose = [f for f in run_checks(_routed(host_route=False)) if f.subject == "lab:test"]
    miss = next(f for f in loose if f.id == "container-route-missing")
    assert miss.evidence["stops_at"] == ["uplink"]
    here = V.Case(Ev.HopVerdict(False, None, "request"), [], loose, [], [], flow).blocking_here
    assert "container-route-missing" not in ids(here)


def test_an_entry_on_the_containers_own_port_or_for_another_mac_is_no_pin():
    from netdoctor.diagnose.facts.namespace import FdbEntry

    assert "bridge-fdb-pinned" not in ids(run_checks(_pinned("veth-test", "static", sticky=True)))
    # A plain static entry moves to the port the MAC comes in by next: no pin.
    assert "bridge-fdb-pinned" not in ids(run_checks(_pinned("veth-web", "static")))
    other = E.edit_host_ns(HEALTHY, lambda ns: replace(ns, fdb=ns.fdb + (
        FdbEntry("veth-web", "02:00:00:00:00:99", None, "static", True),)))
    assert "bridge-fdb-pinned" not in ids(run_checks(other))
    f = next(f for f in run_checks(_pinned("veth-web", "static", sticky=True))
             if f.id == "bridge-fdb-pinned")
    assert f.fix.startswith("ip netns exec ndlab-host bridge fdb del ") and \
        f.fix.endswith(" dev veth-web master"), f.fix


def test_an_entry_for_the_destination_container_with_a_mac_it_does_not_have():
    """test -> web, and test's permanent entry for 172.29.0.3 names a MAC web's eth0 does
    not have: the requests are flooded and web drops them (OTHERHOST); the verdict said the
    destination did not answer. The path records the destination's MAC: the entry is
    named and deleted; an entry with web's own MAC is no finding."""
    ew = _east_west()
    _, test = E.container(ew, "test")
    web_mac = "02:00:00:00:00:03"
    hops = [dict(h, mac=web_mac) if h["role"] == "destination" else h
            for h in test.path["hops"]]
    ew = E.edit_container(ew, "test", path=dict(test.path, hops=hops))

    def entry(mac):
        return E.edit_container_ns(ew, "test", lambda ns: replace(ns, neighbours=(
            E.Neighbour("172.29.0.3", "eth0", mac, ("PERMANENT",)),)))
    f = next(f for f in run_checks(entry("02:00:00:00:00:77")) if f.id == "neighbour-failed"
             and f.subject == "lab:test")
    assert "02:00:00:00:00:77" in f.message and web_mac in f.message
    assert f.fix == "ip netns exec ndlab-test ip neigh del 172.29.0.3 dev eth0"
    assert "neighbour-failed" not in ids(run_checks(entry(web_mac)), "lab:test")


def test_a_host_entry_that_pins_the_container_to_another_mac_blocks_the_replies():
    """`ip neigh replace 172.29.0.2 lladdr 02:.. nud permanent dev ndbr0`: the replies go to
    that MAC, are flooded, and the container drops them (OTHERHOST); the trace said
    unknown. A learnt entry with another MAC is asked again when stale: not this."""
    f = next(f for f in run_checks(case("neighbour-failed",
                                        "the host pins the container to another MAC"))
             if f.id == "neighbour-failed")
    assert "02:00:00:de:ad:02" in f.message and f.evidence["direction"] == "reply"
    assert f.fix == "ip netns exec ndlab-host ip neigh del 172.29.0.2 dev ndbr0"
    assert "neighbour-failed" not in ids(run_checks(_host_pins("02:00:00:de:ad:02",
                                                               "REACHABLE")), "lab:test")
    _, test = E.container(HEALTHY, "test")
    mine = test.namespace.link(name="eth0").mac
    assert "neighbour-failed" not in ids(run_checks(_host_pins(mine, "PERMANENT")), "lab:test")


def _rule(priority, action, **selectors):
    from netdoctor.diagnose.facts.namespace import PolicyRule

    return PolicyRule(priority, "inet", action, **selectors)


def _container_refused(error, rules=None, routes=()):
    """HEALTHY with lab:test's own route lookup refused (error), its policy rules as read
    (None: not read) and routes added."""
    from netdoctor.diagnose.facts.namespace import PolicyRule

    _, test = E.container(HEALTHY, "test")
    lookups = [dict(l, dev=None, gateway=None, prefsrc=None, error=error)
               if l["netns"] == "ndlab-test" else l for l in test.path["route_lookups"]]
    base = (PolicyRule(0, "inet", "lookup", "local"), PolicyRule(32766, "inet", "lookup", "main"))
    snap = E.edit_container(HEALTHY, "test", path=dict(test.path, route_lookups=lookups),
                            policy_rules=None if rules is None else base + tuple(rules))
    return E.edit_container_ns(snap, "test", lambda ns: E.routes(ns, add=routes))


def _east_west(**ports):
    """lab:test traced to lab:web across their bridge (hops as the path gives them), with
    the two veths' port flags as given: {veth name: {field: value}}."""
    _, c = E.container(HEALTHY, "test")
    veth = next(h for h in c.path["hops"] if h["role"] == "host-veth")
    hops = [h for h in c.path["hops"] if h["role"] != "uplink"] + [
        dict(veth, role="bridge-port", name="veth-web", ifindex=5),
        {"role": "destination", "name": "eth0", "netns": "ndlab-web", "ifindex": 2}]
    path = dict(c.path, hops=hops, destination={"query": "lab:web", "address": "172.29.0.3",
                                                "container": "lab:web"})
    snap = E.edit_container(HEALTHY, "test", path=path)

    def host(ns):
        for name, changes in ports.items():
            ns = E.link(ns, name, **changes)
        return ns
    return E.edit_host_ns(snap, host)


def _shadowed(nic=False):
    """The lab with a second bridge holding the destination's network (the checks' default
    destination, 198.18.0.1: a container network made over an outside range), the
    container's path routed onto it; with nic, that bridge has a NIC in it (a LAN)."""
    from dataclasses import replace as dc_replace

    def host(ns):
        br = dc_replace(ns.link(name="ndbr0"), ifindex=90, name="ndbr9", mac="36:f2:6c:1d:39:56",
                        addresses=())
        ns = dc_replace(ns, links=ns.links + (br,))
        ns = E.add_address(ns, "ndbr9", "198.18.0.254", 24)
        if nic:
            port = dc_replace(ns.link(name="eth0"), ifindex=91, name="eno9", kind=None,
                              master=90, addresses=())
            ns = dc_replace(ns, links=ns.links + (port,))
        return E.routes(ns, add=[E.route("198.18.0.0/24", "ndbr9", None)])

    snap = E.edit_host_ns(HEALTHY, host)
    _, c = E.container(snap, "test")
    hops = [dict(h, name="ndbr9", ifindex=90, via=None) if h["role"] == "uplink" else h
            for h in c.path["hops"]]
    return E.edit_container(snap, "test", path=dict(c.path, hops=hops))


def insert_after(anchor, line):
    return lambda text: text.replace(anchor, anchor + "\n" + line, 1)


def remove(line):
    return lambda text: text.replace(line + "\n", "")


ACCEPT_OUT = "-A NDLAB-FORWARD -i ndbr0 ! -o ndbr0 -j ACCEPT"
ACCEPT_BACK = "-A NDLAB-FORWARD -o ndbr0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"
ACCEPT_BRIDGED = "-A NDLAB-FORWARD -i ndbr0 -o ndbr0 -j ACCEPT"
MASQ = "-A POSTROUTING -s 172.29.0.0/24 ! -o ndbr0 -j MASQUERADE"

# Drops before routing, as iptables-save prints a second table beside the lab's.
RAW_DROP = iptables_save.parse_iptables_save(
    "*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
    "-A PREROUTING -s 172.29.0.2/32 -j DROP\nCOMMIT\n")
MANGLE_DROP_ANSWERS = iptables_save.parse_iptables_save(
    "*mangle\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n"
    ":OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n"
    "-A PREROUTING -d 198.51.100.2/32 -p icmp -j DROP\nCOMMIT\n")

# ip6tables beside the lab's rules: ICMPv6 dropped in INPUT (an IPv4 firewall copied); a
# DROP policy with only established traffic let in.
ND_DROP = iptables_save.parse_iptables_save(
    "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
    "-A INPUT -i ndbr0 -p ipv6-icmp -j DROP\nCOMMIT\n", family="ip6")
ND_POLICY = iptables_save.parse_iptables_save(
    "*filter\n:INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
    "-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\nCOMMIT\n", family="ip6")

ND_OUT_DROP = iptables_save.parse_iptables_save(
    "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
    "-A OUTPUT -p ipv6-icmp -m icmp6 --icmpv6-type 136 -j DROP\n"
    "-A OUTPUT -p ipv6-icmp -m icmp6 --icmpv6-type 135 -j DROP\nCOMMIT\n", family="ip6")


def _arp_table(*rules, policy="accept", hook="input"):
    """A native arp table (arptables-nft writes one) with an input (or output) chain of
    these rules (nft JSON expression lists)."""
    name = hook[:3] if hook == "output" else "in"
    doc = {"nftables": [
        {"table": {"family": "arp", "name": "ndt", "handle": 7}},
        {"chain": {"family": "arp", "table": "ndt", "name": name, "handle": 1,
                   "type": "filter", "hook": hook, "prio": 0, "policy": policy}}] + [
        {"rule": {"family": "arp", "table": "ndt", "chain": name, "handle": 2 + i,
                  "expr": expr}} for i, expr in enumerate(rules)]}
    return nft_json.parse_nft_json(doc)


ARP_DROP = _arp_table([
    {"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "ndbr0"}},
    {"match": {"op": "==", "left": {"payload": {"protocol": "arp", "field": "operation"}},
               "right": "request"}},
    {"match": {"op": "==", "left": {"payload": {"protocol": "arp", "field": "daddr ip"}},
               "right": "172.29.0.1"}},
    {"drop": None}])

# check id -> [(case name, edited snapshot, subject the finding must name)]
CASES = {
    "container-ipv6-disabled": [("disable_ipv6 on eth0", _toward6(_ipv6_disabled(HEALTHY)),
                                 "lab:test")],
    "ttl-too-low": [("default TTL 1", _ttl(HEALTHY, "1"), "lab:test"),
                    ("default TTL 2, two routers", _ttl(HEALTHY, "2"), "lab:test"),
                    ("hop limit 1 on eth0", _toward6(_ttl(_dual_stack(HEALTHY), "1",
                                                          "net.ipv6.conf.eth0.hop_limit")),
                     "lab:test"),
                    ("mangle PREROUTING sets TTL 1", _ttl_rule(), "lab:test"),
                    ("nft prerouting ip ttl set 1", _nft_ttl(), "lab:test")],
    "route-back-out": [("to a container that does not forward", _routed_back(HEALTHY),
                        "lab:test"),
                       ("to a container that sends it back", _routed_back(HEALTHY, True),
                        "lab:test")],
    "duplicate-address": [("lab:web holds lab:test's address",
                           _web_holds(HEALTHY, "172.29.0.2"), "lab:test"),
                          ("lab:web holds the gateway's address",
                           _web_holds(HEALTHY, "172.29.0.1"), "lab:test"),
                          ("the host learnt another MAC for it",
                           _host_learnt(HEALTHY, "172.29.0.2", "02:00:00:00:00:99"),
                           "lab:test")],
    "destination-redirected": [
        ("DNAT to an address nothing answers ARP for", _nat_away(failed="198.51.100.77"),
         "lab:test"),
        ("REDIRECT to a port nothing listens on", _nat_away(
            "-i ndbr0 -p tcp --dport 80", "REDIRECT --to-ports 3128", listeners=[]),
         "lab:test")],
    "ipv6-dad-failed": [("a duplicate of its address", _toward6(_dad_failed(HEALTHY)),
                         "lab:test")],
    "neighbour-discovery-dropped": [
        ("ICMPv6 dropped in INPUT", _toward6(_dual_stack(E.set_ruleset(
            HEALTHY, E.lab_rules() + ND_DROP))),
         "lab:test"),
        ("INPUT policy DROP", _toward6(_dual_stack(E.set_ruleset(
            HEALTHY, E.lab_rules() + ND_POLICY))),
         "lab:test"),
        ("an arp table drops the requests", E.set_ruleset(HEALTHY, E.lab_rules() + ARP_DROP),
         "lab:test"),
        ("the container's arp table drops the replies", E.edit_container(
            HEALTHY, "test", ruleset=Ruleset(_arp_table([{"drop": None}]))), "lab:test"),
        # toward the gateway itself (a service on the host): no way out, the same question
        ("INPUT policy DROP, toward the gateway's own address", _to_the_host(_dual_stack(
            E.set_ruleset(HEALTHY, E.lab_rules() + ND_POLICY)), "fd00:29::1"), "lab:test"),
        # The answer (a neighbour advertisement to the container's address) dropped where
        # the host sends it, or where the container takes it in: its own INPUT policy DROP
        # with only established traffic let in (NDP is never established).
        ("the host's OUTPUT drops the advertisements", _toward6(_dual_stack(E.set_ruleset(
            HEALTHY, E.lab_rules() + ND_OUT_DROP))), "lab:test"),
        ("the container's INPUT policy DROP", _toward6(_dual_stack(E.edit_container(
            HEALTHY, "test", ruleset=Ruleset(ND_POLICY)))), "lab:test"),
        ("the container's OUTPUT drops ICMPv6", _toward6(_dual_stack(E.edit_container(
            HEALTHY, "test", ruleset=Ruleset(ND_OUT_DROP)))), "lab:test")],
    "ipv6-ra-ignored": [("RA default route expired", _toward6(_ra_expired(HEALTHY)),
                         "lab:test")],
    "datapath-unseen": [("clsact on the host veth", _with_tc_hook(HEALTHY, "veth-test"),
                         "lab:test"),
                        ("XDP on the uplink", E.edit_host_ns(HEALTHY, lambda ns: E.link(
                            ns, "eth0", xdp="mode 2 prog 17")), "lab:test")],
    "vtep-no-route": [
        ("a blackhole route for the remote VTEP", _vtep_refused(
            "Invalid argument", [E.route("192.168.77.2/32", None, type_="blackhole")]),
         POD_SUBJECT)],
    "vxlan-fdb-missing": [("FDB entry deleted", _flannel(_without_fdb), POD_SUBJECT),
                          ("the FDB sends the endpoint elsewhere than its engine says",
                           _docker_overlay(FLANNEL, "192.168.77.9"), POD_SUBJECT)],
    "overlay-endpoint-missing": [
        ("the FDB sends an endpoint elsewhere than its engine says",
         _docker_overlay(FLANNEL, "192.168.77.9"), "host " + FLANNEL_HOST),
        ("no neighbour entry for an endpoint the engine lists",
         _docker_overlay(_flannel(_without_tunnel_neighbours), "192.168.77.2"),
         "host " + FLANNEL_HOST)],
    "vxlan-port-blocked": [
        ("INPUT drops UDP 8472", E.set_ruleset(FLANNEL, iptables_save.parse_iptables_save(
            "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p udp -m udp --dport 8472 -j DROP\n"
            "COMMIT\n", "iptables-nft", "ip"), name=POD), POD_SUBJECT),
        ("INPUT policy drop", E.set_ruleset(FLANNEL, iptables_save.parse_iptables_save(
            "*filter\n:INPUT DROP [0:0]\n-A INPUT -i lo -j ACCEPT\nCOMMIT\n",
            "iptables-nft", "ip"), name=POD), POD_SUBJECT),
        # before routing (raw), and on the way out: OUTPUT drops what this host sends
        ("raw PREROUTING drops UDP 8472", E.set_ruleset(FLANNEL, iptables_save.parse_iptables_save(
            "*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
            "-A PREROUTING -p udp -m udp --dport 8472 -j DROP\nCOMMIT\n",
            "iptables-nft", "ip"), name=POD), POD_SUBJECT),
        ("OUTPUT drops UDP 8472", E.set_ruleset(FLANNEL, iptables_save.parse_iptables_save(
            "*filter\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
            "-A OUTPUT -p udp -m udp --dport 8472 -j DROP\nCOMMIT\n",
            "iptables-nft", "ip"), name=POD), POD_SUBJECT)],
    "vxlan-neighbour-missing": [("neighbour deleted", _flannel(_without_tunnel_neighbours),
                                 POD_SUBJECT)],
    "overlay-peer-incomplete": [
        ("the peer's FDB entry deleted", _flannel(_without_fdb), "host " + FLANNEL_HOST),
        ("the peer's neighbour deleted", _flannel(_without_tunnel_neighbours),
         "host " + FLANNEL_HOST),
        ("the peer's route deleted, the subnet file read",
         _flannel_intent(FLANNEL, route_to_peer=False), "host " + FLANNEL_HOST),
        ("the peer's FDB entry sends to this host", _flannel(lambda ns: _fdb_to(
            ns, "192.168.77.1")), "host " + FLANNEL_HOST)],
    "vxlan-checksum-offload": [("offload on, UDP checksum errors counted",
                                _flannel_offloads(errors=7), "host " + FLANNEL_HOST)],
    "bgp-session-down": [
        ("the peer refuses the connection", _bgp_sessions(
            ROUTED, ESTABLISHED, ("Active", "start", "Socket: Connection refused")),
         "host " + ROUTED_HOST),
        ("switched off on this node", _bgp_sessions(ROUTED, ("Down", "down", None)),
         "host " + ROUTED_HOST)],
    "peer-route-missing": [("flannel's route to the peer's pod subnet deleted",
                            _flannel_intent(FLANNEL, route_to_peer=False), POD_SUBJECT),
                           ("no route BIRD wrote for the peer's block", _bgp(ROUTED),
                            "lab:test")],
    "vxlan-device-down": [("flannel.1 down", _flannel(lambda ns: E.without_flag(
        ns, "flannel.1")), POD_SUBJECT)],
    "overlay-mtu": [("tunnel MTU 1500 on a 1500 underlay", _flannel(lambda ns: E.link(
        ns, "flannel.1", mtu=1500)), POD_SUBJECT)],
    "port-not-published": [("asked for a port nothing publishes", _published(
        port={"host_port": 9090, "container_port": None, "proto": "tcp", "host_ip": "",
              "source": "asked"}), "lab:test")],
    "publish-dnat-missing": [("DNAT flushed", _published(dnat=""), "lab:test"),
                             ("DNAT to a stale address", _published(dnat=DNAT.replace(
                                 "172.29.0.2:80", "172.29.0.9:80")), "lab:test"),
                             # the runtime publishes container port 80; the rule says 81
                             ("DNAT to another port", _published(dnat=DNAT.replace(
                                 "172.29.0.2:80", "172.29.0.2:81")), "lab:test")],
    "inbound-dropped": [("DOCKER-USER-style drop of the port", _published(
        user_rule="-A NDLAB-USER -p tcp -m tcp --dport 80 -j DROP\n"), "lab:test"),
                        ("the port's connections untracked before their DNAT",
                         _published_untracked(), "lab:test")],
    "container-not-listening": [("no listener", _published(listeners=()), "lab:test")],
    "port-published-on-loopback": [("-p 127.0.0.1:8080:80", _published(
        port=LOOPBACK_PORT, dnat=LOOPBACK_DNAT), "lab:test")],
    "hairpin-nat-broken": [("hairpin_mode off", _hairpin(hairpin=False), "lab:test"),
                           ("no self-MASQUERADE", _hairpin(hairpin=True, masquerade=False),
                            "lab:test")],
    "route-localnet-off": [("127.0.0.1 DNATed out of a bridge without route_localnet",
                            _route_localnet("0"), "lab:test")],
    "container-listens-on-loopback": [("127.0.0.1 only", _published(listeners=("127.0.0.1",)),
                                       "lab:test")],
    "proxy-arp-off": [("proxy_arp off on a Calico-style veth", _routed(proxy_arp="0"),
                       "lab:test")],
    "container-route-missing": [("no host route to a routed container",
                                 _routed(host_route=False), "lab:test")],
    "macvlan-host-isolation": [("macvlan child to its host's address", _macvlan_to_the_host(),
                                "lab:test")],
    "ip-forward-disabled": [
        ("sysctl 0", E.edit_host_ns(HEALTHY, lambda ns: E.sysctl(ns, "net.ipv4.ip_forward", "0")),
         "host ndlab-host"),
        ("forwarding off on the bridge only", E.edit_host_ns(
            HEALTHY, lambda ns: E.sysctl(ns, "net.ipv4.conf.ndbr0.forwarding", "0")),
         "host ndlab-host"),
        ("forwarding off on the uplink only: the answers", E.edit_host_ns(
            HEALTHY, lambda ns: E.sysctl(ns, "net.ipv4.conf.eth0.forwarding", "0")),
         "host ndlab-host")],
    "forward-dropped": [
        ("DROP at top of FORWARD", E.set_ruleset(HEALTHY, E.lab_rules(insert_after(
            ":NDLAB-FORWARD - [0:0]", "-A FORWARD -s 172.29.0.2/32 -j DROP"))), "lab:test"),
        ("REJECT in a custom chain", E.set_ruleset(HEALTHY, E.lab_rules(lambda t: t.replace(
            "-A NDLAB-USER -j RETURN", "-A NDLAB-USER -s 172.29.0.0/24 -p icmp -j REJECT\n"
            "-A NDLAB-USER -j RETURN"))), "lab:test"),
        ("policy DROP, accept rule lost", E.set_ruleset(HEALTHY, E.lab_rules(remove(ACCEPT_OUT))),
         "lab:test"),
        ("native nft table", E.set_ruleset(HEALTHY, E.lab_rules() + native_nft_drop()), "lab:test"),
        ("iptables-legacy FORWARD", E.set_ruleset(HEALTHY, E.lab_rules() + iptables_save.parse_iptables_save(
            "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
            "[7:588] -A FORWARD -i ndbr0 -p icmp -j DROP\nCOMMIT\n", "iptables-legacy")), "lab:test"),
        ("replies dropped", E.set_ruleset(HEALTHY, E.lab_rules(remove(ACCEPT_BACK))), "lab:test"),
        ("raw PREROUTING drops the requests", E.set_ruleset(HEALTHY, E.lab_rules() + RAW_DROP),
         "lab:test"),
        ("a bridge table drops what the port brings in", E.set_ruleset(
            HEALTHY, E.lab_rules() + bridge_family_drop("input", "iifname", "veth-test")),
         "lab:test"),
        ("a bridge table drops what goes out to the port", E.set_ruleset(
            HEALTHY, E.lab_rules() + bridge_family_drop("output", "oifname", "veth-test")),
         "lab:test"),
        ("mangle PREROUTING drops the answers before de-NAT", E.set_ruleset(
            HEALTHY, E.lab_rules() + MANGLE_DROP_ANSWERS), "lab:test"),
        ("the ingress hook of the container's port drops its requests", E.set_ruleset(
            HEALTHY, E.lab_rules() + device_hook_drop("ingress", "veth-test",
                                                      ("ip", "saddr", "172.29.0.2"))),
         "lab:test"),
        ("the uplink's egress hook drops the requests once NATed", E.set_ruleset(
            HEALTHY, E.lab_rules() + device_hook_drop("egress", "eth0",
                                                      ("ip", "saddr", "198.51.100.2"))),
         "lab:test"),
        ("an inet ingress chain on the uplink drops the answers before de-NAT", E.set_ruleset(
            HEALTHY, E.lab_rules() + device_hook_drop("ingress", "eth0",
                                                      ("ip", "daddr", "198.51.100.2"),
                                                      family="inet")), "lab:test"),
        ("the egress hook of the container's port drops the answers", E.set_ruleset(
            HEALTHY, E.lab_rules() + device_hook_drop("egress", "veth-t*", policy="drop")),
         "lab:test"),
    ],
    "snat-foreign-address": [
        ("SNAT to an address nobody here holds", E.set_ruleset(HEALTHY, E.lab_rules(
            lambda t: t.replace(MASQ, "-A POSTROUTING -s 172.29.0.0/24 ! -o ndbr0 -j SNAT "
                                      "--to-source 198.51.100.99"))), "lab:test"),
        ("SNAT to a range and ports, none here", E.set_ruleset(HEALTHY, E.lab_rules(
            lambda t: t.replace(MASQ, "-A POSTROUTING -s 172.29.0.0/24 ! -o ndbr0 -j SNAT "
                                      "--to-source 198.51.100.90-198.51.100.99:1024-65535"))),
         "lab:test")],
    "container-route-bypasses-gateway": [
        ("destination routed on the link", _bypassing(), "lab:test"),
        ("destination routed via another address of the bridge", _bypassing("172.29.0.3"),
         "lab:test")],
    "container-address-off-network": [
        ("10.0.0.2/24 on the 172.29.0.0/24 bridge", _off_network(), "lab:test")],
    "nat-missing": [("MASQUERADE gone", E.set_ruleset(HEALTHY, E.lab_rules(remove(MASQ))),
                     "lab:test"),
                    ("NOTRACK before routing", _untracked(), "lab:test"),
                    ("RETURN before the MASQUERADE", E.set_ruleset(HEALTHY, E.lab_rules(
                        lambda t: t.replace(MASQ, "-A POSTROUTING -s 172.29.0.0/24 -j RETURN\n"
                                            + MASQ))), "lab:test"),
                    ("nft notrack in a raw-priority chain", _untracked(nft_priority=-300),
                     "lab:test"),
                    # netavark's: only what a published port's DNAT marked is masqueraded,
                    # and no rule that marks anything is reached (no port is published)
                    ("only a marked MASQUERADE left", E.set_ruleset(HEALTHY, E.lab_rules(
                        lambda t: t.replace(
                            ":POSTROUTING ACCEPT [0:0]\n", ":POSTROUTING ACCEPT [0:0]\n"
                            ":HOSTPORT-MASQ - [0:0]\n:HOSTPORT-SETMARK - [0:0]\n").replace(
                            MASQ + "\n", "-A POSTROUTING -j HOSTPORT-MASQ\n"
                            "-A HOSTPORT-MASQ -m mark --mark 0x2000/0x2000 -j MASQUERADE\n"
                            "-A HOSTPORT-SETMARK -j MARK --set-xmark 0x2000/0x2000\n"))),
                     "lab:test")],
    "rp-filter-drop": [
        ("strict, container net routed via uplink", E.edit_host_ns(HEALTHY, lambda ns: E.routes(
            E.sysctl(ns, "net.ipv4.conf.all.rp_filter", "1"),
            keep=lambda r: not (r.dst == "172.29.0.0/24" and r.table == "main"),
            add=[E.route("172.29.0.0/24", "eth0", "198.51.100.1")])), "lab:test")],
    "host-no-route": [
        ("kernel says unreachable", E.edit_container(HEALTHY, "test", path=dict(
            E.container(HEALTHY, "test")[1].path,
            route_lookups=[l if l["netns"] != "ndlab-host" else
                           dict(l, dev=None, gateway=None, error="Network is unreachable")
                           for l in E.container(HEALTHY, "test")[1].path["route_lookups"]])),
         "lab:test")],
    "uplink-down": [("eth0 down", E.edit_host_ns(HEALTHY, lambda ns: E.without_flag(ns, "eth0")),
                     "lab:test"),
                    ("eth0 up, no carrier (its peer or cable gone)", E.edit_host_ns(
                        HEALTHY, lambda ns: E.link(E.without_flag(ns, "eth0", "LOWER_UP"),
                                                   "eth0", operstate="DOWN")), "lab:test"),
                    ("a macvlan child's parent down", E.edit_host_ns(
                        _macvlan_out(), lambda ns: E.without_flag(ns, "eth0")), "lab:test")],
    "neighbour-failed": [
        ("the uplink gateway pinned to a MAC it does not answer from",
         _uplink_gateway_pinned(HEALTHY), "lab:test"),
        ("container gateway FAILED", E.edit_container_ns(
            HEALTHY, "test", lambda ns: E.add_neighbour(ns, "172.29.0.1", "eth0", "FAILED")),
         "lab:test"),
        ("gateway cached with a dead MAC", E.edit_container_ns(HEALTHY, "test", lambda ns: replace(
            ns, neighbours=ns.neighbours + (E.Neighbour("172.29.0.1", "eth0", "02:00:00:de:ad:01",
                                                        ("PERMANENT",)),))), "lab:test"),
        ("the host pins the container to another MAC", _host_pins("02:00:00:de:ad:02",
                                                                 "PERMANENT"), "lab:test"),
        ("uplink gateway INCOMPLETE", E.edit_host_ns(
            HEALTHY, lambda ns: E.add_neighbour(ns, "198.51.100.1", "eth0", "INCOMPLETE")),
         "lab:test"),
        ("routed host's uplink gateway FAILED", E.edit_host_ns(
            _routed(), lambda ns: E.add_neighbour(ns, "198.51.100.1", "eth0", "FAILED")),
         "lab:test")],
    "bridge-no-address": [
        ("ndbr0's address taken", E.edit_host_ns(HEALTHY, lambda ns: E.routes(E.link(
            ns, "ndbr0", addresses=()), keep=lambda r: r.dev != "ndbr0")), "lab:test")],
    "bridge-port-blocked": [
        ("veth-test disabled by hand", E.edit_host_ns(HEALTHY, lambda ns: E.link(
            ns, "veth-test", port_state="disabled")), "lab:test"),
        ("both veths isolated ports", _east_west(**{"veth-test": {"isolated": True},
                                                   "veth-web": {"isolated": True}}),
         "lab:test"),
        ("veth-test blocking under STP", E.edit_host_ns(HEALTHY, lambda ns: E.link(E.link(
            ns, "veth-test", port_state="blocking"), "ndbr0", stp=True)), "lab:test")],
    "bridge-port-flood-off": [
        ("veth-test learning and flood off", E.edit_host_ns(HEALTHY, lambda ns: E.link(
            ns, "veth-test", learning=False, unicast_flood=False)), "lab:test"),
        ("veth-test bcast_flood off", E.edit_host_ns(
            HEALTHY, lambda ns: E.link(replace(ns, neighbours=tuple(
                n for n in ns.neighbours if n.dst != "172.29.0.2")), "veth-test",
                broadcast_flood=False)), "lab:test")],
    "bridge-fdb-pinned": [
        ("a sticky static entry for the container's MAC on another port", _pinned(
            "veth-web", "static", sticky=True), "lab:test"),
        ("a static one, and the container's port does not learn", _pinned(
            "veth-web", "static", E.edit_host_ns(HEALTHY, lambda ns: E.link(
                ns, "veth-test", learning=False))), "lab:test"),
        ("a permanent entry (the bridge's own) for it", _pinned("veth-web", "permanent"),
         "lab:test")],
    "container-route-refused": [
        ("a prohibit rule for the destination", _container_refused(
            "Permission denied", [_rule(50, "prohibit", dst="198.18.0.0/15")]), "lab:test"),
        ("a blackhole route for it", _container_refused(
            "Invalid argument", [], [E.route("198.18.0.0/24", None, type_="blackhole")]),
         "lab:test")],
    "arp-disabled": [
        ("ndbr0 NOARP", E.edit_host_ns(HEALTHY, lambda ns: E.link(
            ns, "ndbr0", flags=ns.link(name="ndbr0").flags + ("NOARP",))), "lab:test"),
        ("ndbr0 arp_ignore 8", E.edit_host_ns(HEALTHY, lambda ns: E.sysctl(
            ns, "net.ipv4.conf.ndbr0.arp_ignore", "8")), "lab:test"),
        ("all.arp_ignore 8", E.edit_host_ns(HEALTHY, lambda ns: E.sysctl(
            ns, "net.ipv4.conf.all.arp_ignore", "8")), "lab:test"),
        ("uplink NOARP", E.edit_host_ns(HEALTHY, lambda ns: E.link(
            ns, "eth0", flags=ns.link(name="eth0").flags + ("NOARP",))), "lab:test"),
        ("uplink arp_ignore 8", E.edit_host_ns(HEALTHY, lambda ns: E.sysctl(
            ns, "net.ipv4.conf.eth0.arp_ignore", "8")), "lab:test"),
        ("container eth0 NOARP", E.edit_container_ns(HEALTHY, "test", lambda ns: E.link(
            ns, "eth0", flags=ns.link(name="eth0").flags + ("NOARP",))), "lab:test"),
        ("container answers no ARP", E.edit_container_ns(HEALTHY, "test", lambda ns: E.sysctl(
            ns, "net.ipv4.conf.eth0.arp_ignore", "8")), "lab:test")],
    "destination-shadowed": [
        ("a second bridge holds the destination's /24", _shadowed(), "lab:test")],
    "bridge-down": [("ndbr0 down", E.edit_host_ns(HEALTHY, lambda ns: E.without_flag(ns, "ndbr0")),
                     "lab:test")],
    "bridge-netfilter": [
        ("bridged frames hit FORWARD policy", E.edit_host_ns(
            E.set_ruleset(HEALTHY, E.lab_rules(remove(ACCEPT_BRIDGED))),
            lambda ns: E.sysctl(ns, "net.bridge.bridge-nf-call-iptables", "1")), "lab:test"),
        ("a rule for the bridged frames alone", _bridged_drop(
            "-A NDLAB-USER -i ndbr0 -o ndbr0 -j DROP\n"), "lab:test")],
    "neighbour-table-full": [
        ("new entries refused during the run", _with_neighbour_tables(
            HEALTHY, entries=1024, table_fulls=600, table_fulls_during_run=488),
         "host ndlab-host"),
        ("full, and refused entries since boot", _with_neighbour_tables(
            HEALTHY, entries=1030, table_fulls=12), "host ndlab-host"),
        ("above gc_thresh2", _with_neighbour_tables(HEALTHY, entries=700), "host ndlab-host")],
    "conntrack-full": [("99% full", E.edit_host_ns(HEALTHY, lambda ns: E.sysctl(E.sysctl(
        ns, "net.netfilter.nf_conntrack_count", "260000"), "net.netfilter.nf_conntrack_max",
        "262144")), "host ndlab-host")],
    "iptables-backend-split": [
        ("legacy rules beside nft", E.set_ruleset(HEALTHY, E.lab_rules() + iptables_save.parse_iptables_save(
            "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
            "-A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n", "iptables-legacy")),
         "host ndlab-host")],
    "subnet-overlap": [("a /16 via the uplink", E.edit_host_ns(HEALTHY, lambda ns: E.routes(
        ns, add=[E.route("172.29.0.0/16", "eth0", "198.51.100.1")])), "lab:test")],
    "container-no-interface": [
        ("only lo", E.edit_container_ns(HEALTHY, "test", lambda ns: replace(
            ns, links=tuple(l for l in ns.links if l.is_loopback))), "lab:test")],
    "container-loopback-down": [
        ("lo down, the nameserver Docker's embedded one on it", E.edit_container_ns(
            E.edit_container(HEALTHY, "test", resolv_conf="nameserver 127.0.0.11\n"), "test",
            lambda ns: E.without_flag(ns, "lo")), "lab:test")],
    "container-link-down": [("eth0 down", E.edit_container_ns(
        HEALTHY, "test", lambda ns: E.without_flag(ns, "eth0")), "lab:test")],
    "container-no-address": [("no address", E.edit_container_ns(
        HEALTHY, "test", lambda ns: E.link(ns, "eth0", addresses=())), "lab:test")],
    "container-no-default-route": [("default route deleted", E.edit_container_ns(
        HEALTHY, "test", lambda ns: E.routes(ns, keep=lambda r: not r.is_default)), "lab:test")],
    "container-wrong-gateway": [
        ("gateway not the bridge", E.edit_container_ns(HEALTHY, "test", lambda ns: E.routes(
            ns, keep=lambda r: not r.is_default,
            add=[E.route("default", "eth0", "172.29.0.254")])), "lab:test"),
        ("gateway off-link", E.edit_container_ns(HEALTHY, "test", lambda ns: E.routes(
            ns, keep=lambda r: not r.is_default, add=[E.route("default", "eth0", "10.9.9.9")])),
         "lab:test")],
    "veth-down": [("veth-test down", E.edit_host_ns(
        HEALTHY, lambda ns: E.without_flag(ns, "veth-test")), "lab:test")],
    "veth-not-attached": [
        ("no master", E.edit_host_ns(HEALTHY, lambda ns: E.link(ns, "veth-test", master=None)),
         "lab:test"),
        ("wrong bridge", E.edit_host_ns(HEALTHY, lambda ns: E.link(
            ns, "veth-test", master=ns.link(name="eth0").ifindex)), "lab:test")],
    "ip-conflict": [("container's address on the uplink", E.edit_host_ns(
        HEALTHY, lambda ns: E.add_address(ns, "eth0", "172.29.0.2", 32)), "lab:test")],
    "dns-unreachable": [
        ("server silent", E.edit_container(HEALTHY, "test", dns_probe=[
            {"server": "203.0.113.53", "answered": False, "rcode": None,
             "error": "no answer within 1 s"}]), "lab:test"),
        ("no nameserver", E.edit_container(HEALTHY, "test", resolv_conf="search lab\n"),
         "lab:test"),
        ("no route to it", E.edit_container_ns(HEALTHY, "test", lambda ns: E.routes(
            ns, keep=lambda r: not r.is_default)), "lab:test")],
    "mtu-mismatch": [("jumbo container", E.edit_container_ns(
        HEALTHY, "test", lambda ns: E.link(ns, "eth0", mtu=9000)), "lab:test")],
    "published-port-bypasses-input": [
        ("ufw-style INPUT deny of the published port", _published(
            user_rule="-A INPUT -p tcp -m tcp --dport 8080 -j DROP\n"), "lab:test")],
    "macvlan-mode-isolation": [
        ("private children", _macvlan_siblings("private"), "lab:test"),
        ("vepa children", _macvlan_siblings("vepa"), "lab:test")],
    "reply-path-asymmetric": [
        ("replies routed back out of the uplink", _reply_routed(
            "eth0", "198.51.100.1"), "lab:test"),
        ("no route back at all", _reply_routed(None, None, "Network is unreachable"),
         "lab:test")],
    "destination-is-local": [
        ("the destination's address on the container's lo", E.edit_container_ns(
            HEALTHY, "test", lambda ns: E.add_address(ns, "lo", "198.18.0.1", 32)), "lab:test")],
    "host-input-dropped": [
        ("INPUT drops the container's requests to the bridge's address", _toward(
            E.set_ruleset(HEALTHY, E.lab_rules() + iptables_save.parse_iptables_save(
                "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -i ndbr0 -p udp --dport 53 -j DROP\n"
                "COMMIT\n", "iptables-legacy")), "172.29.0.1"), "lab:test"),
        ("an INPUT DROP policy, toward the uplink's address", _toward(
            E.set_ruleset(HEALTHY, E.lab_rules() + iptables_save.parse_iptables_save(
                "*filter\n:INPUT DROP [9:540]\n-A INPUT -i lo -j ACCEPT\nCOMMIT\n",
                "iptables-legacy")), "198.51.100.2"), "lab:test")],
    "container-input-dropped": [
        ("INPUT policy DROP without established", E.edit_container(HEALTHY, "test", ruleset=Ruleset(
            iptables_save.parse_iptables_save("*filter\n:INPUT DROP [3:180]\n"
                                              "-A INPUT -i lo -j ACCEPT\nCOMMIT\n",
                                              "iptables-nft", "ip"))), "lab:test"),
        ("the ingress hook of its eth0 drops the answers", E.edit_container(
            HEALTHY, "test", ruleset=Ruleset(device_hook_drop(
                "ingress", "eth0", ("ip", "daddr", "172.29.0.2")))), "lab:test")],
    "container-output-dropped": [
        ("DROP in the container's OUTPUT", E.edit_container(HEALTHY, "test", ruleset=Ruleset(
            iptables_save.parse_iptables_save("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n"
                                   ":OUTPUT ACCEPT [0:0]\n-A OUTPUT -o eth0 -j DROP\nCOMMIT\n",
                                   "iptables-nft", "ip"))), "lab:test"),
        ("OUTPUT policy DROP", E.edit_container(HEALTHY, "test", ruleset=Ruleset(
            iptables_save.parse_iptables_save("*filter\n:OUTPUT DROP [5:300]\n-A OUTPUT -o lo -j ACCEPT\n"
                                   "COMMIT\n", "iptables-nft", "ip"))), "lab:test"),
        ("the egress hook of its eth0 drops all", E.edit_container(HEALTHY, "test", ruleset=Ruleset(
            device_hook_drop("egress", "eth0", policy="drop"))), "lab:test")],
}


def case(check_id, name):
    """The edited snapshot of one named case of CASES."""
    return next(snap for case_name, snap, _ in CASES[check_id] if case_name == name)


def test_every_check_has_a_case():
    assert set(load_all()) == set(CASES)


def test_healthy_snapshots_have_no_findings(healthy_lab, healthy_docker):
    assert run_checks(healthy_lab) == []
    assert run_checks(healthy_docker) == []


def test_a_healthy_flannel_overlay_with_its_intent_has_no_findings():
    assert [(f.id, f.message) for f in run_checks(_flannel_intent(FLANNEL))] == []


def _host_lookup_refused(snap, error, routes=()):
    """HEALTHY's lab host answering error to the forwarding lookup, with routes added."""
    _, test = E.container(snap, "test")
    snap = E.edit_container(snap, "test", path=dict(test.path, route_lookups=[
        l if l["netns"] != "ndlab-host" else dict(l, dev=None, gateway=None, error=error)
        for l in test.path["route_lookups"]]))
    return E.edit_host_ns(snap, lambda ns: E.routes(ns, add=routes))


def _host_no_route(snap):
    return next(f for f in run_checks(snap) if f.id == "host-no-route")


def test_a_refusing_route_is_named_and_deleted_not_a_default_route_added():
    """A blackhole/unreachable/prohibit route over the working default route: the fix
    deletes that route (the most specific of the kernel's answer's type), never adds a
    default route the host already has."""
    for kind, error in (("blackhole", "Invalid argument"), ("unreachable", "No route to host"),
                        ("prohibit", "Permission denied"), ("blackhole", "blackhole route")):
        snap = _host_lookup_refused(HEALTHY, error, [
            E.route("198.0.0.0/8", None, type_=kind),
            E.route("198.18.0.0/24", None, type_=kind),
            E.route("198.18.0.0/25", None, type_="throw")])
        f = _host_no_route(snap)
        assert f"{kind} route (198.18.0.0/24)" in f.message, f.message
        assert f.fix == f"ip netns exec ndlab-host ip route del {kind} 198.18.0.0/24", f.fix
    # in another table: named with it
    f = _host_no_route(_host_lookup_refused(HEALTHY, "Invalid argument", [
        E.route("198.18.0.1/32", None, table="100", type_="blackhole")]))
    assert f.fix == "ip netns exec ndlab-host ip route del blackhole 198.18.0.1/32 table 100"
    # a refusing default route is shown, never deleted
    f = _host_no_route(_host_lookup_refused(HEALTHY, "Permission denied", [
        E.route("default", None, table="7", type_="prohibit")]))
    assert f.fix == "" and f.verify == "ip netns exec ndlab-host ip route show prohibit " \
                                       "default table 7", (f.fix, f.verify)


def test_a_refused_forwarding_lookup_beside_a_working_one_is_a_policy_decision():
    """The host routes the destination itself and refuses to forward the container's
    packets to it (a prohibit rule for their source): a finding that shows the rules, not
    silence. Forwarding off (ip-forward-disabled's) and rp_filter's EXDEV are not this."""
    _, test = E.container(HEALTHY, "test")
    lookups = test.path["route_lookups"]
    host = [l for l in lookups if l["netns"] == "ndlab-host"]
    assert " iif " in host[0]["query"] and host[0]["dev"]

    def refused(error):
        forward = dict(host[0], dev=None, gateway=None, prefsrc=None, error=error)
        plain = dict(host[0], query="ip route get 198.18.0.1")
        return E.edit_container(HEALTHY, "test", path=dict(test.path, route_lookups=[
            l for l in lookups if l["netns"] != "ndlab-host"] + [forward, plain]))

    f = _host_no_route(refused("Permission denied"))
    assert "refuses to forward" in f.message and "ip rule show" in f.verify and not f.fix
    for rp_filter in ("Invalid cross-device link", "Invalid argument"):
        assert "host-no-route" not in ids(run_checks(refused(rp_filter)), "lab:test")
    off = E.edit_host_ns(refused("No route to host"),
                         lambda ns: E.sysctl(ns, "net.ipv4.ip_forward", "0"))
    assert "host-no-route" not in ids(run_checks(off), "lab:test")


def test_a_policy_rule_that_refuses_the_containers_packets_is_named_and_deleted():
    """`ip rule add from 172.29.0.0/24 blackhole`: the host's forwarding lookup for the
    container's packets answers EINVAL (as rp_filter's does), and no route explains it; the
    trace said "unknown". The rules are read: the one that refuses them, for their source,
    incoming interface and destination, is named and deleted (that rule alone); a rule
    whose selectors the packet does not meet, or that refuses another way than the kernel
    said, is not."""
    from netdoctor.diagnose.facts.namespace import PolicyRule

    _, test = E.container(HEALTHY, "test")
    lookups = test.path["route_lookups"]
    host = [l for l in lookups if l["netns"] == "ndlab-host"]

    def refused(error, *rules):
        forward = dict(host[0], dev=None, gateway=None, prefsrc=None, error=error)
        plain = dict(host[0], query="ip route get 198.18.0.1")
        snap = E.edit_container(HEALTHY, "test", path=dict(test.path, route_lookups=[
            l for l in lookups if l["netns"] != "ndlab-host"] + [forward, plain]))
        base = (PolicyRule(0, "inet", "lookup", "local"),
                PolicyRule(32766, "inet", "lookup", "main"))
        return E.edit_host(snap, policy_rules=base + rules)

    blackhole = PolicyRule(100, "inet", "blackhole", src="172.29.0.0/24", iif="ndbr0")
    f = _host_no_route(refused("Invalid argument", blackhole))
    assert "100: from 172.29.0.0/24 iif ndbr0 blackhole" in f.message, f.message
    assert f.fix == ("ip netns exec ndlab-host ip rule del pref 100 from 172.29.0.0/24 "
                     "iif ndbr0 blackhole"), f.fix
    assert f.evidence["policy_rule"] == "100: from 172.29.0.0/24 iif ndbr0 blackhole"
    prohibit = PolicyRule(90, "inet", "prohibit", dst="198.18.0.0/15")
    f = _host_no_route(refused("Permission denied", prohibit))
    assert f.fix.endswith("ip rule del pref 90 to 198.18.0.0/15 prohibit"), f.fix
    # An unreachable rule answers ENETUNREACH (an unreachable route, EHOSTUNREACH)
    unreachable = PolicyRule(95, "inet", "unreachable", src="172.29.0.0/24")
    f = _host_no_route(refused("Network is unreachable", unreachable))
    assert f.fix.endswith("ip rule del pref 95 from 172.29.0.0/24 unreachable"), f.fix
    f = _host_no_route(refused("No route to host", unreachable))
    assert not f.fix and "ip rule show" in f.verify
    # not for this packet: another source, another interface, a mark it does not carry,
    # `not` its own source; nor a rule of another refusal than the kernel's
    for other in (PolicyRule(100, "inet", "blackhole", src="10.0.0.0/8"),
                  PolicyRule(100, "inet", "blackhole", iif="eth0"),
                  PolicyRule(100, "inet", "blackhole", fwmark="0x1"),
                  PolicyRule(100, "inet", "blackhole", src="172.29.0.0/24", invert=True),
                  PolicyRule(100, "inet6", "blackhole"),
                  PolicyRule(100, "inet", "prohibit", src="172.29.0.0/24")):
        found = [f for f in run_checks(refused("Invalid argument", other))
                 if f.id == "host-no-route" and f.subject == "lab:test"]
        assert found == [], (other, found)
    # A rule that sends their source to a table whose default refuses: the route decides,
    # the rule says how they came to it (verify only: a table's default route is not taken)
    leads = PolicyRule(100, "inet", "lookup", "100", src="172.29.0.0/24")
    snap = E.edit_host_ns(refused("No route to host", leads), lambda ns: E.routes(
        ns, add=(E.route("default", None, table="100", type_="unreachable"),)))
    f = _host_no_route(snap)
    assert "an unreachable route (unreachable default table 100), the table the policy " \
           "rule `100: from 172.29.0.0/24 lookup 100` sends them to" in f.message, f.message
    assert not f.fix and f.verify
    # The host's own lookup refused too (a rule for the destination, whoever sends)
    to_all = PolicyRule(50, "inet", "unreachable", dst="198.18.0.0/24")
    snap = E.edit_host(_host_lookup_refused(HEALTHY, "Network is unreachable"),
                       policy_rules=(PolicyRule(0, "inet", "lookup", "local"), to_all))
    f = _host_no_route(snap)
    assert "`50: from all to 198.18.0.0/24 unreachable` refuses it" in f.message, f.message
    assert f.fix == "ip netns exec ndlab-host ip rule del pref 50 to 198.18.0.0/24 unreachable"


def test_no_route_beside_a_default_route_adds_no_default_route():
    """The lookup refused and no refusing route explains it, while a default route exists:
    a policy rule or another table decides; the finding shows them, it adds nothing."""
    f = _host_no_route(_host_lookup_refused(HEALTHY, "Network is unreachable"))
    assert f.fix == "" and "ip rule show" in f.verify and "default" not in f.verify
    assert "default route" in f.message
    # Without any default route, adding one is the fix, but the router to add it by is the
    # network's (its configuration, its DHCP lease): shown, not guessed (the fix was `ip route
    # add default via <gateway> dev <uplink>`, which no shell runs).
    snap = E.edit_host_ns(_host_lookup_refused(HEALTHY, "Network is unreachable"),
                          lambda ns: E.routes(ns, keep=lambda r: not r.is_default))
    f = _host_no_route(snap)
    assert f.fix == "" and f.verify == ("ip netns exec ndlab-host ip -br addr show && "
                                        "ip netns exec ndlab-host ip route show table main")


def test_a_flannel_file_that_describes_another_node_silences_nothing():
    """A subnet file whose node subnet this host holds no address of says nothing about
    this host: peer-route-missing stays silent, and so must nothing else be silenced (it
    hid host-no-route)."""
    from dataclasses import replace

    snap = _flannel_intent(FLANNEL, route_to_peer=False)
    _, pod = E.container(snap, POD)
    host_ns = pod.path["host_netns"]["name"]
    snap = E.edit_container(snap, POD, path=dict(pod.path, route_lookups=[
        l if l["netns"] != host_ns else dict(l, dev=None, gateway=None,
                                             error="Network is unreachable")
        for l in pod.path["route_lookups"]]))
    key = E.host_key(snap, POD)
    hosts = dict(snap.hosts)
    hosts[key] = replace(hosts[key], intent={"flannel": dict(FLANNEL_INTENT["flannel"],
                                                             subnet="10.244.7.1/24")})
    ids_ = {f.id for f in run_checks(replace(snap, hosts=hosts))}
    assert "peer-route-missing" not in ids_ and "host-no-route" in ids_, ids_
    # The file that does describe it: peer-route-missing, and no default-route advice.
    hosts[key] = replace(hosts[key], intent=FLANNEL_INTENT)
    ids_ = {f.id for f in run_checks(replace(snap, hosts=hosts))}
    assert "peer-route-missing" in ids_ and "host-no-route" not in ids_, ids_


def test_inbound_ways_set_up_as_the_runtimes_do_are_no_finding():
    """route_localnet on where 127.0.0.1 is DNATed out; hairpin_mode on with a
    self-MASQUERADE (the passing halves of route-localnet-off and hairpin-nat-broken)."""
    assert "route-localnet-off" not in {f.id for f in run_checks(_route_localnet("1"))}
    ids_ = {f.id for f in run_checks(_hairpin(hairpin=True, masquerade=True))}
    assert "hairpin-nat-broken" not in ids_, ids_


def test_checksum_offload_alone_is_no_finding():
    assert "vxlan-checksum-offload" not in {f.id for f in run_checks(_flannel_offloads(0))}


def test_a_healthy_flannel_overlay_has_no_findings():
    """flannel's own 10.244.0.0/32 on flannel.1 is its VTEP address, not an ip-conflict."""
    assert [(f.id, f.message) for f in run_checks(FLANNEL)] == []


def test_a_healthy_published_port_has_no_findings():
    assert [(f.id, f.message) for f in run_checks(PUBLISHED)] == []


def test_a_healthy_calico_style_routed_container_has_no_findings():
    """A /32 with a link-local gateway reached through a scope-link route is on-link."""
    assert [(f.id, f.message) for f in run_checks(ROUTED) if f.subject == "lab:test"] == []


@pytest.mark.parametrize("check_id, case, snap, subject", [
    (cid, name, snap, subject) for cid, cases in CASES.items() for name, snap, subject in cases])
def test_check_names_its_fault(check_id, case, snap, subject):
    findings = run_checks(snap)
    assert check_id in ids(findings, subject), [(f.id, f.subject) for f in findings]
    f = next(f for f in findings if f.id == check_id and f.subject == subject)
    assert f.evidence and (f.fix or f.verify) and f.message
    assert "{" not in f.fix + f.verify, f.action  # every placeholder filled


def test_a_diagnosis_command_is_a_verify_not_a_fix():
    """A dead nameserver has no one-command fix: its command only shows the fault."""
    f = next(f for f in run_checks(case("dns-unreachable", CASES["dns-unreachable"][0][0]))
             if f.id == "dns-unreachable")
    assert f.fix == "" and "nslookup" in f.verify and f.action.startswith("verify: ")
    assert f.to_dict()["verify"] == f.verify


@pytest.mark.parametrize("check_id, name", [
    ("container-no-default-route", "default route deleted"), ("container-link-down", "eth0 down"),
    ("veth-down", "veth-test down"), ("mtu-mismatch", "jumbo container"),
    ("container-wrong-gateway", "gateway not the bridge")])
def test_a_containers_own_fault_does_not_spill_onto_its_neighbour(check_id, name):
    assert ids(run_checks(case(check_id, name)), "lab:web") == set()


def test_snat_to_an_address_the_host_holds_is_no_finding():
    """SNAT to the uplink's own address (alone, with ports, in a range that holds it, or
    on another device of the host: a routed public address on lo) is a working NAT."""
    for to in ("198.51.100.2", "198.51.100.2:1024-65535", "198.51.100.1-198.51.100.9"):
        snap = E.set_ruleset(HEALTHY, E.lab_rules(lambda t: t.replace(
            MASQ, f"-A POSTROUTING -s 172.29.0.0/24 ! -o ndbr0 -j SNAT --to-source {to}")))
        assert "snat-foreign-address" not in ids(run_checks(snap), "lab:test"), to
    snap = E.edit_host_ns(case("snat-foreign-address", "SNAT to an address nobody here holds"),
                          lambda ns: E.add_address(ns, "lo", "198.51.100.99", 32))
    assert "snat-foreign-address" not in ids(run_checks(snap), "lab:test")
    f = next(f for f in run_checks(case("snat-foreign-address",
                                        "SNAT to an address nobody here holds"))
             if f.id == "snat-foreign-address")
    assert "198.51.100.99" in f.message and "nat-missing" not in ids(
        run_checks(case("snat-foreign-address", "SNAT to an address nobody here holds")),
        "lab:test")


def test_no_default_route_fix_names_the_gateway_of_the_containers_wiring():
    """The fix is runnable as printed: the bridge's address for a bridged container; for a
    routed one (Calico-style, proxy ARP on a host veth without an address) the link-local
    gateway such wiring uses, on-link; the host veth's own address when it has one (ptp)."""
    bridged = E.edit_container_ns(HEALTHY, "test", lambda ns: E.routes(
        ns, keep=lambda r: not r.is_default))
    f = next(f for f in run_checks(bridged) if f.id == "container-no-default-route")
    assert f.fix == "ip netns exec ndlab-test ip route add default via 172.29.0.1 dev eth0"
    routed = E.edit_container_ns(_routed(), "test", lambda ns: E.routes(ns, keep=lambda r: False))
    f = next(f for f in run_checks(routed) if f.id == "container-no-default-route")
    assert f.fix == "ip netns exec ndlab-test ip route add default via 169.254.1.1 dev eth0 " \
                    "onlink", f.fix
    off_link = case("container-wrong-gateway", "gateway off-link")
    f = next(f for f in run_checks(off_link) if f.id == "container-wrong-gateway")
    assert f.fix == "ip netns exec ndlab-test ip route replace default via 172.29.0.1 dev eth0"
    ptp = E.edit_host_ns(routed, lambda ns: E.add_address(ns, "veth-test", "172.29.0.1", 32))
    f = next(f for f in run_checks(ptp) if f.id == "container-no-default-route")
    assert f.fix == "ip netns exec ndlab-test ip route add default via 172.29.0.1 dev eth0 " \
                    "onlink", f.fix


def test_a_dnat_to_another_port_names_the_port_the_runtime_publishes():
    f = next(f for f in run_checks(case("publish-dnat-missing", "DNAT to another port"))
             if f.id == "publish-dnat-missing")
    assert "goes to 172.29.0.2:81, not to the container's 172.29.0.2:80" in f.message, f.message
    assert "container-not-listening" not in ids(run_checks(case(
        "publish-dnat-missing", "DNAT to another port")), "lab:test")


def test_routes_gone_with_a_downed_link_are_its_consequence():
    """ip link set eth0 down takes the container's routes with it: no-default-route beside
    container-link-down says it is that one's consequence."""
    snap = E.edit_container_ns(HEALTHY, "test", lambda ns: E.routes(
        E.without_flag(ns, "eth0"), keep=lambda r: False))
    f = next(f for f in run_checks(snap) if f.id == "container-no-default-route")
    assert f.evidence.get("likely_consequence_of") == ["container-link-down"], f


def _docker_forward(*rules):
    """The lab host's rules with Docker's isolation chain first in FORWARD."""
    def edit(text):
        return text.replace("*filter\n", "*filter\n:DOCKER-ISOLATION-STAGE-1 - [0:0]\n"
                            ":DOCKER-ISOLATION-STAGE-2 - [0:0]\n", 1).replace(
            "-A FORWARD -j NDLAB-USER", "-A FORWARD -j DOCKER-ISOLATION-STAGE-1\n"
            + "".join(r + "\n" for r in rules) + "-A FORWARD -j NDLAB-USER", 1)
    return E.set_ruleset(HEALTHY, E.lab_rules(edit))


def _forward_fix(snap):
    f = next(f for f in run_checks(snap) if f.id == "forward-dropped")
    return f.fix, f.verify, f.message


def test_a_policy_drop_of_the_replies_is_lifted_for_the_replies():
    """FORWARD's policy drops the answers (the accept of established traffic toward the
    bridge is gone): the fix accepts them toward the bridge, not what the bridge sends."""
    snap = E.set_ruleset(HEALTHY, E.lab_rules(remove(
        "-A NDLAB-FORWARD -o ndbr0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT")))
    f = next(f for f in run_checks(snap) if f.id == "forward-dropped")
    assert f.vars["direction"] == "reply", f
    assert f.fix == ("ip netns exec ndlab-host iptables -I FORWARD -o ndbr0 -m conntrack "
                     "--ctstate RELATED,ESTABLISHED -j ACCEPT"), f.fix


def _macvlan_child_of_the_uplink(container_mac_for_gw=None, host_mac_for_gw=None):
    """lab:test as a macvlan child on the uplink's own network (198.51.100.10/24), its
    gateway the host's router 198.51.100.1, with the neighbour entries given."""
    from dataclasses import replace

    _, c = E.container(HEALTHY, "test")
    hops = [h for h in c.path["hops"] if h["role"] in ("container", "uplink")]
    snap = E.edit_container(HEALTHY, "test", path=dict(c.path, mode="macvlan", hops=hops))

    def child(ns):
        ns = E.routes(E.link(ns, "eth0", kind="macvlan", mode="bridge",
                             addresses=(E.Address("inet", "198.51.100.10", 24),)),
                      keep=lambda r: False, add=[E.route("198.51.100.0/24", "eth0"),
                                                 E.route("default", "eth0", "198.51.100.1")])
        if container_mac_for_gw:
            ns = replace(ns, neighbours=(E.Neighbour("198.51.100.1", "eth0",
                                                     container_mac_for_gw, ("PERMANENT",)),))
        return ns
    snap = E.edit_container_ns(snap, "test", child)
    if host_mac_for_gw:
        snap = E.edit_host_ns(snap, lambda ns: replace(ns, neighbours=ns.neighbours + (
            E.Neighbour("198.51.100.1", "eth0", host_mac_for_gw, ("STALE",)),)))
    return snap


def test_a_macvlan_childs_gateway_is_its_parents_router():
    """No default route: the fix names the router the host uses on the parent's network. A
    static entry for that router with another MAC than the host learnt from it is a dead
    gateway MAC; without the host's learnt entry there is nothing to compare with."""
    no_route = E.edit_container_ns(_macvlan_child_of_the_uplink(), "test",
                                   lambda ns: E.routes(ns, keep=lambda r: not r.is_default))
    f = next(f for f in run_checks(no_route) if f.id == "container-no-default-route")
    assert f.fix == "ip netns exec ndlab-test ip route add default via 198.51.100.1 dev eth0"
    dead = _macvlan_child_of_the_uplink("02:00:00:de:ad:09", "02:00:00:00:00:01")
    f = next(f for f in run_checks(dead) if f.id == "neighbour-failed")
    assert "the host learnt it on eth0 as 02:00:00:00:00:01" in f.message, f.message
    assert f.fix == "ip netns exec ndlab-test ip neigh del 198.51.100.1 dev eth0", f.fix
    same = _macvlan_child_of_the_uplink("02:00:00:00:00:01", "02:00:00:00:00:01")
    unknown = _macvlan_child_of_the_uplink("02:00:00:de:ad:09")
    for snap in (same, unknown):
        assert "neighbour-failed" not in ids(run_checks(snap), "lab:test")


def test_docker_isolation_fixes_name_a_network_that_exists():
    """No placeholder: an internal network (Docker drops all but its own subnet) is left by
    connecting to the default bridge network; a network isolated from the destination's
    bridge by connecting to that network (its id is the bridge's name after br-); a drop
    that only walked past the isolation chains is the rule's own (deleted as any rule)."""
    internal = _docker_forward("-A DOCKER-ISOLATION-STAGE-1 ! -d 172.29.0.0/24 -i ndbr0 -j DROP",
                               "-A DOCKER-ISOLATION-STAGE-1 -j RETURN")
    fix, verify, message = _forward_fix(internal)
    assert fix == "docker network connect bridge test" and "internal" in message, message
    past = _docker_forward("-A DOCKER-ISOLATION-STAGE-1 -j RETURN",
                           "-A FORWARD -i ndbr0 ! -o ndbr0 -j DROP")
    fix, verify, message = _forward_fix(past)
    assert fix == "ip netns exec ndlab-host iptables -t filter -D FORWARD 2", fix
    from netdoctor.checks.forward_dropped import docker_network
    assert docker_network("br-7160a0e9803b") == "7160a0e9803b"
    assert docker_network("docker0") == "bridge" and docker_network("eth0") is None


def test_a_nameserver_on_the_containers_loopback_says_what_serves_it():
    """127.0.0.53 in a container: the host's systemd-resolved stub, copied; 127.0.0.11:
    Docker's embedded resolver; other loopback addresses: only the container itself."""
    from netdoctor.diagnose.facts.namespace import Route

    for server, said in (("127.0.0.53", "systemd-resolved stub"),
                         ("127.0.0.11", "Docker's embedded DNS server"),
                         ("127.0.0.1", "the container's own loopback")):
        snap = E.edit_container(HEALTHY, "test", resolv_conf=f"nameserver {server}\n",
                                dns_probe=[{"server": server, "answered": False, "rcode": None,
                                            "error": "Connection refused"}])
        snap = E.edit_container_ns(snap, "test", lambda ns: E.routes(ns, add=[Route(
            dst="127.0.0.0/8", dev="lo", table="local", type="local")]))
        f = next(f for f in run_checks(snap) if f.id == "dns-unreachable")
        assert said in f.message and "Connection refused" in f.message, f.message


def test_checks_judged_while_the_answers_come_equal_checks_of_the_answered_snapshot():
    """run_checks(before, answered=...) keeps the first phase's contexts for the checks that
    need the DNS answers: its findings are those of judging the answered snapshot at once,
    field by field (a silent nameserver, a full neighbour table, both, neither)."""
    from dataclasses import replace

    answered = [case("dns-unreachable", "server silent"), HEALTHY,
                case("neighbour-table-full", CASES["neighbour-table-full"][0][0])]
    for after in answered:
        before = replace(after, containers=tuple(replace(c, dns_probe=None)
                                                 for c in after.containers),
                         hosts={k: replace(h, neighbour_tables=None)
                                for k, h in after.hosts.items()})
        direct = [f.to_dict() for f in run_checks(after)]
        deferred = [f.to_dict() for f in run_checks(before, answered=lambda a=after: a)]
        assert deferred == direct


def test_the_checks_document_is_the_same_with_its_rows_made_while_waiting():
    """checks encodes the target rows before the DNS answers come: the document is the same
    text as encoding them at the end."""
    from netdoctor.diagnose.report import as_json, checks as report, prepare_checks

    snap = case("dns-unreachable", "server silent")
    findings = run_checks(snap)
    assert report(snap, findings, "json", prepared=prepare_checks(snap, "json")) == \
        as_json.checks_json(snap, findings)
    assert prepare_checks(snap, "text") is None


def test_a_gateway_that_is_a_router_on_the_bridges_segment_is_no_wrong_gateway():
    """A LAN bridge (its segment reaches a router beyond the host's containers): the host
    holds an answered neighbour entry for the gateway on the bridge, or the bridge has a
    port that is not a veth. The gateway is then that router, not a mistake. (The third
    way, the host's own route by the gateway, is the live test's LAN bridge.)"""
    from dataclasses import replace

    wrong = case("container-wrong-gateway", "gateway not the bridge")
    assert "container-wrong-gateway" in ids(run_checks(wrong), "lab:test")
    answered = E.edit_host_ns(wrong, lambda ns: replace(ns, neighbours=ns.neighbours + (
        E.Neighbour("172.29.0.254", "ndbr0", "02:00:00:00:00:fe", ("STALE",)),)))
    assert "container-wrong-gateway" not in ids(run_checks(answered), "lab:test")
    unanswered = E.edit_host_ns(wrong, lambda ns: E.add_neighbour(ns, "172.29.0.254", "ndbr0",
                                                                  "FAILED"))
    assert "container-wrong-gateway" in ids(run_checks(unanswered), "lab:test")
    # a NIC enslaved to the bridge (kind None: a plain device)
    nic = E.edit_host_ns(wrong, lambda ns: E.link(ns, "veth-web", kind=None))
    assert "container-wrong-gateway" not in ids(run_checks(nic), "lab:test")
    # the host's own route by the gateway on the bridge (in any table)
    from netdoctor.diagnose.facts.namespace import Route

    routed = E.edit_host_ns(wrong, lambda ns: E.routes(ns, add=(Route(
        dst="10.77.0.0/16", gateway="172.29.0.254", dev="ndbr0", table="100"),)))
    assert "container-wrong-gateway" not in ids(run_checks(routed), "lab:test")
    elsewhere = E.edit_host_ns(wrong, lambda ns: E.routes(ns, add=(Route(
        dst="10.77.0.0/16", gateway="172.29.0.254", dev="eth0"),)))
    assert "container-wrong-gateway" in ids(run_checks(elsewhere), "lab:test")


def test_a_port_that_neither_learns_nor_floods_blocks_unless_the_bridge_holds_the_mac():
    """learning and flood off on the container's port: frames for its MAC go nowhere,
    unless the FDB holds an entry for it on that port (a setup that adds them itself).
    bcast_flood off alone: the kernel still floods the host's own ARP out of it, not the
    other containers' (a warning; an error on the way to that container from one that has
    no entry for it)."""
    from netdoctor.diagnose.facts.namespace import FdbEntry

    f = next(f for f in run_checks(case("bridge-port-flood-off",
                                        "veth-test learning and flood off"))
             if f.id == "bridge-port-flood-off")
    mac = f.vars["mac"]
    assert f.severity == "error" and mac in f.message and "veth-test" in f.message
    assert f.fix == "ip netns exec ndlab-host bridge link set dev veth-test learning on"
    held = E.edit_host_ns(case("bridge-port-flood-off", "veth-test learning and flood off"),
                          lambda ns: replace(ns, fdb=ns.fdb + (
                              FdbEntry("veth-test", mac.upper(), None, "static"),)))
    assert "bridge-port-flood-off" not in ids(run_checks(held), "lab:test")
    elsewhere = E.edit_host_ns(case("bridge-port-flood-off", "veth-test learning and flood off"),
                               lambda ns: replace(ns, fdb=ns.fdb + (
                                   FdbEntry("veth-web", mac, None, "static"),)))
    assert "bridge-port-flood-off" in ids(run_checks(elsewhere), "lab:test")
    learns = E.edit_host_ns(HEALTHY, lambda ns: E.link(ns, "veth-test", learning=True,
                                                       unicast_flood=False))
    assert "bridge-port-flood-off" not in ids(run_checks(learns), "lab:test")
    cut = next(f for f in run_checks(case("bridge-port-flood-off", "veth-test bcast_flood off"))
               if f.id == "bridge-port-flood-off")
    assert cut.severity == "warning" and "bcast_flood on" in cut.fix
    assert "the host's own do" in cut.message
    # On the way to a container whose port holds broadcasts back, the source's ARP for it
    # never arrives: an error while the source holds no entry for it, a warning with one.
    ew = _east_west(**{"veth-web": {"broadcast_flood": False}})
    f = next(f for f in run_checks(ew) if f.id == "bridge-port-flood-off"
             and f.subject == "lab:test")
    assert f.severity == "error" and f.fix.endswith("bridge link set dev veth-web bcast_flood on")
    known = E.edit_container(ew, "test", namespace=replace(
        E.container(ew, "test")[1].namespace, neighbours=(E.Neighbour(
            "172.29.0.3", "eth0", "02:00:00:00:00:03", ("REACHABLE",)),)))
    assert [f.severity for f in run_checks(known) if f.id == "bridge-port-flood-off"
            and f.subject == "lab:test"] == ["warning"]


def test_an_arp_table_that_drops_the_containers_questions_is_the_cause():
    """A native arp table (arptables-nft) drops the ARP requests that come in by the bridge:
    the container never learns its gateway's MAC; the verdict blamed the gateway
    (neighbour-failed). The rule is named and deleted; a rule for requests to another
    address, or for replies only, is not this; nor a policy drop in an output chain."""
    f = next(f for f in run_checks(case("neighbour-discovery-dropped",
                                        "an arp table drops the requests"))
             if f.id == "neighbour-discovery-dropped")
    assert "ARP" in f.message and f.fix == "ip netns exec ndlab-host nft delete rule arp ndt " \
        "in handle 2", f.fix
    elsewhere = _arp_table([
        {"match": {"op": "==", "left": {"payload": {"protocol": "arp", "field": "daddr ip"}},
                   "right": "172.29.0.99"}}, {"drop": None}])
    replies = _arp_table([
        {"match": {"op": "==", "left": {"payload": {"protocol": "arp", "field": "operation"}},
                   "right": "reply"}}, {"drop": None}])
    for chains in (elsewhere, replies):
        snap = E.set_ruleset(HEALTHY, E.lab_rules() + chains)
        assert "neighbour-discovery-dropped" not in ids(run_checks(snap), "lab:test")
    # arptables-nft's rule: the interface and the fixed header of an Ethernet/IPv4 ARP
    arptables = _arp_table([
        {"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "ndbr0"}}] + [
        {"match": {"op": "==", "left": {"payload": {"protocol": "arp", "field": fld}},
                   "right": value}} for fld, value in (("htype", 1), ("hlen", 6), ("plen", 4))
    ] + [{"drop": None}])
    snap = E.set_ruleset(HEALTHY, E.lab_rules() + arptables)
    assert "neighbour-discovery-dropped" in ids(run_checks(snap), "lab:test")
    shut = E.set_ruleset(HEALTHY, E.lab_rules() + _arp_table(policy="drop"))
    f = next(f for f in run_checks(shut) if f.id == "neighbour-discovery-dropped")
    assert f.fix == "ip netns exec ndlab-host nft insert rule arp ndt in iifname ndbr0 accept"


def test_an_unresolved_gateway_that_answers_arp_is_not_said_to_be_silent():
    """netdoctor asks an unresolved next hop itself (one ARP request) and reads the entry
    again. Still INCOMPLETE though the gateway answered: the namespace does not take the
    answers, and flushing the entry (the old fix) changes nothing; the finding says so and
    only shows where to look. Unanswered, it stands as it was."""
    failed = E.edit_container_ns(HEALTHY, "test", lambda ns: replace(
        E.add_neighbour(ns, "172.29.0.1", "eth0", "INCOMPLETE"),
        asked={"172.29.0.1 eth0": ["3a:6c:e6:f3:a6:d9"]}))
    f = next(f for f in run_checks(failed) if f.id == "neighbour-failed")
    assert "answers ARP" in f.message and "3a:6c:e6:f3:a6:d9" in f.message, f.message
    assert not f.fix and f.verify == "ip netns exec ndlab-test nft list ruleset arp", f
    silent = E.edit_container_ns(HEALTHY, "test", lambda ns: replace(
        E.add_neighbour(ns, "172.29.0.1", "eth0", "INCOMPLETE"),
        asked={"172.29.0.1 eth0": []}))
    f = next(f for f in run_checks(silent) if f.id == "neighbour-failed")
    assert "nothing answers ARP" in f.message and "ip neigh del" in f.fix, f


def test_arp_replies_dropped_where_they_leave_or_arrive_are_the_cause():
    """The gateway answers the container's ARP requests, and an arp table drops the answer:
    the container's own (on its way in: the kernel's entry stays INCOMPLETE though the
    gateway answers) or the host's on its way out. neighbour-failed said nothing answers
    ARP, and its fix (flush the entry) changed nothing. The rule is deleted where it is; a
    policy lets the answers in by the container's interface; the questions on their way out
    of the container count too."""
    def found(snap):
        return [f for f in run_checks(snap) if f.id == "neighbour-discovery-dropped"
                and f.subject == "lab:test"]

    own = found(E.edit_container(HEALTHY, "test", ruleset=Ruleset(_arp_table([{"drop": None}]))))
    assert len(own) == 1 and "the answer (from 172.29.0.1)" in own[0].message, own
    assert own[0].fix == "ip netns exec ndlab-test nft delete rule arp ndt in handle 2"
    assert own[0].scope == "container"
    shut = found(E.edit_container(HEALTHY, "test", ruleset=Ruleset(_arp_table(policy="drop"))))
    assert shut[0].fix == "ip netns exec ndlab-test nft insert rule arp ndt in iifname eth0 " \
        "accept", shut
    replies = [{"match": {"op": "==", "left": {"payload": {"protocol": "arp",
                                                           "field": "operation"}},
                          "right": "reply"}}, {"drop": None}]
    host_out = found(E.set_ruleset(HEALTHY, E.lab_rules() + _arp_table(replies,
                                                                       hook="output")))
    assert host_out and "leaving by ndbr0" in host_out[0].message, host_out
    assert host_out[0].fix == "ip netns exec ndlab-host nft delete rule arp ndt out handle 2"
    # the container's own output: its questions
    asks = found(E.edit_container(HEALTHY, "test", ruleset=Ruleset(_arp_table(
        policy="drop", hook="output"))))
    assert asks and "the question" in asks[0].message and asks[0].fix == \
        "ip netns exec ndlab-test nft insert rule arp ndt out oifname eth0 accept", asks
    # requests dropped on the host's way out are not the answers
    requests_out = [{"match": {"op": "==", "left": {"payload": {"protocol": "arp",
                                                                "field": "operation"}},
                               "right": "request"}}, {"drop": None}]
    assert not found(E.set_ruleset(HEALTHY, E.lab_rules() + _arp_table(requests_out,
                                                                       hook="output")))


def test_an_uplink_that_answers_no_arp_is_named_not_the_network_beyond():
    """arp_ignore 8 on the host's uplink: the next hop cannot resolve the host once its
    entry ages, the answers never come back, and the verdict blamed the network beyond
    the host (upstream-no-reply). The uplink is named, where the request was last seen."""
    f = next(f for f in run_checks(case("arp-disabled", "uplink arp_ignore 8"))
             if f.id == "arp-disabled")
    assert "eth0, the uplink" in f.message and f.evidence["stops_at"] == ["uplink"]
    assert f.fix == "ip netns exec ndlab-host sysctl -w net.ipv4.conf.eth0.arp_ignore=0"
    assert "arp-disabled" not in ids(run_checks(E.edit_host_ns(HEALTHY, lambda ns: E.sysctl(
        ns, "net.ipv4.conf.eth0.arp_ignore", "2"))), "lab:test")


def test_a_refusal_by_the_containers_own_kernel_names_the_rule_or_route():
    """`ip rule add to 203.0.113.0/24 prohibit` inside the container: its kernel refuses the
    socket, nothing leaves, and the trace said unknown. The rule (read when the container's
    own lookup was refused) or the refusing route is named and deleted; unread rules give a
    finding that shows them; no default route at all is another finding's."""
    f = next(f for f in run_checks(case("container-route-refused",
                                        "a prohibit rule for the destination"))
             if f.id == "container-route-refused")
    assert "`50: from all to 198.18.0.0/15 prohibit`" in f.message, f.message
    assert f.fix == "ip netns exec ndlab-test ip rule del pref 50 to 198.18.0.0/15 prohibit"
    f = next(f for f in run_checks(case("container-route-refused", "a blackhole route for it"))
             if f.id == "container-route-refused")
    assert f.fix == "ip netns exec ndlab-test ip route del blackhole 198.18.0.0/24", f.fix
    unread = next(f for f in run_checks(_container_refused("Permission denied"))
                  if f.id == "container-route-refused")
    assert not unread.fix and "ip rule show" in unread.verify
    # a rule for another destination, or one refusing otherwise than the kernel said
    for rule in (_rule(50, "prohibit", dst="10.0.0.0/8"), _rule(50, "blackhole")):
        found = [f for f in run_checks(_container_refused("Permission denied", [rule]))
                 if f.id == "container-route-refused"]
        assert found and not found[0].fix, (rule, found)
    gone = E.edit_container_ns(_container_refused("Network is unreachable"), "test",
                               lambda ns: E.routes(ns, keep=lambda r: not r.is_default))
    assert "container-route-refused" not in ids(run_checks(gone), "lab:test")
    # unreachable beside a default route, nothing refusing to show: not a guess at a rule
    assert "container-route-refused" not in ids(run_checks(_container_refused(
        "Network is unreachable", [])), "lab:test")


def test_no_route_to_the_remote_vtep_is_named_not_unknown():
    """A blackhole route for the far host's underlay address: the packets entered the tunnel
    and nothing left; the kernel said IP_OUTNOROUTES and the verdict said unknown (before,
    peer-route-missing, for a peer route that was there). The route is named and deleted;
    with no route at all the finding shows the routes."""
    f = next(f for f in run_checks(case("vtep-no-route", "a blackhole route for the remote VTEP"))
             if f.id == "vtep-no-route")
    assert "192.168.77.2" in f.message and "flannel.1" in f.message
    assert f.fix.endswith("ip route del blackhole 192.168.77.2/32"), f.fix
    none = next(f for f in run_checks(_vtep_refused("Network is unreachable"))
                if f.id == "vtep-no-route")
    assert not none.fix and "ip route get 192.168.77.2" in none.verify
    assert "vtep-no-route" not in ids(run_checks(FLANNEL))


def test_a_nameserver_on_the_host_whose_input_drops_the_queries_is_named():
    """The container's nameserver is the host's own bridge address (a dnsmasq there) and
    the host's INPUT drops UDP 53 from the bridge: the query never reaches the server. The
    finding only showed an nslookup; it names the rule and deletes it. A query INPUT lets
    through stays a silent server (verify)."""
    snap = E.edit_container(HEALTHY, "test", resolv_conf="nameserver 172.29.0.1\n",
                            dns_probe=[{"server": "172.29.0.1", "answered": False,
                                        "rcode": None, "error": "no answer within 1 s"}])
    dropped = E.set_ruleset(snap, E.lab_rules(lambda text: text.replace(
        ":INPUT ACCEPT [0:0]\n", ":INPUT ACCEPT [0:0]\n-A INPUT -i ndbr0 -p udp -m udp "
        "--dport 53 -j DROP\n", 1)))
    f = next(f for f in run_checks(dropped) if f.id == "dns-unreachable")
    assert "-A INPUT -i ndbr0 -p udp -m udp --dport 53 -j DROP" in f.message, f.message
    assert f.fix == "ip netns exec ndlab-host iptables -t filter -D INPUT 1", f.fix
    f = next(f for f in run_checks(snap) if f.id == "dns-unreachable")
    assert not f.fix and f.verify


def test_a_nameserver_the_host_redirects_elsewhere_says_where_the_query_went():
    """The host's nat PREROUTING sends every DNS query from the bridge to another address
    (a redirect to a resolver that is gone): the silent server is not the one the
    container names. The finding says where the query went, and by which rule."""
    silent = E.edit_container(HEALTHY, "test", dns_probe=[
        {"server": "203.0.113.53", "answered": False, "rcode": None,
         "error": "no answer within 1 s"}])
    redirected = E.set_ruleset(silent, E.lab_rules(lambda text: text.replace(
        ":POSTROUTING ACCEPT [0:0]\n", ":POSTROUTING ACCEPT [0:0]\n-A PREROUTING -i ndbr0 -p "
        "udp -m udp --dport 53 -j DNAT --to-destination 203.0.113.99\n", 1)))
    f = next(f for f in run_checks(redirected) if f.id == "dns-unreachable")
    assert "sends the query to 203.0.113.99 instead" in f.message, f.message
    assert f.evidence["translated_by_host"]["203.0.113.53"]["to"] == "203.0.113.99"
    f = next(f for f in run_checks(silent) if f.id == "dns-unreachable")
    assert "instead" not in f.message and "translated_by_host" not in f.evidence


def test_a_dnat_to_another_port_is_no_hairpin_finding_with_a_masquerade_for_that_port():
    """The published port's DNAT goes to the container's port 81, not 80: publish-dnat-
    missing names it. hairpin-nat-broken also fired, its fix a MASQUERADE for port 81,
    which heals nothing."""
    snap = _published(dnat=DNAT.replace("172.29.0.2:80", "172.29.0.2:81"))
    found = ids(run_checks(snap), "lab:test")
    assert "hairpin-nat-broken" not in found, found


def test_forward_drop_names_rule_and_direction():
    snap = case("forward-dropped", "DROP at top of FORWARD")
    f = next(f for f in run_checks(snap) if f.id == "forward-dropped")
    assert f.evidence["rule"] == "-A FORWARD -s 172.29.0.2/32 -j DROP"
    assert f.evidence["position"] == 1 and f.evidence["direction"] == "request"
    legacy = next(f for f in run_checks(case("forward-dropped", "iptables-legacy FORWARD"))
                  if f.id == "forward-dropped")
    assert legacy.evidence["backend"] == "iptables-legacy" and legacy.evidence["packets"] == 7
    assert legacy.fix.endswith("iptables-legacy -t filter -D FORWARD 1")
    reply = next(f for f in run_checks(case("forward-dropped", "replies dropped")) if f.id == "forward-dropped")
    assert reply.evidence["direction"] == "reply" and reply.evidence["policy"] == "drop"
    nft = next(f for f in run_checks(case("forward-dropped", "native nft table")) if f.id == "forward-dropped")
    assert nft.evidence["backend"] == "nft" and "handle 4" in nft.fix


def test_container_output_drop_names_the_containers_rule_and_only_that_container():
    snap = case("container-output-dropped", "DROP in the container's OUTPUT")
    f = next(f for f in run_checks(snap) if f.id == "container-output-dropped")
    assert f.evidence["rule"] == "-A OUTPUT -o eth0 -j DROP" and f.evidence["position"] == 1
    assert f.fix == "ip netns exec ndlab-test iptables -t filter -D OUTPUT 1"
    assert ids(run_checks(snap), "lab:web") == set()
    # Rules that let the traffic out (Docker's DNS redirection, an ACCEPT) are no finding.
    fine = E.edit_container(HEALTHY, "test", ruleset=Ruleset(iptables_save.parse_iptables_save(
        "*filter\n:OUTPUT DROP [0:0]\n-A OUTPUT -o eth0 -j ACCEPT\nCOMMIT\n*nat\n"
        ":OUTPUT ACCEPT [0:0]\n-A OUTPUT -d 127.0.0.11/32 -j DOCKER_OUTPUT\n"
        ":DOCKER_OUTPUT - [0:0]\nCOMMIT\n", "iptables-nft", "ip")))
    assert "container-output-dropped" not in ids(run_checks(fine))


def test_container_output_drop_is_judged_in_the_destinations_family():
    """An IPv4 OUTPUT policy says nothing of what the container sends to an IPv6
    destination; ip6tables' does."""
    def dropping(family):
        return E.edit_container(HEALTHY, "test", ruleset=Ruleset(iptables_save.parse_iptables_save(
            "*filter\n:OUTPUT DROP [5:300]\n-A OUTPUT -o lo -j ACCEPT\nCOMMIT\n",
            "iptables-nft", family)))

    assert "container-output-dropped" not in ids(run_checks(_toward6(_dual_stack(dropping("ip")))))
    f = next(f for f in run_checks(_toward6(_dual_stack(dropping("ip6"))))
             if f.id == "container-output-dropped")
    assert "ip6" in f.evidence["decided_by"] and f.fix.startswith(
        "ip netns exec ndlab-test ip6tables ")


def test_device_hooks_are_judged_on_their_own_devices_only():
    """A netdev chain bound to another container's port, or one with no device known,
    judges nothing of lab:test's path; bound to its port (by name or prefix), it does, and
    the fix deletes its rule or (a policy) only shows the chain."""
    saddr = ("ip", "saddr", "172.29.0.2")
    for devices in (("veth-web",), ()):
        other = tuple(replace(c, devices=devices)
                      for c in device_hook_drop("ingress", "veth-test", saddr))
        assert "forward-dropped" not in ids(
            run_checks(E.set_ruleset(HEALTHY, E.lab_rules() + other)), "lab:test")
    f = next(f for f in run_checks(case(
        "forward-dropped", "the ingress hook of the container's port drops its requests"))
        if f.id == "forward-dropped")
    assert f.evidence["stops_at"] == ["host-veth"] and "ingress hook of veth-test" in f.message
    assert f.fix == "ip netns exec ndlab-host nft delete rule netdev ndt ingress handle 3"
    nat = next(f for f in run_checks(case(
        "forward-dropped", "the uplink's egress hook drops the requests once NATed"))
        if f.id == "forward-dropped")
    assert nat.evidence["packet"].startswith("198.51.100.2 -> ") and \
        nat.evidence["stops_at"] == ["host-veth", "bridge"]
    policy = next(f for f in run_checks(case(
        "forward-dropped", "the egress hook of the container's port drops the answers"))
        if f.id == "forward-dropped")
    assert policy.evidence["direction"] == "reply" and not policy.fix and \
        policy.verify == "ip netns exec ndlab-host nft list chain netdev ndt egress"
    mine = next(f for f in run_checks(case(
        "container-output-dropped", "the egress hook of its eth0 drops all"))
        if f.id == "container-output-dropped")
    assert "egress hook of eth0" in mine.message and not mine.fix and mine.verify


def test_chain_devices_as_the_kernel_dumps_them():
    from netdoctor.diagnose.host import nfnetlink

    import recorded

    netdev, inet = [bytes.fromhex(line) for line in
                    recorded.text("nft-chain-dumps.hex").splitlines() if not line.startswith("#")]
    assert nfnetlink.parse_nft_chain_answers(netdev) == ({
        ("netdev", "f", "c"): ("veth-web", "veth-test"), ("netdev", "f", "d"): ("eth0",),
        ("netdev", "f", "w"): ("vx*",)}, True)
    assert nfnetlink.parse_nft_chain_answers(inet) == ({("inet", "g", "i"): ("ndbr0",)}, True)


def test_icmp_type_rules_are_evaluated_not_guessed():
    def with_rule(rule):
        return E.set_ruleset(HEALTHY, E.lab_rules(insert_after(":NDLAB-FORWARD - [0:0]", rule)))

    def forward(snap):
        return [(f.severity, f.evidence.get("direction")) for f in run_checks(snap)
                if f.id == "forward-dropped" and f.subject == "lab:test"]

    # Dropping "fragmentation needed" (a common hardening mistake) is not dropping echoes.
    assert forward(with_rule("-A FORWARD -p icmp -m icmp --icmp-type 3/4 -j DROP")) == []
    assert forward(with_rule("-A FORWARD -p icmp -m icmp --icmp-type echo-request -j DROP")) \
        == [("error", "request")]
    # Everything but echo requests: the replies coming back are dropped.
    assert forward(with_rule("-A FORWARD -p icmp -m icmp ! --icmp-type 8 -j DROP")) == \
        [("error", "reply")]
    snap = E.set_ruleset(HEALTHY, E.lab_rules() + native_nft_drop("echo-request",
                                                                  ("icmp", "type")))
    assert forward(snap) == [("error", "request")]


def test_icmpv6_type_rules_are_evaluated_not_guessed():
    """ip6tables --icmpv6-type (and nft's icmpv6 type) were matches netdoctor could not
    read: a REJECT of IPv6 echo requests was only "may be dropped", and a rule that accepts
    neighbour solicitations before a DROP of all ICMPv6 was not seen to accept them."""
    head = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"

    def v6(rules):
        chains = iptables_save.parse_iptables_save(head + rules + "COMMIT\n", family="ip6")
        return _toward6(_dual_stack(E.set_ruleset(HEALTHY, E.lab_rules() + chains)))

    def forward(snap):
        return [(f.severity, f.evidence.get("direction")) for f in run_checks(snap)
                if f.id == "forward-dropped" and f.subject == "lab:test"]

    assert forward(v6("-A FORWARD -i ndbr0 -p ipv6-icmp -m icmp6 --icmpv6-type 128 -j "
                      "REJECT\n")) == [("error", "request")]
    assert forward(v6("-A FORWARD -p ipv6-icmp -m icmp6 --icmpv6-type echo-reply -j "
                      "DROP\n")) == [("error", "reply")]
    assert forward(v6("-A FORWARD -p ipv6-icmp -m icmp6 --icmpv6-type packet-too-big -j "
                      "DROP\n")) == []
    # neighbour discovery: solicitations accepted before everything else ICMPv6 is dropped
    nd = v6("-A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type neighbour-solicitation -j ACCEPT\n"
            "-A INPUT -i ndbr0 -p ipv6-icmp -j DROP\n")
    assert "neighbour-discovery-dropped" not in ids(run_checks(nd), "lab:test")
    nd = v6("-A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type echo-request -j ACCEPT\n"
            "-A INPUT -i ndbr0 -p ipv6-icmp -j DROP\n")
    assert "neighbour-discovery-dropped" in ids(run_checks(nd), "lab:test")
    # nft's icmpv6 type, in an inet table
    snap = _toward6(_dual_stack(E.set_ruleset(HEALTHY, E.lab_rules() + native_nft_drop(
        "echo-request", ("icmpv6", "type")))))
    assert forward(snap) == [("error", "request")]
    # ... and an IPv4 `icmp type` does not match an ICMPv6 echo
    snap = _toward6(_dual_stack(E.set_ruleset(HEALTHY, E.lab_rules() + native_nft_drop(
        "echo-request", ("icmp", "type")))))
    assert forward(snap) == []


def test_none_mode_is_a_note_not_an_error():
    _, c = E.container(HEALTHY, "test")
    snap = E.edit_container(case("container-no-interface", "only lo"), "test",
                            target=dict(c.target, network_mode="none"))
    f = next(f for f in run_checks(snap) if f.id == "container-no-interface")
    assert f.severity == "info"


def test_dns_failure_behind_a_broken_path_is_marked_as_consequence():
    snap = E.edit_container(case("ip-forward-disabled", "sysctl 0"), "test", dns_probe=[
        {"server": "203.0.113.53", "answered": False, "rcode": None, "error": "timeout"}])
    f = next(f for f in run_checks(snap) if f.id == "dns-unreachable")
    assert f.evidence["likely_consequence_of"] == ["ip-forward-disabled"]


def test_a_roomy_neighbour_table_or_one_of_permanent_entries_is_no_finding():
    """entries at gc_thresh3 but never a refusal: permanent entries (flannel's, static ARP)
    count in entries and are exempt from the limit."""
    for snap in (_with_neighbour_tables(HEALTHY, entries=100),
                 _with_neighbour_tables(HEALTHY, entries=2000, thresh2=4096,
                                        thresh3=8192, table_fulls=5),
                 _with_neighbour_tables(HEALTHY, entries=1024, thresh2=2048)):
        assert "neighbour-table-full" not in ids(run_checks(snap), "host ndlab-host")


def _silent(after=None):
    probe = {"server": "203.0.113.53", "answered": False, "rcode": None,
             "error": "no answer within 1 s"}
    if after is not None:
        probe["neighbours_after"] = after
    return [probe]


def _gateway_of_test() -> str:
    from netdoctor.checks.context import lookup

    _, c = E.container(HEALTHY, "test")
    return lookup(c.namespace.routes, "203.0.113.53").gateway


def test_a_query_whose_next_hop_never_resolved_never_left():
    """The sender read the container's neighbour entries after the wait: with its gateway
    INCOMPLETE (or absent), the query is still in the kernel's queue, and the nameserver's
    silence says nothing about the nameserver."""
    gw = _gateway_of_test()
    for after in ([[gw, ["INCOMPLETE"]]], []):
        snap = E.edit_container(HEALTHY, "test", dns_probe=_silent(after))
        f = next(f for f in run_checks(snap) if f.id == "dns-unreachable")
        assert f.evidence["next_hop_unresolved"] == {"203.0.113.53": gw}
        assert f"its next hop {gw} was not resolved" in f.message
    snap = E.edit_container(HEALTHY, "test", dns_probe=_silent([[gw, ["REACHABLE"]]]))
    f = next(f for f in run_checks(snap) if f.id == "dns-unreachable")
    assert "next_hop_unresolved" not in f.evidence and "never left" not in f.message


def test_the_full_table_explains_the_dns_failures_whose_queries_never_left():
    full = _with_neighbour_tables(HEALTHY, entries=1024, table_fulls=9, table_fulls_during_run=9)
    gw = _gateway_of_test()
    stuck = E.edit_container(full, "test", dns_probe=_silent([]))
    f = next(f for f in run_checks(stuck) if f.id == "dns-unreachable")
    assert "neighbour-table-full" in f.evidence["likely_consequence_of"]
    # its gateway resolved: the query left, and the table is not why nothing answered
    left = E.edit_container(full, "test", dns_probe=_silent([[gw, ["REACHABLE"]]]))
    f = next(f for f in run_checks(left) if f.id == "dns-unreachable")
    assert "neighbour-table-full" not in f.evidence.get("likely_consequence_of", ())


def test_a_query_netdoctor_could_not_send_is_no_verdict_on_the_nameserver():
    """Out of descriptors (or memory), netdoctor never asked: the nameserver is not to blame,
    and the container is judged as if it were not probed."""
    snap = E.edit_container(HEALTHY, "test", dns_probe=[
        {"server": "203.0.113.53", "answered": False, "rcode": None, "asked": False,
         "error": "not asked: Too many open files"}])
    assert "dns-unreachable" not in ids(run_checks(snap), "lab:test")


def test_a_crashing_check_becomes_an_internal_error(monkeypatch):
    from netdoctor.checks import Check

    class Broken(Check):
        """Always crashes"""
        id = "always-crashes"
        scope = "container"

        def run(self, ctx):
            raise RuntimeError("boom")

    load_all()
    monkeypatch.setitem(REGISTRY, "always-crashes", Broken)
    findings = run_checks(HEALTHY)
    crashed = [f for f in findings if f.id == "internal-error"]
    assert len(crashed) == 2 and "boom" in crashed[0].message  # once per container
    assert not [f for f in findings if f.id not in ("internal-error",)]
    # What to run is a command (the snapshot to attach to the report), not a sentence.
    assert crashed[0].fix == "" and crashed[0].verify == "netdoctor snapshot -o snap.json"


def test_snapshot_survives_json():
    from netdoctor.diagnose.facts.snapshot import Snapshot

    again = Snapshot.from_dict(json.loads(json.dumps(HEALTHY.to_dict())))
    assert again == HEALTHY and run_checks(again) == []
    from netdoctor.diagnose.facts.namespace import PolicyRule
    from netdoctor.diagnose.errors import ParseError

    ruled = E.edit_host(HEALTHY, policy_rules=(
        PolicyRule(100, "inet", "blackhole", src="172.29.0.0/24", iif="ndbr0"),
        PolicyRule(200, "inet6", "lookup", "100", fwmark="0x1/0xff", invert=True,
                   other=("tos 0x10",))))
    assert Snapshot.from_dict(json.loads(json.dumps(ruled.to_dict()))) == ruled
    doc = ruled.to_dict()
    doc["hosts"][E.host_key(ruled)]["policy_rules"][0]["priority"] = "100"
    with pytest.raises(ParseError):
        Snapshot.from_dict(doc)


def test_only_namespaces_that_may_filter_have_their_rules_dumped():
    from netdoctor.diagnose.pipeline.snapshot import _can_filter

    # Docker's DNS redirection (nat only) in every container of a user-defined network: no dump.
    assert not _can_filter(("nft ip nat",)) and not _can_filter(())
    assert _can_filter(("nft ip nat", "nft ip filter"))
    assert _can_filter(("nft inet fw",))  # a native table's chain types are not known yet
    assert _can_filter(("legacy ip mangle",)) and _can_filter(("unknown",))


def _forward_findings(rule):
    snap = E.set_ruleset(HEALTHY, E.lab_rules(insert_after(":NDLAB-FORWARD - [0:0]", rule)))
    return [f for f in run_checks(snap) if f.id == "forward-dropped" and f.subject == "lab:test"]


def test_a_source_port_rule_that_drops_the_containers_requests_is_found():
    # Everything a client sends comes from an ephemeral port (32768-60999 here): a rule on
    # the source port matches it.
    found = _forward_findings("-A FORWARD -i ndbr0 -p tcp -m tcp --sport 1024:65535 -j DROP")
    assert [(f.severity, f.evidence["direction"], f.evidence["flow"]) for f in found] == \
        [("error", "request", "tcp/80")]


def test_a_negated_source_port_rule_does_not_drop_replies_from_that_port():
    # Replies of DNS come *from* port 53: "drop UDP from the uplink unless it is from 53"
    # lets them through. (The old walk had no source port, so `! --sport 53` always matched.)
    assert _forward_findings("-A FORWARD -i eth0 -p udp -m udp ! --sport 53 -j DROP") == []
    # ...and replies of the web flows come from 80 and 443, which such a rule does drop.
    found = _forward_findings("-A FORWARD -i eth0 -p tcp -m tcp ! --sport 53 -j DROP")
    assert [(f.evidence["direction"], f.evidence["flow"]) for f in found] == [("reply", "tcp/80")]


def test_reply_rules_keyed_on_the_service_port_are_found():
    # Replies of the web flow carry source port 80: a rule dropping them is a finding.
    found = _forward_findings("-A FORWARD -i eth0 -p tcp -m tcp --sport 443 -j DROP")
    assert [(f.evidence["direction"], f.evidence["flow"]) for f in found] == \
        [("reply", "tcp/443")]


def test_a_rule_on_part_of_the_ephemeral_range_is_uncertain_not_a_verdict():
    # The client's port is one of 32768-60999, which one is not known before it connects.
    found = _forward_findings("-A FORWARD -i ndbr0 -p tcp -m tcp --sport 40000:50000 -j DROP")
    assert [(f.severity, f.evidence["direction"]) for f in found] == [("warning", "request")]


def test_queued_packets_are_uncertain_in_both_rule_languages():
    # A packet queued to user space is dropped, accepted or changed by the program that
    # listens (an IPS); without one it is dropped unless the rule says bypass. iptables
    # NFQUEUE passed silently and nft queue was a certain drop: both are "may be dropped".
    nfqueue = _forward_findings("-A FORWARD -i ndbr0 -j NFQUEUE --queue-num 1")
    nft = E.set_ruleset(HEALTHY, E.lab_rules() + nft_json.parse_nft_json({"nftables": [
        {"chain": {"family": "inet", "table": "ips", "name": "fwd", "type": "filter",
                   "hook": "forward", "prio": -10, "policy": "accept"}},
        {"rule": {"family": "inet", "table": "ips", "chain": "fwd", "handle": 2,
                  "expr": [{"queue": {"num": 1}}]}}]}))
    queued = [f for f in run_checks(nft) if f.id == "forward-dropped" and f.subject == "lab:test"]
    assert [(f.severity, f.evidence["direction"]) for f in nfqueue] == [("warning", "request")]
    # The nft rule queues whatever crosses FORWARD, replies too.
    assert [(f.severity, f.evidence["direction"]) for f in queued] == \
        [("warning", "request"), ("warning", "reply")]
    assert "user-space program" in queued[0].message


def test_nft_rules_of_ip6_are_shown_as_ip6():
    chains = nft_json.parse_nft_json({"nftables": [
        {"chain": {"family": "ip6", "table": "f", "name": "c", "type": "filter",
                   "hook": "forward", "prio": 0, "policy": "accept"}},
        {"rule": {"family": "ip6", "table": "f", "chain": "c", "handle": 3, "expr": [
            {"match": {"op": "==", "left": {"payload": {"protocol": "ip6", "field": "saddr"}},
                       "right": {"prefix": {"addr": "fd00::", "len": 64}}}}, {"drop": None}]}},
        {"chain": {"family": "inet", "table": "f", "name": "c", "type": "filter",
                   "hook": "forward", "prio": 0, "policy": "accept"}},
        {"rule": {"family": "inet", "table": "f", "chain": "c", "handle": 4, "expr": [
            {"match": {"op": "==", "left": {"payload": {"protocol": "ip6", "field": "daddr"}},
                       "right": "2001:db8::80"}}, {"drop": None}]}}]})
    assert [r.text for c in chains for r in c.rules] == ["ip6 saddr fd00::/64 drop",
                                                         "ip6 daddr 2001:db8::80 drop"]


def _unread_host_rules(**sources):
    """The healthy lab with a host whose rule dumps failed: nothing was read."""
    snap = E.set_ruleset(HEALTHY, ())
    key = E.host_key(snap)
    hosts = dict(snap.hosts)
    reported = dict(hosts[key].ruleset.sources, **sources)
    hosts[key] = replace(hosts[key], ruleset=Ruleset((), reported), namespace=replace(
        hosts[key].namespace, netfilter_tables=("nft ip filter", "nft ip nat")))
    return replace(snap, hosts=hosts)


def test_rules_that_could_not_be_read_are_not_judged_and_say_why():
    # iptables-nft-save failed and nft is not installed: the ruleset is empty because it was
    # not read. That is no "no NAT" (a false nat-missing) and no silent pass for FORWARD.
    snap = _unread_host_rules(**{"iptables-nft-save": "iptables-nft-save: table 'filter' is "
                                                       "incompatible, use 'nft' tool.",
                                 "nft": "not installed"})
    findings = [f for f in run_checks(snap) if f.subject == "lab:test"]
    assert [f.id for f in findings] == ["not-judged"]
    f = findings[0]
    assert f.severity == "warning"
    assert {"forward-dropped", "nat-missing", "bridge-netfilter"} <= set(f.evidence["checks"])
    assert "incompatible" in f.message and "forward-dropped" in f.message
    host = [f for f in run_checks(snap) if f.subject == "host ndlab-host"]
    assert [f.id for f in host] == ["not-judged"]
    assert host[0].evidence["checks"] == ["iptables-backend-split"]


def test_a_reader_that_is_missing_where_another_read_the_rules_is_no_gap():
    # iptables-nft-save failed but nft read every table: judged as usual.
    snap = E.set_ruleset(HEALTHY, E.lab_rules())
    key = E.host_key(snap)
    hosts = dict(snap.hosts)
    hosts[key] = replace(hosts[key], ruleset=replace(hosts[key].ruleset, sources=dict(
        hosts[key].ruleset.sources, **{"iptables-nft-save": "some error", "nft": "ok"})))
    assert run_checks(replace(snap, hosts=hosts)) == []


def test_traffic_is_judged_from_the_source_address_the_kernel_would_pick():
    # eth0 holds 10.9.9.9/24 first and 172.29.0.2/24 second; the default route's gateway is
    # in the second's network, so the kernel sends from 172.29.0.2, which the lab's NAT
    # and FORWARD rules expect. Judged from the first address, it was a false nat-missing
    # and forward-dropped.
    def two_addresses(ns):
        link = ns.link(name="eth0")
        return E.link(ns, "eth0", addresses=(E.Address("inet", "10.9.9.9", 24),)
                      + link.addresses)

    snap = E.edit_container_ns(HEALTHY, "test", two_addresses)
    assert ids(run_checks(snap), "lab:test") == set()
    # A route's src hint wins: the kernel's own answer, when recorded, says which.
    _, c = E.container(snap, "test")
    hinted = E.edit_container(snap, "test", path=dict(c.path, route_lookups=[
        dict(l, prefsrc="10.9.9.9") if l["netns"] == "ndlab-test" else l
        for l in c.path["route_lookups"]]))
    assert "nat-missing" in ids(run_checks(hinted), "lab:test")


def test_ipv6_checks_judge_ipv6_only():
    """Toward an IPv4 destination the container's IPv6 does not decide anything: a failed
    duplicate address detection is a warning, IPv6 switched off is nothing."""
    assert "container-ipv6-disabled" not in ids(run_checks(_ipv6_disabled(HEALTHY)))
    dad = [f for f in run_checks(_dad_failed(HEALTHY)) if f.id == "ipv6-dad-failed"]
    assert [f.severity for f in dad] == ["warning"]
    assert "ipv6-ra-ignored" not in ids(run_checks(_ra_expired(HEALTHY)))


def test_an_ipv4_only_container_toward_ipv6_has_no_address_of_that_family():
    found = run_checks(_toward6(HEALTHY))
    f = next(f for f in found if f.id == "container-no-address")
    assert "no global IPv6 address" in f.message and f.subject == "lab:test"
    # Its missing gateway and route are the same fault, not findings of their own.
    assert not {"container-no-default-route", "container-wrong-gateway"} & ids(found, "lab:test")


def test_healthy_dual_stack_has_no_ipv6_findings():
    """(The recorded lab has no NAT66 rule: nat-missing is right, and not judged here.)"""
    wiring = {"container-ipv6-disabled", "ipv6-dad-failed", "ipv6-ra-ignored",
              "container-no-address", "container-wrong-gateway", "container-no-default-route",
              "ip-forward-disabled", "host-no-route"}
    assert [(f.id, f.message) for f in run_checks(_toward6(_dual_stack(HEALTHY)))
            if f.id in wiring and f.subject in ("lab:test", "host ndlab-host")] == []


@pytest.mark.parametrize("accept_ra, route, severity", [
    ("1", None, "error"), ("1", _ra_route(300), "warning"), ("2", None, None),
    ("0", None, None)])
def test_ra_ignored_by_accept_ra(accept_ra, route, severity):
    """accept_ra = 2 takes RAs while forwarding (nothing to say); 0 never takes them (the
    address is not SLAAC's doing); 1 with an RA route still there is a warning of expiry."""
    found = [f for f in run_checks(_toward6(_ra_expired(HEALTHY, accept_ra, route)))
             if f.id == "ipv6-ra-ignored" and f.subject == "lab:test"]
    assert [f.severity for f in found] == ([severity] if severity else [])
    if severity == "warning":
        assert "expire in 300 s" in found[0].message


def _input_rules(text):
    return E.edit_container(HEALTHY, "test", ruleset=Ruleset(
        iptables_save.parse_iptables_save(text, "iptables-nft", "ip")))


def test_a_container_firewall_that_accepts_its_answers_is_no_finding():
    """The classic hardened container: INPUT DROP, established accepted. Its answers come
    back: nothing to say. As a trace's destination, a new request from another container is
    dropped: that is said, with the rule."""
    from netdoctor.checks import REGISTRY
    from netdoctor.checks.context import contexts

    snap = _input_rules("*filter\n:INPUT DROP [0:0]\n-A INPUT -m conntrack --ctstate "
                        "RELATED,ESTABLISHED -j ACCEPT\nCOMMIT\n")
    assert "container-input-dropped" not in ids(run_checks(snap), "lab:test")
    ctx = next(c for c in contexts(snap) if c.subject == "lab:test")
    check = REGISTRY["container-input-dropped"]()
    f = check.for_request(ctx, "172.29.0.3", "tcp", 80)
    assert f is not None and "the request from 172.29.0.3 (tcp/80)" in f.message, f
    assert "policy drop" in f.message and f.fix.startswith("ip netns exec ndlab-test iptables")
    assert check.for_request(ctx, "172.29.0.3", "icmp", None) is not None
    allowed = _input_rules("*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp --dport 80 -j ACCEPT\n"
                           "COMMIT\n")
    ctx = next(c for c in contexts(allowed) if c.subject == "lab:test")
    assert check.for_request(ctx, "172.29.0.3", "tcp", 80) is None


def test_an_underlay_firewall_that_admits_the_overlay_is_no_finding():
    snap = E.set_ruleset(FLANNEL, iptables_save.parse_iptables_save(
        "*filter\n:INPUT DROP [0:0]\n-A INPUT -p udp -m udp --dport 8472 -j ACCEPT\nCOMMIT\n",
        "iptables-nft", "ip"), name=POD)
    assert "vxlan-port-blocked" not in ids(run_checks(snap))


def test_the_route_that_sends_the_replies_elsewhere_is_the_fix():
    """Where the host's routes say which route took the replies (a more specific route out
    of the uplink, a blackhole for the container, one in the table a policy rule sends them
    to), its deletion is the fix; a default route, a connected route or an answer the
    routes do not explain is only shown."""
    from netdoctor.diagnose.facts.namespace import PolicyRule, Route

    def routed(route, dev, gateway, error=None, rules=None):
        snap = E.edit_host_ns(_reply_routed(dev, gateway, error),
                              lambda ns: E.routes(ns, add=[route]))
        if rules is not None:
            snap = E.edit_host(snap, policy_rules=tuple(rules))
        return next(f for f in run_checks(snap) if f.id == "reply-path-asymmetric")

    f = routed(Route("172.29.0.2/32", dev="eth0"), "eth0", None)
    assert f.fix == "ip netns exec ndlab-host ip route del unicast 172.29.0.2/32" and \
        f.evidence["route"] == "unicast 172.29.0.2/32 (table main)", f
    f = routed(Route("172.29.0.0/25", type="blackhole"), None, None, "Invalid argument")
    assert f.fix == "ip netns exec ndlab-host ip route del blackhole 172.29.0.0/25", f
    rules = [PolicyRule(32766, "inet", "lookup", "main"),
             PolicyRule(100, "inet", "lookup", "300", src="198.18.0.0/16",
                        dst="172.29.0.0/24")]
    f = routed(Route("172.29.0.0/24", gateway="198.51.100.1", dev="eth0", table="300"),
               "eth0", "198.51.100.1", rules=rules)
    assert f.fix == "ip netns exec ndlab-host ip route del unicast 172.29.0.0/24 table 300"
    assert f.evidence["policy_rule"].startswith("100: from 198.18.0.0/16"), f.evidence
    # The host's own route out of the uplink (its connected network): only shown.
    f = routed(Route("172.29.0.0/25", dev="eth0", protocol="kernel", scope="link"), "eth0",
               None)
    assert not f.fix and f.verify
    # A route the kernel did not answer by (another gateway): only shown.
    f = routed(Route("172.29.0.2/32", gateway="198.51.100.9", dev="eth0"), "eth0",
               "198.51.100.1")
    assert not f.fix and f.verify
    # Deleting the route would leave none that leads to the bridge (its own is gone too):
    # only shown, as the deletion would not bring the replies back.
    snap = E.edit_host_ns(_reply_routed("eth0", None), lambda ns: E.routes(
        ns, add=[Route("172.29.0.2/32", dev="eth0")],
        keep=lambda r: not (r.dst == "172.29.0.0/24" and r.dev == "ndbr0")))
    f = next(f for f in run_checks(snap) if f.id == "reply-path-asymmetric")
    assert not f.fix and f.verify
    # The bridge's own route is gone and the replies follow the default route out: the
    # fix puts the bridge's route back (the default route is never touched).
    snap = E.edit_host_ns(_reply_routed("eth0", "198.51.100.1"), lambda ns: E.routes(
        ns, keep=lambda r: not (r.dst == "172.29.0.0/24" and r.dev == "ndbr0")))
    f = next(f for f in run_checks(snap) if f.id == "reply-path-asymmetric")
    assert f.fix == ("ip netns exec ndlab-host ip route add 172.29.0.0/24 dev ndbr0 proto "
                     "kernel scope link src 172.29.0.1"), f


def test_a_refusal_the_kernel_made_for_the_probe_names_its_table_and_rule():
    """The trace's journal says the host's lookup for the probe went to table 207 and met
    an unreachable route (the packet was marked; `ip route get` without the mark sees
    main). The finding names the table's route and the rule that leads there; only a route
    that is not a default one is deleted by the fix."""
    from netdoctor.checks.context import contexts
    from netdoctor.diagnose.facts.namespace import PolicyRule, Route

    def judged(route):
        snap = E.edit_host_ns(HEALTHY, lambda ns: E.routes(ns, add=[route]))
        snap = E.edit_host(snap, policy_rules=(
            PolicyRule(50, "inet", "lookup", "207", fwmark="0x7"),
            PolicyRule(32766, "inet", "lookup", "main")))
        ctx = next(c for c in contexts(snap) if c.subject == "lab:test")
        decision = {"hop": "bridge", "direction": "request", "kind": "route", "table": "207",
                    "error": -113 if route.type == "unreachable" else -13,
                    "said": "table 207 iif ndbr0: 172.29.0.2 -> 198.18.0.1 ==> refused"}
        load_all()
        return list(REGISTRY["host-no-route"]().for_decision(ctx, decision))

    [f] = judged(Route("default", type="unreachable", table="207"))
    assert "table 207" in f.message and "fwmark 0x7" in f.message and not f.fix
    assert f.verify.endswith("ip route show table 207") and \
        f.evidence["policy_rules"] == ["50: from all fwmark 0x7 lookup 207"]
    [f] = judged(Route("198.18.0.0/16", type="prohibit", table="207"))
    assert f.fix == "ip netns exec ndlab-host ip route del prohibit 198.18.0.0/16 table 207"


def test_replies_refused_because_the_uplink_does_not_forward_are_not_misrouted():
    """With forwarding off on the uplink the kernel refuses the replies' lookup (No route
    to host): ip-forward-disabled says why, and reply-path-asymmetric stays silent."""
    snap = E.edit_host_ns(_reply_routed(None, None, "No route to host"),
                          lambda ns: E.sysctl(ns, "net.ipv4.conf.eth0.forwarding", "0"))
    found = run_checks(snap)
    assert "reply-path-asymmetric" not in ids(found) and "ip-forward-disabled" in ids(found)


def test_a_container_routed_by_a_policy_rule_has_a_route_out():
    """The container's default route is in table 100, which a policy rule of its own looks
    up: it has a way out, and its nameserver is routed. Judged by main alone, it had no
    default route and no route to its nameserver (two errors on a reachable path)."""
    from netdoctor.diagnose.facts.namespace import PolicyRule, Route

    def moved(rules):
        snap = E.edit_container_ns(HEALTHY, "test", lambda ns: E.routes(
            ns, keep=lambda r: not r.is_default,
            add=[Route("default", gateway="172.29.0.1", dev="eth0", table="100")]))
        _, c = E.container(snap, "test")
        return E.edit_container(snap, "test", policy_rules=rules)

    rules = (PolicyRule(0, "inet", "lookup", "local"), PolicyRule(100, "inet", "lookup", "100"),
             PolicyRule(32766, "inet", "lookup", "main"))
    found = ids(run_checks(moved(rules)), "lab:test")
    assert "container-no-default-route" not in found and "dns-unreachable" not in found, found
    # Without a rule that looks table 100 up, the route there is no way out.
    found = ids(run_checks(moved(rules[:1] + rules[2:])), "lab:test")
    assert "container-no-default-route" in found


def test_what_the_container_sends_to_the_host_itself_meets_input_not_forward():
    """Toward an address of the host the request is delivered, not forwarded: INPUT
    decides. A rule there is deleted by the fix; a DROP policy gets an ACCEPT of the flow
    alone from the bridge; a published port's DNAT sends it elsewhere (not judged here);
    and toward the internet INPUT plays no part."""
    f = next(f for f in run_checks(case(
        "host-input-dropped", "INPUT drops the container's requests to the bridge's address"))
        if f.id == "host-input-dropped")
    assert f.fix == "ip netns exec ndlab-host iptables-legacy -t filter -D INPUT 1"
    assert f.evidence["flows"] == ["udp/53"] and f.evidence["stops_at"] == ["bridge"]
    policy = next(f for f in run_checks(case(
        "host-input-dropped", "an INPUT DROP policy, toward the uplink's address"))
        if f.id == "host-input-dropped")
    assert policy.fix == "ip netns exec ndlab-host iptables-legacy -I INPUT -i ndbr0 -p icmp -j ACCEPT"
    dropping = E.set_ruleset(HEALTHY, E.lab_rules() + iptables_save.parse_iptables_save(
        "*filter\n:INPUT DROP [9:540]\nCOMMIT\n", "iptables-legacy"))
    assert "host-input-dropped" not in ids(run_checks(dropping))  # toward 198.18.0.1
    assert "host-input-dropped" not in ids(run_checks(_toward(HEALTHY, "172.29.0.1")))
    # A trace's own port is judged beside the checks' flows.
    _, c = E.container(dropping, "test")
    port = E.edit_container(_toward(dropping, "172.29.0.1"), "test", path=dict(
        c.path, destination={"address": "172.29.0.1", "proto": "tcp", "port": 5432}))
    flows = [f.evidence["flows"] for f in run_checks(port) if f.id == "host-input-dropped"
             and f.subject == "lab:test"]
    # The probe's own flow first, with every other the same policy drops.
    assert flows == [["tcp/5432", "icmp", "tcp/80", "tcp/443", "udp/53"]]
    only = E.set_ruleset(HEALTHY, E.lab_rules() + iptables_save.parse_iptables_save(
        "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp --dport 5432 -j DROP\nCOMMIT\n",
        "iptables-legacy"))
    port = E.edit_container(_toward(only, "172.29.0.1"), "test", path=dict(
        c.path, destination={"address": "172.29.0.1", "proto": "tcp", "port": 5432}))
    [f] = [f for f in run_checks(port) if f.id == "host-input-dropped" and f.subject == "lab:test"]
    assert f.evidence["flows"] == ["tcp/5432"]


def test_a_traces_own_port_is_judged_by_the_firewall_checks():
    """A FORWARD rule for tcp/8080 only, and a REDIRECT of it: the checks' own flows (ICMP,
    TCP 80/443, UDP 53) pass, so only a trace to that port, which gives the checks its
    flow, meets them (its verdict named the rule from the counters, with no finding)."""
    snap = E.set_ruleset(HEALTHY, E.lab_rules(insert_after(
        ":NDLAB-FORWARD - [0:0]", "-A FORWARD -p tcp -m tcp --dport 8080 -j DROP")))
    assert "forward-dropped" not in ids(run_checks(snap), "lab:test")
    _, c = E.container(snap, "test")
    dest = dict(c.path.get("destination") or {}, proto="tcp", port=8080)
    probed = E.edit_container(snap, "test", path=dict(c.path, destination=dest))
    [f] = [f for f in run_checks(probed) if f.id == "forward-dropped" and f.subject == "lab:test"]
    assert f.evidence["flow"] == "tcp/8080" and f.fix.endswith("-D FORWARD 1")


def test_a_container_holding_the_destination_itself_answers_it_inside():
    f = next(f for f in run_checks(case("destination-is-local",
                                        "the destination's address on the container's lo"))
             if f.id == "destination-is-local")
    assert f.fix == "ip netns exec ndlab-test ip addr del 198.18.0.1/32 dev lo" and \
        f.evidence["device"] == "lo"
    # Its own address on the path's interface is a trace of itself, no fault.
    assert "destination-is-local" not in ids(run_checks(_toward(HEALTHY, "172.29.0.2")))


def test_replies_routed_back_by_the_bridge_are_no_finding():
    assert "reply-path-asymmetric" not in ids(run_checks(_reply_routed("ndbr0", None)))


def test_macvlan_children_in_bridge_mode_reach_each_other():
    found = [f for f in run_checks(_macvlan_siblings("bridge")) if f.id == "macvlan-mode-isolation"]
    assert found == []
    vepa = [f for f in run_checks(_macvlan_siblings("vepa")) if f.id == "macvlan-mode-isolation"]
    assert [f.severity for f in vepa] == ["warning"]


def test_an_input_policy_alone_is_no_published_port_note():
    """Default-deny INPUT without a rule for the port says nothing about it: no note."""
    snap = _published(user_rule="-A INPUT -p tcp -m tcp --dport 22 -j DROP\n")
    assert "published-port-bypasses-input" not in ids(run_checks(snap))
    assert "published-port-bypasses-input" not in ids(run_checks(PUBLISHED))


def test_a_removed_nodes_leftover_fdb_entry_is_info_only():
    """Every peer wired in full, plus an FDB entry for a MAC no peer has: a removed node's
    leftover, said as info; nothing is broken."""
    from dataclasses import replace

    from netdoctor.diagnose.facts.namespace import FdbEntry

    snap = _flannel(lambda ns: replace(ns, fdb=ns.fdb + (FdbEntry(
        dev="flannel.1", mac="02:00:00:00:00:99", dst="192.168.77.9", state="permanent"),)))
    found = [f for f in run_checks(snap) if f.id == "overlay-peer-incomplete"]
    assert [(f.severity, f.evidence["stale_fdb"]) for f in found] == [
        ("info", {"02:00:00:00:00:99": ["192.168.77.9"]})]


def test_a_blackhole_for_the_nodes_own_block_is_no_overlap():
    """Calico's BIRD writes `blackhole <this node's block> proto bird` around the pods' /32
    routes: nothing is routed elsewhere ("routes via None" was a subnet-overlap warning on
    every Calico pod)."""
    snap = E.edit_host_ns(ROUTED, lambda ns: E.routes(ns, add=(E.route(
        "172.29.0.0/26", None, type_="blackhole"),)))
    assert "subnet-overlap" not in ids(run_checks(snap), "lab:test")


def test_bgp_intent_with_the_blocks_route_is_no_finding():
    """The route BIRD wrote for the other node's block is there; a destination in this
    node's own block, or outside every pool, is none of BGP's business."""
    assert "peer-route-missing" not in ids(run_checks(_bgp(ROUTED, block_route=True)),
                                           "lab:test")
    assert "peer-route-missing" not in ids(run_checks(_bgp(ROUTED, dest="10.244.0.9")),
                                           "lab:test")
    assert "peer-route-missing" not in ids(run_checks(_bgp(ROUTED, dest="10.99.0.9")),
                                           "lab:test")


@pytest.mark.parametrize("check_id, case, snap, subject", [
    (cid, name, snap, subject) for cid, cases in CASES.items() for name, snap, subject in cases])
def test_runbook_commands_name_real_devices(check_id, case, snap, subject):
    """The runbook's commands, filled with the finding's names, name no device it does not
    have ("tcpdump -eni ?" on a routed host, which has no bridge) and leave no placeholder."""
    import re

    from netdoctor import runbooks

    f = next(f for f in run_checks(snap) if f.id == check_id and f.subject == subject)
    page = runbooks.fill(runbooks.text(check_id), dict(f.vars, fix=f.fix or f.verify))
    commands = [line.strip() for line in page.splitlines() if line.startswith("    ")]
    assert not [c for c in commands if re.search(r"(^|\s)\?(\s|$)|\{[a-z_][a-z0-9_]*\}", c)], commands


def test_peer_route_missing_says_what_birds_sessions_show():
    """With every session Established the route was not announced (or was filtered): the
    verify asks BIRD about the route itself, not about its sessions."""
    f = next(f for f in run_checks(_bgp_sessions(ROUTED, ESTABLISHED))
             if f.id == "peer-route-missing" and f.subject == "lab:test")
    assert "every BGP session of BIRD is Established" in f.message
    assert f.verify.endswith("show route for 10.244.1.2 all  # learnt, filtered, or never sent?")
    assert f.evidence["bgp_sessions"] == [{"name": "Mesh_198_51_100_7",
                                           "neighbor": "198.51.100.7",
                                           "bgp_state": "Established"}]
    assert "bgp-session-down" not in ids(run_checks(_bgp_sessions(ROUTED, ESTABLISHED)),
                                         "host " + ROUTED_HOST)
    # Not asked (no socket, another BIRD): both causes stay open, and the reason is given.
    snap = _bgp(ROUTED)
    key = E.host_key(snap)
    hosts = dict(snap.hosts)
    hosts[key] = replace(hosts[key], intent={"bgp": dict(
        BGP_INTENT["bgp"], sessions_error="/var/run/calico/bird.ctl: Permission denied")})
    f = next(f for f in run_checks(replace(snap, hosts=hosts))
             if f.id == "peer-route-missing" and f.subject == "lab:test")
    assert "BIRD's sessions were not read: /var/run/calico/bird.ctl: Permission denied" in \
        f.message and f.evidence["bgp_sessions"] is None


def test_checks_judged_while_the_nameservers_answer_say_the_same():
    """`checks` judges everything that needs no DNS answer before it waits for them, and
    the DNS check once they are in: the findings are those of the finished snapshot."""
    silent = case("dns-unreachable", "server silent")
    asked = replace(silent, containers=tuple(replace(c, dns_probe=None)
                                             for c in silent.containers))
    calls = []

    def answered():
        calls.append("answered")
        return silent

    found = run_checks(asked, answered=answered)
    assert calls == ["answered"]
    assert [f.to_dict() for f in found] == [f.to_dict() for f in run_checks(silent)]
    assert "dns-unreachable" in ids(found, "lab:test")
    # Without the DNS check chosen, nothing waits for the answers.
    calls.clear()
    run_checks(asked, only={"ip-forward-disabled"}, answered=answered)
    assert calls == []


def test_a_default_route_by_another_interface_is_not_this_paths_gateway():
    """Docker's overlay containers: eth0 on the overlay, the default route by eth1 (the
    docker_gwbridge). Toward a peer on eth0's own network no gateway is used: the default
    gateway is not compared with eth0's bridge."""
    from dataclasses import replace as with_

    def two_legged(ns):
        eth0 = ns.link(name="eth0")
        eth1 = with_(eth0, name="eth1", ifindex=eth0.ifindex + 100, addresses=(
            E.Address("inet", "172.18.0.3", 16),))
        ns = with_(ns, links=ns.links + (eth1,))
        return E.routes(ns, keep=lambda r: not r.is_default,
                        add=[E.route("default", "eth1", "172.18.0.1")])
    snap = _toward(E.edit_container_ns(HEALTHY, "test", two_legged), "172.29.0.3")
    assert "container-wrong-gateway" not in ids(run_checks(snap), "lab:test")


def test_an_endpoint_wired_as_its_engine_says_is_no_finding():
    """The engine says the next hop lives on 192.168.77.2, where the FDB sends it."""
    snap = _docker_overlay(FLANNEL, "192.168.77.2")
    found = run_checks(snap)
    assert not {"overlay-endpoint-missing", "vxlan-fdb-missing"} & {f.id for f in found}


def test_the_engines_overlay_network_document():
    from netdoctor.diagnose.errors import ParseError
    from netdoctor.diagnose.parse.docker_network import parse_overlay_network

    doc = {"Name": "ndov", "Id": "aswwe3yqd19ofutmgy7rt0te3", "Driver": "overlay",
           "Options": {"com.docker.network.driver.overlay.vxlanid_list": "4097"},
           "Peers": [{"Name": "6420fb028473", "IP": "192.168.78.1"},
                     {"Name": "d2cf521a0815", "IP": "192.168.78.2"}],
           "Services": {"": {"VIP": "<nil>", "Tasks": [
               {"Name": "c0", "EndpointIP": "10.0.9.2", "Info": {"Host IP": "192.168.78.1"}},
               {"Name": "c1", "EndpointIP": "10.0.9.4", "Info": {"Host IP": "192.168.78.2"}}]}},
           "Containers": {"26a4": {"Name": "c0", "IPv4Address": "10.0.9.2/24"},
                          "lb-ndov": {"Name": "ndov-endpoint", "IPv4Address": "10.0.9.3/24"}}}
    assert parse_overlay_network(doc) == {
        "name": "ndov", "id": "aswwe3yqd19ofutmgy7rt0te3", "vnis": ["4097"],
        "peers": ["192.168.78.1", "192.168.78.2"],
        "endpoints": [{"name": "c0", "ip": "10.0.9.2", "node": "192.168.78.1"},
                      {"name": "c1", "ip": "10.0.9.4", "node": "192.168.78.2"}],
        "local": ["10.0.9.2", "10.0.9.3"]}
    for bad in ({"Name": "b", "Driver": "bridge"}, [], {"Name": "x", "Driver": "overlay",
                                                      "Peers": [{"IP": "not-an-address"}]}):
        with pytest.raises(ParseError):
            parse_overlay_network(bad)


def test_forwarding_plays_no_part_toward_the_containers_own_bridge_network():
    """A destination on the container's own bridge network is bridged, never routed (a
    Docker overlay's sandbox has forwarding off): with the path ending at the bridge, a
    host with ip_forward 0 is no finding for it."""
    _, c = E.container(HEALTHY, "test")
    path = dict(c.path, hops=[h for h in c.path["hops"] if h["role"] != "uplink"])
    snap = E.edit_host_ns(E.edit_container(_toward(HEALTHY, "172.29.0.99"), "test", path=path),
                          lambda ns: E.sysctl(ns, "net.ipv4.ip_forward", "0"))
    found = run_checks(snap)
    assert not [f for f in found if f.id == "ip-forward-disabled"
                and "test" in f.evidence.get("containers", ())], found
    # Routed to the uplink, the same host is one.
    snap = E.edit_host_ns(HEALTHY, lambda ns: E.sysctl(ns, "net.ipv4.ip_forward", "0"))
    assert "ip-forward-disabled" in {f.id for f in run_checks(snap)}


def test_an_internal_network_is_not_missing_its_nat():
    """docker network create --internal: Docker drops what the bridge sends outside its
    subnet, and adds no MASQUERADE, by design. The cause is the isolation (forward-dropped,
    fix: join a network that reaches out); a MASQUERADE rule to add fixes nothing."""
    def internal(text):
        text = remove(MASQ)(text)
        return text.replace(
            ":NDLAB-USER - [0:0]\n",
            ":NDLAB-USER - [0:0]\n:DOCKER-INTERNAL - [0:0]\n").replace(
            "-A FORWARD -j NDLAB-USER\n",
            "-A FORWARD -j DOCKER-INTERNAL\n-A FORWARD -j NDLAB-USER\n"
            "-A DOCKER-INTERNAL -s 172.29.0.0/24 ! -d 172.29.0.0/24 -j DROP\n"
            "-A DOCKER-INTERNAL ! -s 172.29.0.0/24 -d 172.29.0.0/24 -j DROP\n")
    found = ids(run_checks(E.set_ruleset(HEALTHY, E.lab_rules(internal))), "lab:test")
    assert "forward-dropped" in found and "nat-missing" not in found, found


def test_before_routing_an_answer_is_still_addressed_to_the_translated_source():
    """raw and mangle PREROUTING meet the answers before their NAT is undone: a rule on
    the container's own address there never sees them, one on the uplink's address does;
    a DROP policy there is shown, not lifted (it drops the host's own traffic too)."""
    mine = iptables_save.parse_iptables_save(
        "*mangle\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n"
        ":OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n"
        "-A PREROUTING -d 172.29.0.2/32 -p icmp -j DROP\nCOMMIT\n")
    assert "forward-dropped" not in ids(run_checks(E.set_ruleset(HEALTHY, E.lab_rules() + mine)))
    (f,) = [f for f in run_checks(E.set_ruleset(HEALTHY, E.lab_rules() + MANGLE_DROP_ANSWERS))
            if f.id == "forward-dropped" and f.subject == "lab:test"]
    assert f.evidence["direction"] == "reply" and f.evidence["hook"] == "prerouting", f
    assert f.fix == "ip netns exec ndlab-host iptables -t mangle -D PREROUTING 1", f.fix
    policy = iptables_save.parse_iptables_save(
        "*mangle\n:PREROUTING DROP [0:0]\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n"
        ":OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n")
    (f,) = [f for f in run_checks(E.set_ruleset(HEALTHY, E.lab_rules() + policy))
            if f.id == "forward-dropped" and f.subject == "lab:test"]
    assert not f.fix and f.verify == "ip netns exec ndlab-host iptables -t mangle -S PREROUTING"


def test_an_ip_protocol_match_is_the_families_own():
    """`ip protocol icmp` in a bridge table drops IPv4 ICMP only: it was a match netdoctor
    could not read, so the drop went unjudged; an IPv6 packet's ICMP is not it."""
    from netdoctor.diagnose.reason.rules import Packet, evaluate

    rules = bridge_family_drop("input", "iifname", "veth-test")
    v4 = Packet("172.29.0.2", "203.0.113.80", "veth-test", None, "icmp")
    v6 = Packet("fd00:29::2", "2001:db8::1", "veth-test", None, "icmp", family="ip6")
    assert evaluate(Ruleset(rules), "input", v4, family="bridge").verdict == "drop"
    assert evaluate(Ruleset(rules), "input", v6, family="bridge").verdict == "accept"
    assert evaluate(Ruleset(rules), "input", Packet("172.29.0.2", "203.0.113.80", "veth-web",
                                                    None, "icmp"), family="bridge").verdict \
        == "accept"
    # A rule of another port's does not concern this one.
    assert "forward-dropped" not in ids(run_checks(E.set_ruleset(
        HEALTHY, E.lab_rules() + bridge_family_drop("input", "iifname", "veth-web"))), "lab:test")


def test_a_destination_on_a_real_lan_of_the_host_is_not_shadowed():
    """A bridge with a NIC in it is a LAN: its machines are real, and delivering to them
    on the link is how a LAN works."""
    assert "destination-shadowed" in ids(run_checks(_shadowed()), "lab:test")
    assert "destination-shadowed" not in ids(run_checks(_shadowed(nic=True)), "lab:test")


COMMANDS = ("ip", "iptables", "ip6tables", "iptables-legacy", "ip6tables-legacy", "nft",
            "sysctl", "bridge", "docker", "podman", "ssh", "nsenter", "modprobe", "ethtool",
            "tc", "echo", "birdc", "birdcl", "nslookup", "systemctl", "cat", "conntrack", "ss",
            "iptables-save", "ip6tables-save", "iptables-legacy-save", "ip6tables-legacy-save",
            "kubectl", "netdoctor")


@pytest.mark.parametrize("check_id, name, snap, subject", [
    (cid, name, snap, subject) for cid, cases in CASES.items()
    for name, snap, subject in cases])
def test_every_fix_and_verify_is_a_command_to_paste(check_id, name, snap, subject):
    """subnet-overlap's fix was a sentence ("move the container network to a range..."):
    what a report prints after `fix:` or `verify:` is run as pasted, so it starts with a
    command (after the prefix that enters the right namespace)."""
    for f in run_checks(snap):
        if f.id != check_id:
            continue
        for text in (f.fix, f.verify):
            for part in filter(None, (p.strip() for p in text.split("&&"))):
                words = part.split()
                while words and words[0] in ("ip", "nsenter") and (
                        words[1:3] and words[1] == "netns" or words[0] == "nsenter"):
                    words = _after_prefix(words)
                assert words and words[0] in COMMANDS, (check_id, text)


@pytest.mark.parametrize("check_id, name, snap, subject", [
    (cid, name, snap, subject) for cid, cases in CASES.items()
    for name, snap, subject in cases])
def test_no_fix_holds_a_blank_to_fill_in(check_id, name, snap, subject):
    """`ip route add default via <gateway> dev <uplink>` is no command: a shell reads `<` as
    a redirection. Where netdoctor cannot name what a fix needs, it gives a command that
    shows it (verify), and the runbook the fix's form."""
    for f in run_checks(snap):
        if f.id == check_id:
            assert not re.search(r"<[a-z][a-z _-]*>", f.fix), (check_id, f.fix)


def _after_prefix(words):
    """The command after `ip netns exec NS` or `nsenter ... -n` / `nsenter --net=P`."""
    if words[:3] == ["ip", "netns", "exec"]:
        return words[4:]
    i = 1
    while i < len(words) and words[i].startswith("-"):
        i += 1 if "=" in words[i] or words[i] == "-n" else 2
    return words[i:]


def test_a_drop_in_mangle_is_lifted_in_mangle():
    """A mangle FORWARD rule drops bridged frames (br_netfilter) and routed requests: it is
    the container's fault, and forward-dropped deletes the mangle rule itself (no ACCEPT
    goes round it for the bridged frames alone). A mangle FORWARD policy that drops only
    the bridged frames is lifted in mangle's FORWARD (filter's would leave it in place)."""
    def with_mangle(chain):
        mangle = iptables_save.parse_iptables_save(
            "*mangle\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n" + chain +
            ":OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n")
        snap = E.edit_host_ns(E.set_ruleset(HEALTHY, E.lab_rules() + mangle),
                              lambda ns: E.sysctl(ns, "net.bridge.bridge-nf-call-iptables", "1"))
        return {f.id: f for f in run_checks(snap) if f.subject == "lab:test"}

    found = with_mangle(":FORWARD ACCEPT [0:0]\n-A FORWARD -i ndbr0 -j DROP\n")
    assert "bridge-netfilter" not in found
    assert found["forward-dropped"].fix == \
        "ip netns exec ndlab-host iptables -t mangle -D FORWARD 1"
    found = with_mangle(":FORWARD DROP [0:0]\n-A FORWARD -i ndbr0 ! -o ndbr0 -j ACCEPT\n"
                        "-A FORWARD -o ndbr0 -m conntrack --ctstate RELATED,ESTABLISHED "
                        "-j ACCEPT\n")
    assert found["bridge-netfilter"].fix == ("ip netns exec ndlab-host iptables -t mangle -I "
                                             "FORWARD -i ndbr0 -o ndbr0 -j ACCEPT")
    assert "forward-dropped" not in found


def test_an_ipv6_answer_before_routing_is_addressed_to_the_snat_address():
    """NAT66 by SNAT to the uplink's 2001:db8:1::2: before routing, the answers are still
    addressed to it, and a mangle rule dropping ICMPv6 to it drops them. The address was cut
    at its last colon, as if it carried a port ("2001:db8:1:"), and the drop went unseen."""
    rules = iptables_save.parse_iptables_save(
        "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
        ":POSTROUTING ACCEPT [0:0]\n"
        "-A POSTROUTING -s fd00:29::/64 ! -o ndbr0 -j SNAT --to-source 2001:db8:1::2\nCOMMIT\n"
        "*mangle\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n"
        ":OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n"
        "-A PREROUTING -d 2001:db8:1::2/128 -p ipv6-icmp -j DROP\nCOMMIT\n", family="ip6")
    snap = _toward6(_dual_stack(E.set_ruleset(HEALTHY, E.lab_rules() + rules)))
    (f,) = [f for f in run_checks(snap) if f.id == "forward-dropped" and f.subject == "lab:test"]
    assert (f.evidence["direction"], f.evidence["hook"]) == ("reply", "prerouting"), f
    assert f.fix == "ip netns exec ndlab-host ip6tables -t mangle -D PREROUTING 1", f.fix


def _dotted(snap):
    """The snapshot with a dot in every interface name but lo's (a VLAN or a flannel.1 is
    named so): routes, rules, sysctl keys and paths renamed alike."""
    from netdoctor.diagnose.facts.snapshot import Snapshot

    d = snap.to_dict()
    names = {link["name"] for ns in [h["namespace"] for h in d["hosts"].values()]
             + [c["namespace"] for c in d["containers"]] for link in ns["links"]}
    text = json.dumps(d)
    for name in names - {"lo"}:
        text = re.sub(rf"(?<![\w-]){re.escape(name)}(?![\w-])", f"{name[:3]}.{name[3:]}", text)
    return Snapshot.from_dict(json.loads(text)), {f"{n[:3]}.{n[3:]}" for n in names}


def _sysctl_paths(text):
    """The /proc/sys paths of the keys in every sysctl command of text, read as sysctl(8)
    reads them: if a key's first separator is a dot, dots part the path and a slash stands
    for a dot in a name."""
    for command in re.split(r"&&|;|\||\n", text):
        words = command.split()
        if "sysctl" not in words:
            continue
        for word in words[words.index("sysctl") + 1:]:
            key = word.strip("`").split("=")[0]
            if not key.startswith("net"):
                continue
            if key[3:4] == ".":
                key = key.translate(str.maketrans("./", "/."))
            yield key.split("/")


SYSCTL_FIXES = ("proxy-arp-off", "route-localnet-off", "rp-filter-drop", "ipv6-ra-ignored",
                "arp-disabled", "ip-forward-disabled", "container-ipv6-disabled")


@pytest.mark.parametrize("check_id, name, snap", [
    (cid, name, snap) for cid in SYSCTL_FIXES for name, snap, _ in CASES[cid]])
def test_a_sysctl_of_an_interface_with_a_dot_in_its_name_is_spelled_for_sysctl(
        check_id, name, snap):
    """`sysctl -w net.ipv4.conf.flannel.1.rp_filter=0` fails ("cannot stat
    /proc/sys/net/ipv4/conf/flannel/1/rp_filter"): sysctl(8) wants flannel/1 there. Every
    sysctl key a finding prints — fix, verify and its filled runbook — names one interface."""
    from netdoctor import runbooks

    dotted, names = _dotted(snap)
    found = [f for f in run_checks(dotted) if f.id == check_id]
    assert found, (check_id, name)
    for f in found:
        for text in (f.fix, f.verify, runbooks.fill(runbooks.text(f.id), f.vars)):
            for parts in _sysctl_paths(text):
                if parts[2:3] in (["conf"], ["neigh"]):
                    assert len(parts) == 5 and parts[3] in names | {"all", "default"}, (
                        check_id, "/".join(parts), text)


@pytest.mark.parametrize("check_id, name, snap", [
    (cid, name, snap) for cid, cases in CASES.items() for name, snap, _ in cases])
def test_every_case_renders_its_runbook_with_every_name_filled_in(check_id, name, snap):
    """`{uplink6}` and `{thresh1}` were never filled (the placeholder pattern had no digits):
    the runbook of every failing case reads with its real names."""
    from netdoctor import runbooks

    for f in run_checks(snap):
        if f.id == check_id:
            page = runbooks.fill(runbooks.text(f.id), f.vars)
            assert not re.findall(r"\{[a-z_][a-z0-9_]*\}", page), (check_id, name)


def test_nat_bypassed_by_an_untracking_rule_is_named_with_the_rule():
    """The MASQUERADE is there, but a raw rule marks the container's requests untracked and
    NAT never sees them: the trace saw the private source leave the uplink (nat-missing)
    and nothing said why. The finding names the rule and deletes it."""
    f = next(f for f in run_checks(_untracked()) if f.id == "nat-missing")
    assert "untracked" in f.message and "CT --notrack" in f.message
    assert f.fix == "ip netns exec ndlab-host iptables -t raw -D PREROUTING 1"
    f = next(f for f in run_checks(_untracked(nft_priority=-300)) if f.id == "nat-missing")
    assert f.fix == "ip netns exec ndlab-host nft delete rule inet ndt pre handle 3"


def test_an_untracking_rule_that_misses_the_container_or_comes_after_conntrack_is_silent():
    # Another bridge's traffic; a chain after conntrack (priority 0: the packet is tracked
    # by then, and notrack does nothing).
    assert "nat-missing" not in ids(run_checks(_untracked(iface="docker0")), "lab:test")
    assert "nat-missing" not in ids(run_checks(_untracked(nft_priority=0)), "lab:test")


def test_a_container_route_that_bypasses_its_gateway_is_replaced_by_one_through_it():
    """`ip route add 203.0.113.0/24 dev eth0` in the container: it asks for the destination
    by ARP on its link, where nothing has it (the trace said neighbour-failed with no
    finding); `... via 172.29.0.3`, another container: the request ends there (the trace
    said unknown). The fix keeps the route, through the gateway."""
    on_link = next(f for f in run_checks(_bypassing())
                   if f.id == "container-route-bypasses-gateway")
    assert "198.18.0.0/16" in on_link.message and "ARP" in on_link.message
    assert on_link.fix == ("ip netns exec ndlab-test ip route replace 198.18.0.0/16 via "
                           "172.29.0.1 dev eth0")
    via = next(f for f in run_checks(_bypassing("172.29.0.3"))
               if f.id == "container-route-bypasses-gateway")
    assert "172.29.0.3" in via.message and "host-veth" in via.evidence["stops_at"]
    assert via.fix == on_link.fix


def test_a_container_route_through_its_gateway_or_answered_by_proxy_arp_is_fine():
    assert "container-route-bypasses-gateway" not in ids(run_checks(
        _bypassing("172.29.0.1")), "lab:test")
    # The bridge answers ARP for any address it routes (proxy ARP): on-link works.
    assert "container-route-bypasses-gateway" not in ids(run_checks(
        _bypassing(proxy_arp="1")), "lab:test")


def test_nat_skipped_by_a_rule_before_it_is_named_and_the_fix_goes_before_it():
    """A RETURN (or ACCEPT) in nat POSTROUTING ahead of the MASQUERADE: the finding said
    "policy accept", and its fix appended a MASQUERADE after the RETURN, which heals
    nothing. It names the rule, and the MASQUERADE goes first."""
    f = next(f for f in run_checks(case("nat-missing", "RETURN before the MASQUERADE"))
             if f.id == "nat-missing")
    assert "-A POSTROUTING -s 172.29.0.0/24 -j RETURN" in f.message, f.message
    assert f.fix == ("ip netns exec ndlab-host iptables -t nat -I POSTROUTING -s 172.29.0.0/24 "
                     "! -o ndbr0 -j MASQUERADE")


def test_a_container_whose_address_is_narrower_than_its_bridge_network_gets_an_onlink_gateway():
    """lab:web with 172.29.0.3/32 (no default route: the kernel removed it with the /24):
    the fix said `via <gateway>`, which no shell runs. The bridge's 172.29.0.1/24 holds the
    container's address: that is its gateway, reached on-link."""
    snap = E.edit_container_ns(HEALTHY, "test", lambda ns: E.routes(E.link(
        ns, "eth0", addresses=(E.Address("inet", "172.29.0.2", 32),)),
        keep=lambda r: not r.is_default and r.dst != "172.29.0.0/24"))
    f = next(f for f in run_checks(snap) if f.id == "container-no-default-route")
    assert f.fix == "ip netns exec ndlab-test ip route add default via 172.29.0.1 dev eth0 onlink"


def test_a_container_without_address_is_restarted_by_its_engine_and_shown_otherwise():
    """The fix was `ip addr add <address>/<prefix>`. Docker's and podman's IPAM give the
    address again on a restart; a namespace made by anything else is shown (verify)."""
    bare = E.edit_container_ns(HEALTHY, "test", lambda ns: E.link(ns, "eth0", addresses=()))
    f = next(f for f in run_checks(bare) if f.id == "container-no-address")
    assert (f.fix, f.verify) == ("", "ip netns exec ndlab-test ip -br addr show eth0")
    _, c = E.container(bare, "test")
    as_docker = E.edit_container(bare, "test", target=dict(c.target, kind="docker"))
    f = next(f for f in run_checks(as_docker) if f.id == "container-no-address")
    assert f.fix == "docker restart test"


def test_no_command_line_of_a_runbook_holds_a_blank():
    """A runbook's command lines (its indented blocks) are pasted as they are: none may
    hold a `<blank>` for the reader to fill in. Prose may say what to put where."""
    from netdoctor import runbooks

    from netdoctor.checks import NOT_CHECKS

    for cid in list(CASES) + list(NOT_CHECKS):
        for line in runbooks.text(cid).splitlines():
            if line.startswith("    "):
                assert not re.search(r"<[a-z][a-z _.-]*>", line), (cid, line)


def test_a_published_port_untracked_before_its_dnat_is_not_reachable_from_outside():
    """raw PREROUTING `-p tcp --dport 8080 -j CT --notrack`: an outside client's SYN is
    never DNATed (NAT is conntrack's) and the host refuses it; the host's own probe does
    not cross PREROUTING, and inbound said "REACHABLE from outside". The walk stops there."""
    f = next(f for f in run_checks(_published_untracked()) if f.id == "inbound-dropped")
    assert "untracked" in f.message and "CT --notrack" in f.message, f.message
    assert f.fix == "ip netns exec ndlab-host iptables -t raw -D PREROUTING 1"


def _multi_homed():
    """lab:test with a second interface, eth1 (172.30.0.2/24) on another bridge of the host,
    ndbr1 (172.30.0.1/24), and its default route there; the path judged is eth0's (a
    neighbour on ndbr0, lab:web)."""
    from dataclasses import replace as dc_replace

    def host(ns):
        br = dc_replace(ns.link(name="ndbr0"), ifindex=91, name="ndbr1", mac="36:f2:6c:1d:39:57",
                        addresses=(E.Address("inet", "172.30.0.1", 24),))
        return dc_replace(ns, links=ns.links + (br,))

    def container(ns):
        eth1 = dc_replace(ns.link(name="eth0"), ifindex=92, name="eth1",
                          addresses=(E.Address("inet", "172.30.0.2", 24),))
        ns = dc_replace(ns, links=ns.links + (eth1,))
        return E.routes(ns, keep=lambda r: not r.is_default,
                        add=[E.route("default", "eth1", "172.30.0.1")])

    return E.edit_container_ns(E.edit_host_ns(HEALTHY, host), "test", container)


def test_a_second_interface_with_the_default_route_does_not_move_the_first_ones_bridge():
    """Tracing a multi-homed container to its neighbour on eth0 said veth-not-attached:
    "veth-test is attached to ndbr0, but lab:test's network lives on bridge ndbr1" (the
    default route's gateway, on eth1, chose the bridge). The path's own interface does."""
    assert "veth-not-attached" not in ids(run_checks(_multi_homed()), "lab:test")


def test_a_container_numbered_outside_its_bridges_network_is_named_not_its_gateway():
    """10.0.0.2/24 on the 172.29.0.0/24 bridge, default via 172.29.0.1 onlink: the request
    leaves (untranslated: no MASQUERADE for 10.0.0.0/24) and no answer could come back (the
    host routes 10.0.0.2 out of its uplink). The gateway is right; the address is not. The
    findings were container-wrong-gateway (whose fix said `via <gateway>`), nat-missing and
    reply-path-asymmetric, none of which heals it."""
    found = {f.id: f for f in run_checks(_off_network()) if f.subject == "lab:test"}
    f = found["container-address-off-network"]
    assert "10.0.0.2/24" in f.message and "172.29.0.0/24" in f.message, f.message
    assert "container-wrong-gateway" not in found
    assert f.verify and not f.fix  # the address to give is the runtime's: shown
    _, c = E.container(_off_network(), "test")
    docker = E.edit_container(_off_network(), "test", target=dict(c.target, kind="docker"))
    f = next(f for f in run_checks(docker) if f.id == "container-address-off-network")
    assert f.fix == "docker restart test"


def test_two_isolated_ports_of_a_bridge_pass_nothing_between_them():
    """`bridge link set dev veth-test isolated on` on both containers' ports: the bridge
    forwards nothing between isolated ports (their ARP first); the trace said
    neighbour-failed with no finding. One isolated port talks to the others freely."""
    f = next(f for f in run_checks(_east_west(**{"veth-test": {"isolated": True},
                                                 "veth-web": {"isolated": True}}))
             if f.id == "bridge-port-blocked")
    assert "isolated" in f.message and "veth-web" in f.message, f.message
    assert f.fix == "ip netns exec ndlab-host bridge link set dev veth-test isolated off"
    assert "bridge-port-blocked" not in ids(run_checks(_east_west(
        **{"veth-test": {"isolated": True}})), "lab:test")
    assert "bridge-port-blocked" not in ids(run_checks(_east_west()), "lab:test")


def test_ttl_too_low_names_the_router_where_it_runs_out():
    """The ttl-th router on the path drops the packet: with TTL 1 the host, with 2 the
    host's gateway; with more than the routers known, nothing is said."""
    def by_id(findings, check_id):
        (found,) = [f for f in findings if f.id == check_id and f.subject == "lab:test"]
        return found

    one = by_id(run_checks(_ttl(HEALTHY, "1")), "ttl-too-low")
    assert one.evidence["expires_at"] == "172.29.0.1" and one.severity == "error"
    assert one.evidence["stops_at"] == ["host-veth", "bridge"]
    assert one.fix == "ip netns exec ndlab-test sysctl -w net.ipv4.ip_default_ttl=64"
    two = by_id(run_checks(_ttl(HEALTHY, "2")), "ttl-too-low")
    assert two.evidence["expires_at"] == "198.51.100.1"
    assert two.evidence["stops_at"] == ["uplink"]
    # The host's gateway may be the destination's own host: foretold, not proven.
    assert two.severity == "warning" and "unless 198.51.100.1 is the host" in two.message
    for enough in ("3", "64"):
        assert "ttl-too-low" not in ids(run_checks(_ttl(HEALTHY, enough)))
    # IPv4's TTL says nothing about IPv6's hop limit, and the other way round.
    assert "ttl-too-low" not in ids(run_checks(_toward6(_ttl(_dual_stack(HEALTHY), "1"))))
    assert "ttl-too-low" not in ids(run_checks(_ttl(HEALTHY, "1",
                                                    "net.ipv6.conf.eth0.hop_limit")))


def test_ttl_too_low_follows_the_rules_that_change_the_ttl():
    """A rule that sets the TTL before the host's forwarding check is the cause, and
    deleting it the fix; after the check, the host forwards and the next router drops it;
    a decrement counts as the routers would; a rule for IPv6's hop limit or that sets
    enough changes nothing."""
    def finding(snap):
        found = [f for f in run_checks(snap) if f.id == "ttl-too-low"]
        return found[0] if found else None

    pre = finding(_ttl_rule())
    assert pre.evidence["expires_at"] == "172.29.0.1"
    assert pre.evidence["rule"].endswith("-A PREROUTING -s 172.29.0.2/32 -j TTL --ttl-set 1")
    assert pre.fix == "ip netns exec ndlab-host iptables -t mangle -D PREROUTING 1"
    after = finding(_ttl_rule("POSTROUTING"))
    assert after.evidence["expires_at"] == "198.51.100.1" and after.severity == "warning"
    assert finding(_ttl_rule("PREROUTING", "dec", 63)).evidence["expires_at"] == "172.29.0.1"
    assert finding(_ttl_rule("PREROUTING", "dec", 62)).evidence["expires_at"] == "198.51.100.1"
    assert finding(_ttl_rule("PREROUTING", "set", 3)) is None
    nft = finding(_nft_ttl())
    assert "ip ttl set 1" in nft.evidence["rule"]
    assert nft.fix == "ip netns exec ndlab-host nft delete rule inet ndt c handle 3"
    assert finding(_nft_ttl(field="hoplimit", protocol="ip6")) is None
    # A container that sends with TTL 1 and a host rule that sets 64 again: the host's
    # PREROUTING runs before its forwarding check.
    assert finding(E.set_ruleset(_ttl(HEALTHY, "1"), E.lab_rules() + iptables_save.
                                 parse_iptables_save(MANGLE_TTL.format(
                                     chain="PREROUTING", how="set", n=64)))) is None


def test_route_back_out_says_what_the_next_hop_does_with_it():
    """The host sends the container's packets back out of ndbr0 to lab:web's address: an
    error when lab:web does not forward, or sends them back (a loop); a note when it
    forwards them elsewhere; a warning when netdoctor does not see the next hop (a trace
    reads only its own container). The fix deletes the host's route, never a default."""
    def finding(snap, subject="lab:test"):
        found = [f for f in run_checks(snap) if f.id == "route-back-out"
                 and f.subject == subject]
        return found[0] if found else None

    dropped = finding(_routed_back(HEALTHY))
    assert dropped.severity == "error" and "which does not forward" in dropped.message
    assert dropped.fix == "ip netns exec ndlab-host ip route del unicast 198.18.0.1/32"
    loop = finding(_routed_back(HEALTHY, True))
    assert loop.severity == "error" and "a routing loop" in loop.message
    on = finding(_routed_back(HEALTHY, True, E.route("198.18.0.0/16", "eth0", "172.29.0.9")))
    assert on.severity == "info" and "a detour" in on.message
    unseen = finding(_routed_back(HEALTHY, only="test"))
    assert unseen.severity == "warning" and "netdoctor cannot see" in unseen.message
    own = finding(_routed_back(HEALTHY), "lab:web")
    assert "back to the container that sent them" in own.message
    assert finding(HEALTHY) is None


def test_duplicate_address_names_the_other_holder_and_no_fix():
    """Which of two holders should keep an address is not netdoctor's to say: the finding
    names the other one and shows how to look, and fixes nothing. An entry gone STALE may be
    a recreated container's old MAC, which the kernel asks again on its own: no finding."""
    def found(snap):
        return [f for f in run_checks(snap) if f.id == "duplicate-address"
                and f.subject == "lab:test"]

    (own,) = found(_web_holds(HEALTHY, "172.29.0.2"))
    assert own.evidence["other"] == "lab:web" and own.evidence["direction"] == "reply"
    assert own.fix == "" and own.verify == "ip netns exec ndlab-web ip -br addr show dev eth0"
    (gw,) = found(_web_holds(HEALTHY, "172.29.0.1"))
    assert gw.evidence["direction"] == "request"
    (learnt,) = found(_host_learnt(HEALTHY, "172.29.0.2", "02:00:00:00:00:99"))
    assert "02:00:00:00:00:99" in learnt.message
    assert found(_host_learnt(HEALTHY, "172.29.0.2", "02:00:00:00:00:99", "STALE")) == []
    assert found(HEALTHY) == []


def test_destination_redirected_says_where_the_requests_land():
    """A DNAT or REDIRECT of the container's requests: an error where they land on nothing
    (no listener on the host's port, no route, no ARP answer), its fix the rule's deletion;
    a warning, verify only, where something may answer (a running proxy, an address that
    answers); the flows it translates are named, and a trace's verdict uses it only for
    those."""
    def finding(snap):
        found = [f for f in run_checks(snap) if f.id == "destination-redirected"
                 and f.subject == "lab:test"]
        return found[0] if found else None

    dead = finding(_nat_away(failed="198.51.100.77"))
    assert dead.severity == "error" and "nothing answers ARP for 198.51.100.77" in dead.message
    assert dead.evidence["flows"] == ["icmp", "tcp/80", "tcp/443", "udp/53"]
    assert dead.fix == "ip netns exec ndlab-host iptables -t nat -D PREROUTING 1"
    proxy = finding(_nat_away("-i ndbr0 -p tcp --dport 80", "REDIRECT --to-ports 3128",
                              listeners=[]))
    assert proxy.evidence["flows"] == ["tcp/80"] and proxy.evidence["nothing_listens"] == \
        ["tcp/3128"]
    running = finding(_nat_away("-i ndbr0 -p tcp --dport 80", "REDIRECT --to-ports 3128",
                                listeners=[{"proto": "tcp", "address": "0.0.0.0",
                                            "port": 3128}]))
    assert running.severity == "warning" and running.fix == "" and running.verify == \
        "ip netns exec ndlab-host iptables -t nat -S PREROUTING"
    assert finding(_nat_away()).severity == "warning"  # nothing known of 198.51.100.77
    assert finding(HEALTHY) is None


def test_a_finding_about_some_flows_is_not_the_cause_for_another_probe():
    """A REDIRECT of tcp/80 explains a TCP probe to port 80 stopped at the host, not an
    ICMP probe stopped there."""
    from netdoctor.checks import Finding
    from netdoctor.diagnose.reason import evidence as EV, verdict as V

    f = Finding(id="destination-redirected", severity="error", scope="host",
                subject="lab:test", message="", fix="x",
                evidence={"flows": ["tcp/80"], "stops_at": ["host-veth", "bridge"],
                          "direction": "request"})
    hv = EV.HopVerdict(False, "host-veth", "request")
    tcp = V.Case(hv, [], [f], flow=EV.Flow("tcp", "172.29.0.2", "198.18.0.1", dport=80))
    icmp = V.Case(hv, [], [f], flow=EV.Flow("icmp", "172.29.0.2", "198.18.0.1"))
    assert tcp.for_probe(f) and not icmp.for_probe(f)
    assert V.decide(tcp).cause == "destination-redirected"
    assert V.decide(icmp).cause != "destination-redirected"


DOCKER_NAT = ("*nat\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n"
              ":DOCKER - [0:0]\n"
              "-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER\n"
              "-A DOCKER ! -i docker0 -p tcp -m tcp --dport 80 -j DNAT --to-destination "
              "172.17.0.2:80\nCOMMIT\n")


def test_published_ports_of_another_network_do_not_redirect_the_containers_requests():
    """Docker sends only what is addressed to the host itself (`-m addrtype --dst-type
    LOCAL`) to its DOCKER chain, where a published port 80 is DNATed for every interface but
    docker0. A container on another bridge asking the internet on port 80 is not
    redirected: the address type is now evaluated, and was taken as met."""
    snap = E.set_ruleset(HEALTHY, E.lab_rules() + iptables_save.parse_iptables_save(DOCKER_NAT))
    assert not [f for f in run_checks(snap) if f.id == "destination-redirected"]
    from netdoctor.diagnose.reason.rules import Packet, evaluate

    ruleset = Ruleset(tuple(iptables_save.parse_iptables_save(DOCKER_NAT)))
    to_host = Packet("172.29.0.2", "198.51.100.2", "ndbr0", None, "tcp", 80, dst_local=True)
    assert evaluate(ruleset, "prerouting", to_host, type_="nat").verdict == "dnat"
    unknown = Packet("172.29.0.2", "198.51.100.2", "ndbr0", None, "tcp", 80)
    out = evaluate(ruleset, "prerouting", unknown, type_="nat")
    assert out.verdict == "dnat" and [r.chain for r in out.guessed] == ["PREROUTING"]
    # nft's spelling: fib daddr type local
    m = nft_json._nft_match({"op": "==", "left": {"fib": {"result": "type", "flags": ["daddr"]}},
                             "right": "local"})
    assert (m.kind, m.values) == ("dsttype", ("local",))


def test_a_static_entry_for_the_uplink_gateway_is_judged_by_its_answer():
    """The host's PERMANENT entry for its uplink gateway names a MAC the gateway did not
    answer from: an error at the uplink, whose fix deletes the entry. The same MAC as the
    answer, no answer at all, or not asked: nothing to say."""
    def found(snap):
        return [f for f in run_checks(snap) if f.id == "neighbour-failed"
                and f.subject == "lab:test"]

    (f,) = found(_uplink_gateway_pinned(HEALTHY))
    assert f.evidence["stops_at"] == ["uplink"] and f.evidence["answered"] == \
        ["5e:d9:c6:9b:aa:01"]
    assert f.fix == "ip netns exec ndlab-host ip neigh del 198.51.100.1 dev eth0"
    assert found(_uplink_gateway_pinned(HEALTHY, mac="5e:d9:c6:9b:aa:01")) == []
    assert found(_uplink_gateway_pinned(HEALTHY, answered=())) == []
    # A snapshot keeps what was asked, and refuses what is not a list of MACs.
    from netdoctor.diagnose.facts.namespace import NamespaceSnapshot
    from netdoctor.diagnose.errors import ParseError

    ns = E.container(_uplink_gateway_pinned(HEALTHY), "test")
    host = _uplink_gateway_pinned(HEALTHY).host(ns[1].host_inode).namespace
    assert NamespaceSnapshot.from_dict(host.to_dict()).answered("198.51.100.1", "eth0") == \
        ["5e:d9:c6:9b:aa:01"]
    with pytest.raises(ParseError):
        NamespaceSnapshot.from_dict(dict(host.to_dict(), asked={"198.51.100.1 eth0": "x"}))


def test_asking_neighbours_takes_lookups_without_a_gateway():
    """Route lookups that answered no gateway (refused, on the link) are no next hops to ask
    about: the lab host with forwarding off gave (None, None), and the trace crashed
    sorting them."""
    from netdoctor.diagnose.host import gather

    _, c = E.container(HEALTHY, "test")
    host = HEALTHY.host(c.host_inode).namespace
    assert gather.neighbour_questions(host, [(None, None), ("198.51.100.1", "eth0"),
                                             (None, "eth0")]) == []
    assert gather.ask_neighbours([(None, host, [(None, None), (None, "eth0")])]) == [host]


def test_a_new_connection_arriving_for_a_far_destination_is_judged_on_its_way_in():
    """A trace's destination on a far host: the request arrives by the host's way out and
    is forwarded in to it, new. The lab's FORWARD lets in only what answers the containers'
    own connections: the policy drops it, and the fix lets in what arrives for the bridge;
    the answers already go out (-i ndbr0 ! -o ndbr0). With that rule gone too, the fix lets
    the answers out as well."""
    from netdoctor.checks.context import contexts

    load_all()
    ctx = next(c for c in contexts(HEALTHY) if c.subject == "lab:test")
    f = REGISTRY["forward-dropped"]().for_arriving(ctx, "203.0.113.80", "icmp", None)
    assert f is not None and f.evidence["direction"] == "request", f
    assert "policy" in f.message and "arriving by eth0" in f.message, f.message
    assert f.fix == "ip netns exec ndlab-host iptables -I FORWARD -i eth0 -o ndbr0 -j ACCEPT"
    closed = E.set_ruleset(HEALTHY, E.lab_rules(remove(ACCEPT_OUT)))
    ctx = next(c for c in contexts(closed) if c.subject == "lab:test")
    f = REGISTRY["forward-dropped"]().for_arriving(ctx, "203.0.113.80", "icmp", None)
    assert f.fix.endswith("iptables -I FORWARD -i ndbr0 -o eth0 -m conntrack --ctstate "
                          "RELATED,ESTABLISHED -j ACCEPT"), f.fix
    # A port the host lets in (the lab's web service) is no finding.
    ctx = next(c for c in contexts(E.set_ruleset(HEALTHY, E.lab_rules()))
               if c.subject == "lab:web")
    assert REGISTRY["forward-dropped"]().for_arriving(ctx, "203.0.113.80", "tcp", 80) is None


def test_a_loopback_down_is_the_dns_failure_where_the_resolver_listens_on_it():
    """lo down in a container whose resolver is Docker's embedded one (127.0.0.11): the name
    does not resolve, while the trace to the resolver's upstream is answered. The verdict
    said "the nameserver answers, but"; the loopback is the cause. Without a resolver on
    the loopback, it is only a note (a namespace made by hand starts with lo down, and the
    way out does not need it)."""
    from netdoctor.diagnose.reason import evidence as Ev, verdict as V

    snap = case("container-loopback-down", "lo down, the nameserver Docker's embedded one on it")
    found = [f for f in run_checks(snap) if f.subject == "lab:test"]
    f = next(f for f in found if f.id == "container-loopback-down")
    assert f.severity == "error" and f.fix == "ip netns exec ndlab-test ip link set lo up"
    flow = Ev.Flow("udp", "172.29.0.2", "203.0.113.53", cookie=1)
    v = V.decide(V.Case(Ev.HopVerdict(True, None, None), [], found, [], [], flow,
                        dns_failure="cannot resolve 'www.baidu.com' (127.0.0.11 did not "
                                    "answer within 1 s)"))
    assert v.cause == "container-loopback-down" and not v.reachable, v
    assert "loopback interface lo is down" in v.explanation, v
    plain = E.edit_container_ns(HEALTHY, "test", lambda ns: E.without_flag(ns, "lo"))
    f = next(f for f in run_checks(plain) if f.id == "container-loopback-down")
    assert f.severity == "info", f


def test_a_rule_that_drops_the_container_everywhere_is_not_a_bridge_netfilter_fault():
    """A rule that drops everything lab:test sends meets its bridged frames too: that is
    forward-dropped's (delete the rule), not br_netfilter's; an ACCEPT inserted ahead of it
    for bridged frames would only go round a rule someone wrote. A rule for bridged frames
    alone is deleted; a policy is let through for them."""
    snap = _bridged_drop("-A NDLAB-USER -s 172.29.0.2/32 -j DROP\n")
    found = ids(run_checks(snap), "lab:test")
    assert "forward-dropped" in found and "bridge-netfilter" not in found, found
    f = next(f for f in run_checks(case("bridge-netfilter", "a rule for the bridged frames alone"))
             if f.id == "bridge-netfilter")
    assert f.fix == "ip netns exec ndlab-host iptables -t filter -D NDLAB-USER 1", f.fix
    f = next(f for f in run_checks(case("bridge-netfilter", "bridged frames hit FORWARD policy"))
             if f.id == "bridge-netfilter")
    assert f.fix == "ip netns exec ndlab-host iptables -I FORWARD -i ndbr0 -o ndbr0 -j ACCEPT"


def test_a_macvlan_childs_unanswered_gateway_is_replaced_by_its_segments_router():
    """The trace saw a macvlan child's ARP for its gateway go unanswered: its host's own
    router on that segment is the gateway to use. A gateway the wiring names itself (a
    bridged container's bridge address) is no such finding: what silences it is another's."""
    from netdoctor.checks.context import contexts

    load_all()
    snap = E.edit_container_ns(_macvlan_out(), "test", lambda ns: E.routes(E.link(
        ns, "eth0", kind="macvlan", addresses=(E.Address("inet", "198.51.100.10", 24),)),
        keep=lambda r: False, add=[E.route("198.51.100.0/24", "eth0"),
                                   E.route("default", "eth0", "198.51.100.99")]))
    ctx = next(c for c in contexts(snap) if c.subject == "lab:test")
    check = REGISTRY["container-wrong-gateway"]()
    assert "container-wrong-gateway" not in ids(run_checks(snap))  # on its link: no static fault
    f = next(check.for_unanswered(ctx, "198.51.100.99"))
    assert f.fix == "ip netns exec ndlab-test ip route replace default via 198.51.100.1 dev eth0"
    assert next(check.for_unanswered(ctx, "198.51.100.1"), None) is None  # not its gateway
    ctx = next(c for c in contexts(HEALTHY) if c.subject == "lab:test")
    assert next(check.for_unanswered(ctx, "172.29.0.1"), None) is None


def test_what_is_shown_for_an_ipv6_route_nobody_names_is_the_ipv6_table():
    """No IPv6 route and no IPv6 default on the host: the command shown listed the IPv4
    table (`ip route show`), which says nothing of it."""
    snap = _toward6(_dual_stack(HEALTHY))
    snap = E.edit_host_ns(snap, lambda ns: E.routes(
        ns, keep=lambda r: not (r.is_default and r.family == "inet6")))
    _, c = E.container(snap, "test")
    snap = E.edit_container(snap, "test", path=dict(c.path, route_lookups=[
        dict(l, dev=None, gateway=None, error="Network is unreachable")
        for l in c.path["route_lookups"] if l["netns"] == "ndlab-host"]))
    f = next(f for f in run_checks(snap) if f.id == "host-no-route")
    assert f.verify.endswith("ip netns exec ndlab-host ip -6 route show table main"), f.verify


def test_an_inbound_policy_drop_is_let_through_where_the_host_has_the_chain():
    """FORWARD's policy drops the client's connection (the accept for the port gone): the
    fix inserted into DOCKER-USER, which a host without Docker has not (the command failed);
    it lets the port through in FORWARD itself, for the container's address."""
    snap = _published(accept=False)
    f = next(f for f in run_checks(snap) if f.id == "inbound-dropped")
    assert "policy drop" in f.message, f.message
    assert f.fix == ("ip netns exec ndlab-host iptables -I FORWARD -d 172.29.0.2 -p tcp "
                     "--dport 80 -j ACCEPT"), f.fix


def test_an_inbound_policy_drop_of_a_native_table_is_let_through_in_that_table():
    native = nft_json.parse_nft_json({"nftables": [
        {"table": {"family": "inet", "name": "fw", "handle": 1}},
        {"chain": {"family": "inet", "table": "fw", "name": "fwd", "handle": 1,
                   "type": "filter", "hook": "forward", "prio": 0, "policy": "drop"}},
        {"rule": {"family": "inet", "table": "fw", "chain": "fwd", "handle": 2, "expr": [
            {"match": {"op": "in", "left": {"ct": {"key": "state"}},
                       "right": ["established", "related"]}}, {"accept": None}]}}]})
    snap = _published()
    snap = E.set_ruleset(snap, tuple(snap.hosts[E.host_key(snap)].ruleset.chains) + native)
    f = next(f for f in run_checks(snap) if f.id == "inbound-dropped")
    assert f.fix == ("ip netns exec ndlab-host nft insert rule inet fw fwd ip daddr 172.29.0.2 "
                     "tcp dport 80 accept"), f.fix


def test_dockers_inter_container_isolation_is_told_and_not_deleted():
    """A Docker network with icc off: its FORWARD rule drops what its bridge forwards back
    into itself. Docker's setting, not a stray rule: named as such (a more specific rule on
    the same bridge is any rule)."""
    from netdoctor.checks._rules import docker_icc
    from netdoctor.diagnose.reason.rules import Packet, evaluate

    def walked(rule):
        rules = Ruleset(iptables_save.parse_iptables_save(
            "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
            + rule + "COMMIT\n"))
        return evaluate(rules, "forward", Packet("172.32.0.2", "172.32.0.3", "br-4c85d049a624",
                                                 "br-4c85d049a624"))

    assert docker_icc(walked("-A FORWARD -i br-4c85d049a624 -o br-4c85d049a624 -j DROP\n")) \
        == "br-4c85d049a624"
    assert docker_icc(walked("-A FORWARD -i br-4c85d049a624 -o br-4c85d049a624 -p icmp "
                             "-j DROP\n")) is None


def _ufw(text_edit=lambda t: t):
    """The lab's host with ufw enabled (Debian's defaults) and no FORWARD rules of its
    runtime's: a real ufw's ruleset, recorded (tests/data/ufw-iptables-save.txt)."""
    import recorded

    return E.set_ruleset(HEALTHY, iptables_save.parse_iptables_save(
        text_edit(recorded.text("ufw-iptables-save.txt"))))


def test_a_drop_that_is_ufws_own_is_fixed_with_a_ufw_rule():
    """ufw's 'deny routed' (its FORWARD policy, reached through its chains) drops what the
    container sends out; its 'deny incoming' what it sends the host. ufw writes its chains
    again on every reload and boot, and the administrator keeps rules in ufw: the fix is a
    ufw rule (route allow, allow), not an iptables insert. A rule the user gave ufw (in
    ufw-user-forward) is that rule's, deleted where it is."""
    def fix(snap, check, subject="lab:test"):
        return next(f.fix for f in run_checks(snap) if f.id == check and f.subject == subject)

    snap = _ufw()
    assert fix(snap, "forward-dropped") == \
        "ip netns exec ndlab-host ufw route allow in on ndbr0 out on eth0"
    assert fix(_to_the_host(snap, "172.29.0.1"), "host-input-dropped") == \
        "ip netns exec ndlab-host ufw allow in on ndbr0 to any port 80 proto tcp"
    bridged = E.edit_host_ns(snap, lambda ns: E.sysctl(
        ns, "net.bridge.bridge-nf-call-iptables", "1"))
    assert fix(bridged, "bridge-netfilter") == \
        "ip netns exec ndlab-host ufw route allow in on ndbr0 out on ndbr0"
    users = _ufw(lambda t: t.replace(
        "-A ufw-before-forward -j ufw-user-forward\n",
        "-A ufw-before-forward -j ufw-user-forward\n-A ufw-user-forward -i ndbr0 -j DROP\n"))
    assert fix(users, "forward-dropped").startswith(
        "ip netns exec ndlab-host iptables -t filter -D ufw-user-forward "), \
        fix(users, "forward-dropped")
    # Without ufw, as before: an iptables rule ahead of the policy
    plain = E.set_ruleset(HEALTHY, E.lab_rules(lambda t: t.replace(
        "-A FORWARD -j NDLAB-FORWARD\n", "").replace(":FORWARD ACCEPT", ":FORWARD DROP")))
    assert fix(plain, "forward-dropped") == \
        "ip netns exec ndlab-host iptables -I FORWARD -i ndbr0 -j ACCEPT"


def test_a_bridge_down_that_lost_its_ipv6_address_is_fixed_with_the_address_back():
    """The kernel removes a link's IPv6 addresses when it goes down (keep_addr_on_down
    off, the default); an IPv4 address stays. bridge-down's fix only brought the bridge up,
    and the IPv6 container's gateway was still gone: a second fault to find. Its fix puts
    the gateway's address back too; toward IPv4, only the bridge comes up."""
    def down(snap, keep6):
        def edit(ns):
            ns = E.without_flag(ns, "ndbr0")
            if not keep6:
                l = ns.link(name="ndbr0")
                ns = E.link(ns, "ndbr0", addresses=tuple(a for a in l.addresses
                                                          if a.family != "inet6"))
            return ns
        return E.edit_host_ns(snap, edit)

    def finding(snap):
        return next(f for f in run_checks(snap) if f.id == "bridge-down")

    lost = finding(down(_toward6(_dual_stack(HEALTHY)), keep6=False))
    assert lost.fix == ("ip netns exec ndlab-host ip link set ndbr0 up && ip netns exec "
                        "ndlab-host ip addr add fd00:29::1/64 dev ndbr0"), lost.fix
    assert "IPv6 address" in lost.message
    kept = finding(down(_toward6(_dual_stack(HEALTHY)), keep6=True))
    assert kept.fix == "ip netns exec ndlab-host ip link set ndbr0 up"
    v4 = finding(down(_dual_stack(HEALTHY), keep6=False))
    assert v4.fix == "ip netns exec ndlab-host ip link set ndbr0 up"


def test_a_gateway_address_still_tentative_is_not_called_silent():
    """Right after the bridge's IPv6 gateway address is added (a fix just run), duplicate
    address detection holds it tentative for about a second, and it answers no
    solicitation: the container's entry is INCOMPLETE. neighbour-failed said nothing answers
    and offered to flush the entry; it now says the address is tentative (verify only)."""
    def tentative(ns):
        l = ns.link(name="ndbr0")
        return E.link(ns, "ndbr0", addresses=tuple(
            replace(a, flags=("tentative",)) if a.local == "fd00:29::1" else a
            for a in l.addresses))

    snap = E.edit_container_ns(E.edit_host_ns(_toward6(_dual_stack(HEALTHY)), tentative),
                               "test", lambda ns: E.add_neighbour(ns, "fd00:29::1", "eth0",
                                                                  "INCOMPLETE"))
    f = next(f for f in run_checks(snap) if f.id == "neighbour-failed")
    assert "tentative" in f.message and not f.fix, f
    assert f.verify == "ip netns exec ndlab-host ip -6 addr show dev ndbr0 tentative"


def test_the_hosts_entry_for_a_container_is_judged_by_who_answers():
    """The host's fresh entry for lab:test's address names another MAC. Not asked: a second
    holder, as before (duplicate-address). Asked, and only lab:test answered: left from an
    earlier holder (a container made again), neighbour-failed with the entry's deletion.
    Asked, and two answered: duplicate-address, naming the other."""
    _, c = E.container(HEALTHY, "test")
    mine = next(l for l in c.namespace.links if l.name == "eth0").mac

    def host(asked):
        def edit(ns):
            ns = replace(ns, neighbours=tuple(n for n in ns.neighbours
                                              if n.dst != "172.29.0.2") + (E.Neighbour(
                "172.29.0.2", "ndbr0", "02:00:00:00:00:99", ("REACHABLE",)),))
            return replace(ns, asked=asked) if asked is not None else ns
        return {f.id: f for f in run_checks(E.edit_host_ns(HEALTHY, edit))
                if f.subject == "lab:test"}

    assert "duplicate-address" in host(None)
    left = host({"172.29.0.2 ndbr0": [mine]})
    assert "duplicate-address" not in left and "earlier holder" in left[
        "neighbour-failed"].message
    assert left["neighbour-failed"].fix == "ip netns exec ndlab-host ip neigh del 172.29.0.2 " \
        "dev ndbr0"
    two = host({"172.29.0.2 ndbr0": [mine, "02:00:00:00:00:99"]})
    assert two["duplicate-address"].evidence["other_mac"] == "02:00:00:00:00:99"
    assert "neighbour-failed" not in two


def test_a_tentative_gateway_address_is_named_without_a_neighbour_entry():
    """The container had no entry for its gateway yet when its tentative address was traced
    (the verdict came from the unanswered solicitation alone, with no finding to show)."""
    def tentative(ns):
        l = ns.link(name="ndbr0")
        return E.link(ns, "ndbr0", addresses=tuple(
            replace(a, flags=("tentative",)) if a.local == "fd00:29::1" else a
            for a in l.addresses))

    snap = E.edit_host_ns(_toward6(_dual_stack(HEALTHY)), tentative)
    f = next(f for f in run_checks(snap) if f.id == "neighbour-failed")
    assert "tentative" in f.message and "no neighbour entry yet" in f.message and not f.fix

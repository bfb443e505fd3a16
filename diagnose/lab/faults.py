"""`netdoctor lab break FAULT`: the faults netdoctor must diagnose, injected into the lab.

Each fault is what an operator (or a misbehaving tool) does to a real Docker host. They are
undone together by `netdoctor lab heal`, which reconciles the whole lab to healthy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..errors import CommandFailed, LabStateError, UsageError
from . import control
from . import layout as L


@dataclass(frozen=True)
class Fault:
    name: str
    summary: str
    per_container: bool
    inject: Callable[[str], None]  # called with the container name (ignored for host faults)
    shapes: tuple = ("bridge", "routed", "macvlan")  # the lab shapes it applies to


def _ip(ns: str, *args: str) -> None:
    control._ip(ns, *args)


def _ipt(ns: str, *args: str) -> None:
    control._ns_exec(ns, "iptables", *args)


def _address(container: str) -> str:
    return L.CONTAINERS[container][0]


def _veth(container: str) -> str:
    return L.CONTAINERS[container][1]


def _drop_nat(_: str) -> None:
    shape = (control.read_state() or {}).get("shape") or "bridge"
    out = ["!", "-o", L.BRIDGE] if shape == "bridge" else ["-o", L.UPLINK]
    _ipt(L.HOST_NS, "-t", "nat", "-D", "POSTROUTING", "-s", L.SUBNET, *out, "-j", "MASQUERADE")


def _proxy_arp_off(container: str) -> None:
    control._sysctl(L.HOST_NS, f"net.ipv4.conf.{_veth(container)}.proxy_arp", "0")
    _ip(L.container_ns(container), "neigh", "flush", "dev", L.CONTAINER_IFACE)


def _web(_: str = "") -> str:
    return L.CONTAINERS[L.PUBLISHED_CONTAINER][0]


def _listen_loopback(_: str) -> None:
    control._write_state(control.start_web(control.read_state() or {}, "127.0.0.1"))


def _not_listening(_: str) -> None:
    control._write_state(control.stop_service(control.read_state() or {}, "web"))


def _dnat_gone(_: str) -> None:
    """What a firewall reload does to Docker's rules: the DNAT for the published port goes."""
    dnat = ["-p", "tcp", "-m", "tcp", "--dport", str(L.PUBLISHED_HOST_PORT), "-j", "DNAT",
            "--to-destination", f"{_web()}:{L.PUBLISHED_PORT}"]
    for chain in ("PREROUTING", "OUTPUT"):
        _ipt(L.HOST_NS, "-t", "nat", "-D", chain, "-d", f"{L.UPLINK_ADDRESS}/32", *dnat)


LOOPBACK = "127.0.0.1"


def _published_on_loopback(_: str, route_localnet: str = "1") -> None:
    """`docker run -p 127.0.0.1:8080:80` as Docker 28 makes it with the userland proxy off:
    DNAT for 127.0.0.1 (PREROUTING, OUTPUT for the host's own connections), route_localnet
    on the bridge and a MASQUERADE of local sources so that those leave it, and a raw-table
    DROP of what arrives for the port on any other interface (before DOCKER-USER)."""
    _dnat_gone("")
    port = str(L.PUBLISHED_HOST_PORT)
    dnat = ["-d", f"{LOOPBACK}/32", "-p", "tcp", "-m", "tcp", "--dport", port, "-j", "DNAT",
            "--to-destination", f"{_web()}:{L.PUBLISHED_PORT}"]
    _ipt(L.HOST_NS, "-t", "nat", "-A", "PREROUTING", "!", "-i", L.BRIDGE, *dnat)
    _ipt(L.HOST_NS, "-t", "nat", "-A", "OUTPUT", *dnat)
    _ipt(L.HOST_NS, "-t", "nat", "-I", "POSTROUTING", "1", "-o", L.BRIDGE, "-m", "addrtype",
         "--src-type", "LOCAL", "-j", "MASQUERADE")
    _ipt(L.HOST_NS, "-t", "raw", "-A", "PREROUTING", "-d", f"{LOOPBACK}/32", "!", "-i", "lo",
         "-p", "tcp", "-m", "tcp", "--dport", port, "-j", "DROP")
    control._sysctl(L.HOST_NS, f"net.ipv4.conf.{L.BRIDGE}.route_localnet", route_localnet)
    control._write_state(dict(control.read_state() or {}, publish_ip=LOOPBACK))


def _stop_dns(_: str) -> None:
    state = control.stop_service(control.read_state() or {}, "dns")
    control._write_state(state)


def _ipv6_disabled(container: str) -> None:
    control._sysctl(L.container_ns(container), f"net.ipv6.conf.{L.CONTAINER_IFACE}.disable_ipv6",
                    "1")


def _dad_failed(container: str) -> None:
    """Another container takes the container's IPv6 address; the container adds it again
    (as after a restart) and its duplicate address detection fails."""
    other = next(n for n in L.CONTAINERS6 if n != container)
    mine = f"{L.CONTAINERS6[container]}/64"
    _ip(L.container_ns(other), "-6", "addr", "add", mine, "dev", L.CONTAINER_IFACE, "nodad")
    ns = L.container_ns(container)
    _ip(ns, "-6", "addr", "del", mine, "dev", L.CONTAINER_IFACE)
    _ip(ns, "-6", "addr", "add", mine, "dev", L.CONTAINER_IFACE)
    control.wait_for_dad(ns, L.CONTAINER_IFACE)


def _ra_expired(_: str) -> None:
    """The host's uplink as SLAAC configures it (an address with a lifetime), after its
    RA-learnt default route expired with forwarding on and accept_ra = 1."""
    ns = L.HOST_NS
    control._sysctl(ns, f"net.ipv6.conf.{L.UPLINK}.accept_ra", "1")
    _ip(ns, "-6", "addr", "replace", f"{L.UPLINK_ADDRESS6}/64", "dev", L.UPLINK,
        "valid_lft", "86400", "preferred_lft", "14400")
    _ip(ns, "-6", "route", "del", "default")


ROUTED_PREFIX6 = "2001:db8:29::/64"  # a global prefix for the containers, routed, not NATed


def _no_route_back(container: str) -> None:
    """The container gets an address of a routed (non-NAT) global prefix, and the upstream
    treats that prefix as on its link instead of routing it to the host."""
    host_end, mine = ROUTED_PREFIX6.replace("::/64", "::1/64"), ROUTED_PREFIX6.replace(
        "::/64", f"::{2 + list(L.CONTAINERS6).index(container)}/64")
    _ip(L.HOST_NS, "-6", "addr", "add", host_end, "dev", L.BRIDGE, "nodad")
    _ip(L.container_ns(container), "-6", "addr", "add", mine, "dev", L.CONTAINER_IFACE, "nodad")
    _ip(L.INET_NS, "-6", "route", "add", ROUTED_PREFIX6, "dev", L.UPSTREAM_IFACE)


REPLY_TABLE, REPLY_RULE_PREF = "100", "100"


def _reply_misrouted(_: str) -> None:
    """A policy rule catches the internet's replies to the containers and routes them by a
    table that sends the container network back out of the uplink."""
    _ip(L.HOST_NS, "rule", "add", "from", L.INTERNET_NET, "to", L.SUBNET, "lookup",
        REPLY_TABLE, "pref", REPLY_RULE_PREF)
    _ip(L.HOST_NS, "route", "add", L.SUBNET, "via", L.UPSTREAM_ADDRESS, "dev", L.UPLINK,
        "table", REPLY_TABLE)


FORWARDING = ("bridge", "routed")  # the shapes in which the host forwards for the containers

FAULTS = {f.name: f for f in [
    Fault("ip-forward-off", "host stops forwarding: net.ipv4.ip_forward=0", False,
          lambda c: control._sysctl(L.HOST_NS, "net.ipv4.ip_forward", "0"), FORWARDING),
    Fault("forward-drop", "a DROP rule for the container's address at the top of FORWARD", True,
          lambda c: _ipt(L.HOST_NS, "-I", "FORWARD", "1", "-s", _address(c), "-j", "DROP"),
          FORWARDING),
    Fault("nat-missing", "the MASQUERADE rule for the container subnet is gone", False,
          _drop_nat, FORWARDING),
    Fault("veth-detached", "the container's host-side veth is taken off the bridge", True,
          lambda c: _ip(L.HOST_NS, "link", "set", _veth(c), "nomaster"), ("bridge",)),
    Fault("veth-down", "the container's host-side veth is set down", True,
          lambda c: _ip(L.HOST_NS, "link", "set", _veth(c), "down"), FORWARDING),
    Fault("bridge-down", f"the bridge {L.BRIDGE} is set down", False,
          lambda c: _ip(L.HOST_NS, "link", "set", L.BRIDGE, "down"), ("bridge",)),
    Fault("no-default-route", "the container has no default route", True,
          lambda c: _ip(L.container_ns(c), "route", "del", "default")),
    Fault("dns-unreachable", "the DNS server in the internet stops answering", False, _stop_dns),
    Fault("listen-loopback", "web's published service listens on 127.0.0.1 only", False,
          _listen_loopback, FORWARDING),
    Fault("not-listening", "web's published service is stopped", False, _not_listening,
          FORWARDING),
    Fault("dnat-missing", "the DNAT that publishes web's port is gone (a firewall reload)",
          False, _dnat_gone, FORWARDING),
    Fault("published-on-loopback", "web's port is published on 127.0.0.1 only (userland "
          "proxy off, Docker 28's raw-table DROP for other interfaces)", False,
          _published_on_loopback, ("bridge",)),
    Fault("route-localnet-off", "web's port is published on 127.0.0.1 with the userland proxy "
          "off, and route_localnet is off on the bridge", False,
          lambda c: _published_on_loopback(c, "0"), ("bridge",)),
    Fault("hairpin-off", "hairpin_mode is off on web's bridge port: web cannot reach its own "
          "published port through the host's address", False,
          lambda c: _ip(L.HOST_NS, "link", "set", L.CONTAINERS[L.PUBLISHED_CONTAINER][1], "type",
                        "bridge_slave", "hairpin", "off"), ("bridge",)),
    Fault("inbound-drop", "a DOCKER-USER-style DROP of web's published port in FORWARD",
          False, lambda c: _ipt(L.HOST_NS, "-I", "NDLAB-USER", "1", "-d", _web(), "-p", "tcp",
                                "--dport", str(L.PUBLISHED_PORT), "-j", "DROP"), FORWARDING),
    Fault("ipv6-forward-off", "host stops forwarding IPv6: net.ipv6.conf.all.forwarding=0",
          False, lambda c: control._sysctl(L.HOST_NS, "net.ipv6.conf.all.forwarding", "0"),
          ("bridge",)),
    Fault("nat66-missing", "the IPv6 MASQUERADE for the unique-local container network is gone",
          False, lambda c: control._ns_exec(L.HOST_NS, "ip6tables", "-t", "nat", "-D",
                                            "POSTROUTING", "-s", L.SUBNET6, "!", "-o",
                                            L.BRIDGE, "-j", "MASQUERADE"), ("bridge",)),
    Fault("ipv6-disabled", "IPv6 is switched off on the container's eth0 (disable_ipv6)", True,
          _ipv6_disabled, ("bridge",)),
    Fault("dad-failed", "another container holds the container's IPv6 address: DAD fails",
          True, _dad_failed, ("bridge",)),
    Fault("ra-ignored", "the host's SLAAC uplink lost its RA default route (forwarding on, "
          "accept_ra = 1)", False, _ra_expired, ("bridge",)),
    Fault("no-route-back", "the container sends from a routed global IPv6 prefix the upstream "
          "treats as on its link (no route back)", True, _no_route_back, ("bridge",)),
    Fault("reply-misrouted", "a policy rule routes the internet's replies to the containers "
          "back out of the uplink (asymmetric return path)", False, _reply_misrouted,
          ("bridge",)),
    Fault("macvlan-private", "the container's macvlan child is switched to private mode: "
          "its siblings on the parent are cut off", True,
          lambda c: _ip(L.container_ns(c), "link", "set", L.CONTAINER_IFACE, "type",
                        "macvlan", "mode", "private"), ("macvlan",)),
    Fault("route-missing", "the host's route to a routed container's /32 is deleted", True,
          lambda c: _ip(L.HOST_NS, "route", "del", f"{_address(c)}/32", "dev", _veth(c)),
          ("routed",)),
    Fault("proxy-arp-off", "proxy ARP is off on a routed container's veth", True,
          _proxy_arp_off, ("routed",)),
]}


def inject(name: str, container: str = "test") -> dict:
    """Inject fault `name` (for `container` when it is per-container); returns the lab state."""
    control._require_root()
    if name not in FAULTS:
        raise UsageError(f"unknown fault '{name}'; choose one of: {', '.join(FAULTS)}")
    if container not in L.CONTAINERS:
        raise UsageError(f"no lab container '{container}'; choose one of: {', '.join(L.CONTAINERS)}")
    if not control.is_up():
        raise LabStateError("the lab is not up: run `netdoctor lab up` first")
    fault = FAULTS[name]
    state = control.read_state() or {}
    shape = state.get("shape") or "bridge"
    if shape not in fault.shapes:
        raise UsageError(f"{name} needs a lab of shape {' or '.join(fault.shapes)}; this lab "
                         f"is {shape} (`netdoctor lab down`, then `lab up --shape ...`)")
    entry = {"fault": name, "container": container if fault.per_container else None}
    if entry in (state.get("faults") or []):
        raise LabStateError(f"{name} is already injected; `netdoctor lab heal` undoes it")
    try:
        fault.inject(container)
    except CommandFailed as e:
        raise LabStateError(f"could not inject {name} (was the lab changed by hand? "
                            f"`netdoctor lab heal` first): {e}") from None
    state = control.read_state() or {}
    state = dict(state, faults=list(state.get("faults") or []) + [entry])
    control._write_state(state)
    return state

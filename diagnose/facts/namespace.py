"""The facts netdoctor gathers about a network namespace, as frozen, JSON-ready records.

Everything downstream of gathering (path discovery, checks, verdicts) reads only these,
so it runs on a saved snapshot without root.
"""

from __future__ import annotations

import functools
import ipaddress
import typing
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from functools import cached_property
from typing import Optional


# Addresses the internet does not route back: RFC 1918 and carrier-grade NAT space.
# (ipaddress's is_private also counts the documentation ranges, which the lab's internet uses.)
# Private addresses no internet router routes back: RFC 1918, CGNAT, IPv6 unique-local.
UNROUTED = tuple(ipaddress.ip_network(n) for n in
                 ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10",
                  "fc00::/7"))


@functools.lru_cache(maxsize=65536)
def parse_network(text: str) -> ipaddress._BaseNetwork:
    """ipaddress.ip_network(text, strict=False), parsed once per distinct text (a host with
    thousands of containers and rules asks for the same networks over and over)."""
    return ipaddress.ip_network(text, strict=False)


@functools.lru_cache(maxsize=65536)
def parse_address(text: str) -> ipaddress._BaseAddress:
    return ipaddress.ip_address(text)


def is_unrouted(address: str) -> bool:
    try:
        a = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(a in n for n in UNROUTED)


def _from_dict(cls, data: dict):
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


def _conforms(value, hint) -> bool:
    return _checker(hint)(value)


def _always(value) -> bool:
    return True


@functools.lru_cache(maxsize=None)
def _checker(hint):
    """A test that a value has the type hint says, made once per hint (a snapshot of a
    thousand containers holds half a million values to test)."""
    origin = typing.get_origin(hint)
    if hint is typing.Any:
        return _always
    if origin is typing.Union:
        parts = tuple(_checker(h) for h in typing.get_args(hint))
        return lambda v: any(p(v) for p in parts)
    if hint is type(None):
        return lambda v: v is None
    if hint is int:
        return lambda v: isinstance(v, int) and not isinstance(v, bool)
    if hint is float:
        return lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
    if hint is tuple:
        return lambda v: isinstance(v, tuple) and all(_valid(x) for x in v)
    if origin is tuple:  # Tuple[X, ...]: every item an X
        item = _checker(typing.get_args(hint)[0])
        return lambda v: isinstance(v, tuple) and all(item(x) for x in v)
    if hint is dict:
        return lambda v: isinstance(v, dict) and all(isinstance(k, str) for k in v)
    if origin is dict:  # Dict[str, V]: every key text, every value of V
        item = _checker(typing.get_args(hint)[1])
        return lambda v: isinstance(v, dict) and all(isinstance(k, str) and item(x)
                                                     for k, x in v.items())
    if hint is str:
        return lambda v: isinstance(v, str)
    if hint is list:
        return lambda v: isinstance(v, list)
    if isinstance(hint, type):
        return lambda v: isinstance(v, hint) and _valid(v)
    return _always


@functools.lru_cache(maxsize=None)
def _field_checkers(cls) -> tuple:
    hints = typing.get_type_hints(cls)
    return tuple((f.name, _checker(hints.get(f.name, typing.Any))) for f in fields(cls))


def _valid(value) -> bool:
    """A dataclass record whose every field has its annotated type (items of tuples that
    are records are checked in turn); other values pass."""
    if isinstance(value, (str, int, float, bool, type(None))):
        return True
    if isinstance(value, tuple):
        return all(_valid(v) for v in value)
    if not is_dataclass(value) or isinstance(value, type):
        return False
    return all(check(getattr(value, name)) for name, check in _field_checkers(type(value)))


def check_types(record, what: str) -> None:
    """ParseError unless the record (read from a file someone may have edited) has the
    types its fields are declared with, all the way down."""
    if not _valid(record):
        from ..errors import ParseError

        raise ParseError(f"{what}: a field has the wrong type")


@dataclass(frozen=True)
class Address:
    family: str  # "inet" or "inet6"
    local: str
    prefixlen: int
    scope: str = "global"
    # What `ip addr` shows after the address: "dadfailed", "tentative", "dynamic" (it has a
    # lifetime: SLAAC, DHCP), "deprecated", ...
    flags: typing.Tuple[str, ...] = ()

    @property
    def interface(self) -> ipaddress._BaseNetwork:
        return ipaddress.ip_interface(f"{self.local}/{self.prefixlen}")

    def __str__(self) -> str:
        return f"{self.local}/{self.prefixlen}"


@dataclass(frozen=True)
class Link:
    ifindex: int
    name: str
    kind: Optional[str]  # "veth", "bridge", None for a plain NIC, ...
    mtu: int
    mac: Optional[str]
    flags: typing.Tuple[str, ...]
    operstate: str
    master: Optional[int] = None  # ifindex of the bridge (or bond) this link is enslaved to
    peer_ifindex: Optional[int] = None  # IFLA_LINK: a veth's peer ifindex, in peer_netnsid's ns
    peer_netnsid: Optional[int] = None  # IFLA_LINK_NETNSID; None means "this same namespace"
    addresses: tuple = ()
    # A tunnel's own settings, as `ip -d link` shows them (vxlan: vni, local, remote, group,
    # port, dev = the underlay device, learning)
    tunnel: typing.Dict[str, str] = field(default_factory=dict)
    # An XDP program attached to the link ("generic prog 12"): packets it handles never
    # become kernel packets netdoctor could follow.
    xdp: Optional[str] = None
    # A macvlan/macvtap/ipvlan child's mode (bridge, private, vepa, passthru; l2, l3...).
    mode: Optional[str] = None
    # A bridge port's hairpin_mode: whether the bridge sends a frame back out of the port it
    # came in by (None: not a bridge port, or not read).
    hairpin: Optional[bool] = None
    # A bridge port's STP state (disabled, listening, learning, forwarding, blocking): only a
    # forwarding port passes frames. None: not a bridge port, or not read.
    port_state: Optional[str] = None
    # A bridge port marked isolated: the bridge passes nothing between two isolated ports
    # (only to and from the others). None: not a bridge port, or not read.
    isolated: Optional[bool] = None
    # A bridge's spanning tree: True when the kernel runs STP on it (the ports' states are
    # then the protocol's), False when off, None when not a bridge or not read.
    stp: Optional[bool] = None
    # A bridge port's `learning` (the bridge learns which MACs are behind it), `flood`
    # (frames for a MAC it has not learnt go out of it too) and `bcast_flood` (broadcasts,
    # ARP requests first, go out of it). None: not a bridge port, or not read.
    learning: Optional[bool] = None
    unicast_flood: Optional[bool] = None
    broadcast_flood: Optional[bool] = None

    @property
    def up(self) -> bool:
        return "UP" in self.flags

    def holds(self, address: str) -> bool:
        """Whether one of its addresses is address (as written: one spelling per address)."""
        return any(a.local == address for a in self.addresses)

    @property
    def lower_up(self) -> bool:
        return "LOWER_UP" in self.flags

    @property
    def is_loopback(self) -> bool:
        return "LOOPBACK" in self.flags

    @property
    def state(self) -> str:
        """What `ip -br link` would say, plus NO-CARRIER when up without a carrier."""
        if not self.up:
            return "DOWN"
        if not self.lower_up:
            return "NO-CARRIER"
        return self.operstate if self.operstate != "UNKNOWN" else "UP"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["flags"] = list(self.flags)
        d["addresses"] = [asdict(a) for a in self.addresses]
        return d

    @classmethod
    def from_dict(cls, data: dict) -> "Link":
        data = dict(data)
        data["flags"] = tuple(data.get("flags", ()))
        data["addresses"] = tuple(_from_dict(Address, dict(a, flags=tuple(a.get("flags", ()))))
                                  for a in data.get("addresses", ()))
        return _from_dict(cls, data)


@dataclass(frozen=True)
class Route:
    dst: str  # "default" or a prefix like "10.0.0.0/24" (host routes as "10.0.0.1/32")
    family: str = "inet"
    gateway: Optional[str] = None
    dev: Optional[str] = None
    table: str = "main"
    type: str = "unicast"
    protocol: Optional[str] = None
    scope: Optional[str] = None
    prefsrc: Optional[str] = None
    metric: int = 0
    expires: Optional[int] = None  # seconds left, for a route with a lifetime (learnt from RA)
    # `onlink`: the gateway is taken to be on the link whatever the device's addresses say
    onlink: bool = False

    @property
    def is_default(self) -> bool:
        return self.dst == "default"

    @property
    def network(self) -> ipaddress._BaseNetwork:
        if self.is_default:
            return parse_network("0.0.0.0/0" if self.family == "inet" else "::/0")
        return parse_network(self.dst)


@dataclass(frozen=True)
class Neighbour:
    dst: str
    dev: str
    lladdr: Optional[str]
    state: typing.Tuple[str, ...]  # e.g. ("REACHABLE",), ("FAILED",), ("INCOMPLETE",)


@dataclass(frozen=True)
class FdbEntry:
    """A forwarding entry (`bridge fdb show dev DEV`). A tunnel's (flannel.1): frames for
    mac go in a VXLAN packet to dst (00:00:00:00:00:00 is the default, for every MAC
    without one). A bridge port's (read where the bridge does not learn): frames for mac go
    out of that port; dst is None."""

    dev: str
    mac: str
    dst: Optional[str] = None
    state: str = ""
    # A sticky entry stays on its port: learning never moves it (a static one it does,
    # as soon as the MAC comes in by another port).
    sticky: bool = False


@dataclass(frozen=True)
class PolicyRule:
    """A routing policy rule (`ip rule show`): for the packets its selectors match, look the
    route up in a table, or refuse them (blackhole, unreachable, prohibit)."""

    priority: int
    family: str  # "inet" or "inet6"
    action: str  # lookup, goto, nop, blackhole, unreachable, prohibit
    table: Optional[str] = None  # for lookup: the table's name or number
    src: Optional[str] = None  # a prefix ("172.29.0.0/24"); None: from all
    dst: Optional[str] = None
    iif: Optional[str] = None
    oif: Optional[str] = None
    fwmark: Optional[str] = None  # "0x1" or "0x1/0xff"
    invert: bool = False  # `not`: the rule applies to what its selectors do not match
    # Selectors netdoctor does not match packets against (tos, ipproto, ports, uidrange...)
    other: typing.Tuple[str, ...] = ()

    def selector(self) -> str:
        """What `ip rule del` names this rule by: its priority, selectors and action."""
        words = [f"pref {self.priority}", "not" if self.invert else "",
                 f"from {self.src}" if self.src else "", f"to {self.dst}" if self.dst else "",
                 f"fwmark {self.fwmark}" if self.fwmark else "",
                 f"iif {self.iif}" if self.iif else "", f"oif {self.oif}" if self.oif else "",
                 f"lookup {self.table}" if self.action == "lookup" else self.action]
        return " ".join(w for w in words if w)

    def deletion(self) -> str:
        """The command that deletes this rule alone: `ip [-6] rule del SELECTOR`."""
        return ("ip -6" if self.family == "inet6" else "ip") + " rule del " + self.selector()

    def text(self) -> str:
        """As `ip rule show` prints it."""
        words = [f"{self.priority}:", "not" if self.invert else "",
                 f"from {self.src or 'all'}", f"to {self.dst}" if self.dst else "",
                 f"fwmark {self.fwmark}" if self.fwmark else "",
                 f"iif {self.iif}" if self.iif else "", f"oif {self.oif}" if self.oif else ""]
        words += list(self.other)
        words.append(f"lookup {self.table}" if self.action == "lookup" else self.action)
        return " ".join(w for w in words if w)


@dataclass(frozen=True)
class RouteLookup:
    """What the kernel answered to `ip route get` (a FIB lookup; nothing is sent)."""

    dst: str
    dev: Optional[str]
    gateway: Optional[str] = None
    prefsrc: Optional[str] = None
    error: Optional[str] = None  # the kernel's refusal, e.g. "Network is unreachable"
    query: str = ""  # the lookup as a person would type it


@dataclass(frozen=True)
class NamespaceSnapshot:
    """One read of a namespace: links with addresses, routes, neighbours, sysctls."""

    netns: dict  # Netns.to_dict()
    links: tuple
    routes: tuple = ()
    neighbours: tuple = ()
    sysctls: typing.Dict[str, str] = field(default_factory=dict)
    # "nft ip filter", "legacy ip6 nat", ...: the netfilter tables that exist here, so that
    # a container's rules are dumped only where it has any ("unknown" when it could not be
    # told: then they are dumped).
    netfilter_tables: typing.Tuple[str, ...] = ()
    fdb: tuple = ()  # FdbEntry of its tunnel devices and of bridge ports that do not learn
    # Who answered one ARP request for each next hop it holds a static (PERMANENT, NOARP)
    # entry for: {"ADDRESS DEV": [MAC, ...]} ([] when nothing did). A static entry is never
    # asked again by the kernel; this says whether what it names is still the neighbour's.
    asked: typing.Dict[str, list] = field(default_factory=dict)

    def answered(self, address: str, dev: str) -> Optional[list]:
        """The MACs that answered netdoctor's ARP for address on dev; None if not asked."""
        return self.asked.get(f"{address} {dev}")

    def neighbour_mac(self, address: str, dev: str) -> Optional[str]:
        """The MAC a usable neighbour entry gives address on dev (not FAILED, INCOMPLETE)."""
        return next((n.lladdr for n in self.neighbours_of(address, dev) if n.lladdr
                     and "FAILED" not in n.state and "INCOMPLETE" not in n.state), None)

    @cached_property
    def _neighbours_at(self) -> dict:
        out: dict = {}
        for n in self.neighbours:
            out.setdefault((n.dst, n.dev), []).append(n)
        return out

    def neighbours_of(self, address: str, dev: str) -> list:
        """The neighbour entries for address on dev (a host with a thousand containers has
        thousands of entries; the checks ask about one per container)."""
        return self._neighbours_at.get((address, dev), [])

    @cached_property
    def _routed_via(self) -> frozenset:
        return frozenset((r.gateway, r.dev) for r in self.routes if r.gateway)

    def routes_via(self, gateway: str, dev: str) -> bool:
        """Whether a route of any table goes by gateway on dev."""
        return (gateway, dev) in self._routed_via

    @cached_property
    def _outer_ports(self) -> dict:
        out: dict = {}
        for l in self.links:
            if l.master is not None and l.kind != "veth":
                out.setdefault(l.master, []).append(l)
        return out

    def outer_ports(self, master: int) -> list:
        """The links enslaved to the device of that ifindex that are not veths: a bridge's
        NIC, bond or VM tap, among a thousand container veths."""
        return self._outer_ports.get(master, [])

    def tunnel_destination(self, dev: str, mac: Optional[str]) -> Optional[str]:
        """Where the tunnel dev sends a frame for mac: its FDB entry, else its default."""
        entries = [e for e in self.fdb if e.dev == dev and e.dst]
        exact = next((e.dst for e in entries if mac and e.mac.lower() == mac.lower()), None)
        return exact or next((e.dst for e in entries if e.mac == "00:00:00:00:00:00"), None)

    @cached_property
    def _by_ifindex(self) -> dict:
        return {l.ifindex: l for l in self.links}

    @cached_property
    def _by_name(self) -> dict:
        return {l.name: l for l in self.links}

    @cached_property
    def _positions(self) -> dict:
        return {l.ifindex: i for i, l in enumerate(self.links)}

    def position(self, ifindex: int) -> int:
        """Where the link is in the dump's order."""
        return self._positions.get(ifindex, len(self.links))

    @cached_property
    def tunnels(self) -> tuple:
        """The VXLAN links (the overlay checks look for them once per container)."""
        return tuple(l for l in self.links if l.kind == "vxlan")

    def link(self, ifindex: Optional[int] = None, name: Optional[str] = None) -> Optional[Link]:
        if ifindex is not None:
            return self._by_ifindex.get(ifindex)
        if name is not None:
            return self._by_name.get(name)
        return None

    @cached_property
    def _v4_main_index(self) -> tuple:
        """IPv4 main-table routes (not default) by start address, and by (start, length)."""
        by_start, by_prefix = [], {}
        for i, r in enumerate(self.routes):
            if r.table != "main" or r.family != "inet" or r.is_default:
                continue
            try:
                net = parse_network(r.dst)
            except ValueError:
                continue
            lo = int(net.network_address)
            by_start.append((lo, i))
            by_prefix.setdefault((lo, net.prefixlen), []).append(i)
        by_start.sort()
        return by_start, by_prefix

    def routes_overlapping(self, net) -> list:
        """IPv4 main-table routes (not default) whose network overlaps net, in table order.
        Two prefixes overlap only when one holds the other, so this is a few lookups, not
        a scan: the routes inside net by start address, and net's supernets by prefix."""
        import bisect

        by_start, by_prefix = self._v4_main_index
        lo = int(net.network_address)
        hi = int(net.broadcast_address)
        found = set()
        for start, i in by_start[bisect.bisect_left(by_start, (lo, -1)):]:
            if start > hi:
                break
            if parse_network(self.routes[i].dst).prefixlen >= net.prefixlen:
                found.add(i)
        for plen in range(0, net.prefixlen + 1):
            mask = ((1 << 32) - 1) ^ ((1 << (32 - plen)) - 1) if plen else 0
            found.update(by_prefix.get((lo & mask, plen), ()))
        return [self.routes[i] for i in sorted(found)]

    def default_routes(self, family: str = "inet") -> list:
        return list(self._defaults.get(family, ()))

    @cached_property
    def held_addresses(self) -> frozenset:
        """Every address of its links, loopback included (each of a host's thousand
        containers asks about the host's)."""
        return frozenset(a.local for l in self.links for a in l.addresses)

    @cached_property
    def refusing_routes(self) -> tuple:
        """Its routes of a type that refuses what they match: blackhole, unreachable,
        prohibit (a few among a host's thousands)."""
        return tuple(r for r in self.routes if r.type in ("blackhole", "unreachable",
                                                           "prohibit"))

    @cached_property
    def bridges(self) -> tuple:
        """The bridge devices: a few among a thousand container veths."""
        return tuple(l for l in self.links if l.kind == "bridge")

    @cached_property
    def addressed_links(self) -> tuple:
        """The links that hold a global address, loopback aside: on a host with a thousand
        container veths, the handful the checks compare every container with."""
        return tuple(l for l in self.links if not l.is_loopback
                     and any(a.scope == "global" for a in l.addresses))

    @cached_property
    def _defaults(self) -> dict:
        """Main-table unicast default routes by family (a host with a thousand veths has
        thousands of routes; the checks ask for its defaults per container)."""
        out: dict = {}
        for r in self.routes:
            if r.is_default and r.table == "main" and r.type == "unicast":
                out.setdefault(r.family, []).append(r)
        return out

    def to_dict(self) -> dict:
        return {
            "netns": self.netns,
            "links": [l.to_dict() for l in self.links],
            "routes": [asdict(r) for r in self.routes],
            "neighbours": [dict(asdict(n), state=list(n.state)) for n in self.neighbours],
            "sysctls": dict(self.sysctls),
            "netfilter_tables": list(self.netfilter_tables),
            "fdb": [asdict(e) for e in self.fdb],
            **({"asked": {k: list(v) for k, v in self.asked.items()}} if self.asked else {}),
        }

    @classmethod
    def from_dict(cls, data: dict) -> "NamespaceSnapshot":
        return cls(
            netns=data["netns"],
            links=tuple(Link.from_dict(l) for l in data.get("links", ())),
            routes=tuple(_from_dict(Route, r) for r in data.get("routes", ())),
            neighbours=tuple(
                _from_dict(Neighbour, dict(n, state=tuple(n.get("state", ()))))
                for n in data.get("neighbours", ())
            ),
            sysctls=dict(data.get("sysctls", {})),
            netfilter_tables=tuple(data.get("netfilter_tables", ())),
            fdb=tuple(_from_dict(FdbEntry, e) for e in data.get("fdb", ())),
            asked=_asked(data.get("asked", {})),
        )


def _asked(doc) -> dict:
    """The ARP answers of a snapshot's JSON, validated."""
    if not (isinstance(doc, dict) and all(
            isinstance(k, str) and isinstance(v, list) and all(isinstance(m, str) for m in v)
            for k, v in doc.items())):
        from ..errors import ParseError

        raise ParseError("snapshot: asked must map 'ADDRESS DEV' to the MACs that answered")
    return {k: list(v) for k, v in doc.items()}

"""The snapshot: every fact the checks judge, gathered once, savable as JSON.

For each host namespace (the namespace netdoctor runs in, and any namespace that holds a
target's veth peer): its links, routes, policy rules, neighbours, sysctls and netfilter
ruleset; for each
target: its namespace, its discovered path, its resolv.conf, the answer of one DNS query per
nameserver, and its own rules where it has any. `netdoctor checks --from FILE` judges a saved
snapshot anywhere, without root: from_dict validates it field by field.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Optional

from ..errors import ParseError
from .namespace import NamespaceSnapshot, PolicyRule, check_types
from .ruleset import Ruleset

SCHEMA = "netdoctor.snapshot/1"
# Where checks send container traffic when no destination is given: an address only
# the default route covers (RFC 2544 benchmarking range). Nothing is sent to it.
DEFAULT_DESTINATION = "198.18.0.1"


@dataclass(frozen=True)
class HostFacts:
    namespace: NamespaceSnapshot
    ruleset: Ruleset
    # Devices with a tc classifier hook (an ingress or clsact qdisc): {device: qdisc kind}.
    # None when `tc` could not be asked.
    tc_hooks: Optional[dict] = None
    # What the overlay's control plane on this host says it programmed: {"flannel": {network,
    # subnet, mtu, ipmasq, source}} from flannel's subnet file. None when there is none.
    intent: Optional[dict] = None
    # The tunnel devices' checksum offloads and the UDP checksum error counter (gather.
    # read_offloads); None when the host has no tunnel or no ethtool.
    offloads: Optional[dict] = None
    # The machine's neighbour tables (rtdump.read_neighbour_tables: {"arp_cache": {entries,
    # thresh1-3, table_fulls, ...}}), with "table_fulls_during_run": how many times the
    # kernel refused a new entry between the start of the run and this reading. None when
    # not read.
    neighbour_tables: Optional[dict] = None
    # Its routing policy rules (`ip rule`, both families: PolicyRule), by priority; None
    # when not read.
    policy_rules: Optional[tuple] = None
    # Its listening TCP and bound UDP sockets ({"proto", "address", "port"}), read where its
    # nat PREROUTING sends packets to itself (REDIRECT, or DNAT to its own address: a
    # transparent proxy); None when not read.
    listeners: Optional[list] = None

    def to_dict(self) -> dict:
        return {"namespace": self.namespace.to_dict(), "ruleset": self.ruleset.to_dict(),
                "tc_hooks": self.tc_hooks, "intent": self.intent, "offloads": self.offloads,
                "neighbour_tables": self.neighbour_tables,
                "policy_rules": _policy_rules_doc(self.policy_rules),
                "listeners": self.listeners}

    @classmethod
    def from_dict(cls, d: dict) -> "HostFacts":
        hooks = d.get("tc_hooks")
        if hooks is not None and not (isinstance(hooks, dict) and all(
                isinstance(k, str) and isinstance(v, str) for k, v in hooks.items())):
            raise ParseError("snapshot: tc_hooks must map device names to qdisc kinds")
        intent = d.get("intent")
        if intent is not None and not (isinstance(intent, dict) and all(
                isinstance(v, dict) for v in intent.values())):
            raise ParseError("snapshot: intent must map control planes to their facts")
        offloads = d.get("offloads")
        if offloads is not None and not (isinstance(offloads, dict) and isinstance(
                offloads.get("features", {}), dict)):
            raise ParseError("snapshot: offloads must hold a features map")
        tables = d.get("neighbour_tables")
        if tables is not None and not (isinstance(tables, dict) and all(
                isinstance(t, dict) and all(isinstance(v, int) and not isinstance(v, bool)
                                            for v in t.values()) for t in tables.values())):
            raise ParseError("snapshot: neighbour_tables must map tables to their counts")
        return cls(NamespaceSnapshot.from_dict(d["namespace"]), Ruleset.from_dict(d["ruleset"]),
                   hooks, intent, offloads, tables, _policy_rules(d.get("policy_rules")),
                   _listeners(d.get("listeners")))


@dataclass(frozen=True)
class ContainerFacts:
    target: dict  # Target.to_dict()
    path: dict  # PathReport.to_dict()
    namespace: NamespaceSnapshot
    host_inode: Optional[int]
    resolv_conf: Optional[str] = None  # its text, as the container reads it
    # [{"server", "answered", "rcode", "error"[, "asked": False when never sent]}];
    # None: not probed
    dns_probe: Optional[list] = None
    # The container's own netfilter rules (its OUTPUT chain decides before anything leaves);
    # None when its namespace has no tables, or is the host's.
    ruleset: Optional[Ruleset] = None
    # Its listening TCP and bound UDP sockets ({"proto", "address", "port"}), read from its
    # own /proc/net tables when it publishes a port; None when not read.
    listeners: Optional[list] = None
    # Its routing policy rules (PolicyRule), read when its own kernel refused the route to
    # the destination (they say which rule did); None when not read.
    policy_rules: Optional[tuple] = None

    @property
    def label(self) -> str:
        return f"{self.target['kind']}:{self.target['name']}"

    def to_dict(self) -> dict:
        return {"target": self.target, "path": self.path, "namespace": self.namespace.to_dict(),
                "host_inode": self.host_inode, "resolv_conf": self.resolv_conf,
                "dns_probe": self.dns_probe,
                "ruleset": self.ruleset.to_dict() if self.ruleset is not None else None,
                "listeners": self.listeners,
                "policy_rules": _policy_rules_doc(self.policy_rules)}

    @classmethod
    def from_dict(cls, d: dict) -> "ContainerFacts":
        return cls(target=d["target"], path=d["path"],
                   namespace=NamespaceSnapshot.from_dict(d["namespace"]),
                   host_inode=d.get("host_inode"), resolv_conf=d.get("resolv_conf"),
                   dns_probe=d.get("dns_probe"),
                   ruleset=Ruleset.from_dict(d["ruleset"]) if d.get("ruleset") else None,
                   listeners=d.get("listeners"),
                   policy_rules=_policy_rules(d.get("policy_rules")))


def valid_listeners(doc) -> bool:
    """A listeners list as a snapshot holds it (None: not read)."""
    return doc is None or (isinstance(doc, list) and all(
        isinstance(s, dict) and isinstance(s.get("proto"), str)
        and isinstance(s.get("address"), str) and isinstance(s.get("port"), int)
        and not isinstance(s.get("port"), bool) for s in doc))


def _listeners(doc) -> Optional[list]:
    if not valid_listeners(doc):
        raise ParseError("snapshot: listeners must be objects with a proto, address and port")
    return doc


def _policy_rules_doc(rules: Optional[tuple]) -> Optional[list]:
    return None if rules is None else [dict(asdict(r), other=list(r.other)) for r in rules]


def _policy_rules(doc) -> Optional[tuple]:
    """Policy rules from a snapshot's JSON, validated: None when not read."""
    if doc is None:
        return None
    if not (isinstance(doc, list) and all(isinstance(r, dict) and isinstance(
            r.get("other", []), list) for r in doc)):
        raise ParseError("snapshot: policy_rules must be a list of rules")
    try:
        rules = tuple(PolicyRule(**dict(r, other=tuple(r.get("other", [])))) for r in doc)
    except TypeError as e:
        raise ParseError(f"snapshot: a policy rule: {e}") from None
    for r in rules:
        check_types(r, "snapshot: a policy rule")
    return rules


def _check_addresses(ns, what: str) -> None:
    """Every address of the namespace is an address with a prefix length its family has
    (the checks compute networks from them: Address.interface)."""
    for link in ns.links:
        for a in link.addresses:
            try:
                a.interface
            except ValueError:
                raise ParseError(f"{what}: {str(a.local)[:45]}/{a.prefixlen} on "
                                 f"{str(link.name)[:20]} is not an address") from None


def _check_shape(c: "ContainerFacts") -> None:
    """The parts of a container's free-form records that the checks rely on."""
    def need(ok: bool, what: str) -> None:
        if not ok:
            raise ParseError(f"snapshot: container {str(c.target.get('name'))[:40]!r}: {what}")

    need(all(isinstance(c.target.get(k), str) for k in ("kind", "name")),
         "target needs a kind and a name")
    need(c.target.get("network_mode") is None or isinstance(c.target["network_mode"], str),
         "network_mode must be text")
    need(isinstance(c.path.get("hops", []), list), "path hops must be a list")
    for h in c.path.get("hops", []):
        need(isinstance(h, dict) and isinstance(h.get("role"), str)
             and isinstance(h.get("name"), str) and isinstance(h.get("ifindex"), int),
             "every hop needs a role, a name and an ifindex")
        text = ("via", "kind", "mac", "state", "master", "netns")
        need(all(isinstance(h.get(k), (str, type(None))) for k in text)
             and all(isinstance(h.get(k), (int, type(None))) and not isinstance(h.get(k), bool)
                     for k in ("mtu", "netns_inode"))
             and isinstance(h.get("addresses", []), list)
             and all(isinstance(a, str) for a in h.get("addresses", [])),
             "a hop's fields have the wrong type")
    ns = c.target.get("netns")
    need(isinstance(ns, dict) and isinstance(ns.get("name"), (str, type(None)))
         and isinstance(ns.get("inode"), (int, type(None))) and not isinstance(ns.get("inode"), bool)
         and isinstance(ns.get("path"), (str, type(None))), "target netns needs a name, an "
                                                             "inode and a path")
    dest = c.path.get("destination") or {}
    need(isinstance(dest, dict) and all(isinstance(dest.get(k), (str, type(None)))
                                        for k in ("query", "address", "nameserver", "name")),
         "path destination fields must be text")
    for key in ("destination", "host_netns"):
        need(c.path.get(key) is None or isinstance(c.path[key], dict), f"path {key} must be an "
                                                                      f"object")
    need(isinstance(c.path.get("mode"), (str, type(None))), "path mode must be text")

    def number(v) -> bool:
        return v is None or (isinstance(v, int) and not isinstance(v, bool))

    ports = c.target.get("ports", [])
    need(isinstance(ports, list) and all(
        isinstance(p, dict) and number(p.get("host_port")) and number(p.get("container_port"))
        and all(isinstance(p.get(k, ""), str) for k in ("proto", "host_ip", "source"))
        for p in ports), "target ports must be objects with numeric ports")
    need(valid_listeners(c.listeners), "listeners must be objects with a proto, address and "
                                       "port")
    lookups = c.path.get("route_lookups", [])
    need(isinstance(lookups, list) and all(
        isinstance(l, dict) and isinstance(l.get("netns"), str)
        and isinstance(l.get("query"), str)
        and all(isinstance(l.get(k), (str, type(None)))
                for k in ("dev", "gateway", "prefsrc", "error"))
        for l in lookups), "route_lookups must be objects with a netns and a query")
    need(c.dns_probe is None or all(isinstance(p, dict) and isinstance(p.get("server"), str)
                                    for p in c.dns_probe), "dns_probe entries need a server")


@dataclass(frozen=True)
class Snapshot:
    hosts: dict  # str(inode) -> HostFacts
    containers: tuple = ()
    own_inode: Optional[int] = None
    destination: str = DEFAULT_DESTINATION
    meta: dict = field(default_factory=dict)
    problems: tuple = ()  # what could not be gathered, one line each

    def host(self, inode: Optional[int]) -> Optional[HostFacts]:
        return self.hosts.get(str(inode)) if inode is not None else None

    def to_dict(self) -> dict:
        return {"schema": SCHEMA, "meta": self.meta, "own_inode": self.own_inode,
                "destination": self.destination,
                "hosts": {k: h.to_dict() for k, h in self.hosts.items()},
                "containers": [c.to_dict() for c in self.containers],
                "problems": list(self.problems)}

    @classmethod
    def from_dict(cls, d: dict) -> "Snapshot":
        if not isinstance(d, dict) or d.get("schema") != SCHEMA:
            raise ParseError(f"not a netdoctor snapshot (expected schema {SCHEMA})")
        try:
            snap = cls(hosts={k: HostFacts.from_dict(h) for k, h in d["hosts"].items()},
                       containers=tuple(ContainerFacts.from_dict(c) for c in d["containers"]),
                       own_inode=d.get("own_inode"),
                       destination=d.get("destination", DEFAULT_DESTINATION),
                       meta=d.get("meta", {}), problems=tuple(d.get("problems", ())))
        except (KeyError, TypeError, AttributeError, ValueError) as e:
            raise ParseError(f"snapshot is incomplete or malformed: {e}") from None
        for inode, host in snap.hosts.items():
            if not inode.isascii() or not inode.isdigit():
                raise ParseError(f"snapshot: host key {inode[:20]!r} is not a namespace inode")
            check_types(host.namespace, f"snapshot: host {inode}")
            _check_addresses(host.namespace, f"snapshot: host {inode}")
            check_types(host.ruleset, f"snapshot: rules of host {inode}")
        for c in snap.containers:
            check_types(c, "snapshot: a container")
            _check_addresses(c.namespace, "snapshot: a container")
            _check_shape(c)
        if not isinstance(snap.destination, str) or not all(isinstance(p, str)
                                                              for p in snap.problems):
            raise ParseError("snapshot: destination and problems must be text")
        return snap

"""Netfilter rulesets as facts: chains and rules of every backend (iptables-nft,
iptables-legacy, native nft), with their counters. Read by parse.iptables_save and
parse.nft_json; walked by reason.rules."""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Optional, Tuple

from .namespace import parse_address, parse_network


@dataclass(frozen=True)
class Match:
    """One condition of a rule. kind: saddr daddr iif oif proto dport sport ctstate icmptype
    l3proto, arpop (an ARP packet's operation), arphdr ("htype 1": a fixed field of its
    header), mark ("0x2000/0x2000": the packet's mark under a mask equals a value),
    unknown."""

    kind: str
    values: Tuple[str, ...]
    negate: bool = False
    family: str = ""  # for saddr/daddr of an nft rule: "ip" or "ip6", as the rule says it

    def text(self) -> str:
        neg = "!= " if self.negate else ""
        vals = ",".join(str(v) for v in self.values)
        return f"{self.kind} {neg}{vals}" if self.kind != "unknown" else f"[{vals}]"


# An Ethernet/IPv4 ARP packet's fixed header fields, as an arphdr match spells them
# (arptables-nft matches them in every rule).
ARP_HEADER = frozenset({"htype 1", "htype ether", "hlen 6", "plen 4", "ptype 2048",
                        "ptype 0x0800", "ptype ip"})


@dataclass(frozen=True)
class Rule:
    backend: str  # "iptables-nft", "iptables-legacy", "nft"
    family: str  # "ip", "ip6", "inet", ...
    table: str
    chain: str
    index: int  # 1-based position in its chain, as `iptables -L --line-numbers` counts
    matches: tuple
    # accept drop reject jump goto return masquerade snat dnat redirect continue, and queue
    # (handed to a user-space program, which decides: netdoctor cannot know what)
    verdict: str
    target: Optional[str] = None  # chain for jump/goto
    text: str = ""  # as a person finds it again: iptables-save line, or nft rule
    handle: Optional[int] = None
    packets: int = 0
    bytes: int = 0
    # Where a NAT rule translates to: "172.17.0.2:80", "172.17.0.2", ":8080" (redirect)
    to: Optional[str] = None
    # The rule marks what it matches untracked (NOTRACK, CT --notrack, nft notrack): the
    # packet goes on, but conntrack, and so NAT, never sees it.
    notrack: bool = False
    # The rule changes the IPv4 TTL or the IPv6 hop limit of what it matches: "ip set N",
    # "ip6 dec N", "ip inc N" (iptables TTL, ip6tables HL, nft `ip ttl set N` and
    # `ip6 hoplimit set N`): the header's family, then what is done.
    ttl: Optional[str] = None
    # The rule sets the packet's mark (iptables MARK, CONNMARK; nft `meta mark set`).
    sets_mark: bool = False

    def nat_target(self) -> tuple:
        """(address or None, port or None) a DNAT or REDIRECT sends to, from `to` ("a",
        "a:port", "a:p1-p2", "[v6]:port", ":port" for a REDIRECT); a range's first."""
        text = (self.to or "").strip()
        if text.startswith("["):
            addr, _, rest = text[1:].partition("]")
            port = rest.lstrip(":")
        elif text.count(":") == 1:
            addr, port = text.split(":")
        else:  # an address alone (IPv6 has more than one colon)
            addr, port = text, ""
        port = port.split("-")[0]
        return addr.split("-")[0] or None, int(port) if port.isdigit() else None

    def ttl_after(self, ttl: int, family: str = "ip") -> int:
        """The TTL (hop limit) a packet of family ("ip", "ip6") arriving with ttl leaves this
        rule with: a rule for the other family's header changes nothing."""
        words = (self.ttl or "").split()
        if len(words) != 3 or words[0] != family or not words[2].isdigit():
            return ttl
        how, n = words[1], words[2]
        return {"set": int(n), "dec": max(ttl - int(n), 0),
                "inc": min(ttl + int(n), 255)}.get(how, ttl)

    @property
    def where(self) -> str:
        if self.backend == "nft":
            return f"nft table {self.family} {self.table} chain {self.chain} handle {self.handle}"
        # ip6tables-nft / ip6tables-legacy: the command that lists this rule.
        command = "ip6" + self.backend[2:] if self.family == "ip6" else self.backend
        return f"{command} -t {self.table} {self.chain} rule {self.index}"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["matches"] = [dict(asdict(m), values=list(m.values)) for m in self.matches]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Rule":
        d = dict(d)
        d["matches"] = tuple(Match(m["kind"], tuple(m["values"]), m.get("negate", False),
                                   m.get("family", "")) for m in d.get("matches", ()))
        return cls(**d)


@dataclass(frozen=True)
class Chain:
    backend: str
    family: str
    table: str
    name: str
    hook: Optional[str] = None  # None for a regular (jump target) chain
    priority: int = 0
    type: Optional[str] = None  # filter / nat / route
    policy: Optional[str] = None  # accept / drop, for base chains
    rules: tuple = ()
    policy_packets: int = 0
    # The devices a base chain of an ingress or egress hook (nft netdev, inet ingress) is
    # bound to; a name ending in "*" is a prefix (`devices = { "veth*" }`).
    devices: tuple = ()

    @property
    def key(self) -> tuple:
        return (self.backend, self.family, self.table, self.name)

    @cached_property
    def address_prefilter(self) -> tuple:
        """Per rule, the integer ranges its plain (not negated) source and destination
        matches admit, or None where a rule has no such match or one netdoctor cannot read.
        A packet outside them cannot match the rule, so a walk of 10,000 rules skips most
        of them with two comparisons instead of a full match."""
        return tuple((_ranges(r, "saddr"), _ranges(r, "daddr")) for r in self.rules)

    @cached_property
    def address_index(self) -> "AddressIndex":
        return AddressIndex(self.address_prefilter)

    @cached_property
    def address_free(self) -> frozenset:
        """The rules no match of which reads an address (only ports, interfaces, states...):
        whether they match depends on the rest of the packet, the same for every container."""
        return frozenset(i for i, r in enumerate(self.rules)
                         if not any(m.kind in ("saddr", "daddr") for m in r.matches))

    @cached_property
    def address_bound_index(self) -> "AddressIndex":
        """address_index without the address-free rules (reason.rules finds those by the
        rest of the packet, once for all the packets that share it)."""
        free = self.address_free
        return AddressIndex(tuple(((), ()) if i in free else pf
                                  for i, pf in enumerate(self.address_prefilter)))

    @cached_property
    def free_rules_passing(self) -> dict:
        """reason.rules' memo: a packet's address-free fields -> the address-free rules
        that do not rule it out."""
        return {}

    def to_dict(self) -> dict:
        d = asdict(self)
        d["rules"] = [r.to_dict() for r in self.rules]
        if not self.devices:
            del d["devices"]  # (most chains: a snapshot reads as before device hooks)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Chain":
        d = dict(d)
        d["rules"] = tuple(Rule.from_dict(r) for r in d.get("rules", ()))
        devices = d.get("devices", ())
        if not isinstance(devices, (list, tuple)) or not all(isinstance(x, str)
                                                             for x in devices):
            raise ValueError("a chain's devices must be a list of names")
        d["devices"] = tuple(devices)
        return cls(**d)

    def bound_to(self, device: str) -> bool:
        return any(device == d or (d.endswith("*") and device.startswith(d[:-1]))
                   for d in self.devices)


def _ranges(rule: Rule, kind: str) -> Optional[tuple]:
    out = []
    found = False
    for m in rule.matches:
        if m.kind != kind:
            continue
        if m.negate or found:
            return None  # negated, or two of them: leave it to the full match
        found = True
        for v in m.values:
            try:
                r = value_range(v)
            except ValueError:
                return None
            if r:
                out.append(r)
    return tuple(out) if found else None


@functools.lru_cache(maxsize=65536)
def value_range(v: str) -> tuple:
    """(version, first, last) of an address match value: an address, a prefix or a
    first-last range; () for a range whose ends are of two families (it admits nothing).
    ValueError for a value netdoctor cannot read. The one reading of such values, for the
    full match and the prefilter alike."""
    fast = _v4_range(v)
    if fast is not None:
        return fast
    if "-" in v and "/" not in v:
        lo, hi = (parse_address(x) for x in v.split("-"))
        return (lo.version, int(lo), int(hi)) if lo.version == hi.version else ()
    net = parse_network(v)
    return net.version, int(net.network_address), int(net.broadcast_address)


def _v4_range(text: str) -> Optional[tuple]:
    """(4, first, last) of a plain dotted-quad address or prefix, without ipaddress (10,000
    rules are read per run); None for anything else, which takes the general path."""
    addr, _, plen = text.partition("/")
    parts = addr.split(".")
    if len(parts) != 4 or not all(p.isdigit() and p.isascii() and len(p) <= 3
                                  and (p == "0" or p[0] != "0") for p in parts):
        return None  # leading zeros: ipaddress refuses them, so the full match decides
    if plen and not (plen.isdigit() and plen.isascii() and int(plen) <= 32):
        return None
    octets = [int(p) for p in parts]
    if any(o > 255 for o in octets):
        return None
    value = (octets[0] << 24) | (octets[1] << 16) | (octets[2] << 8) | octets[3]
    bits = int(plen) if plen else 32
    host = (1 << (32 - bits)) - 1
    return 4, value & ~host & 0xFFFFFFFF, (value & ~host & 0xFFFFFFFF) | host


class _AddressSide:
    """One address (source or destination) of a chain's prefilter, made into lookups."""

    def __init__(self):
        self.any: set = set()  # rules with no plain match on this address: every packet passes
        self.prefixes: dict = {}  # (version, prefix length) -> {first address: [rule index]}
        self.spans: list = []  # (version, first, last, rule index) of first-last ranges

    def add(self, i: int, ranges: Optional[tuple]) -> None:
        if ranges is None:
            self.any.add(i)
            return
        for version, lo, hi in ranges:
            size = hi - lo + 1
            if size <= 0:
                continue  # a backwards range admits nothing
            if size & (size - 1) == 0 and lo % size == 0:  # an aligned power of two: a prefix
                plen = (32 if version == 4 else 128) - (size.bit_length() - 1)
                self.prefixes.setdefault((version, plen), {}).setdefault(lo, []).append(i)
            else:
                self.spans.append((version, lo, hi, i))

    def hits(self, addr: tuple) -> set:
        """The rules whose ranges on this address admit addr."""
        version, value = addr
        bits = 32 if version == 4 else 128
        out = set()
        for (v, plen), firsts in self.prefixes.items():
            if v == version:
                out.update(firsts.get(value >> (bits - plen) << (bits - plen), ()))
        out.update(i for v, lo, hi, i in self.spans if v == version and lo <= value <= hi)
        return out


class AddressIndex:
    """The rules of a chain that a packet's addresses let through the address prefilter,
    found by lookups: a walk of 10,000 rules for each of 1,000 containers visits only the
    rules that can match, instead of comparing every one. The same rules as the prefilter
    (a property test compares the two)."""

    def __init__(self, prefilter: tuple):
        self.count = len(prefilter)
        self.src, self.dst = _AddressSide(), _AddressSide()
        for i, (sranges, dranges) in enumerate(prefilter):
            self.src.add(i, sranges)
            self.dst.add(i, dranges)
        self.both_any = sorted(self.src.any & self.dst.any)

    def candidates(self, src: Optional[tuple], dst: Optional[tuple]) -> list:
        """Rule indexes, in order; src and dst are (version, int) or None (not an address:
        nothing can be ruled out on that side)."""
        if src is None and dst is None:
            return list(range(self.count))
        if src is None:
            return sorted(self.dst.any | self.dst.hits(dst))
        if dst is None:
            return sorted(self.src.any | self.src.hits(src))
        hs, hd = self.src.hits(src), self.dst.hits(dst)
        extra = {i for i in hs if i in self.dst.any or i in hd}
        extra.update(i for i in hd if i in self.src.any)
        if not extra:
            return self.both_any
        return sorted(extra.union(self.both_any))


@dataclass(frozen=True)
class Ruleset:
    chains: tuple = ()
    # What was read, and what could not be: {"iptables-nft": "ok", "nft": "not installed", ...}
    sources: dict = field(default_factory=dict)

    def chain(self, backend: str, family: str, table: str, name: str) -> Optional[Chain]:
        return self._by_key.get((backend, family, table, name))

    @cached_property
    def _by_key(self) -> dict:
        """Chains by (backend, family, table, name): a jump is a lookup, not a scan of a
        kube-proxy host's thousands of chains. The first of a duplicated key wins."""
        out = {}
        for c in self.chains:
            out.setdefault(c.key, c)
        return out

    def base_chains(self, hook: str, family: str, type_: str,
                    device: Optional[str] = None) -> list:
        """The base chains of hook in family (ip and ip6 take inet's too) of type_, in the
        order the kernel runs them; for a device's hook (family "netdev": its ingress or
        egress, inet's ingress among them), the chains bound to that device."""
        key = (hook, family, type_, device)
        found = self._base_chains.get(key)
        if found is None:
            fams = {"ip": ("ip", "inet"), "ip6": ("ip6", "inet"),
                    "netdev": ("netdev", "inet")}.get(family, (family,))
            found = sorted((c for c in self.chains if c.hook == hook and c.family in fams
                            and (c.type or "filter") == type_
                            and (device is None or c.bound_to(device))),
                           key=lambda c: c.priority)
            self._base_chains[key] = found
        return list(found)

    @cached_property
    def _base_chains(self) -> dict:
        return {}

    def marks(self, family: str) -> bool:
        """Whether a rule reached from a base chain may set the mark of a packet of family
        ("ip", "ip6"): its own family's, inet's, bridge's or netdev's. A forwarded packet
        enters the namespace with none (crossing a veth into it scrubs the mark), so
        where none may set one, its mark is 0."""
        return family not in ("ip", "ip6") or bool(self._marking_families
                                                   - {"ip6" if family == "ip" else "ip", "arp"})

    @cached_property
    def _marking_families(self) -> frozenset:
        """The families of the chains reached from a base chain that hold a rule setting
        a mark."""
        if not any(r.sets_mark for c in self.chains for r in c.rules):
            return frozenset()
        reached, todo = set(), [c for c in self.chains if c.hook is not None]
        while todo:
            c = todo.pop()
            if c.key in reached:
                continue
            reached.add(c.key)
            for r in c.rules:
                if r.verdict in ("jump", "goto") and r.target:
                    sub = self.chain(c.backend, c.family, c.table, r.target)
                    if sub is not None:
                        todo.append(sub)
        return frozenset(c.family for c in self.chains
                         if c.key in reached and any(r.sets_mark for r in c.rules))

    @cached_property
    def changes_ttl(self) -> bool:
        """Whether any rule changes a TTL or hop limit (most rulesets have none to walk for)."""
        return any(r.ttl for c in self.chains for r in c.rules)

    @cached_property
    def tables_of(self) -> dict:
        """backend -> {"nft FAMILY TABLE"} of the tables its chains are in."""
        out: dict = {}
        for c in self.chains:
            out.setdefault(c.backend, set()).add(f"nft {c.family} {c.table}")
        return out

    def rule_count(self, backend: str) -> int:
        return sum(len(c.rules) for c in self.chains if c.backend == backend)

    def to_dict(self) -> dict:
        return {"chains": [c.to_dict() for c in self.chains], "sources": dict(self.sources)}

    @classmethod
    def from_dict(cls, d: dict) -> "Ruleset":
        return cls(tuple(Chain.from_dict(c) for c in d.get("chains", ())),
                   dict(d.get("sources", {})))

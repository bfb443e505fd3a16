"""What a ruleset does to one packet: the rule walk, and the rules whose counters moved.

evaluate(ruleset, hook, packet) walks the base chains of a hook in priority order, following
jumps, gotos and returns, the way the kernel does: a drop anywhere drops; an accept ends only
its own base chain. A match netdoctor does not model is "unknown": a rule with an unknown
match that would drop is reported as uncertain and not assumed to match; one that would
accept or jump is assumed to match (a wrong verdict is worse than none).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Optional

from ..facts.namespace import parse_address
from ..facts.ruleset import ARP_HEADER, Chain, Match, Rule, Ruleset, value_range

NAT_VERDICTS = ("masquerade", "snat", "dnat", "redirect")
# Conntrack's hook priority (NF_IP_PRI_CONNTRACK): a chain before it sees packets untracked.
CONNTRACK_PRIORITY = -200


@dataclass(frozen=True)
class Packet:
    src: str
    dst: str
    iif: Optional[str]
    oif: Optional[str]
    proto: str = "icmp"  # icmp, tcp, udp
    # A port is a number, or (first, last) when only its range is known: a client's source
    # port is one of its namespace's ephemeral ports, which one is chosen at connect().
    dport: Optional[object] = None
    ctstate: str = "new"  # new, established
    family: str = ""  # "ip" or "ip6"; by default its addresses'
    sport: Optional[object] = None
    # The ICMP type it carries, when it is not the probe's echo (a request while new, its
    # reply once established): a neighbour solicitation, 135.
    icmp_type: Optional[int] = None
    # Whether its destination (source) is an address of the namespace whose rules are
    # walked (`-m addrtype --dst-type LOCAL`, nft `fib daddr type local`); None: not known.
    dst_local: Optional[bool] = None
    src_local: Optional[bool] = None
    # Its mark (skb->mark); None: not known. evaluate() takes it as 0 where no rule of the
    # namespace may set one (Ruleset.marks).
    mark: Optional[int] = None
    # An ARP packet's operation (proto "arp"): 1, a request; 2, a reply.
    arp_op: int = 1

    def __post_init__(self):
        if not self.family:
            v6 = ":" in (self.dst or "") or ":" in (self.src or "")
            object.__setattr__(self, "family", "ip6" if v6 else "ip")


@dataclass(frozen=True)
class Outcome:
    verdict: str  # accept, drop, reject, or a NAT verdict; "none" when no chain exists
    rule: Optional[Rule]  # the rule that decided; None when a policy did
    chain: Optional[Chain]  # the base chain whose rule or policy decided
    uncertain: tuple = ()  # rules with unknown matches that would have dropped
    trail: tuple = ()  # "backend table chain" walked, for the evidence
    # The first rule that marked the packet untracked on the way (and the base chain it was
    # reached from): with a priority before conntrack's, NAT never sees the packet.
    untracked: Optional[tuple] = None  # (rule, base chain)
    # The rule whose RETURN ended a base chain's walk (its policy then decided), if any.
    returned: Optional[Rule] = None
    # Rules met on the way that change the packet's TTL (hop limit), in the order met.
    ttl_edits: tuple = ()
    # Rules with matches netdoctor cannot evaluate that the walk took as matching (a jump,
    # a NAT): the outcome rests on them.
    guessed: tuple = ()

    @property
    def untracking_rule(self) -> Optional[Rule]:
        """The rule that marked the packet untracked in a chain that runs before conntrack
        (whose NAT then never sees it); None when none did (or only after conntrack, where
        it changes nothing)."""
        if self.untracked is None:
            return None
        rule, base = self.untracked
        return rule if base is not None and base.priority < CONNTRACK_PRIORITY else None

    @property
    def by_policy(self) -> bool:
        return self.rule is None and self.chain is not None

    def describe(self) -> str:
        if self.rule is not None:
            return f"{self.rule.where}: {self.rule.text}"
        if self.chain is not None:
            return (f"{self.chain.backend} table {self.chain.family} {self.chain.table} "
                    f"chain {self.chain.name} policy {self.chain.policy}")
        return "no rules"


def _iface_match(pattern: str, name: Optional[str]) -> Optional[bool]:
    if name is None:
        return None
    if pattern.endswith("+"):
        return name.startswith(pattern[:-1])
    return name == pattern


def _addr_match(values: tuple, addr: str) -> Optional[bool]:
    a = _as_int(addr)
    if a is None:
        return None
    for v in values:
        try:
            r = value_range(v)
        except ValueError:
            return None
        if r and r[0] == a[0] and r[1] <= a[1] <= r[2]:
            return True
    return False


def _port_match(values: tuple, port) -> Optional[bool]:
    """Does a port match admit the packet's port? port is a number or a (first, last) range
    of which the packet has one: True when the match admits all of them, False when none,
    None when some (or when a value cannot be read)."""
    if port is None:
        return False
    lo, hi = port if isinstance(port, tuple) else (port, port)
    spans = []
    for v in values:
        try:
            if "-" in str(v):
                a, b = (int(x) for x in str(v).split("-"))
            else:
                a = b = int(v)
        except ValueError:
            return None
        spans.append((a, b))
    need = lo  # the first port of the range that no span admits yet
    for a, b in sorted(spans):
        if a > need:
            break  # a gap: some port of the range is not admitted
        need = max(need, b + 1)
        if need > hi:
            return True
    if not any(a <= hi and b >= lo for a, b in spans):
        return False
    return None


def match(m: Match, p: Packet) -> Optional[bool]:
    """True / False, or None when netdoctor cannot tell."""
    if m.kind == "unknown":
        return None
    if m.kind == "saddr":
        r = _addr_match(m.values, p.src)
    elif m.kind == "daddr":
        r = _addr_match(m.values, p.dst)
    elif m.kind in ("iif", "oif"):
        name = p.iif if m.kind == "iif" else p.oif
        results = [_iface_match(v, name) for v in m.values]
        r = None if None in results else any(results)
    elif m.kind == "proto" and m.family and m.family != p.family:
        r = False  # `ip protocol` of an IPv6 packet, `ip6 nexthdr` of an IPv4 one
    elif m.kind == "proto":
        vals = {str(v).lower() for v in m.values}
        if p.family == "ip6" and vals & {"ipv6-icmp", "icmpv6"}:
            vals.add("icmp")  # nft's name for ICMPv6; the probe's protocol is "icmp"
        r = p.proto in vals or "all" in vals or ("icmp" in vals and p.proto == "icmp")
    elif m.kind == "l3proto":
        r = ({"ip": "ipv4", "ip6": "ipv6"}.get(p.family, p.family) in {str(v) for v in m.values})
    elif m.kind in ("dport", "sport"):
        if p.proto not in ("tcp", "udp"):
            r = False
        else:
            r = _port_match(m.values, p.dport if m.kind == "dport" else p.sport)
    elif m.kind in ("dsttype", "srctype"):
        local = p.dst_local if m.kind == "dsttype" else p.src_local
        if local is None:
            return None
        # A packet netdoctor follows is unicast: to this namespace (LOCAL), or through it.
        r = ("local" if local else "unicast") in m.values
    elif m.kind == "ctstate":
        r = p.ctstate in m.values
    elif m.kind == "mark":
        if p.mark is None:
            return None
        results = [_mark_match(v, p.mark) for v in m.values]
        r = None if None in results else any(results)
    elif m.kind == "arpop":
        op = {1: {"request", "1"}, 2: {"reply", "2"}}.get(p.arp_op, {str(p.arp_op)})
        r = p.proto == "arp" and bool(op & set(m.values))
    elif m.kind == "arphdr":
        r = p.proto == "arp" and bool(set(m.values) & ARP_HEADER)
    elif m.kind == "icmptype":
        if p.proto != "icmp" or (m.family and m.family != p.family):
            r = False  # (the type of ICMP packets only; ICMPv6's for an IPv6 packet)
        else:
            results = [_icmp_type_match(v, p) for v in m.values]
            r = None if None in results else any(results)
    else:
        return None
    if r is None:
        return None
    return (not r) if m.negate else r


# ICMP type names as iptables and nft print them: (type, code or None for any code).
_ICMP_TYPES = {"echo-reply": (0, None), "pong": (0, None), "destination-unreachable": (3, None),
               "network-unreachable": (3, 0), "host-unreachable": (3, 1),
               "protocol-unreachable": (3, 2), "port-unreachable": (3, 3),
               "fragmentation-needed": (3, 4), "source-quench": (4, None),
               "redirect": (5, None), "echo-request": (8, None), "ping": (8, None),
               "router-advertisement": (9, None), "router-solicitation": (10, None),
               "time-exceeded": (11, None), "ttl-exceeded": (11, None),
               "parameter-problem": (12, None), "timestamp-request": (13, None),
               "timestamp-reply": (14, None), "info-request": (15, None),
               "info-reply": (16, None), "address-mask-request": (17, None),
               "address-mask-reply": (18, None)}


# ICMPv6 type names as ip6tables and nft print them.
_ICMP6_TYPES = {"destination-unreachable": (1, None), "no-route": (1, 0),
                "communication-prohibited": (1, 1), "address-unreachable": (1, 3),
                "port-unreachable": (1, 4), "packet-too-big": (2, None),
                "time-exceeded": (3, None), "ttl-exceeded": (3, None),
                "parameter-problem": (4, None), "echo-request": (128, None),
                "ping": (128, None), "echo-reply": (129, None), "pong": (129, None),
                "router-solicitation": (133, None), "nd-router-solicit": (133, None),
                "router-advertisement": (134, None), "nd-router-advert": (134, None),
                "neighbour-solicitation": (135, None), "neighbor-solicitation": (135, None),
                "nd-neighbor-solicit": (135, None), "neighbour-advertisement": (136, None),
                "neighbor-advertisement": (136, None), "nd-neighbor-advert": (136, None),
                "redirect": (137, None), "nd-redirect": (137, None)}


def _icmp_type_match(value: str, p: Packet) -> Optional[bool]:
    """Does an ICMP type value ("echo-request", "8", "3/4", "any") admit the packet? The
    packets netdoctor follows are echoes, a request (new) or its reply (established),
    unless the packet says its type (a neighbour solicitation); IPv6's by ICMPv6's numbers."""
    if value == "any":
        return True
    v6 = p.family == "ip6"
    names = _ICMP6_TYPES if v6 else _ICMP_TYPES
    if value in names:
        itype, code = names[value]
    else:
        t, _, c = value.partition("/")
        if not (t.isdigit() and t.isascii()) or (c and not (c.isdigit() and c.isascii())):
            return None
        itype, code = int(t), int(c) if c else None
    if p.icmp_type is not None:
        mine = p.icmp_type
    elif v6:
        mine = 128 if p.ctstate == "new" else 129
    else:
        mine = 8 if p.ctstate == "new" else 0
    return itype == mine and code in (None, 0)


def _mark_match(spec: str, mark: int) -> Optional[bool]:
    """Does a mark, under the spec's mask ("0x2000/0x2000"), equal its value?"""
    value, _, mask = spec.partition("/")
    try:
        v, m = int(value, 0), int(mask, 0) if mask else 0xFFFFFFFF
    except ValueError:
        return None
    return (mark & m) == v


def rule_matches(rule: Rule, p: Packet) -> Optional[bool]:
    unknown = False
    for m in rule.matches:
        r = match(m, p)
        if r is False:
            return False
        if r is None:
            unknown = True
    return None if unknown else True


def _as_int(addr: str) -> Optional[tuple]:
    try:
        a = parse_address(addr)
    except ValueError:
        return None
    return a.version, int(a)


def _candidates(chain: Chain, p: Packet, src, dst) -> list:
    """The indexes of the chain's rules that can match p, in order: those whose addresses
    admit p's (the address index), and those that match no address, found once for every
    packet that has the same interfaces, protocol, ports, state, ICMP type (ARP
    operation), address types and mark (a chain of 10,000 port-only rules is walked once for 1,000
    containers, not 1,000 times)."""
    if src is None or dst is None or not chain.address_free:
        return chain.address_index.candidates(src, dst)
    key = (p.iif, p.oif, p.proto, p.dport, p.sport, p.ctstate, p.family, p.icmp_type,
           p.dst_local, p.src_local, p.mark, p.arp_op)
    passing = chain.free_rules_passing.get(key)
    if passing is None:
        passing = [i for i in sorted(chain.address_free)
                   if rule_matches(chain.rules[i], p) is not False]
        chain.free_rules_passing[key] = passing
    bound = chain.address_bound_index.candidates(src, dst)
    return sorted(bound + passing) if passing else bound


@dataclass
class _Walk:
    ruleset: Ruleset
    packet: Packet
    uncertain: list = field(default_factory=list)
    trail: list = field(default_factory=list)
    base: Optional[Chain] = None  # the base chain being walked
    untracked: Optional[tuple] = None
    returned: Optional[Rule] = None
    ttl_edits: list = field(default_factory=list)
    guessed: list = field(default_factory=list)

    def outcome(self, verdict: str, rule: Optional[Rule], base: Optional[Chain]) -> Outcome:
        return Outcome(verdict, rule, base, tuple(self.uncertain), tuple(self.trail),
                       self.untracked, self.returned, tuple(self.ttl_edits),
                       tuple(self.guessed))


def _run_chain(w: _Walk, chain: Chain, depth: int) -> tuple:
    """(verdict or None to go on in the caller, deciding rule)."""
    if depth > 32:
        return None, None
    w.trail.append(f"{chain.table}/{chain.name}")
    src, dst = _as_int(w.packet.src), _as_int(w.packet.dst)
    rules = chain.rules
    for i in _candidates(chain, w.packet, src, dst):  # the others cannot match
        rule = rules[i]
        m = rule_matches(rule, w.packet)
        if m is False:
            continue
        if m is None:
            if rule.verdict in ("drop", "reject", "queue"):
                w.uncertain.append(rule)
                continue
            if rule.verdict != "continue":
                w.guessed.append(rule)
        if rule.notrack and m and w.untracked is None:
            w.untracked = (rule, w.base)
        if rule.ttl and m and rule.ttl.split()[0] == w.packet.family:
            w.ttl_edits.append(rule)
        v = rule.verdict
        if v == "continue":
            continue
        if v == "queue":
            # The listening program decides, and without one the packet is dropped (unless
            # the rule says bypass): it may be dropped. Taken as let through, as an IPS
            # mostly does, so that what comes after is still judged.
            w.uncertain.append(rule)
            return "accept", rule
        if v in ("jump", "goto"):
            sub = w.ruleset.chain(rule.backend, rule.family, rule.table, rule.target or "")
            if sub is None:
                continue
            verdict, decided = _run_chain(w, sub, depth + 1)
            if verdict not in (None, "return"):
                return verdict, decided
            if v == "goto":  # a goto never comes back here: the caller goes on
                return "return", None
            continue  # the jumped-to chain returned: go on after the jump
        if v == "return":
            return "return", rule
        return v, rule
    return None, None


def evaluate(ruleset: Ruleset, hook: str, packet: Packet, type_: str = "filter",
             family: Optional[str] = None, device: Optional[str] = None) -> Outcome:
    """What the base chains of `hook` (of `type_`) do to packet, in priority order; with
    family ("bridge"), that family's chains (the packet keeps its own, which its matches
    read); with device, the chains bound to it (family "netdev": the device's ingress or
    egress hook)."""
    if packet.mark is None and not ruleset.marks(packet.family):
        packet = replace(packet, mark=0)
    w = _Walk(ruleset, packet)
    bases = ruleset.base_chains(hook, family or packet.family, type_, device)
    last = None
    for base in bases:
        w.base = base
        verdict, rule = _run_chain(w, base, 0)
        if verdict in (None, "return"):
            if verdict == "return" and rule is not None:
                w.returned = rule
            verdict, rule = base.policy or "accept", None
        last = (verdict, rule, base)
        if verdict in ("drop", "reject") or verdict in NAT_VERDICTS:
            return w.outcome(verdict, rule, base)
    if last is None:
        return w.outcome("none", None, None)
    return w.outcome(*last)


def rule_hits(before: Ruleset, after: Ruleset, verdicts: tuple = ("drop", "reject")) -> list:
    """Rules and base-chain policies with one of `verdicts` whose packet counters moved
    between two reads: what matched while the probe ran."""
    old_rules, old_policy = {}, {}
    for c in before.chains:
        old_policy[c.key] = c.policy_packets
        for r in c.rules:
            old_rules[(c.key, r.handle if r.backend == "nft" else r.text)] = r.packets
    hits = []
    for c in after.chains:
        if c.policy in verdicts and c.policy_packets > old_policy.get(c.key, c.policy_packets):
            hits.append({"where": f"{c.backend} table {c.family} {c.table} chain {c.name}",
                         "text": f"policy {c.policy}",
                         "delta": c.policy_packets - old_policy[c.key], "policy": True})
        for r in c.rules:
            if r.verdict not in verdicts:
                continue
            key = (c.key, r.handle if r.backend == "nft" else r.text)
            if key in old_rules and r.packets > old_rules[key]:
                hits.append({"where": r.where, "text": r.text, "delta": r.packets - old_rules[key],
                             "policy": False})
    hits.sort(key=lambda h: h["policy"])  # a rule says more than a policy
    return hits

"""Netfilter rulesets, read from both views, and what they do to one packet.

Two parsers, one per external format:
  parse_iptables_save(text, backend, family)   `iptables-save -c` (nft or legacy backend)
  parse_nft_json(doc, skip_tables)             `nft -j list ruleset`, minus the tables
                                               iptables-nft manages (read through iptables-save,
                                               which keeps their full meaning and rule text)

evaluate(ruleset, hook, packet) walks the base chains of a hook in priority order, following
jumps, gotos and returns, the way the kernel does: a drop anywhere drops; an accept ends only
its own base chain. A match netdoctor does not model is "unknown": a rule with an unknown
match that would drop is reported as uncertain and not assumed to match; one that would
accept or jump is assumed to match (a wrong verdict is worse than none).
"""

from __future__ import annotations

import functools
import shlex
from functools import cached_property
from dataclasses import asdict, dataclass, field, replace
from typing import Optional

from netdoctor.diagnose.errors import ParseError
from netdoctor.diagnose.model import parse_address, parse_network

TERMINAL = ("accept", "drop", "reject")
NAT_VERDICTS = ("masquerade", "snat", "dnat", "redirect")

# iptables built-in chains: (hook, priority) per table, as iptables-nft registers them.
_BUILTIN = {
    "filter": ({"INPUT": "input", "FORWARD": "forward", "OUTPUT": "output"}, 0),
    "nat": ({"PREROUTING": "prerouting", "INPUT": "input", "OUTPUT": "output",
             "POSTROUTING": "postrouting"}, None),
    "mangle": ({"PREROUTING": "prerouting", "INPUT": "input", "FORWARD": "forward",
                "OUTPUT": "output", "POSTROUTING": "postrouting"}, -150),
    "raw": ({"PREROUTING": "prerouting", "OUTPUT": "output"}, -300),
    "security": ({"INPUT": "input", "FORWARD": "forward", "OUTPUT": "output"}, 50),
}
_NAT_PRIORITY = {"prerouting": -100, "output": -100, "input": 100, "postrouting": 100}
_TABLE_TYPE = {"filter": "filter", "nat": "nat", "mangle": "route", "raw": "filter",
               "security": "filter"}


@dataclass(frozen=True)
class Match:
    """One condition of a rule. kind: saddr daddr iif oif proto dport sport ctstate unknown."""

    kind: str
    values: tuple
    negate: bool = False
    family: str = ""  # for saddr/daddr of an nft rule: "ip" or "ip6", as the rule says it

    def text(self) -> str:
        neg = "!= " if self.negate else ""
        vals = ",".join(str(v) for v in self.values)
        return f"{self.kind} {neg}{vals}" if self.kind != "unknown" else f"[{vals}]"


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

    @property
    def where(self) -> str:
        if self.backend == "nft":
            return f"nft table {self.family} {self.table} chain {self.chain} handle {self.handle}"
        return f"{self.backend} -t {self.table} {self.chain} rule {self.index}"

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

    def to_dict(self) -> dict:
        d = asdict(self)
        d["rules"] = [r.to_dict() for r in self.rules]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Chain":
        d = dict(d)
        d["rules"] = tuple(Rule.from_dict(r) for r in d.get("rules", ()))
        return cls(**d)


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
                r = _value_range(v)
            except ValueError:
                return None
            if r:
                out.append(r)
    return tuple(out) if found else None


@functools.lru_cache(maxsize=65536)
def _value_range(v: str) -> tuple:
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
        for c in self.chains:
            if c.key == (backend, family, table, name):
                return c
        return None

    def base_chains(self, hook: str, family: str, type_: str) -> list:
        fams = {"ip": ("ip", "inet"), "ip6": ("ip6", "inet")}.get(family, (family,))
        found = [c for c in self.chains
                 if c.hook == hook and c.family in fams and (c.type or "filter") == type_]
        return sorted(found, key=lambda c: c.priority)

    def rule_count(self, backend: str) -> int:
        return sum(len(c.rules) for c in self.chains if c.backend == backend)

    def to_dict(self) -> dict:
        return {"chains": [c.to_dict() for c in self.chains], "sources": dict(self.sources)}

    @classmethod
    def from_dict(cls, d: dict) -> "Ruleset":
        return cls(tuple(Chain.from_dict(c) for c in d.get("chains", ())),
                   dict(d.get("sources", {})))


# ------------------------------------------------------------------ iptables-save

_IPT_VERDICT = {"ACCEPT": "accept", "DROP": "drop", "REJECT": "reject", "RETURN": "return",
                "MASQUERADE": "masquerade", "SNAT": "snat", "DNAT": "dnat",
                "REDIRECT": "redirect", "NFQUEUE": "queue", "QUEUE": "queue"}
_IGNORED_MODULES = ("comment",)


def _split_list(value: str) -> tuple:
    return tuple(v for v in value.split(",") if v)


def _ipt_rule(tokens: list, backend: str, family: str, table: str, index: int,
              packets: int, bytes_: int, text: str, user_chains: set) -> Rule:
    chain = tokens[1]
    matches, verdict, target = [], "continue", None
    negate = False
    i, n = 2, len(tokens)
    module = None

    def value() -> str:
        nonlocal i
        if i + 1 >= n:
            raise ParseError(f"iptables-save: option {tokens[i]} has no value in: {text}")
        i += 1
        return tokens[i]

    while i < n:
        tok = tokens[i]
        if tok == "!":
            negate = True
            i += 1
            continue
        if tok in ("-s", "--source"):
            matches.append(Match("saddr", _split_list(value()), negate))
        elif tok in ("-d", "--destination"):
            matches.append(Match("daddr", _split_list(value()), negate))
        elif tok in ("-i", "--in-interface"):
            matches.append(Match("iif", (value(),), negate))
        elif tok in ("-o", "--out-interface"):
            matches.append(Match("oif", (value(),), negate))
        elif tok in ("-p", "--protocol"):
            matches.append(Match("proto", (value().lower(),), negate))
        elif tok in ("-m", "--match"):
            module = value()
        elif tok in ("--dport", "--destination-port", "--dports", "--destination-ports"):
            matches.append(Match("dport", _split_list(value().replace(":", "-")), negate))
        elif tok in ("--sport", "--source-port", "--sports", "--source-ports"):
            matches.append(Match("sport", _split_list(value().replace(":", "-")), negate))
        elif tok == "--icmp-type":
            matches.append(Match("icmptype", (value().lower(),), negate))
        elif tok in ("--ctstate", "--state"):
            matches.append(Match("ctstate", tuple(s.lower() for s in _split_list(value())), negate))
        elif tok in ("-j", "--jump"):
            name = value()
            if name in _IPT_VERDICT:
                verdict = _IPT_VERDICT[name]
            elif name in user_chains:
                verdict, target = "jump", name
            else:
                verdict = "continue"  # LOG, MARK, CT, TCPMSS, ...: the packet goes on
            # The target's own options follow; none of them changes where the packet goes.
            i = n
            continue
        elif tok in ("-g", "--goto"):
            verdict, target = "goto", value()
        elif tok.startswith("-"):
            # An option of a match module netdoctor does not model.
            opt = tok
            vals = []
            while i + 1 < n and not tokens[i + 1].startswith("-") and tokens[i + 1] != "!":
                i += 1
                vals.append(tokens[i])
            if module not in _IGNORED_MODULES:
                desc = f"{'! ' if negate else ''}-m {module} {opt} {' '.join(vals)}".strip()
                matches.append(Match("unknown", (desc,), False))
        else:
            raise ParseError(f"iptables-save: unexpected word {tok!r} in: {text}")
        negate = False
        i += 1
    return Rule(backend=backend, family=family, table=table, chain=chain, index=index,
                matches=tuple(matches), verdict=verdict, target=target, text=text,
                packets=packets, bytes=bytes_)


def parse_iptables_save(text: str, backend: str = "iptables-nft", family: str = "ip") -> tuple:
    """Chains from `iptables-save [-c]` output (comments and counters understood)."""
    chains: dict = {}
    order: list = []
    table = None
    pending: list = []  # (table, tokens, packets, bytes, text) until the table's chains are known

    def flush_table() -> None:
        users = {name for (t, name) in order if t == table and chains[(t, name)]["policy"] is None}
        counts: dict = {}
        for t, tokens, pk, by, line in pending:
            counts[tokens[1]] = counts.get(tokens[1], 0) + 1
            key = (t, tokens[1])
            if key not in chains:
                raise ParseError(f"iptables-save: rule for undeclared chain {tokens[1]}")
            chains[key]["rules"].append(
                _ipt_rule(tokens, backend, family, t, counts[tokens[1]], pk, by, line, users))
        pending.clear()

    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("*"):
            table = line[1:].strip()
            continue
        if line == "COMMIT":
            flush_table()
            table = None
            continue
        if table is None:
            raise ParseError(f"iptables-save: line outside a table: {line[:80]}")
        if line.startswith(":"):
            parts = line[1:].split()
            if len(parts) < 2:
                raise ParseError(f"iptables-save: bad chain line: {line[:80]}")
            name, policy = parts[0], parts[1]
            packets = 0
            if len(parts) > 2 and parts[2].startswith("["):
                try:
                    packets = int(parts[2].strip("[]").split(":")[0])
                except ValueError:
                    raise ParseError(f"iptables-save: bad counters: {line[:80]}") from None
            chains[(table, name)] = {"policy": None if policy == "-" else policy.lower(),
                                     "rules": [], "policy_packets": packets}
            order.append((table, name))
            continue
        packets = bytes_ = 0
        if line.startswith("["):
            close = line.find("]")
            try:
                packets, bytes_ = (int(x) for x in line[1:close].split(":"))
            except ValueError:
                raise ParseError(f"iptables-save: bad counters: {line[:80]}") from None
            line = line[close + 1:].strip()
        try:
            # iptables-save quotes only words with spaces (comments): most lines split plainly.
            tokens = shlex.split(line) if any(q in line for q in "\"'\\") else line.split()
        except ValueError as e:
            raise ParseError(f"iptables-save: {e} in: {line[:80]}") from None
        if len(tokens) < 2 or tokens[0] not in ("-A", "--append"):
            raise ParseError(f"iptables-save: not a rule: {line[:80]}")
        pending.append((table, tokens, packets, bytes_, line))
    if pending:
        raise ParseError("iptables-save: a table has no COMMIT")

    out = []
    for t, name in order:
        c = chains[(t, name)]
        hooks, prio = _BUILTIN.get(t, ({}, 0))
        hook = hooks.get(name) if c["policy"] is not None else None
        priority = prio if prio is not None else _NAT_PRIORITY.get(hook or "", 0)
        out.append(Chain(backend=backend, family=family, table=t, name=name, hook=hook,
                         priority=priority or 0, type=_TABLE_TYPE.get(t, "filter"),
                         policy=c["policy"], rules=tuple(c["rules"]),
                         policy_packets=c["policy_packets"]))
    return tuple(out)


def tables_of(chains: tuple) -> set:
    return {(c.family, c.table) for c in chains}


# ------------------------------------------------------------------ nft -j

_NFT_FIELDS = {("meta", "iifname"): "iif", ("meta", "oifname"): "oif",
               ("meta", "l4proto"): "proto", ("meta", "protocol"): "l3proto",
               ("ct", "state"): "ctstate"}


def _nft_value(v) -> tuple:
    if isinstance(v, dict):
        if "prefix" in v:
            p = v["prefix"]
            return (f"{p['addr']}/{p['len']}",)
        if "set" in v:
            return _nft_value(v["set"] if isinstance(v["set"], list) else [v["set"]])
        if "range" in v:
            a, b = v["range"]
            return (f"{a}-{b}",)
        return None  # a named set, a map, an expression: not modelled
    if isinstance(v, list):
        out = []
        for item in v:
            sub = _nft_value(item)
            if sub is None:
                return None
            out.extend(sub)
        return tuple(out)
    if isinstance(v, str) and v.startswith("@"):
        return None
    return (v,)


def _nft_match(m: dict) -> Match:
    left, right, op = m.get("left"), m.get("right"), m.get("op", "==")
    kind, family = None, ""
    if isinstance(left, dict):
        if "meta" in left:
            kind = _NFT_FIELDS.get(("meta", left["meta"].get("key")))
        elif "ct" in left:
            kind = _NFT_FIELDS.get(("ct", left["ct"].get("key")))
        elif "payload" in left:
            pl = left["payload"]
            proto, fld = pl.get("protocol"), pl.get("field")
            if proto in ("ip", "ip6") and fld in ("saddr", "daddr"):
                kind, family = fld, proto
            elif proto in ("tcp", "udp", "th", "sctp") and fld in ("dport", "sport"):
                kind = fld
            elif proto == "icmp" and fld == "type":
                kind = "icmptype"
    values = _nft_value(right)
    if kind is None or values is None or op not in ("==", "!=", "in"):
        return Match("unknown", (_compact(m),), False)
    if kind == "ctstate":
        values = tuple(str(v).lower() for v in values)
    elif kind in ("iif", "oif"):
        values = tuple(str(v).replace("*", "+") for v in values)  # one wildcard spelling
    elif kind == "icmptype":
        values = tuple(str(v).lower() for v in values)
    return Match(kind, tuple(str(v) for v in values), op == "!=", family)


def _compact(obj) -> str:
    import json

    return json.dumps(obj, separators=(",", ":"), sort_keys=True)[:200]


def _nft_rule(r: dict, index: int) -> Rule:
    matches, verdict, target, packets, bytes_ = [], "continue", None, 0, 0
    for e in r.get("expr") or ():
        if not isinstance(e, dict) or len(e) != 1:
            continue
        (key, val), = e.items()
        if key == "match":
            matches.append(_nft_match(val))
        elif key == "counter" and isinstance(val, dict):
            packets, bytes_ = int(val.get("packets", 0)), int(val.get("bytes", 0))
        elif key in ("accept", "drop", "return", "masquerade", "snat", "dnat", "redirect"):
            verdict = key
        elif key == "reject":
            verdict = "reject"
        elif key in ("jump", "goto"):
            verdict, target = key, _nft_name((val or {}).get("target"))
        elif key in ("limit", "xt", "quota", "fib"):
            # Statements that decide whether the rule goes on: not modelled.
            if key == "xt" and (val or {}).get("type") == "target":
                continue
            matches.append(Match("unknown", (_compact(e),), False))
        elif key == "queue":
            verdict = "queue"
    rule = Rule(backend="nft", family=str(r.get("family")), table=str(r.get("table")),
                chain=str(r.get("chain")), index=index, matches=tuple(matches), verdict=verdict,
                target=target, handle=r.get("handle") if isinstance(r.get("handle"), int) else None,
                packets=packets, bytes=bytes_)
    return replace(rule, text=render_nft(rule))


def render_nft(rule: Rule) -> str:
    words = []
    names = {"iif": "iifname", "oif": "oifname",
             "proto": "meta l4proto", "dport": "th dport", "sport": "th sport",
             "ctstate": "ct state"}
    for m in rule.matches:
        if m.kind == "unknown":
            words.append(m.values[0])
            continue
        vals = m.values[0] if len(m.values) == 1 else "{ " + ", ".join(m.values) + " }"
        name = f"{m.family or 'ip'} {m.kind}" if m.kind in ("saddr", "daddr") else \
            names.get(m.kind, m.kind)
        words.append(f"{name} {'!= ' if m.negate else ''}{vals}")
    if rule.verdict in ("jump", "goto"):
        words.append(f"{rule.verdict} {rule.target}")
    elif rule.verdict != "continue":
        words.append(rule.verdict)
    return " ".join(words)


def _nft_name(value) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a name, got {type(value).__name__}")
    return value


def _nft_item(item: dict, chains: dict, order: list, counts: dict, skip_tables) -> None:
    if "chain" in item:
        c = item["chain"]
        key = (_nft_name(c.get("family")), _nft_name(c.get("table")), _nft_name(c.get("name")))
        if (key[0], key[1]) in skip_tables:
            return
        try:
            prio = int(c.get("prio", 0))
        except (TypeError, ValueError):
            prio = 0
        hook = c.get("hook")
        hook = _nft_name(hook) if hook is not None else None
        policy = c.get("policy") if hook else None
        chains[key] = {"hook": hook, "prio": prio,
                       "type": _nft_name(c["type"]) if c.get("type") is not None else None,
                       "policy": _nft_name(policy) if policy is not None else None,
                       "rules": []}
        order.append(key)
    elif "rule" in item:
        r = item["rule"]
        key = (_nft_name(r.get("family")), _nft_name(r.get("table")), _nft_name(r.get("chain")))
        if (key[0], key[1]) in skip_tables:
            return
        if key not in chains:
            raise ParseError(f"nft -j: rule for unknown chain {key}")
        counts[key] = counts.get(key, 0) + 1
        chains[key]["rules"].append(_nft_rule(r, counts[key]))


def parse_nft_tables(doc) -> list:
    """(family, name) of each table in `nft -j list tables` (or any `nft -j` listing)."""
    if not isinstance(doc, dict) or not isinstance(doc.get("nftables"), list):
        raise ParseError("nft -j: expected an object with an 'nftables' list")
    tables = []
    for number, item in enumerate(doc["nftables"], 1):
        if not isinstance(item, dict) or "table" not in item:
            continue
        t = item["table"]
        try:
            tables.append((_nft_name(t.get("family")), _nft_name(t.get("name"))))
        except (TypeError, AttributeError):
            raise ParseError(f"nft -j: table {number} has no family or name") from None
    return tables


def parse_nft_json(doc, skip_tables: set = frozenset()) -> tuple:
    """Chains from `nft -j list ruleset`, leaving out the (family, table) pairs in skip_tables."""
    if not isinstance(doc, dict) or not isinstance(doc.get("nftables"), list):
        raise ParseError("nft -j: expected an object with an 'nftables' list")
    chains: dict = {}
    order = []
    counts: dict = {}
    for number, item in enumerate(doc["nftables"], 1):
        if not isinstance(item, dict):
            raise ParseError("nft -j: expected objects in the 'nftables' list")
        try:
            _nft_item(item, chains, order, counts, skip_tables)
        except (TypeError, AttributeError, KeyError, ValueError, IndexError) as e:
            # A field of the wrong type or shape: the document is not what nft prints.
            raise ParseError(f"nft -j: item {number} is malformed "
                             f"({type(e).__name__}: {str(e)[:60]})") from None
    return tuple(
        Chain(backend="nft", family=str(f), table=str(t), name=str(n), hook=c["hook"],
              priority=c["prio"], type=c["type"], policy=c["policy"], rules=tuple(c["rules"]))
        for (f, t, n) in order for c in [chains[(f, t, n)]]
    )


# ------------------------------------------------------------------ evaluation

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
    family: str = "ip"
    sport: Optional[object] = None


@dataclass(frozen=True)
class Outcome:
    verdict: str  # accept, drop, reject, or a NAT verdict; "none" when no chain exists
    rule: Optional[Rule]  # the rule that decided; None when a policy did
    chain: Optional[Chain]  # the base chain whose rule or policy decided
    uncertain: tuple = ()  # rules with unknown matches that would have dropped
    trail: tuple = ()  # "backend table chain" walked, for the evidence

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
            r = _value_range(v)
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
    elif m.kind == "proto":
        vals = {str(v).lower() for v in m.values}
        r = p.proto in vals or "all" in vals or ("icmp" in vals and p.proto == "icmp")
    elif m.kind == "l3proto":
        r = ({"ip": "ipv4", "ip6": "ipv6"}.get(p.family, p.family) in {str(v) for v in m.values})
    elif m.kind in ("dport", "sport"):
        if p.proto not in ("tcp", "udp"):
            r = False
        else:
            r = _port_match(m.values, p.dport if m.kind == "dport" else p.sport)
    elif m.kind == "ctstate":
        r = p.ctstate in m.values
    elif m.kind == "icmptype":
        if p.proto != "icmp":
            r = False  # (iptables and nft both match the type of ICMP packets only)
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


def _icmp_type_match(value: str, p: Packet) -> Optional[bool]:
    """Does an ICMP type value ("echo-request", "8", "3/4", "any") admit the probe's echo? The
    packets netdoctor follows are echoes: a request (new) or its reply (established)."""
    if value == "any":
        return True
    if value in _ICMP_TYPES:
        itype, code = _ICMP_TYPES[value]
    else:
        t, _, c = value.partition("/")
        if not (t.isdigit() and t.isascii()) or (c and not (c.isdigit() and c.isascii())):
            return None
        itype, code = int(t), int(c) if c else None
    mine = 8 if p.ctstate == "new" else 0
    return itype == mine and code in (None, 0)


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


@dataclass
class _Walk:
    ruleset: Ruleset
    packet: Packet
    uncertain: list = field(default_factory=list)
    trail: list = field(default_factory=list)


def _run_chain(w: _Walk, chain: Chain, depth: int) -> tuple:
    """(verdict or None to go on in the caller, deciding rule)."""
    if depth > 32:
        return None, None
    w.trail.append(f"{chain.table}/{chain.name}")
    src, dst = _as_int(w.packet.src), _as_int(w.packet.dst)
    rules = chain.rules
    for i in chain.address_index.candidates(src, dst):  # the others cannot match
        rule = rules[i]
        m = rule_matches(rule, w.packet)
        if m is False:
            continue
        if m is None:
            if rule.verdict in ("drop", "reject", "queue"):
                w.uncertain.append(rule)
                continue
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


def evaluate(ruleset: Ruleset, hook: str, packet: Packet, type_: str = "filter") -> Outcome:
    """What the base chains of `hook` (of `type_`) do to packet, in priority order."""
    w = _Walk(ruleset, packet)
    bases = ruleset.base_chains(hook, packet.family, type_)
    last = None
    for base in bases:
        verdict, rule = _run_chain(w, base, 0)
        if verdict in (None, "return"):
            verdict, rule = base.policy or "accept", None
        last = (verdict, rule, base)
        if verdict in ("drop", "reject") or verdict in NAT_VERDICTS:
            return Outcome(verdict, rule, base, tuple(w.uncertain), tuple(w.trail))
    if last is None:
        return Outcome("none", None, None, tuple(w.uncertain), tuple(w.trail))
    verdict, rule, base = last
    return Outcome(verdict, rule, base, tuple(w.uncertain), tuple(w.trail))


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

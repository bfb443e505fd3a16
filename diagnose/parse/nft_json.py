"""The one parser of `nft -j` output: `list ruleset`, `list table`, `list tables`.

The tables iptables-nft manages are left out (skip_tables): they are read through
iptables-save, which keeps their full meaning and rule text."""

from __future__ import annotations

from typing import Optional

import json
from dataclasses import replace

from ..errors import ParseError
from ..facts.ruleset import Chain, Match, Rule

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
    kind, family, mask = None, "", None
    if isinstance(left, dict) and isinstance(left.get("&"), list) and len(left["&"]) == 2 \
            and left["&"][0] == {"meta": {"key": "mark"}} and isinstance(left["&"][1], int):
        kind, mask = "mark", left["&"][1]  # `meta mark & 0x2000 == 0x2000`
    elif isinstance(left, dict):
        if left == {"meta": {"key": "mark"}}:
            kind, mask = "mark", 0xFFFFFFFF
        elif "meta" in left:
            kind = _NFT_FIELDS.get(("meta", left["meta"].get("key")))
        elif "ct" in left:
            kind = _NFT_FIELDS.get(("ct", left["ct"].get("key")))
        elif "fib" in left and isinstance(left["fib"], dict) \
                and left["fib"].get("result") == "type" \
                and left["fib"].get("flags") in (["daddr"], ["saddr"], "daddr", "saddr"):
            flags = left["fib"]["flags"]
            kind = "dsttype" if "daddr" in (flags if isinstance(flags, list) else [flags]) \
                else "srctype"
        elif "payload" in left:
            pl = left["payload"]
            proto, fld = pl.get("protocol"), pl.get("field")
            if proto in ("ip", "ip6") and fld in ("saddr", "daddr"):
                kind, family = fld, proto
            elif proto in ("tcp", "udp", "th", "sctp") and fld in ("dport", "sport"):
                kind = fld
            elif proto in ("icmp", "icmpv6") and fld == "type":
                kind, family = "icmptype", "ip6" if proto == "icmpv6" else "ip"
            elif (proto, fld) in (("ip", "protocol"), ("ip6", "nexthdr")):
                kind, family = "proto", proto  # (`ip protocol icmp`: an IPv4 packet's)
            elif proto == "arp" and fld in ("saddr ip", "daddr ip"):
                kind = fld.split()[0]  # the sender's, the target's IPv4 address
            elif proto == "arp" and fld == "operation":
                kind = "arpop"
            elif proto == "arp" and fld in ("htype", "hlen", "plen", "ptype"):
                kind = "arphdr"
    values = _nft_value(right)
    if kind is None or values is None or op not in ("==", "!=", "in"):
        return Match("unknown", (_compact(m),), False)
    if kind == "mark":
        if op == "in" or not all(isinstance(v, int) and not isinstance(v, bool)
                                 for v in values):
            return Match("unknown", (_compact(m),), False)
        values = tuple(f"{v:#x}/{mask:#x}" for v in values)
    elif kind == "ctstate":
        values = tuple(str(v).lower() for v in values)
    elif kind in ("iif", "oif"):
        values = tuple(str(v).replace("*", "+") for v in values)  # one wildcard spelling
    elif kind in ("icmptype", "arpop", "dsttype", "srctype"):
        values = tuple(str(v).lower() for v in values)
    elif kind == "arphdr":  # "htype 1": the field beside each value
        values = tuple(f"{left['payload']['field']} {str(v).lower()}" for v in values)
    return Match(kind, tuple(str(v) for v in values), op == "!=", family)


def _compact(obj) -> str:
    return json.dumps(obj, separators=(",", ":"), sort_keys=True)[:200]


def _nat_to(val) -> Optional[str]:
    """Where an nft snat/dnat/redirect statement translates to, as iptables writes it."""
    if not isinstance(val, dict):
        return None
    addr, port = val.get("addr"), val.get("port")
    addr = addr if isinstance(addr, str) else None
    port = port if isinstance(port, int) else None
    if addr is None and port is None:
        return None
    return (addr or "") + (f":{port}" if port is not None else "")


def _nft_rule(r: dict, index: int) -> Rule:
    matches, verdict, target, packets, bytes_, to = [], "continue", None, 0, 0, None
    notrack, ttl, sets_mark = False, None, False
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
            if key in ("snat", "dnat", "redirect"):
                to = _nat_to(val)
        elif key == "reject":
            verdict = "reject"
        elif key in ("jump", "goto"):
            verdict, target = key, _nft_name((val or {}).get("target"))
        elif key in ("limit", "xt", "quota", "fib"):
            # Statements that decide whether the rule goes on: not modelled.
            if key == "xt" and (val or {}).get("type") == "target":
                sets_mark = sets_mark or (val or {}).get("name") in ("MARK", "CONNMARK")
                continue
            matches.append(Match("unknown", (_compact(e),), False))
        elif key == "queue":
            verdict = "queue"
        elif key == "notrack":
            notrack = True
        elif key == "mangle" and isinstance(val, dict):
            sets_mark = sets_mark or val.get("key") == {"meta": {"key": "mark"}}
            field = ((val.get("key") or {}).get("payload") or {}).get("field")
            if field in ("ttl", "hoplimit") and isinstance(val.get("value"), int):
                ttl = f"{'ip' if field == 'ttl' else 'ip6'} set {val['value']}"
    rule = Rule(backend="nft", family=str(r.get("family")), table=str(r.get("table")),
                chain=str(r.get("chain")), index=index, matches=tuple(matches), verdict=verdict,
                target=target, handle=r.get("handle") if isinstance(r.get("handle"), int) else None,
                packets=packets, bytes=bytes_, to=to, notrack=notrack, ttl=ttl,
                sets_mark=sets_mark)
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
        if m.kind == "mark":
            value, _, mask = m.values[0].partition("/")
            op = "!= " if m.negate else ("" if int(mask, 16) == 0xFFFFFFFF else "== ")
            words.append(f"meta mark{'' if int(mask, 16) == 0xFFFFFFFF else ' & ' + mask} "
                         f"{op}{value}")
            continue
        vals = m.values[0] if len(m.values) == 1 else "{ " + ", ".join(m.values) + " }"
        name = f"{m.family or 'ip'} {m.kind}" if m.kind in ("saddr", "daddr") else \
            names.get(m.kind, m.kind)
        words.append(f"{name} {'!= ' if m.negate else ''}{vals}")
    if rule.notrack:
        words.append("notrack")
    if rule.ttl:
        header, how, n = rule.ttl.split()
        words.append(f"{header} {'hoplimit' if header == 'ip6' else 'ttl'} {how} {n}")
    if rule.verdict in ("jump", "goto"):
        words.append(f"{rule.verdict} {rule.target}")
    elif rule.verdict != "continue":
        words.append(rule.verdict + (f" to {rule.to}" if rule.to else ""))
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
        except (TypeError, ValueError, OverflowError):
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
        except (TypeError, AttributeError, KeyError, ValueError, IndexError,
                OverflowError) as e:
            # A field of the wrong type or shape: the document is not what nft prints.
            raise ParseError(f"nft -j: item {number} is malformed "
                             f"({type(e).__name__}: {str(e)[:60]})") from None
    return tuple(
        Chain(backend="nft", family=str(f), table=str(t), name=str(n), hook=c["hook"],
              priority=c["prio"], type=c["type"], policy=c["policy"], rules=tuple(c["rules"]))
        for (f, t, n) in order for c in [chains[(f, t, n)]]
    )

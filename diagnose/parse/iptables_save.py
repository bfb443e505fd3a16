"""The one parser of `iptables-save [-c]` output (nft or legacy backend, IPv4 or IPv6)."""

from __future__ import annotations

import shlex

from ..errors import ParseError
from ..facts.ruleset import Chain, Match, Rule

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
_TABLE_TYPE = {"filter": "filter", "nat": "nat", "mangle": "filter", "raw": "filter",
               "security": "filter"}
# ... but mangle OUTPUT, which re-routes what it changes: iptables-nft registers it so.
_ROUTE_CHAINS = {("mangle", "OUTPUT")}


_IPT_VERDICT = {"ACCEPT": "accept", "DROP": "drop", "REJECT": "reject", "RETURN": "return",
                "MASQUERADE": "masquerade", "SNAT": "snat", "DNAT": "dnat",
                "REDIRECT": "redirect", "NFQUEUE": "queue", "QUEUE": "queue"}
_IGNORED_MODULES = ("comment",)


def _split_list(value: str) -> tuple:
    return tuple(v for v in value.split(",") if v)


def _ipt_rule(tokens: list, backend: str, family: str, table: str, index: int,
              packets: int, bytes_: int, text: str, user_chains: set) -> Rule:
    chain = tokens[1]
    matches, verdict, target, to = [], "continue", None, None
    negate, notrack, ttl, sets_mark = False, False, None, False
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
        elif tok == "--icmpv6-type":
            matches.append(Match("icmptype", (value().lower(),), negate, "ip6"))
        elif module == "addrtype" and tok in ("--dst-type", "--src-type"):
            kind = "dsttype" if tok == "--dst-type" else "srctype"
            matches.append(Match(kind, tuple(t.lower() for t in _split_list(value())), negate))
        elif module == "mark" and tok == "--mark":
            matches.append(Match("mark", (_mark_spec(value()),), negate))
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
            # The target's own options follow: of them, a NAT target's address matters, and
            # whether CT untracks.
            rest = tokens[i + 1:]
            notrack = name == "NOTRACK" or (name == "CT" and "--notrack" in rest)
            sets_mark = name == "MARK" or (name == "CONNMARK" and "--save-mark" not in rest)
            if name in ("TTL", "HL"):
                for how in ("set", "dec", "inc"):
                    opt = f"--{name.lower()}-{how}"
                    if opt in rest and rest.index(opt) + 1 < len(rest):
                        ttl = f"{'ip' if name == 'TTL' else 'ip6'} {how} " \
                              f"{rest[rest.index(opt) + 1]}"
            for opt in ("--to-destination", "--to-source", "--to-ports", "--to"):
                if opt in rest and rest.index(opt) + 1 < len(rest):
                    to = rest[rest.index(opt) + 1]
                    to = f":{to}" if opt == "--to-ports" else to
                    break
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
                packets=packets, bytes=bytes_, to=to, notrack=notrack, ttl=ttl,
                sets_mark=sets_mark)


def _mark_spec(value: str) -> str:
    """`--mark VALUE[/MASK]` as "0xVALUE/0xMASK" (no mask: all 32 bits); unreadable
    numbers are kept as written, which no packet's mark is judged against."""
    v, _, m = value.partition("/")
    try:
        return f"{int(v, 0):#x}/{int(m, 0) if m else 0xFFFFFFFF:#x}"
    except ValueError:
        return value


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
                         priority=priority or 0, type="route" if (t, name) in _ROUTE_CHAINS
                         else _TABLE_TYPE.get(t, "filter"),
                         policy=c["policy"], rules=tuple(c["rules"]),
                         policy_packets=c["policy_packets"]))
    return tuple(out)


def tables_of(chains: tuple) -> set:
    return {(c.family, c.table) for c in chains}

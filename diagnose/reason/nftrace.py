"""What nftables' own trace (--allow-trace-rules) says of the probe's packets: per namespace
and packet, the rules it met and the one that decided, named as `checks` names rules. Pure.

A trace step names a rule by its handle. Native nft rules are named by that handle; a rule
in a table iptables-nft manages is found again by its position in the chain, which is its
iptables rule number, so it reads as iptables-save writes it.
"""

from __future__ import annotations

from typing import Optional

OWN_TABLE_PREFIX = "netdoctor_"
REQUEST_ICMP = ("echo-request",)


def direction_of(packet: dict, flow) -> str:
    """request or reply, from the addresses and ports nft printed for the packet."""
    if flow.kind == "icmp":
        return "request" if packet.get("icmp") in REQUEST_ICMP else "reply"
    return "request" if packet.get("sport") == flow.sport else "reply"


def _named(step, listed: dict, ruleset) -> tuple:
    """(where, text) of a step, in the words rule_hits and the checks use."""
    if step.kind == "policy":
        backend = "iptables-nft" if ruleset is not None and ruleset.chain(
            "iptables-nft", step.family, step.table, step.chain) else "nft"
        return (f"{backend} table {step.family} {step.table} chain {step.chain}",
                f"policy {step.verdict}")
    rule = listed.get((step.family, step.table, step.chain, step.handle))
    if rule is None:
        return (f"nft table {step.family} {step.table} chain {step.chain} handle {step.handle}",
                step.text or f"verdict {step.verdict}")
    ipt = ruleset.chain("iptables-nft", step.family, step.table, step.chain) \
        if ruleset is not None else None
    if ipt is not None and 0 < rule.index <= len(ipt.rules):
        same = ipt.rules[rule.index - 1]
        return same.where, same.text
    return rule.where, rule.text


def rules_met(label: str, scope: str, passages: list, chains: list, ruleset, flow) -> list:
    """One entry per traced packet: netns, scope (container, host, destination), direction,
    what nft printed of the packet, the steps (where, text, verdict) and the dropping one.
    chains: the Chains listed with handles; ruleset: the namespace's Ruleset (or None)."""
    listed = {(c.family, c.table, c.name, r.handle): r for c in chains for r in c.rules}
    out = []
    for p in passages:
        steps = []
        dropped: Optional[dict] = None
        for s in p.steps:
            if s.table.startswith(OWN_TABLE_PREFIX) or (s.kind == "verdict" and not s.final):
                continue
            where, text = _named(s, listed, ruleset)
            step = {"where": where, "text": text, "verdict": s.verdict}
            steps.append(step)
            if s is p.dropped_by:
                dropped = step
        pk = p.packet
        out.append({"netns": label, "scope": scope, "direction": direction_of(pk, flow),
                    "packet": " ".join(f"{k} {pk[k]}" for k in ("iif", "oif") if k in pk)
                    + (f" {pk.get('saddr')} -> {pk.get('daddr')}" if "saddr" in pk else ""),
                    "hooks": p.hooks, "steps": steps, "dropped_by": dropped})
    return out


def first_drop(met: list, direction: Optional[str] = None,
               scopes: tuple = ("container", "host", "destination")) -> Optional[dict]:
    """The first traced drop (in direction, in one of scopes): {netns, scope, where, text}."""
    for m in met:
        if m["dropped_by"] and m["scope"] in scopes and direction in (None, m["direction"]):
            return dict(m["dropped_by"], netns=m["netns"], scope=m["scope"],
                        direction=m["direction"])
    return None

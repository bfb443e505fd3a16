"""The one parser of `nft -a monitor` trace lines: what nftables did with each packet whose
nftrace bit was set, one line per step.

    trace id 9b1c2a3d ip filter FORWARD packet: iif "ndbr0" oif "eth0" ip saddr ...
    trace id 9b1c2a3d ip filter FORWARD rule meta l4proto icmp counter ... drop # handle 7 (verdict drop)
    trace id 9b1c2a3d ip filter FORWARD unknown rule handle 7 (verdict drop)
    trace id 9b1c2a3d ip filter DOCKER-USER verdict return
    trace id 9b1c2a3d ip filter FORWARD policy drop

A trace id names one packet (one skb) within one namespace; the other lines of the monitor
(added tables, chains, rules, generations) are not trace lines and are skipped. nft 1.0.6
has no JSON form for trace events, so this reads the text form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Optional

_LINE = re.compile(r"^trace id (?P<id>[0-9a-f]+) (?P<family>\S+) (?P<table>\S+) "
                   r"(?P<chain>\S+) (?P<rest>.*)$")
_STEP = re.compile(r"^(?:unknown rule handle (?P<uhandle>\d+)|rule (?P<text>.*?)"
                   r"(?: # handle (?P<handle>\d+))?) \(verdict (?P<verdict>[^)]*)\)\s*$")
_FIELD = re.compile(r'\b(iif|oif) "([^"]*)"|\bip6? (saddr|daddr) (\S+)|'
                    r'\b(tcp|udp) (sport|dport) (\d+)|\bicmp(?:v6)? type (\S+)')


@dataclass(frozen=True)
class Step:
    """One rule (handle, its text as nft prints it) or a chain's end (policy/verdict)."""

    family: str
    table: str
    chain: str
    kind: str  # rule, policy, verdict
    verdict: str  # accept, drop, continue, jump X, goto X, return, queue ...
    handle: Optional[int] = None
    text: str = ""

    @property
    def final(self) -> bool:
        """The packet's fate in this hook: accepted or dropped here (not jumped on)."""
        return self.verdict.split()[0] in ("accept", "drop", "reject", "queue", "stolen")


@dataclass
class Passage:
    """One packet's way through one namespace's hooks, in the order nft reported it."""

    trace_id: str
    packet: dict = field(default_factory=dict)  # iif oif saddr daddr sport dport icmp
    hooks: list = field(default_factory=list)  # "family table chain" where it was seen
    steps: list = field(default_factory=list)  # Step

    @property
    def dropped_by(self) -> Optional[Step]:
        """The step that dropped or rejected the packet, if any did."""
        return next((s for s in self.steps if s.verdict.split()[0] in ("drop", "reject")),
                    None)


def parse_trace(lines) -> list:
    """Passages, one per trace id, in the order their first line came."""
    passages: dict = {}
    for line in lines:
        m = _LINE.match(line.rstrip("\n"))
        if m is None:
            continue
        p = passages.setdefault(m["id"], Passage(m["id"]))
        where = (m["family"], m["table"], m["chain"])
        rest = m["rest"].strip()
        if rest.startswith("packet:"):
            p.hooks.append(" ".join(where))
            for f in _FIELD.finditer(rest):
                if f.group(1):
                    p.packet.setdefault(f.group(1), f.group(2))
                elif f.group(3):
                    p.packet.setdefault(f.group(3), f.group(4))
                elif f.group(6):
                    p.packet.setdefault(f.group(6), int(f.group(7)))
                else:
                    p.packet.setdefault("icmp", f.group(8))
            continue
        if rest.startswith("policy "):
            p.steps.append(Step(*where, "policy", rest.split()[1]))
            continue
        if rest.startswith("verdict "):
            p.steps.append(Step(*where, "verdict", rest[len("verdict "):].strip()))
            continue
        s = _STEP.match(rest)
        if s is not None:
            handle = s["handle"] or s["uhandle"]
            p.steps.append(Step(*where, "rule", s["verdict"].strip(),
                                int(handle) if handle else None, (s["text"] or "").strip()))
    return list(passages.values())

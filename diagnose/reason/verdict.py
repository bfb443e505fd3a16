"""localize(sightings) -> HopVerdict, and decide(...) -> Verdict: pure, no I/O.

Where did the probe stop? The furthest hop that saw the request; if a reply was seen
somewhere, the hop nearest the container that saw it. Why? The finding (from the checks)
that blocks at that place, confirmed or chosen by the kernel's drop reason and by the rule
whose counter moved; failing any finding, the evidence itself names the cause.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Optional

from netdoctor.diagnose.facts.namespace import is_unrouted

ORDER = ("container", "host-veth", "bridge", "uplink")


@dataclass(frozen=True)
class Flow:
    kind: str  # icmp, tcp, udp
    src: str  # the container's address
    dst: str
    cookie: int = 0
    sport: int = 0
    dport: int = 0


def classify(frame, flow: Flow) -> Optional[str]:
    """'request', 'reply', 'error' (an ICMP error about the probe), 'arp', or None."""
    if frame.proto == "arp":
        return "arp"
    if frame.proto == "icmp":
        if frame.icmp_type in (8, 0) and flow.kind == "icmp" and frame.cookie == flow.cookie:
            return "request" if frame.icmp_type == 8 else "reply"
        if frame.inner is not None and frame.inner[1] == flow.dst:
            return "error"
        return None
    if frame.proto == flow.kind and flow.kind in ("tcp", "udp"):
        if frame.sport == flow.sport and frame.dport == flow.dport:
            return "request"
        if frame.dport == flow.sport and frame.sport == flow.dport:
            return "reply"
    return None


@dataclass(frozen=True)
class HopSighting:
    role: str
    name: str
    netns: str
    request_seen: int = 0
    reply_seen: int = 0
    first_seen_ns: Optional[int] = None
    addresses_seen: dict = field(default_factory=dict)
    arp_requests: int = 0
    arp_replies: int = 0
    icmp_errors: tuple = ()
    capture_error: Optional[str] = None
    arp_unanswered: tuple = ()  # addresses ARP asked for here that never answered

    def to_dict(self, t0: Optional[int]) -> dict:
        d = asdict(self)
        d.pop("first_seen_ns")
        d["icmp_errors"] = list(self.icmp_errors)
        d["first_seen_us"] = (None if self.first_seen_ns is None or t0 is None
                              else round((self.first_seen_ns - t0) / 1000))
        return d


def sight(role: str, name: str, netns: str, frames: list, flow: Flow,
          capture_error: Optional[str] = None) -> HopSighting:
    req = rep = arp_req = arp_rep = 0
    first = None
    seen: dict = {}
    errors = []
    asked, answered = [], set()
    for f in frames:
        kind = classify(f, flow)
        if kind is None:
            continue
        if kind == "arp":
            if f.arp_op == 1:
                arp_req += 1
                asked.append(f.dst)
            elif f.arp_op == 2:
                arp_rep += 1
                answered.add(f.src)
            continue
        if first is None or (f.ts_ns and f.ts_ns < first):
            first = f.ts_ns
        if kind == "request":
            req += 1
            seen.setdefault("request", f"{f.src} -> {f.dst}")
        elif kind == "reply":
            rep += 1
            seen.setdefault("reply", f"{f.src} -> {f.dst}")
        else:
            errors.append(f"ICMP type {f.icmp_type} from {f.src}")
    return HopSighting(role, name, netns, req, rep, first, seen, arp_req, arp_rep,
                       tuple(dict.fromkeys(errors)), capture_error,
                       tuple(a for a in dict.fromkeys(asked) if a and a not in answered))


@dataclass(frozen=True)
class HopVerdict:
    reachable: bool
    stopped_at: Optional[str]
    direction: Optional[str]


def answered_by_host(sightings: list, replied: bool) -> bool:
    """The container got an answer that never crossed the uplink: the host itself made it
    (an iptables REJECT's RST or ICMP error), not the destination."""
    up = next((s for s in sightings if s.role == "uplink"), None)
    inner_reply = any(s.reply_seen for s in sightings if s.role != "uplink")
    return replied and up is not None and up.capture_error is None and not up.reply_seen \
        and inner_reply


def localize(sightings: list, replied: bool) -> HopVerdict:
    """sightings in path order (container first)."""
    if replied and not answered_by_host(sightings, replied):
        return HopVerdict(True, None, None)
    if replied:  # the host answered in the destination's place: where did the request stop?
        with_request = [i for i, s in enumerate(sightings) if s.request_seen]
        return HopVerdict(False, sightings[max(with_request)].role if with_request else None,
                          "request")
    with_reply = [i for i, s in enumerate(sightings) if s.reply_seen]
    if with_reply:
        return HopVerdict(False, sightings[min(with_reply)].role, "reply")
    with_request = [i for i, s in enumerate(sightings) if s.request_seen]
    if with_request:
        return HopVerdict(False, sightings[max(with_request)].role, "request")
    return HopVerdict(False, None, "request")


# Where each check's fault stops a probe: (direction, role of the last hop that sees it).
# None as role: the probe never leaves the container.
# Listed root causes first: when several findings could explain the same stop, the one
# earlier here is the cause and the later ones are its symptoms (a gateway's ARP entry
# fails *because* the veth is down, not the other way round). A neighbour entry that
# fails, for instance, can leave nothing at all on the wire (None) or only ARP.
BLOCKS_AT = {
    "container-no-interface": [("request", None)],
    "container-link-down": [("request", None)],
    "container-no-address": [("request", None)],
    "container-no-default-route": [("request", None)],
    "container-output-dropped": [("request", None)],
    "veth-down": [("request", None), ("request", "container")],
    "veth-not-attached": [("request", None), ("request", "container"), ("request", "host-veth"),
                          ("request", "bridge")],  # on the wrong bridge, the host still routes
    "bridge-down": [("request", None), ("request", "container"), ("request", "host-veth")],
    "container-wrong-gateway": [("request", None), ("request", "container")],
    "ip-conflict": [("request", None), ("request", "container"), ("request", "bridge"),
                    ("reply", "uplink"), ("reply", "bridge")],
    "ip-forward-disabled": [("request", "bridge")],
    "uplink-down": [("request", "bridge")],
    "host-no-route": [("request", "bridge")],
    "rp-filter-drop": [("request", "bridge"), ("request", "host-veth"), ("reply", "uplink"),
                       ("request", None), ("request", "container")],  # it silences ARP too
    "forward-dropped": [("request", "bridge"), ("reply", "uplink")],
    "nat-missing": [("request", "uplink")],
    "neighbour-failed": [("request", None), ("request", "container"), ("request", "host-veth"),
                         ("request", "bridge")],
    "bridge-netfilter": [("request", "bridge")],
    "mtu-mismatch": [("request", "container"), ("request", "host-veth"), ("request", "bridge")],
    "dns-unreachable": [],
}
PRIORITY = {cid: i for i, cid in enumerate(BLOCKS_AT)}
# Faults of the wiring itself. When one of them blocks where the probe stopped, it is the
# cause, whatever the kernel's drop reason: a firewall drop of packets that arrive on the
# wrong bridge is a symptom, and opening the firewall would not repair the container.
STRUCTURAL = tuple(list(BLOCKS_AT)[:list(BLOCKS_AT).index("ip-conflict") + 1])
NETFILTER_CAUSES = ("forward-dropped", "bridge-netfilter", "container-output-dropped")

# What the kernel's drop reason says, in the catalog's words.
REASON_CAUSES = {
    "IP_INADDRERRORS": ["ip-forward-disabled", "host-no-route"],
    "NETFILTER_DROP": ["forward-dropped", "bridge-netfilter", "container-output-dropped"],
    "IP_RPFILTER": ["rp-filter-drop"],
    "NEIGH_FAILED": ["neighbour-failed"],
    "NEIGH_DEAD": ["neighbour-failed"],
    "IP_OUTNOROUTES": ["host-no-route", "container-no-default-route", "uplink-down"],
    "IP_INNOROUTES": ["host-no-route", "uplink-down"],
    "OTHERHOST": ["veth-not-attached", "ip-conflict", "container-wrong-gateway"],
    "PKT_TOO_BIG": ["mtu-mismatch"],
    "IP_LOCAL_SOURCE": ["ip-conflict"],
    "IP_INVALID_SOURCE": ["ip-conflict"],
}


@dataclass(frozen=True)
class Verdict:
    reachable: bool
    stopped_at: Optional[str]
    direction: Optional[str]
    cause: Optional[str]
    kernel_drop_reason: Optional[str] = None
    kernel_location: Optional[str] = None
    rule: Optional[str] = None
    evidence_used: tuple = ()  # what the verdict rests on: captures, tracefs, counters, checks
    explanation: str = ""

    def to_dict(self) -> dict:
        d = asdict(self)
        d["evidence_used"] = list(self.evidence_used)
        return d


def unanswered_next_hop(sightings: list, hv: HopVerdict,
                        next_hops: Optional[dict] = None) -> Optional[tuple]:
    """(hop, address) when the hop the request should have left by next asked ARP for its
    next hop and got no answer: the request waits in the kernel's neighbour queue, and is
    never seen there. next_hops maps a role to the address its kernel sends to (a gateway,
    or the destination on the link); without it, any unanswered address counts."""
    if hv.reachable or hv.direction != "request":
        return None
    roles = [s.role for s in sightings]
    i = roles.index(hv.stopped_at) + 1 if hv.stopped_at in roles else 0
    if i >= len(sightings):
        return None
    hop = sightings[i]
    want = (next_hops or {}).get(hop.role)
    for address in hop.arp_unanswered:
        if want is None or address == want:
            return hop, address
    return None


def decide(hv: HopVerdict, sightings: list, findings: list, drops: list, rule_hits: list,
           flow: Flow, evidence_used: tuple, next_hops: Optional[dict] = None) -> Verdict:
    """The cause of the hop verdict. drops: [(reason, location, device)] of the probe's skbs,
    device being the last one the skb was seen on; rule_hits: dropping rules/policies whose
    counters moved during the probe; next_hops: see unanswered_next_hop."""
    # tracefs sees the whole machine: a drop counts only where the probe's path runs.
    path_devices = {s.name for s in sightings}
    on_path = [(r, loc) for r, loc, dev in drops if dev in path_devices]
    reason, location = (on_path[0] if on_path else (None, None))
    rule = rule_hits[0]["where"] + ": " + rule_hits[0]["text"] if rule_hits else None
    if hv.reachable:
        return Verdict(True, None, None, None, None, None, None, evidence_used,
                       "the probe was answered")
    errors = [f for f in findings if f.severity == "error"]

    def blocks_here(f) -> bool:
        places = BLOCKS_AT.get(f.id, [])
        if f.id == "forward-dropped":
            direction = f.evidence.get("direction", "request")
            places = [p for p in places if p[0] == direction]
        return (hv.direction, hv.stopped_at) in places

    arp = unanswered_next_hop(sightings, hv, next_hops)
    candidates = sorted((f for f in errors if blocks_here(f)),
                        key=lambda f: PRIORITY.get(f.id, len(PRIORITY)))
    by_reason = REASON_CAUSES.get(reason or "", [])
    cause = None
    if candidates and candidates[0].id in STRUCTURAL:
        cause = candidates[0].id
    elif candidates and by_reason:
        agreeing = [f for f in candidates if f.id in by_reason]
        cause = (agreeing or candidates)[0].id
    elif candidates:
        cause = candidates[0].id
    elif by_reason:
        cause = by_reason[0]
    elif rule_hits and hv.stopped_at in ("bridge", "uplink"):
        cause = "forward-dropped"
    elif arp is not None:
        cause = "neighbour-failed"
    elif hv.stopped_at == "uplink" and hv.direction == "request":
        up = next((s for s in sightings if s.role == "uplink"), None)
        src = (up.addresses_seen.get("request", "").split(" -> ")[0] if up else "")
        if src == flow.src and is_unrouted(flow.src):
            cause = "nat-missing"
        else:
            cause = "upstream-no-reply"
    else:
        blocking = [f for f in errors if BLOCKS_AT.get(f.id)]
        cause = blocking[0].id if blocking else "unknown"
    explanation = (f"the {hv.direction} was last seen at {hv.stopped_at}"
                   if hv.stopped_at else "the request never left the container")
    if cause == "neighbour-failed" and arp is not None:
        explanation += (f"; on {arp[0].name} ({arp[0].role}) ARP asked for {arp[1]} and "
                        f"nothing answered")
    if cause not in NETFILTER_CAUSES:
        rule = None  # a counter that moved is evidence only when a rule is the cause
    elif cause == "container-output-dropped":
        # The moved counters are the host's; the container's rule is the finding's.
        rule = next((f.vars.get("rule") for f in errors if f.id == cause), None)
    return Verdict(False, hv.stopped_at, hv.direction, cause, reason, location, rule,
                   evidence_used, explanation)

"""decide(case) -> Verdict: why the probe stopped where it did. Pure, no I/O.

Every verdict rule is here, as one ordered list (RULES): the first rule that applies
decides. A rule reads a Case (where the probe stopped, what each hop saw, the checks'
findings, the kernel's drop reasons, the rule counters that moved, the name resolution)
and names a cause, or passes. Findings say where their fault stops a packet and how they
rank as a cause (a check's `blocks_at`, `precedence`, `structural`, in checks/); the
kernel's drop reason, the counters and the captures confirm, choose or stand in for them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from typing import Optional

from ..facts.namespace import is_unrouted
from .evidence import Flow, HopVerdict, endpoints, unanswered_next_hop
from .nftrace import first_drop

# What the kernel's drop reason says, in the catalog's words (first: the likeliest alone).
REASON_CAUSES = {
    "IP_INADDRERRORS": ["ip-forward-disabled", "host-no-route"],
    "NETFILTER_DROP": ["forward-dropped", "bridge-netfilter", "container-output-dropped",
                       "host-input-dropped"],
    "IP_RPFILTER": ["rp-filter-drop"],
    "NEIGH_FAILED": ["neighbour-failed"],
    "NEIGH_DEAD": ["neighbour-failed"],
    "IP_OUTNOROUTES": ["peer-route-missing", "host-no-route", "container-no-default-route",
                       "uplink-down", "ipv6-ra-ignored"],
    "IP_INNOROUTES": ["peer-route-missing", "host-no-route", "uplink-down", "ipv6-ra-ignored"],
    "OTHERHOST": ["veth-not-attached", "ip-conflict", "container-wrong-gateway"],
    "PKT_TOO_BIG": ["mtu-mismatch", "overlay-mtu"],
    "NO_TX_TARGET": ["vxlan-fdb-missing"],
    "IP_LOCAL_SOURCE": ["ip-conflict"],
    "IP_INVALID_SOURCE": ["ip-conflict"],
}
# Causes a dropping rule makes: for them, and only them, the rule whose counter moved is
# evidence.
RULE_CAUSES = ("forward-dropped", "bridge-netfilter", "container-output-dropped",
               "neighbour-discovery-dropped", "host-input-dropped")


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
    # How the cause came about, when that is a cause of its own: the name did not resolve
    # (the cause) because the query to the nameserver was dropped in FORWARD (the mechanism).
    mechanism: Optional[str] = None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["evidence_used"] = list(self.evidence_used)
        return d


@dataclass
class Case:
    """Everything a verdict rests on. drops: [(reason, location, device)] of the probe's skbs,
    device being the last one the skb was seen on; rule_hits: dropping rules and policies
    whose counters moved during the probe; next_hops: role -> the address that hop's kernel
    sends to (see unanswered_next_hop); dns_failure: why the name did not resolve (the
    probe then went to the nameserver); pmtu: the full-size probe's outcome."""

    hops: HopVerdict
    sightings: list
    findings: list
    drops: list = field(default_factory=list)
    rule_hits: list = field(default_factory=list)
    flow: Optional[Flow] = None
    evidence_used: tuple = ()
    next_hops: Optional[dict] = None
    dns_failure: Optional[str] = None
    pmtu: Optional[dict] = None
    divergences: tuple = ()  # where the kernel's decisions left the path the facts predicted
    # The destination itself answered a UDP probe with "port unreachable": reached, closed.
    port_closed: bool = False
    # nftables' trace of the probe's packets (--allow-trace-rules): reason.nftrace.rules_met
    traced: list = field(default_factory=list)
    # The nameserver sent no answer at all to the name's query (it did not refuse it)
    dns_silent: bool = False

    @cached_property
    def kernel_drop(self) -> tuple:
        """(reason, location) of the first drop on the probe's path: tracefs sees the whole
        machine, and only the path's devices count. tracefs names devices, not namespaces:
        a request seen at a hop was not dropped at a device it had passed before it (a drop
        named so is a namesake's, in another namespace: a far host on the same kernel)."""
        passed = self._passed_devices()
        path_devices = {s.name for s in self.sightings}
        on_path = [(r, loc) for r, loc, dev in self.drops
                   if dev in path_devices and dev not in passed]
        return on_path[0] if on_path else (None, None)

    def _passed_devices(self) -> set:
        """The devices only before the hop where the request was last seen (none when it
        stopped elsewhere, or came back)."""
        if self.hops.direction != "request" or self.hops.stopped_at is None:
            return set()
        roles = [s.role for s in self.sightings]
        if self.hops.stopped_at not in roles:
            return set()
        at = roles.index(self.hops.stopped_at)
        if any(s.reply_seen for s in self.sightings):
            return set()
        before = {s.name for s in self.sightings[:at]}
        return before - {s.name for s in self.sightings[at:]}

    @cached_property
    def errors(self) -> list:
        return [f for f in self.findings if f.severity == "error"]

    @cached_property
    def blocking_here(self) -> list:
        """Error findings whose fault stops a packet where this one stopped, root causes
        first."""
        def blocks_here(f) -> bool:
            places = f.blocks_at
            direction = (f.evidence or {}).get("direction")
            if direction:
                places = [p for p in places if p[0] == direction]
            roles = (f.evidence or {}).get("stops_at")
            if isinstance(roles, list):  # a check whose fault stops packets where it is
                places = [p for p in places if p[1] in roles]
            return (self.hops.direction, self.hops.stopped_at) in places and self.for_probe(f)

        return sorted((f for f in self.errors if blocks_here(f)), key=lambda f: f.precedence)

    def for_probe(self, f) -> bool:
        """Whether a finding about some flows only (evidence "flows": ["tcp/80", ...]) is
        about the probe's; a finding that names none is about every flow."""
        flows = (f.evidence or {}).get("flows")
        if not isinstance(flows, list) or self.flow is None:
            return True
        port = self.flow.dport if self.flow.kind in ("tcp", "udp") else None
        return (self.flow.kind if port is None else f"{self.flow.kind}/{port}") in flows

    @cached_property
    def by_reason(self) -> list:
        reason = self.kernel_drop[0] or ""
        if reason == "NETFILTER_DROP" and self.stopped("destination"):
            # dropped in the destination's own kernel, past every device of the host
            return ["container-input-dropped"]
        return REASON_CAUSES.get(reason, [])

    @cached_property
    def unanswered_arp(self) -> Optional[tuple]:
        return unanswered_next_hop(self.sightings, self.hops, self.next_hops)

    def stopped(self, role: str, direction: str = "request") -> bool:
        return self.hops.stopped_at == role and self.hops.direction == direction


# ------------------------------------------------------------------ the rules, in order

# Faults that cut the container off from its resolver itself, where the path to the
# resolver's upstream (what the trace follows for a forwarding resolver) is fine.
RESOLVER_CUT_OFF = ("container-loopback-down",)


def _resolver_cut_off(c: Case) -> Optional[Verdict]:
    """The name did not resolve, and the container cannot reach its resolver at all (its
    loopback, where the resolver listens, is down): that is the cause, whatever the path
    to the resolver's upstream says."""
    cut = next((f for f in c.errors if f.id in RESOLVER_CUT_OFF), None) \
        if c.dns_failure else None
    if cut is None:
        return None
    return Verdict(False, None, None, cut.id, evidence_used=c.evidence_used,
                   explanation=f"{c.dns_failure}; {cut.message}")


def _dns_answered_without_address(c: Case) -> Optional[Verdict]:
    """The name did not resolve, yet the probe to the nameserver was answered: it answers,
    without an address."""
    if c.dns_failure and c.hops.reachable and c.port_closed:
        return Verdict(False, None, None, "dns-unreachable", evidence_used=c.evidence_used,
                       explanation=f"{c.dns_failure}; the nameserver's host answers that "
                                   f"nothing listens on UDP port 53 there (ICMP port "
                                   f"unreachable): its DNS server is not running, or listens "
                                   f"on another address")
    if c.dns_failure and c.hops.reachable and c.dns_silent:
        return Verdict(False, None, None, "dns-no-answer", evidence_used=c.evidence_used,
                       explanation=f"{c.dns_failure}; yet the nameserver answered netdoctor's "
                                   f"own query (a question for the root): the path to it "
                                   f"works, and it is silent for the name alone, as a "
                                   f"forwarding resolver is whose own servers do not answer it")
    if c.dns_failure and c.hops.reachable:
        return Verdict(False, None, None, "dns-no-answer", evidence_used=c.evidence_used,
                       explanation=f"the nameserver answers, but: {c.dns_failure}")
    return None


def _path_mtu_black_hole(c: Case) -> Optional[Verdict]:
    """Small packets pass; a full-size don't-fragment packet neither passes nor is refused
    with a 'fragmentation needed' that the sender would learn from."""
    if c.hops.reachable and c.pmtu is not None and not c.pmtu["discovery_works"]:
        return Verdict(True, None, None, "mtu-mismatch", evidence_used=c.evidence_used,
                       explanation=f"small packets pass, a {c.pmtu['size']}-byte "
                                   f"don't-fragment packet does not: a path-MTU black hole")
    return None


def _answered_inside(c: Case) -> Optional[Verdict]:
    """The probe was answered, by the container itself: it holds the destination's address
    (destination-is-local), and the packets never left it."""
    local = next((f for f in c.errors if f.id == "destination-is-local"), None)
    if c.hops.reachable and local is not None:
        return Verdict(True, None, None, "destination-is-local", evidence_used=c.evidence_used,
                       explanation=f"answered inside the container: {local.message}")
    return None


def _answered(c: Case) -> Optional[Verdict]:
    if c.hops.reachable:
        return Verdict(True, None, None, None, evidence_used=c.evidence_used,
                       explanation="the destination answered, and refused the connection: "
                                   "the path to it works; nothing listens on that port there, "
                                   "or its own firewall rejects it" if c.port_closed and
                       c.flow is not None and c.flow.kind == "tcp" else
                       "the probe was answered")
    return None


def _name_did_not_resolve(c: Case) -> Optional[Verdict]:
    """The name did not resolve and the query to the nameserver went unanswered: the DNS
    failure is the cause, and what the rules below find on the path to the nameserver is
    its mechanism (none when the query left the host and nothing came back)."""
    if not c.dns_failure or c.hops.reachable:
        return None
    path = decide(replace(c, dns_failure=None))
    silent = path.cause in ("upstream-no-reply", "destination-no-reply", "unknown")
    return replace(path, cause="dns-unreachable", mechanism=None if silent else path.cause,
                   explanation=f"{c.dns_failure}; the query to the nameserver: "
                               f"{path.explanation}" + ("" if silent else f" ({path.cause})"))


# Drop reasons that name a program netdoctor does not read: a tc classifier or action, an
# eBPF program on tc or a cgroup. The kernel's word is all there is about them.
PROGRAM_DROPS = ("TC_INGRESS", "TC_EGRESS", "TC_CHAIN_NOTFOUND", "TC_COOKIE_ERROR",
                 "TC_RECLASSIFY_LOOP", "BPF_CGROUP_EGRESS")


def _dropped_by_a_program(c: Case) -> Optional[Verdict]:
    """The kernel says a tc filter or an eBPF program dropped the probe: netdoctor cannot
    see inside those, so it names the device and says so instead of guessing a rule."""
    reason, location = c.kernel_drop
    if reason not in PROGRAM_DROPS:
        return None
    device = next((dev for r, loc, dev in c.drops if r == reason), None)
    v = _explained(c, "tc-drop")
    return replace(v, explanation=f"{v.explanation}; the kernel dropped it with {reason} on "
                                  f"{device}: a tc filter or an eBPF program there decided, "
                                  f"and netdoctor does not evaluate those (`tc filter show "
                                  f"dev {device} ingress`; for an eBPF dataplane, its own "
                                  f"tools)")


def _going_round(c: Case):
    """The request came back to a hop with a lower TTL than it first had there: routers pass
    it round in a loop until its TTL runs out (and the 'time exceeded' that then answers is
    often lost to the ICMP rate limit the loop's redirects have used up). A finding that
    shows the loop's route is the cause, with its fix; else the loop itself."""
    looped = [s for s in c.sightings if s.came_back]
    if not looped or c.hops.reachable:
        return None
    at = looped[0]
    seen = (f"the request came back to {at.name} ({at.netns}) {len(at.request_ttls) - 1} "
            f"time{'s' if len(at.request_ttls) > 2 else ''}, its TTL falling from "
            f"{at.request_ttls[0]} to {at.request_ttls[-1]}: routers pass it round in a loop "
            f"until its TTL runs out")
    shown = [f for f in c.findings if f.id in LOOP_CAUSES]  # the loop confirms a warning
    if shown:
        v = _explained(c, shown[0].id)
        return replace(v, explanation=f"{seen}; {v.explanation}")
    return Verdict(False, at.role, "request", "routing-loop", c.kernel_drop[0],
                   c.kernel_drop[1], evidence_used=c.evidence_used,
                   explanation=f"{seen}; no check shows the route that sends it back (it may "
                               f"be beyond what netdoctor reads): look at `ip route get "
                               f"{c.flow.dst if c.flow else 'DEST'}` on each router the "
                               f"request passes, or `traceroute`, whose hops repeat")


def _answered_by_two(c: Case):
    """ARP for the container's address, or for a next hop of the path, was answered by two
    MACs: two devices hold the address, and the packets go to whichever answered last."""
    if c.hops.reachable or c.flow is None:
        return None
    wanted = {c.flow.src} | {a for a in (c.next_hops or {}).values() if a}
    for s in c.sightings:
        for address, macs in s.answered_twice:
            if address not in wanted:
                continue
            said = (f"ARP for {address} on {s.name} ({s.netns}) was answered by "
                    f"{' and '.join(macs)}: two devices hold {address}, and packets for it go "
                    f"to whichever answered last")
            if any(f.id == "duplicate-address" for f in c.findings):
                v = _explained(c, "duplicate-address")
                return replace(v, explanation=f"{v.explanation}; {said}")
            return Verdict(False, c.hops.stopped_at, c.hops.direction, "duplicate-address",
                           c.kernel_drop[0], c.kernel_drop[1], evidence_used=c.evidence_used,
                           explanation=f"the {c.hops.direction} was last seen at "
                                       f"{c.hops.stopped_at or 'the container'}; {said}")
    return None


# Findings that show the route of a loop the captures saw.
LOOP_CAUSES = ("route-back-out",)


def _wiring_fault_where_it_stopped(c: Case) -> Optional[str]:
    """A fault of the wiring that blocks here is the cause, whatever the kernel says."""
    first = c.blocking_here[0] if c.blocking_here else None
    return first.id if first is not None and first.structural else None


def _finding_the_kernel_confirms(c: Case) -> Optional[str]:
    """Of the findings that block here, the first the kernel's drop reason agrees with (or,
    when none agrees, the first of them)."""
    if c.blocking_here and c.by_reason:
        agreeing = [f for f in c.blocking_here if f.id in c.by_reason]
        return (agreeing or c.blocking_here)[0].id
    return None


def _finding_where_it_stopped(c: Case) -> Optional[str]:
    return c.blocking_here[0].id if c.blocking_here else None


def _sent_elsewhere(c: Case) -> Optional[str]:
    """Nothing else stops it where it stopped, and there the host sent it elsewhere: back
    into the network it came from, to an address netdoctor could not judge, or (its NAT)
    to another destination: that is where it went, and the route or rule that sent it is
    the cause (for a route, unless nothing answered the host's ARP for that address: then
    the rule below names the silent next hop, which says more)."""
    if c.unanswered_arp is not None and not any(
            f.id == "destination-redirected" and c.for_probe(f) for f in c.findings):
        return None
    for f in c.findings:
        if f.id in SENT_ELSEWHERE and c.hops.direction == "request" and c.for_probe(f) \
                and c.hops.stopped_at in (f.evidence or {}).get("stops_at", ()):
            return f.id
    return None


# Findings (of any severity) that say where the host sent the request instead.
SENT_ELSEWHERE = ("route-back-out", "destination-redirected")


def _wiring_fault_on_the_path(c: Case) -> Optional[str]:
    """No finding blocks where it stopped, but the wiring is broken earlier on the path: that
    is the root cause, and what the evidence shows further on (a lost reply, a neighbour
    nobody answers, a drop) is its symptom."""
    wiring = sorted((f for f in c.errors if f.structural and f.blocks_at),
                    key=lambda f: f.precedence)
    return wiring[0].id if wiring else None


def _fault_at_the_far_end(c: Case) -> Optional[str]:
    """Nothing on the source's side explains it, and the destination container's own checks
    found an error: a fault at the far end (its interface down, its veth detached, its own
    firewall) is the cause."""
    far = sorted((f for f in c.errors if f.side == "destination"),
                 key=lambda f: (not f.structural, f.precedence))
    return far[0].id if far else None


def _kernel_drop_reason(c: Case) -> Optional[str]:
    """The cause the kernel's drop reason names: the one cause that gives it; a rule's drop
    (netfilter says so, where no check could read the rule: ebtables, an expression
    netdoctor does not model); else, of the several causes that give it, the one a check
    found. Naming the first of them unfound is a guess: OTHERHOST is also how a bridge's
    flooded copies of a frame for a MAC it does not know are dropped."""
    if len(c.by_reason) == 1 or (c.by_reason and c.by_reason[0] in RULE_CAUSES):
        return c.by_reason[0]
    found = {f.id for f in c.findings}
    return next((cause for cause in c.by_reason if cause in found), None)


def _dropping_rule_counted(c: Case) -> Optional[str]:
    """A dropping rule's counter moved while the probe crossed the host, or nftables' own
    trace saw one of the host's rules drop it."""
    traced = first_drop(c.traced, c.hops.direction, ("host",))
    if (c.rule_hits or traced) and c.hops.stopped_at in ("bridge", "uplink"):
        return "forward-dropped"
    return None


def _next_hop_never_answered(c: Case) -> Optional[str]:
    """The hop the request should leave by asked ARP for its next hop, and nothing answered:
    the request waits in the neighbour queue and is never seen there."""
    return "neighbour-failed" if c.unanswered_arp is not None else None


def _left_untranslated(c: Case) -> Optional[str]:
    """The container's own private source address was seen leaving the uplink toward a
    public destination. (Toward a private one, routing it untranslated is a design: flannel
    host-gw, Calico without encapsulation, a VPN.)"""
    if not c.stopped("uplink") or c.flow is None or is_unrouted(c.flow.dst):
        return None
    src = _left_untranslated_from(c)
    return "nat-missing" if src and is_unrouted(src) else None


def _translated_destination(c: Case, seen: Optional[str]) -> Optional[str]:
    """The destination the request left with (seen: "src -> dst" on the uplink), when NAT
    on the way changed it from the probe's."""
    dst = endpoints(seen)[1]
    return dst if dst and c.flow is not None and dst != c.flow.dst else None


def _left_untranslated_from(c: Case) -> str:
    """The container's own address, when the request left the uplink from it (no NAT)."""
    up = next((s for s in c.sightings if s.role == "uplink"), None)
    src = up.endpoints()[0] if up else ""
    flow_src = c.flow.src if c.flow is not None else ""
    return src if src and src == flow_src else ""


def _upstream_asks_for_the_container(c: Case) -> Optional[str]:
    """It left the uplink from the container's own routable address, and the upstream asked
    for that address there (ARP, neighbour solicitation) with nobody answering: the upstream
    treats the container's network as on the link instead of routing it to this host."""
    if not c.stopped("uplink"):
        return None
    src = _left_untranslated_from(c)
    up = next((s for s in c.sightings if s.role == "uplink"), None)
    return "no-route-back" if src and up is not None and src in up.arp_unanswered else None


def _left_and_nothing_came_back(c: Case) -> Optional[str]:
    """It left the machine (by the uplink, or encapsulated by a tunnel's underlay: the far
    host, unobserved, is where to look) and nothing came back."""
    return "upstream-no-reply" if c.stopped("uplink") or c.stopped("underlay") else None


# What to look at on the far host, by the last of its hops that saw the probe.
FAR_HINTS = {
    "far-underlay": "it arrived encapsulated and the far VXLAN device never received it: is "
                    "that device up, on the same UDP port and VNI, and does the underlay's "
                    "firewall let the port in?",
    "far-uplink": "it arrived on the far host and was not routed on: the far host's route to "
                  "the destination, its IP forwarding, its FORWARD rules and rp_filter",
    "far-tunnel": "it was decapsulated and not routed on: the far host's route to the "
                  "destination, its IP forwarding and its FORWARD rules",
    "far-bridge": "the far bridge did not pass it to the destination's port: that port (the "
                  "destination's veth) down or detached, or the bridge's forwarding table",
    "far-veth": "the destination's own interface did not receive it: it is down",
}


def _lost_on_the_far_host(c: Case) -> Optional[str]:
    """The far host was observed (--peer) and the request was last seen on one of its hops
    short of the destination: the fault is there, and the hop says where to look."""
    if c.hops.direction == "request" and c.hops.stopped_at in FAR_HINTS:
        return "lost-on-peer"
    return None


def _reached_and_not_answered(c: Case) -> Optional[str]:
    """The destination's own interface received the request and sent nothing back: it
    ignored or dropped it itself (its own firewall, nothing listening for UDP, a service
    that does not answer)."""
    return "destination-no-reply" if c.stopped("destination") else None


def _kernel_went_elsewhere(c: Case) -> Optional[str]:
    """Nothing else explains the stop, and the kernel's own routing decision sent the probe
    another way than the facts say (policy routing by mark, a route that changed): that is
    the lead to follow."""
    return "path-diverged" if c.divergences else None


def _finding_that_blocks_anywhere(c: Case) -> Optional[str]:
    blocking = sorted((f for f in c.errors if f.blocks_at and c.for_probe(f)),
                      key=lambda f: f.precedence)
    return blocking[0].id if blocking else None


def _nothing_explains_it(c: Case) -> Optional[str]:
    return "unknown"


# (what the rule says, the rule): verdict rules return a whole Verdict, cause rules a cause.
RULES: list = [
    ("the name did not resolve: the container cannot reach its resolver", _resolver_cut_off),
    ("the name did not resolve, but the nameserver answers", _dns_answered_without_address),
    ("small packets pass, full-size ones vanish", _path_mtu_black_hole),
    ("the container answered the probe itself", _answered_inside),
    ("the probe was answered", _answered),
    ("the name did not resolve: the path to the nameserver says how", _name_did_not_resolve),
    ("a tc filter or eBPF program dropped it, the kernel says", _dropped_by_a_program),
    ("the request came back round: a routing loop", _going_round),
    ("two MACs answered ARP for one address", _answered_by_two),
    ("a wiring fault blocks where it stopped", _wiring_fault_where_it_stopped),
    ("a finding there agrees with the kernel's drop reason", _finding_the_kernel_confirms),
    ("a finding blocks where it stopped", _finding_where_it_stopped),
    ("the host sent it elsewhere: back into its network, or by NAT", _sent_elsewhere),
    ("the wiring is broken earlier on the path", _wiring_fault_on_the_path),
    ("the destination's own checks found a fault", _fault_at_the_far_end),
    ("the far host received it and did not pass it on", _lost_on_the_far_host),
    ("the kernel's drop reason", _kernel_drop_reason),
    ("a dropping rule's counter moved", _dropping_rule_counted),
    ("the next hop never answered ARP", _next_hop_never_answered),
    ("a private source left the uplink untranslated", _left_untranslated),
    ("the upstream asks for the container's own address", _upstream_asks_for_the_container),
    ("it left the uplink and nothing came back", _left_and_nothing_came_back),
    ("the destination received it and did not answer", _reached_and_not_answered),
    ("the kernel routed it elsewhere than the facts say", _kernel_went_elsewhere),
    ("a finding blocks somewhere on the path", _finding_that_blocks_anywhere),
    ("nothing explains it", _nothing_explains_it),
]


def still_standing(findings: list, next_hops: Optional[dict], reachable: bool) -> list:
    """The findings an answered probe does not contradict. The facts were read before the
    probe: a next hop whose neighbour entry was unresolved then (INCOMPLETE, FAILED) was
    resolved by the probe when the probe went through it and was answered. The probe is sent
    with the container's own default TTL: answered, that TTL was enough."""
    if not reachable:
        return list(findings)
    through = {a for a in (next_hops or {}).values() if a}
    return [f for f in findings if not (f.id == "neighbour-failed"
                                        and (f.vars or {}).get("next_hop") in through)
            and f.id != "ttl-too-low"]


def confirmed_by_answer(findings: list, icmp_errors, sightings=()) -> list:
    """Findings that foretold what the probe met, made errors: a TTL that a router netdoctor
    cannot see was foretold to end, and that router said it did; a destination translated
    to an address that, asked for by ARP during the probe, never answered (the deletion of
    the translating rule becomes its fix)."""
    said = set(icmp_errors or ())
    silent = {a for s in sightings for a in s.arp_unanswered}
    out = []
    for f in findings:
        ev = f.evidence or {}
        if f.severity == "error":
            out.append(f)
        elif f.id == "ttl-too-low" and f"time exceeded from {ev.get('expires_at')}" in said:
            out.append(replace(f, severity="error"))
        elif f.id == "destination-redirected" and ev.get("address") in silent \
                and (f.vars or {}).get("deletion"):
            out.append(replace(
                f, severity="error", fix=f.vars["deletion"], verify="",
                message=f"{f.message}; nothing answered ARP for {ev['address']} during the "
                        f"probe"))
        else:
            out.append(f)
    return out


def confirmed_by_counters(findings: list, hits: list) -> list:
    """A rule forward-dropped could not evaluate (its warning says it may drop them, verify
    only) whose packet counter moved during the probe did drop it: an error, and deleting
    the rule is the fix. The requests' warning first (a dropped request has no reply)."""
    moved = {(h.get("where"), h.get("text")) for h in hits or () if not h.get("policy")}
    if not moved:
        return list(findings)
    order = sorted(range(len(findings)), key=lambda i: (
        (findings[i].evidence or {}).get("direction") != "request", i))
    out, done = list(findings), False
    for i in order:
        f = findings[i]
        ev = f.evidence or {}
        if done or f.id != "forward-dropped" or f.severity != "warning" \
                or (ev.get("where"), ev.get("rule")) not in moved \
                or not (f.vars or {}).get("deletion"):
            continue
        out[i] = replace(f, severity="error", fix=f.vars["deletion"], verify="",
                         message=f"{f.message}; its packet counter moved during the probe: it "
                                 f"dropped them")
        done = True
    return out


def decide(case: Case) -> Verdict:
    for _, rule in RULES:
        decided = rule(case)
        if isinstance(decided, Verdict):
            return decided
        if decided is not None:
            return _explained(case, decided)
    raise AssertionError("the last rule always decides")  # pragma: no cover


def _explained(c: Case, cause: str) -> Verdict:
    hv = c.hops
    reason, location = c.kernel_drop
    explanation = (f"the {hv.direction} was last seen at {hv.stopped_at}"
                   if hv.stopped_at else "the request never left the container")
    if cause == "neighbour-failed" and c.unanswered_arp is not None:
        hop, address = c.unanswered_arp
        asked = "neighbour discovery" if ":" in address else "ARP"
        explanation += (f"; on {hop.name} ({hop.role}) {asked} asked for {address} and "
                        f"nothing answered")
    rule = None  # a counter that moved is evidence only when a rule is the cause
    traced = first_drop(c.traced, hv.direction,
                        ("container",) if cause == "container-output-dropped" else
                        ("destination",) if cause == "container-input-dropped" else ("host",))
    if cause in RULE_CAUSES + ("container-input-dropped",) and traced is not None:
        # nftables named the rule that dropped this very packet: better than any counter.
        rule = f"{traced['where']}: {traced['text']}"
    elif cause == "container-output-dropped":
        # The moved counters are the host's; the container's rule is the finding's.
        rule = next((f.vars.get("rule") for f in c.errors if f.id == cause), None)
    elif cause in RULE_CAUSES and c.rule_hits:
        rule = c.rule_hits[0]["where"] + ": " + c.rule_hits[0]["text"]
    elif cause in RULE_CAUSES and reason == "NETFILTER_DROP":
        # No counter to move (an nft rule without one) and no nftables trace: the rule the
        # finding's evaluation found dropping this very direction, the kernel agreeing.
        rule = next((f.vars.get("rule") for f in c.errors if f.id == cause
                     and (f.evidence or {}).get("direction") == hv.direction), None)
    if cause == "upstream-no-reply" and hv.stopped_at == "underlay":
        explanation += ("; it left encapsulated toward the remote VTEP, and the far host was "
                        "not observed: look there next (its UDP port for VXLAN, its route "
                        "back, the destination itself)")
    if cause == "upstream-no-reply" and hv.stopped_at == "uplink" and _left_untranslated_from(c):
        src = _left_untranslated_from(c)
        explanation += (f"; it left from the container's own address {src}, untranslated: "
                        f"a routed (non-NAT) container network needs the upstream to route it "
                        f"back to this host, and netdoctor cannot see the upstream (or the "
                        f"destination did not answer)")
    if cause == "upstream-no-reply" and hv.stopped_at == "uplink" \
            and not _left_untranslated_from(c):
        seen = next((s.addresses_seen.get("request") for s in c.sightings
                     if s.role == "uplink" and s.request_seen), None)
        via = (c.next_hops or {}).get("uplink")
        explanation += ((f" (as {seen})" if seen else "") + (f", sent to the next hop {via}"
                        if via else "") + ", and no answer came back: the loss is beyond this "
                        "host (the next hop, the network past it, the destination), which "
                        "netdoctor cannot see; ask from there next (a capture on the next hop, "
                        "its route back, the destination's firewall)")
        moved = _translated_destination(c, seen)
        if moved:
            explanation += (f"; but on this host its destination was translated from "
                            f"{c.flow.dst} to {moved} (a DNAT rule of the host's nat "
                            f"PREROUTING), so it was sent to {moved}, not to {c.flow.dst}")
    if cause == "lost-on-peer":
        explanation += f" on the far host; {FAR_HINTS[hv.stopped_at]}"
    far = next((f for f in c.errors if f.id == cause and f.side == "destination"), None)
    if far is not None and (hv.stopped_at or "").startswith("far-"):
        explanation += f" on the far host, whose own checks found it ({far.subject})"
    if cause == "no-route-back":
        src = _left_untranslated_from(c)
        explanation += (f"; it left from the container's own address {src}, untranslated, "
                        f"and the upstream asked for {src} on the uplink (ARP / neighbour "
                        f"solicitation) without an answer: it treats the container's network "
                        f"as on its link instead of routing it to this host")
    if cause == "unknown":
        explanation += _unexplained(c, reason, location)
    if c.divergences:
        explanation += "; " + c.divergences[0]
    return Verdict(False, hv.stopped_at, hv.direction, cause, reason, location, rule,
                   c.evidence_used, explanation)


# Where to look next when nothing explains a stop: by its direction and the hop it was
# last seen at.
NEXT_LOOKS = {
    ("request", None): "the container's own routes and rules (ip route get, ip rule, "
                       "iptables -S in it)",
    ("request", "container"): "the container's own routes, rules and neighbour table",
    ("request", "host-veth"): "the veth's master and state, and the bridge's ports "
                              "(bridge -d link)",
    ("request", "bridge"): "the host's routing decision for it (ip route get ... iif, ip "
                           "rule), its rules (nft list ruleset, iptables-save) and tc filters",
    ("request", "uplink"): "the next hop and the network beyond the uplink",
    ("request", "tunnel"): "the tunnel's forwarding table and the route to the remote VTEP",
    ("request", "underlay"): "the far host",
    ("reply", "uplink"): "the host's way back for the replies (ip route get CONTAINER from "
                         "DESTINATION iif UPLINK, ip rule), its rules and conntrack",
    ("reply", "bridge"): "the bridge's way to the container (bridge fdb, bridge -d link) and "
                         "the host's neighbour entry for it",
    ("reply", "host-veth"): "the container's interface and its own rules",
    ("reply", "container"): "the container's own rules (iptables -S in it) and its "
                            "neighbour entries",
}


def _time_exceeded(errors) -> list:
    """The senders of 'time exceeded' among a hop's ICMP errors ("ICMP type N from ADDR"):
    type 11 for IPv4, 3 for ICMPv6."""
    out = []
    for e in errors:
        head, _, src = e.rpartition(" from ")
        if head == ("ICMP type 3" if ":" in src else "ICMP type 11"):
            out.append(src)
    return out


def _unexplained(c: Case, reason: Optional[str], location: Optional[str]) -> str:
    """What netdoctor does know when no rule names a cause: it says so, with the kernel's
    own word where it has one, and where to look next, instead of guessing."""
    said = "; no check found a fault that stops packets there"
    if reason:
        said += (f", and the kernel dropped it with reason {reason}"
                 + (f" (at {location})" if location else "")
                 + (", which more than one fault gives" if len(c.by_reason) > 1 else ""))
    said += ": netdoctor cannot name the cause"
    expired = sorted({src for s in c.sightings for src in _time_exceeded(s.icmp_errors)})
    if expired:
        # The router's own word: the TTL ran out there. Nothing netdoctor read set it low.
        said += (f"; {', '.join(expired)} answered 'time exceeded': the packet's TTL (hop "
                 f"limit) ran out there, which a routing loop does (it passes the packet "
                 f"round until it does), or a rule that lowers it (nft `ip ttl set`, "
                 f"iptables `-j TTL`, ip6tables `-j HL`); look next at `ip route get` on "
                 f"each router between, and for such rules (nft list ruleset, iptables-save "
                 f"-t mangle)")
        return said
    look = NEXT_LOOKS.get((c.hops.direction, c.hops.stopped_at))
    if look:
        said += f"; look next at {look}"
    return said

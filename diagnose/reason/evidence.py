"""What the probe left behind, read hop by hop: pure, no I/O.

sight() turns each hop's captured frames into a HopSighting (request and reply seen, the
addresses they carried, ARP asked and answered, ICMP errors); localize() says where the
probe stopped: the furthest hop that saw the request; if a reply was seen somewhere, the
hop nearest the container that saw it. probe_drops() picks the probe's own skbs out of the
kernel's drop events.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Optional

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
    # What a capture on this hop can see of the probe: "all", or for a bridge whose two ends
    # are both its ports, "broadcasts and its own traffic" (bridged unicast passes it by).
    observes: str = "all"
    # The TTLs (hop limits) the request arrived here with, highest first: more than one, and
    # it came back after routers had passed it on (a routing loop).
    request_ttls: tuple = ()
    # Addresses ARP was answered for here by more than one MAC: ((address, (mac, ...)), ...)
    answered_twice: tuple = ()

    @property
    def came_back(self) -> bool:
        return len(self.request_ttls) > 1

    def endpoints(self, direction: str = "request") -> tuple:
        """(source, destination) the hop saw the first packet of direction with, as the
        packet carried them (for a tunnelled one, the inner packet's); ("", "") for none."""
        return endpoints(self.addresses_seen.get(direction))

    @property
    def blind(self) -> bool:
        """The hop cannot see the probe's unicast frames: its silence says nothing."""
        return self.observes != "all"

    def to_dict(self, t0: Optional[int]) -> dict:
        d = asdict(self)
        d.pop("first_seen_ns")
        d["icmp_errors"] = list(self.icmp_errors)
        d["request_ttls"] = list(self.request_ttls)
        d["answered_twice"] = {a: list(macs) for a, macs in self.answered_twice}
        d["first_seen_us"] = (None if self.first_seen_ns is None or t0 is None
                              else round((self.first_seen_ns - t0) / 1000))
        return d


BRIDGED_PAST = "broadcasts and its own traffic (bridged unicast passes it by)"
NOT_DECODED = "nothing netdoctor decodes (a tunnel device without an Ethernet header)"


def endpoints(seen: Optional[str]) -> tuple:
    """(source, destination) of an addresses_seen text, "src -> dst" (and " in VXLAN ..."
    after it for a tunnelled packet, which sight() writes); ("", "") for none."""
    src, arrow, dst = (seen or "").split(" in VXLAN ")[0].partition(" -> ")
    return (src.strip(), dst.strip()) if arrow else ("", "")


def sight(role: str, name: str, netns: str, frames: list, flow: Flow,
          capture_error: Optional[str] = None,
          own_addresses: Optional[tuple] = None, observes: str = "all") -> HopSighting:
    """What one hop's frames show. own_addresses, for a bridge device: the bridge sees the
    broadcast questions of every port but only the answers sent to itself (unicast between
    two ports is bridged past it), so only its own questions can go unanswered there."""
    req = rep = arp_req = arp_rep = 0
    first = None
    seen: dict = {}
    errors = []
    asked, answered, ttls, answerers = [], set(), set(), {}
    for f in frames:
        kind = classify(f, flow)
        if kind is None:
            continue
        if kind == "arp":
            if f.arp_op == 1:
                arp_req += 1
                # From no address (0.0.0.0, ::): duplicate address detection, which expects
                # no answer when the address is free; no neighbour is asked for.
                probing = f.src in ("0.0.0.0", "::")
                if not probing and (own_addresses is None or f.src in own_addresses):
                    asked.append(f.dst)
            elif f.arp_op == 2:
                arp_rep += 1
                if getattr(f, "mac", None):
                    answerers.setdefault(f.src, set()).add(f.mac)
                answered.add(f.src)
            continue
        if first is None or (f.ts_ns and f.ts_ns < first):
            first = f.ts_ns
        wrapped = getattr(f, "outer", None)
        inside = (f" in VXLAN {wrapped[0]} -> {wrapped[1]} vni {wrapped[2]}" if wrapped
                  else "")
        if kind == "request":
            req += 1
            seen.setdefault("request", f"{f.src} -> {f.dst}{inside}")
            if not f.outgoing and getattr(f, "ttl", None) is not None and not wrapped:
                ttls.add(f.ttl)
        elif kind == "reply":
            rep += 1
            seen.setdefault("reply", f"{f.src} -> {f.dst}{inside}")
        else:
            errors.append(f"ICMP type {f.icmp_type} from {f.src}")
    return HopSighting(role, name, netns, req, rep, first, seen, arp_req, arp_rep,
                       tuple(dict.fromkeys(errors)), capture_error,
                       tuple(a for a in dict.fromkeys(asked) if a and a not in answered),
                       observes, tuple(sorted(ttls, reverse=True)),
                       tuple((a, tuple(sorted(macs))) for a, macs in answerers.items()
                             if len(macs) > 1))


def asking_addresses(hops: list, i: int) -> Optional[tuple]:
    """Whose ARP questions can go unanswered on hops[i]'s link, as far as its capture can
    tell (sight's own_addresses); None: anyone's. A bridge device sees the answers to its
    own questions only. The container's veth into a bridge carries the questions the bridge
    floods to every port, whose answers go from another port to the asker, past this link:
    there only the container's own count. (A routed veth is a link of two: the host's
    questions are answered on it.)"""
    hop = hops[i]
    if hop.get("kind") == "bridge":
        return tuple(a.split("/")[0] for a in hop.get("addresses") or ())
    if hop["role"] in ("container", "host-veth"):
        veth = next((h for h in hops if h["role"] == "host-veth"), None)
        container = next((h for h in hops if h["role"] == "container"), None)
        if veth is not None and veth.get("master") and container is not None:
            return tuple(a.split("/")[0] for a in container.get("addresses") or ())
    return None


@dataclass(frozen=True)
class HopVerdict:
    reachable: bool
    stopped_at: Optional[str]
    direction: Optional[str]


def port_closed_at_destination(sightings: list, probe_errors: list, dst: str) -> bool:
    """A UDP probe's "port unreachable" came from the destination itself: the error, sent
    from the destination's address, was seen arriving where the path leaves this machine
    (or on the destination container's own interface). The destination was reached; it
    said nothing listens there, as a TCP RST does. (A REJECT on this host fakes the same
    source, but is never seen on the uplink.)"""
    if "port unreachable" not in probe_errors:
        return False
    outer = [s for s in sightings if s.role in ("uplink", "underlay", "destination")]
    return any(e.endswith(f" from {dst}") for s in outer for e in s.icmp_errors)


def refused_by(sightings: list) -> Optional[str]:
    """Who refused a TCP probe the socket calls refused: "rst" where the container's own
    interface saw the answer in the probe's flow, else the address the ICMP error it saw
    came from (the destination itself, or a router or this host on the way); None where
    the captures saw neither."""
    container = next((s for s in sightings if s.role == "container"), None)
    if container is None:
        return None
    if container.reply_seen:
        return "rst"
    for e in container.icmp_errors:
        if " from " in e:
            return e.rsplit(" from ", 1)[1]
    return None


def answered_elsewhere(sightings: list, destination: str, host_addresses) -> bool:
    """The request was seen on its way to another address than the probe's, none of the
    host's: a DNAT of the host sent it elsewhere (a Service's backend on the same bridge),
    and an answer that never crossed the uplink came from there, not from the host."""
    for s in sightings:
        dst = s.endpoints()[1]
        if dst and dst != destination and dst not in host_addresses:
            return True
    return False


def answered_by_host(sightings: list, replied: bool, elsewhere: bool = False) -> bool:
    """The container got an answer that never crossed the uplink: the host itself made it
    (an iptables REJECT's RST or ICMP error), not the destination; unless the host's DNAT
    sent the request elsewhere (answered_elsewhere), whence the answer came."""
    if elsewhere:
        return False
    up = next((s for s in sightings if s.role == "uplink"), None)
    inner_reply = any(s.reply_seen for s in sightings if s.role != "uplink")
    return replied and up is not None and up.capture_error is None and not up.reply_seen \
        and inner_reply


def localize(sightings: list, replied: bool, elsewhere: bool = False) -> HopVerdict:
    """sightings in path order (container first). A hop that cannot see the probe (a bridge
    between two of its ports) is no evidence by its silence; a packet lost between the hops
    on either side of it was lost in it, and it is named as the hop it stopped at. elsewhere:
    see answered_elsewhere."""
    if replied and not answered_by_host(sightings, replied, elsewhere):
        return HopVerdict(True, None, None)
    seeing = [i for i, s in enumerate(sightings) if not s.blind]

    def last_with(attr):
        found = [i for i in seeing if getattr(sightings[i], attr)]
        return max(found) if found else None

    def first_with(attr):
        found = [i for i in seeing if getattr(sightings[i], attr)]
        return min(found) if found else None

    def forward(i):  # the request got past hop i: a blind hop right after it swallowed it
        if i + 1 < len(sightings) and sightings[i + 1].blind:
            return sightings[i + 1].role
        return sightings[i].role

    def backward(i):  # the reply got as far as hop i toward the container
        if i > 0 and sightings[i - 1].blind:
            return sightings[i - 1].role
        return sightings[i].role

    if replied:  # the host answered in the destination's place: where did the request stop?
        i = last_with("request_seen")
        return HopVerdict(False, None if i is None else forward(i), "request")
    i = first_with("reply_seen")
    if i is not None:
        return HopVerdict(False, backward(i), "reply")
    i = last_with("request_seen")
    if i is not None:
        return HopVerdict(False, forward(i), "request")
    return HopVerdict(False, None, "request")


# Hops whose kernel sends the request on to a next hop of its own choosing (a path that ends
# on one of them ends where the host routed it back out, into a network it does not follow).
# (An uplink's own questions, after the request left by it, are the upstream's business.)
FORWARDING_ROLES = ("host-veth", "bridge", "out-bridge")


def unanswered_next_hop(sightings: list, hv: HopVerdict,
                        next_hops: Optional[dict] = None) -> Optional[tuple]:
    """(hop, address) when the hop the request should have left by next asked ARP for its
    next hop and got no answer: the request waits in the kernel's neighbour queue, and is
    never seen there. next_hops maps a role to the address its kernel sends to (a gateway,
    or the destination on the link); without it, any unanswered address counts. A reply
    last seen on the far host waits the same way on the far hop it leaves by next (its
    captures come in the request's order: the one before)."""
    if hv.reachable:
        return None
    if hv.direction == "reply" and (hv.stopped_at or "").startswith("far-"):
        roles = [s.role for s in sightings]
        i = roles.index(hv.stopped_at) - 1 if hv.stopped_at in roles else -1
        if i < 0 or not sightings[i].role.startswith("far-"):
            return None
        hop = sightings[i]
        return (hop, hop.arp_unanswered[0]) if hop.arp_unanswered else None
    if hv.direction != "request":
        return None
    roles = [s.role for s in sightings]
    i = roles.index(hv.stopped_at) + 1 if hv.stopped_at in roles else 0
    if i >= len(sightings) and sightings and sightings[-1].role in FORWARDING_ROLES:
        i -= 1  # the path ends on the hop that routes it on: its own question counts
    if i >= len(sightings):
        return None
    hop = sightings[i]
    want = (next_hops or {}).get(hop.role)
    for address in hop.arp_unanswered:
        if want is None or address == want:
            return hop, address
    return None


# skb->protocol of a packet the probe can be: IPv4, IPv6 (an IPv6 probe in an IPv4 underlay
# is IPv4 there). An ARP skb at a probe skb's address took the memory after the probe's was
# freed by a path no tracepoint reports.
IP_PROTOCOLS = (None, 0x0800, 0x86DD)


def probe_frees(events: list, lengths: tuple):
    """(kfree event, devices) for each free with a reason of an skb last seen on a device
    with one of the probe's lengths; devices are the ones it was seen on, last one last. Any
    free or consume ends that skb: its memory, reused for the next packet (a far host's
    neighbour solicitation dropped on its VXLAN device), counts again only after another
    device event of the probe's lengths."""
    seen_on = {}
    for e in events:
        if e.event == "consume_skb":
            seen_on.pop(e.skbaddr, None)
            continue
        if e.event != "kfree_skb":
            if e.length in lengths:
                seen_on.setdefault(e.skbaddr, []).append(e.dev)
            continue
        devices = seen_on.pop(e.skbaddr, None)
        if devices and e.reason and e.reason != "NOT_SPECIFIED" \
                and e.protocol in IP_PROTOCOLS:
            yield e, devices


def _last_device(devices: list, path: Optional[set], foreign: frozenset = frozenset(),
                 reason: Optional[str] = None) -> str:
    """Where a freed skb was last: its last device. tracefs names devices, not namespaces:
    when the skb reached a device the path shares a name with ("eth0") from another port of
    the path's own bridge (foreign: another container's veth), it died in that container, not
    on the path. (A flooded copy dropped as OTHERHOST stays: a frame for a MAC nobody on the
    path owns is the evidence of that fault wherever it dies.)"""
    last = devices[-1]
    if path is not None and last in path and len(devices) > 1 \
            and devices[-2] in foreign and reason != "OTHERHOST":
        return f"{last} (after {devices[-2]}, off the path)"
    return last


def all_probes_dropped(events: list, lengths: tuple, devices: set, foreign: frozenset,
                       sent: int) -> bool:
    """Whether the kernel has freed, with a reason, as many probe packets on the path as were
    sent: then no answer can come. A copy freed on a namesake of a path device after one of
    the bridge's other ports is another container's, whatever the reason (a flooded copy:
    the path's own copy may still arrive), though as evidence an OTHERHOST there still
    counts (see _last_device)."""
    if sent <= 0:
        return False
    ours = [e for e, seen in probe_frees(events, lengths)
            if seen[-1] in devices and not (len(seen) > 1 and seen[-2] in foreign)]
    return len(ours) >= sent


def probe_drops(events: list, lengths: tuple, path: Optional[set] = None,
                foreign: frozenset = frozenset()) -> list:
    """(reason, location, last device) of every skb that carried one of the probe's lengths
    on a device and was then freed with a reason, first ones first. With the path's device
    names and the other ports of its bridge (foreign), a device off the path that shares a
    name with one on it is told apart."""
    out = []
    for e, seen in probe_frees(events, lengths):
        entry = (e.reason, e.location, _last_device(seen, path, foreign, e.reason))
        if entry not in out:
            out.append(entry)
    return out

"""inbound(target, PORT) -> InboundReport: why can't anyone reach this container's published
port?

  resolve   PORT is the published host port or the container port; the runtime's port
            bindings, or the DNAT rules themselves, map one to the other
  plan      the snapshot (with the container's listening sockets), the checks, the static
            walk of the inbound path (reason/inbound.py)
  observe   one TCP SYN from the host's own namespace to the host's address and port, with
            captures on the bridge, the host veth and the container's interface, tracefs and
            the rule counters: it exercises nat OUTPUT's DNAT, the bridge, the veth and the
            listener, never PREROUTING, FORWARD or the uplink (the static walk speaks for those)
  decide    the verdict (reason/inbound.py decide)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Optional

from netdoctor.capture import bpf, probe as P
from netdoctor.capture.sockets import HopCapture, capture_around, write_pcaps
from netdoctor.capture.tracefs import KernelTrace
from netdoctor.checks import run_checks
from netdoctor.checks.context import contexts, ns_label
from ..errors import UsageError
from ..host import gather, netns
from ..reason import evidence as E
from ..reason import inbound as R
from ..reason.rules import rule_hits
from ..targets.records import PortBinding
from . import snapshot
from .trace import SETTLE, probe_lengths

SCHEMA = "netdoctor.inbound/1"
# The hops the host's own probe crosses, in the order it meets them.
PROBE_ROLES = ("bridge", "host-veth", "container")


def parse_port(spec: str) -> tuple:
    """(port, proto) from PORT[/tcp|/udp]; a one-line usage error otherwise."""
    number, _, proto = str(spec).partition("/")
    proto = (proto or "tcp").lower()
    if proto not in ("tcp", "udp"):
        raise UsageError(f"PORT '{spec}': the protocol must be tcp or udp")
    if not (number.isascii() and number.isdigit()) or not 0 < int(number) < 65536:
        raise UsageError(f"PORT '{spec}' must be a port number (1-65535), with /tcp or /udp")
    return int(number), proto


@dataclass
class InboundReport:
    target: dict
    port: dict  # the binding judged: host_port, container_port, proto, host_ip, source
    client: str
    walk: dict
    probe: dict
    hops: list  # HopSighting, in the order the host's probe meets them
    findings: list
    verdict: dict
    untested: list  # the parts of the outside path the probe could not exercise
    evidence: dict
    elapsed_ms: int = 0

    def to_dict(self) -> dict:
        t0 = min((h.first_seen_ns for h in self.hops if h.first_seen_ns), default=None)
        return {"schema": SCHEMA, "direction": "inbound", "target": self.target,
                "port": self.port, "client": self.client, "walk": self.walk,
                "probe": self.probe, "hops": [h.to_dict(t0) for h in self.hops],
                "findings": [f.to_dict() for f in self.findings], "verdict": self.verdict,
                "untested": self.untested, "evidence": self.evidence,
                "elapsed_ms": self.elapsed_ms}


def inbound(target, spec: str, client: Optional[str] = None, timeout: float = 1.0,
            watch: Optional[float] = None, announce=None, progress=None,
            pcap_dir: Optional[str] = None) -> InboundReport:
    """The inbound report; with watch (seconds), from the first real client's connection
    attempt that arrives in that time instead of the host's own probe (announce(text) tells
    the user to connect now; progress(step, done, total) how long is left)."""
    started = time.monotonic()
    port, proto = parse_port(spec)
    client = client or R.DEFAULT_CLIENT
    binding = _binding(target, port, proto, client)
    snap = snapshot.take([replace(target, ports=(binding,))], probe_dns=False, strict=True)
    host = snap.containers[0].path.get("host_netns")
    if host:
        # The host's own connection, or the container's through the host's address, may be
        # served by a userland proxy's socket (docker-proxy) instead of a DNAT: the walk
        # needs the host's listeners. An outside client's too, where no DNAT publishes the
        # port and a docker-proxy for this very container listens.
        binding["host_listeners"] = gather.read_listeners(netns.Netns.from_dict(host))
        if client == R.DEFAULT_CLIENT and any(s.get("port") == binding.get("host_port")
                                              for s in binding["host_listeners"]):
            binding["proxies"] = gather.docker_proxies()  # (a listener to be one of them)
    snap = _mapped_by_dnat(snap, binding, client)
    ctx = next(c for c in contexts(snap) if c.scope == "container")
    if not ctx.bridged:
        raise UsageError(f"{target.label} is not behind a bridge or a routed veth (mode "
                         f"{ctx.path.get('mode')}): its ports are its host's own, or reached "
                         f"without NAT; `netdoctor checks` and `trace` look at it")
    walk = ctx.inbound[0] if ctx.inbound else None
    host = ctx.path.get("host_netns")
    subjects = {ctx.subject, f"host {ns_label(host)}" if host else ""}
    findings = [_as_met_inbound(f, ctx, walk) for f in run_checks(snap)
                if f.subject in subjects]
    findings += _own_firewall(ctx, walk)
    captured: list = []  # every hop's capture, for --pcap-dir
    if watch:
        probe, sightings, ev = _watch(target, ctx, walk, watch, timeout, announce, progress,
                                      captured)
        verdict = R.decide_watched(walk, findings, probe, sightings,
                                   ev.get("kernel_drops") or [], ev.get("rule_hits") or [])
        client = probe.get("client") or client
    else:
        probe, sightings, ev = _observe(target, ctx, walk, timeout, captured)
        verdict = R.decide(walk, findings, probe, sightings, ev.get("kernel_drops") or [])
    if pcap_dir and captured:
        write_pcaps(pcap_dir, captured)
    untested = _untested(walk)
    b = ctx.container.target["ports"][0]
    port_doc = dict(b, container_port=walk.container_port if walk else b["container_port"])
    return InboundReport(ctx.container.target, port_doc, client,
                         walk.to_dict() if walk else {}, probe, sightings, findings, verdict,
                         untested, ev, int((time.monotonic() - started) * 1000))


def _as_met_inbound(f, ctx, walk):
    """A finding as an outside client's request meets it. The route from that client to the
    container's address (reply-path-asymmetric, as outbound checks tell it: the replies to
    the container) is the one the request itself takes once DNATed."""
    query = f.vars.get("reply_query") or ""
    if f.id != "reply-path-asymmetric" or walk is None or walk.client_kind != "outside" \
            or f" from {walk.client} " not in f" {query} " or not f.vars.get("routed"):
        return f
    return replace(f, message=(
        f"{ctx.vars['host_ns']} routes a client's request for {ctx.subject}'s published port "
        f"{walk.host_port}, after the DNAT to {ctx.address} ({query}), {f.vars['routed']}: "
        f"it never reaches the container ({f.vars['because']})"))


def _own_firewall(ctx, walk) -> list:
    """The container's own INPUT (and its eth0's ingress hook) for the outside client's
    request to the container port, as it arrives after the host's DNAT: a drop there stops
    the connection inside the container."""
    from netdoctor.checks import REGISTRY, load_all

    if walk is None or walk.client_kind != "outside" or not walk.container_port:
        return []
    load_all()
    found = REGISTRY["container-input-dropped"]().for_request(ctx, walk.client, walk.proto,
                                                             walk.container_port)
    return [found] if found is not None else []


def _binding(target, port: int, proto: str, client: str = R.DEFAULT_CLIENT) -> dict:
    """The runtime's binding for PORT (as the host port first, else as the container port;
    of the client's address family first), or the port as asked, for the rules to say where
    it goes."""
    v6 = ":" in client
    mine = [b for b in target.ports if b.proto == proto]
    for b in sorted(mine, key=lambda b: (b.host_port != port, (":" in b.host_ip) != v6)):
        if port in (b.host_port, b.container_port):
            return dict(b.to_dict(), client=None)
    return dict(PortBinding(port, None, proto, "", "asked").to_dict(), client=None)


def _mapped_by_dnat(snap, binding: dict, client: str):
    """The snapshot with the binding judged: the client's address set; a port asked for that
    no DNAT publishes on the host, but that a DNAT rule sends the container's way (the user
    named the container port), is taken from that rule."""
    c = snap.containers[0]
    b = dict(binding, client=client)
    if b["source"] == "asked" and snap.host(c.host_inode) is not None:
        ctx = next(x for x in contexts(replace(snap, containers=(replace(
            c, target=dict(c.target, ports=[b])),))) if x.scope == "container")
        if ctx.inbound and not ctx.inbound[0].published:
            host_port = _host_port_for(snap.host(c.host_inode).ruleset, ctx.address,
                                       b["host_port"], b["proto"])
            if host_port is not None:
                b.update(host_port=host_port, container_port=binding["host_port"])
    return replace(snap, containers=(replace(c, target=dict(c.target, ports=[b])),))


def _host_port_for(ruleset, address: Optional[str], container_port: int, proto: str):
    """The host port a DNAT rule publishes address:container_port on, when one does."""
    for chain in ruleset.chains:
        for r in chain.rules:
            if r.verdict != "dnat" or not r.to or not address:
                continue
            to_addr, to_port = R.split_to(r.to)
            if to_addr != address or to_port != container_port:
                continue
            for m in r.matches:
                if m.kind == "dport" and not m.negate and len(m.values) == 1 \
                        and str(m.values[0]).isdigit():
                    if any(x.kind == "proto" and proto in x.values for x in r.matches):
                        return int(m.values[0])
    return None


def _untested(walk) -> list:
    """What the host's own probe did not cross, and what the static walk said of it."""
    if walk is None or walk.client_kind != "outside":
        return []  # the host's or the container's own connection: the probe crossed its way
    said = {s.hook: f"{s.verdict}: {s.said}" for s in walk.steps}
    return [{"part": part, "static": said.get(hook, "not walked")}
            for part, hook in (("raw/mangle PREROUTING", "raw/mangle PREROUTING"),
                               ("nat PREROUTING (the DNAT an outside client meets)",
                                "nat PREROUTING"),
                               ("FORWARD", "FORWARD"),
                               ("the uplink", None))]


# The hops a client's packet meets from outside, in that order.
WATCH_ROLES = ("uplink", "bridge", "host-veth", "container")
SYN, ACK, RST = 0x02, 0x10, 0x04
# A client's SYN carries options of any length: every IPv4/IPv6 TCP header size, as IP
# lengths and as Ethernet frame lengths (what the kernel's device events report).
_WATCH_LENGTHS = tuple(sorted({n for ip in (20, 40) for tcp in range(20, 61, 4)
                               for n in (ip + tcp, ip + tcp + 14)}))


def _first_attempt(caps: list, ports: tuple, proto: str):
    """The first connection attempt to one of ports any hop saw (the outermost hop's copy
    when several saw it): a SYN without ACK, or for UDP a datagram."""
    for c in caps:
        attempts = [f for f in c.frames if f.proto == proto and f.dport in ports and (
            proto == "udp" or (f.tcp_flags or 0) & (SYN | ACK) == SYN)]
        if attempts:
            return min(attempts, key=lambda f: f.ts_ns)
    return None


def _watch(target, ctx, walk, seconds: float, settle: float, announce, progress,
           captured: Optional[list] = None) -> tuple:
    """(probe dict, sightings, evidence dict) of the first real client's connection attempt
    in `seconds`: captures on the uplink, bridge, host veth and container interface, tracefs
    and the rule counters, armed before the user is told to connect."""
    proto = walk.proto if walk is not None else ctx.container.target["ports"][0]["proto"]
    host_port = walk.host_port if walk is not None else None
    inner_port = (walk.container_port if walk is not None else None) or host_port
    host, hops, caps = _hop_captures(target, ctx, WATCH_ROLES)
    if captured is not None:
        captured.extend(caps)
    ports = tuple(p for p in (host_port, inner_port) if p)
    program = bpf.port_filter(proto, ports)
    kt = KernelTrace(_WATCH_LENGTHS)
    before = ctx.host.ruleset
    uplink = next((h["name"] for h in hops if h["role"] == "uplink"), "the uplink")
    where = R.host_port(walk.host_address, host_port) if walk is not None else f"port {ports}"

    def wait():
        (announce or (lambda text: None))(
            f"watching {uplink}, the bridge, the veth and the container for {proto} to "
            f"{where} for {seconds:g} s: connect now from the client (Ctrl-C stops)")
        start = time.monotonic()
        seen_at = None
        while True:
            now = time.monotonic()
            if (seen_at is None and now - start >= seconds) or \
                    (seen_at is not None and now - seen_at >= settle):
                break
            time.sleep(0.05)
            for c in caps:
                c.drain()
            if progress is not None:
                progress("waiting for a connection" if seen_at is None else
                         "following it", min(now - start, seconds), seconds)
            if seen_at is None and _first_attempt(caps, ports, proto) is not None:
                seen_at = time.monotonic()
        return _first_attempt(caps, ports, proto)

    first = capture_around(caps, lambda c: program, kt, wait)
    try:
        hits = rule_hits(before, gather.read_netfilter(host))
    except Exception as e:  # counters are evidence, not a requirement
        hits = [{"where": "counters", "text": f"not read after the watch: {e}"}]
    drops = E.probe_drops(kt.events, _WATCH_LENGTHS, {h["name"] for h in hops})
    ev = {"kernel_drops": [{"reason": r, "location": loc, "last_device": d}
                           for r, loc, d in drops], "rule_hits": hits,
          "tracefs": kt.unavailable or f"{len(kt.events)} kernel events"}
    probe = {"sent": False, "watched": seconds, "ports": list(ports), "proto": proto}
    if first is None:
        probe.update(outcome=None, client=None,
                     detail=f"no connection attempt to {where} within {seconds:g} s")
        return probe, [E.sight(c.role, c.name, c.netns.label, [], E.Flow(proto, "", ""),
                               c.error) for c in caps], ev
    # The client's flow, as the uplink sees it and as the DNAT made it further in.
    outer = E.Flow(proto, first.src, first.dst, sport=first.sport, dport=host_port or first.dport)
    inner = E.Flow(proto, first.src, first.dst, sport=first.sport, dport=inner_port)
    sightings = [E.sight(c.role, c.name, c.netns.label, c.frames,
                         outer if c.role == "uplink" else inner, c.error) for c in caps]
    answers = {c.role: [f for f in c.frames if f.proto == proto and f.dport == first.sport
                        and f.sport in ports] for c in caps}
    left = answers.get("uplink") or []
    flags = (left[0].tcp_flags or 0) if left else None
    outcome = ("refused" if flags is not None and flags & RST else
               "reply" if left else "no answer")
    probe.update(client=first.src, client_port=first.sport,
                 to=R.host_port(first.dst, first.dport), outcome=outcome,
                 answered_by="the container" if answers.get("container") else
                 ("the host" if left else None),
                 detail={"reply": "SYN-ACK sent back to the client" if proto == "tcp"
                         else "answered", "refused": "RST sent back to the client",
                         "no answer": "nothing went back to the client"}[outcome])
    return probe, sightings, ev


def _hop_captures(target, ctx, roles: tuple) -> tuple:
    """(host Netns, the path's hops of roles in that order, a capture per hop, not armed)."""
    host = netns.Netns.from_dict(ctx.path["host_netns"])
    hops = [h for role in roles for h in ctx.path["hops"] if h["role"] == role]
    return host, hops, [HopCapture(h["role"], h["name"], host if h["netns_inode"] == host.inode
                                   else target.netns, h["ifindex"]) for h in hops]


def _observe(target, ctx, walk, timeout: float, captured: Optional[list] = None) -> tuple:
    """(probe dict, sightings, evidence dict): one SYN from the host to its own address."""
    # A walk dropped before its DNAT (raw PREROUTING) still leaves the host's own way open.
    published = walk is not None and (walk.published or walk.dropped is not None
                                      or walk.proxied is not None)
    if not published or not walk.host_address:
        return {"sent": False, "why_not": "nothing to probe: the port is not published"}, [], {}
    host, hops, caps = _hop_captures(target, ctx, PROBE_ROLES)
    if captured is not None:
        captured.extend(caps)
    sport, proto = P.random_port(), walk.proto
    # Past the host, the probe carries the port its DNAT rule writes (which a stale rule may
    # make another than the one the runtime publishes): the hops are told by that one.
    translated = R.split_to(walk.dnat_to)[1] if walk.dnat_to else None
    flow = E.Flow(proto, walk.host_address, walk.host_address, sport=sport,
                  dport=translated or walk.container_port or walk.host_port)
    program = bpf.probe_filter(proto, port=sport)
    # UDP: one small DNS-shaped datagram (a root NS query), harmless to any service.
    lengths = probe_lengths(proto, 0, ".", ":" in walk.host_address)
    kt = KernelTrace(lengths)
    before = ctx.host.ruleset

    # Hairpin: the container's own connection to the host's address, sent from inside it.
    sender = target.netns if walk.client_kind == "self" else host

    def send():
        if proto == "udp":
            result = netns.call_in(sender, P.dns_query, walk.host_address, ".", sport, timeout,
                                   None, walk.host_port)
        else:
            result = netns.call_in(sender, P.tcp_connect, walk.host_address, walk.host_port,
                                   sport, timeout)
        time.sleep(SETTLE)  # the last frames reach the capture sockets
        return result

    result = capture_around(caps, lambda c: program, kt, send)
    sightings = [E.sight(c.role, c.name, c.netns.label, c.frames, flow, c.error) for c in caps]
    drops = E.probe_drops(kt.events, lengths, {h["name"] for h in hops})
    try:
        hits = rule_hits(before, gather.read_netfilter(host))
    except Exception as e:  # counters are evidence, not a requirement
        hits = [{"where": "counters", "text": f"not read after the probe: {e}"}]
    probe = {"sent": True, "from": f"{target.label} (the container itself)"
             if walk.client_kind == "self" else
             f"{ns_label(ctx.path['host_netns'])} (the host itself)",
             "to": R.host_port(walk.host_address, walk.host_port), "source_port": sport,
             "kind": "one SYN" if proto == "tcp" else "one UDP datagram",
             "outcome": result.outcome if result else None,
             "detail": (result.error or result.detail) if result else None}
    ev = {"kernel_drops": [{"reason": r, "location": loc, "last_device": d}
                           for r, loc, d in drops], "rule_hits": hits,
          "tracefs": kt.unavailable or f"{len(kt.events)} kernel events"}
    return probe, sightings, ev

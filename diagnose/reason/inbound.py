"""The inbound path, as the kernel would take it for a client's first packet to a published
port (pure, no I/O): raw and mangle PREROUTING, the nat PREROUTING that publishes the port
(DNAT), the routing decision after it, FORWARD toward the container, and the container's
listening socket.

walk() answers for one published (or asked-for) port; checks/ and `netdoctor inbound` both
read its Walk. Every step names the rule or the fact it rests on.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Optional

from .evidence import HopVerdict, localize
from .rules import Packet, evaluate

# A client somewhere on the internet: an address only a default route covers (the
# benchmarking range, never a real host), from the ports a client's kernel picks.
DEFAULT_CLIENT = "198.18.0.1"
DEFAULT_CLIENT6 = "2001:2::1"  # the IPv6 benchmarking range (RFC 5180)
CLIENT_PORTS = (1024, 65535)


@dataclass
class Step:
    hook: str  # "raw/mangle PREROUTING", "nat PREROUTING", "FORWARD", "listener"
    # accept, drop, reject, untracked, dnat, none, listening, loopback-only, not-listening
    verdict: str
    said: str  # what decided, as a person finds it again

    def to_dict(self) -> dict:
        return {"hook": self.hook, "verdict": self.verdict, "said": self.said}


@dataclass
class Walk:
    host_port: Optional[int]
    container_port: Optional[int]
    proto: str
    host_address: Optional[str]  # the address the client connects to
    client: str
    source: str  # runtime, asked
    dnat_to: Optional[str] = None  # "172.17.0.2:80" as the rule says it
    dnat_rule: Optional[str] = None
    dnat_elsewhere: bool = False  # the DNAT leads to another address than the container's
    dropped: Optional[Step] = None  # the step that drops the first packet
    steps: list = field(default_factory=list)
    listening: Optional[str] = None  # "any", "loopback", "none", None (not read)
    listeners: list = field(default_factory=list)  # the sockets on the container port
    proxied: Optional[str] = None  # the host's socket that serves the host's own connection
    proxy: Optional[str] = None  # the process behind it, where it is known to proxy
    # outside (a client elsewhere), host (this host itself, --from 127.0.0.1) or self (the
    # container reaching its own published port through the host's address: hairpin NAT)
    client_kind: str = "outside"

    @property
    def published(self) -> bool:
        return self.dnat_to is not None

    @property
    def family(self) -> str:
        """The packets' family, as rules name it: ip or ip6."""
        return "ip6" if ":" in self.client else "ip"

    def to_dict(self) -> dict:
        return {"host_port": self.host_port, "container_port": self.container_port,
                "proto": self.proto, "host_address": self.host_address, "client": self.client,
                "source": self.source, "dnat_to": self.dnat_to, "dnat_rule": self.dnat_rule,
                "dnat_elsewhere": self.dnat_elsewhere, "listening": self.listening,
                "proxied": self.proxied, "client_kind": self.client_kind,
                "steps": [s.to_dict() for s in self.steps],
                **({"proxy": self.proxy} if self.proxy else {})}


def host_port(address: Optional[str], port) -> str:
    """address:port, an IPv6 address in brackets as URLs and ss write it."""
    address = address or "?"
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def split_to(to: str) -> tuple:
    """("172.17.0.2", 80) from "172.17.0.2:80", ("172.17.0.2", None), (None, 8080) from ":8080"."""
    if to.startswith("["):  # [v6]:port
        addr, _, rest = to[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif to.count(":") == 1:
        addr, _, port = to.partition(":")
    else:
        addr, port = to, ""
    port = port.split("-")[0]
    return addr or None, int(port) if port.isdigit() else None


def walk(ruleset, binding: dict, container_address: str, uplink: Optional[str],
         uplink_address: Optional[str], ingress: Optional[str],
         listeners: Optional[list], client: str = DEFAULT_CLIENT) -> Walk:
    """The client's first packet to binding's host port, hook by hook, to the listener."""
    proto = binding.get("proto") or "tcp"
    host_ip = binding.get("host_ip") or ""
    # A client on this host itself (--from 127.0.0.1) connects to 127.0.0.1 unless the port
    # is published on one address only.
    local = ipaddress.ip_address(client).is_loopback
    host_address = host_ip if host_ip and not ipaddress.ip_address(host_ip).is_unspecified \
        else client if local else uplink_address
    w = Walk(binding.get("host_port"), binding.get("container_port"), proto, host_address,
             client, binding.get("source") or "runtime",
             client_kind="host" if local else "self" if client == container_address
             else "outside")
    if w.client_kind == "self":
        uplink = ingress  # its connection arrives from its own bridge (or veth)
    if ruleset is not None and host_address and w.host_port:
        if local:
            _output(w, ruleset, container_address)  # no PREROUTING, no FORWARD this way
        else:
            _prerouting(w, ruleset, uplink, container_address)
            if w.published and not w.dropped and not w.dnat_elsewhere:
                _forward(w, ruleset, uplink, ingress, container_address)
        if w.client_kind != "outside" and not w.published and not w.dropped:
            _proxy(w, binding.get("host_listeners") or ())
        elif not w.published and not w.dropped and binding.get("proxies"):
            # An outside client without a DNAT: a userland proxy for this container that
            # listens on the port serves it, past the host's INPUT.
            mine = [p for p in binding["proxies"] if p.get("container_ip") == container_address
                    and p.get("host_port") == w.host_port and p.get("proto") == proto]
            _proxy(w, binding.get("host_listeners") or () if mine else ())
            if w.proxied:
                w.proxy = f"docker-proxy (pid {mine[0]['pid']})"
                _input(w, ruleset, uplink)
    _listener(w, listeners)
    return w


def _output(w: Walk, ruleset, container_address: str) -> None:
    """The host's own connection: nat OUTPUT publishes the port to it."""
    first = Packet(src=w.client, dst=w.host_address, iif=None, oif="lo", proto=w.proto,
                   dport=w.host_port, sport=CLIENT_PORTS, family=w.family)
    _dnat(w, evaluate(ruleset, "output", first, type_="nat"), "nat OUTPUT", container_address)


def _input(w: Walk, ruleset, uplink: Optional[str]) -> None:
    """The outside client's packet to the host's own socket (a proxy's): the host's INPUT."""
    first = Packet(src=w.client, dst=w.host_address, iif=uplink, oif=None, proto=w.proto,
                   dport=w.host_port, sport=CLIENT_PORTS, family=w.family, dst_local=True)
    _filtered(w, ruleset, "input", first)


def _filtered(w: Walk, ruleset, hook: str, packet) -> None:
    """The step of a filter hook the client's packet meets; where it drops, the walk ends."""
    out = evaluate(ruleset, hook, packet)
    step = Step(hook.upper(), out.verdict if out.verdict != "none" else "accept",
                out.describe() if out.verdict != "none" else f"no {hook.upper()} rules")
    w.steps.append(step)
    if out.verdict in ("drop", "reject"):
        w.dropped = step


def _proxy(w: Walk, listeners) -> None:
    """No DNAT for the host's own connection (or an outside client's): a socket of the
    host's may serve the port (a userland proxy such as docker-proxy, which connects to the
    container itself)."""
    for s in listeners:
        if s.get("port") == w.host_port and s.get("proto") == w.proto and (
                s.get("address") == w.host_address
                or ipaddress.ip_address(s["address"]).is_unspecified):
            w.proxied = f"{s['address']}:{s['port']}"
            whose = {"host": "the host's", "self": "the container's"}.get(w.client_kind,
                                                                          "an outside client's")
            w.steps.append(Step("host listener", "proxy",
                                f"{w.proxied} listens on the host (a userland proxy such as "
                                f"docker-proxy): {whose} own connection is served there, "
                                f"not through DNAT"))
            return


def _dnat(w: Walk, nat, hook: str, container_address: str) -> None:
    """The step of the DNAT that publishes the port (or of its absence)."""
    if nat.verdict != "dnat" or nat.rule is None or not nat.rule.to:
        w.steps.append(Step(hook, "none", f"no DNAT for {w.proto} port {w.host_port} on "
                                          f"{w.host_address} ({nat.describe()})"))
        return
    addr, port = split_to(nat.rule.to)
    w.dnat_to, w.dnat_rule = nat.rule.to, nat.describe()
    w.steps.append(Step(hook, "dnat", nat.describe()))
    if addr and addr != container_address:
        w.dnat_elsewhere = True
    if port and w.container_port is not None and port != w.container_port \
            and w.source == "runtime":
        w.dnat_elsewhere = True  # the runtime publishes another container port
    if port and w.container_port is None:
        w.container_port = port
    elif port and w.container_port != port and w.source == "asked":
        w.container_port = port


def _prerouting(w: Walk, ruleset, uplink: Optional[str], container_address: str) -> None:
    first = Packet(src=w.client, dst=w.host_address, iif=uplink, oif=None, proto=w.proto,
                   dport=w.host_port, sport=CLIENT_PORTS, family=w.family)
    early = evaluate(ruleset, "prerouting", first, type_="filter")  # raw (and mangle)
    if early.verdict in ("drop", "reject"):
        w.dropped = Step("raw/mangle PREROUTING", early.verdict, early.describe())
        w.steps.append(w.dropped)
        return
    rule = early.untracking_rule
    if rule is not None:
        # Untracked before conntrack: no NAT, so no DNAT; the host itself gets the packet.
        w.dropped = Step("raw/mangle PREROUTING", "untracked", f"{rule.where}: {rule.text}")
        w.steps.append(w.dropped)
        return
    _dnat(w, evaluate(ruleset, "prerouting", first, type_="nat"), "nat PREROUTING",
          container_address)


def _forward(w: Walk, ruleset, uplink, ingress, container_address: str) -> None:
    packet = Packet(src=w.client, dst=container_address, iif=uplink, oif=ingress,
                    proto=w.proto, dport=w.container_port, sport=CLIENT_PORTS,
                    family=w.family)
    _filtered(w, ruleset, "forward", packet)


def _listener(w: Walk, listeners: Optional[list]) -> None:
    if listeners is None or w.container_port is None:
        return
    mine = [s for s in listeners if s.get("port") == w.container_port
            and s.get("proto") == w.proto]
    w.listeners = mine
    if not mine:
        w.listening = "none"
    elif all(ipaddress.ip_address(s["address"]).is_loopback for s in mine):
        w.listening = "loopback"
    else:
        w.listening = "any"
    said = ", ".join(f"{s['address']}:{s['port']}" for s in mine) or "nothing"
    w.steps.append(Step("listener", {"none": "not-listening", "loopback": "loopback-only",
                                     "any": "listening"}[w.listening],
                        f"{w.proto} port {w.container_port} inside the container: {said}"))


# The inbound findings, root causes first (their checks' precedence orders the others).
INBOUND_IDS = ("port-published-on-loopback", "port-not-published", "publish-dnat-missing",
               "inbound-dropped", "route-localnet-off", "container-listens-on-loopback",
               "container-not-listening")
# What stops one kind of client only: an outside one (the port is on 127.0.0.1; a rule of
# PREROUTING or FORWARD, which the host's own connections never cross) or the host itself
# connecting to 127.0.0.1.
OUTSIDE_ONLY = ("port-published-on-loopback", "inbound-dropped")
HOST_ONLY = ("route-localnet-off",)
SELF_ONLY = ("hairpin-nat-broken",)
# Warnings in `checks` (often what was asked for, or only some clients' concern) that are
# the cause for the client they concern.
CAUSE_FOR = {"outside": ("port-published-on-loopback",),
             "self": ("port-published-on-loopback", "hairpin-nat-broken"), "host": ()}
SKIP_FOR = {"outside": HOST_ONLY + SELF_ONLY, "host": OUTSIDE_ONLY + SELF_ONLY,
            "self": HOST_ONLY}
# Faults of the outbound checks that stop an inbound connection too (the wiring faults,
# structural, count as well).
ALSO_INBOUND = ("ip-forward-disabled", "uplink-down", "bridge-netfilter")
# ... and an outside client's only: the host's route from it to the container's address is
# the one its request takes once DNATed (the pipeline tells the finding so).
ALSO_OUTSIDE = ("reply-path-asymmetric",)


def _stopping_errors(findings: list, walk: Optional[Walk] = None) -> list:
    """The findings that stop this walk's client (outside, the host itself, or the container
    through the host's address), the inbound ones and wiring faults first, root causes
    first."""
    kind = walk.client_kind if walk is not None else "outside"
    also = ALSO_INBOUND + (ALSO_OUTSIDE if kind == "outside" else ())
    return sorted((f for f in findings if f.id not in SKIP_FOR[kind] and (
        f.severity == "error" and (f.id in INBOUND_IDS + also or f.structural)
        or f.id in CAUSE_FOR[kind])),
        key=lambda f: (f.id not in INBOUND_IDS + SELF_ONLY and not f.structural,
                       f.precedence))


def decide(walk: Optional[Walk], findings: list, probe: dict, sightings: list,
           drops: list) -> dict:
    """The verdict for an outside client: the static walk speaks for the parts the host's
    own probe cannot cross (PREROUTING, FORWARD, the uplink), the probe and the captures for
    the rest (DNAT, bridge, veth, listener)."""
    errors = _stopping_errors(findings, walk)
    udp = walk is not None and walk.proto == "udp"
    # A UDP port nothing listens on answers with ICMP port unreachable: a refusal.
    refused = probe.get("outcome") == "refused" or (
        udp and probe.get("outcome") == "icmp error"
        and "port unreachable" in (probe.get("detail") or ""))
    replied = probe.get("outcome") == "reply" or refused
    # Where the host's probe stopped, over the hops it meets (bridge, veth, container).
    hv = localize(sightings, replied) if sightings else HopVerdict(False, None, None)
    # A UDP service answers only its own protocol: the datagram delivered to the container's
    # bound port, with no port unreachable back, is as far as a probe can tell.
    delivered = udp and probe.get("outcome") == "no reply" and walk.listening == "any" and any(
        s.role == "container" and s.request_seen for s in sightings)
    from_host = probe.get("outcome") == "reply" or delivered
    reason = drops[0]["reason"] if drops else None
    v = {"reachable": False, "reachable_from_host": from_host if probe.get("sent") else None,
         "stopped_at": hv.stopped_at, "direction": hv.direction, "cause": None,
         "kernel_drop_reason": reason, "explanation": ""}
    if errors:
        v["cause"] = errors[0].id
        v["explanation"] = errors[0].message
        if from_host:
            v["explanation"] += ("; the host's own connection succeeds because it does not "
                                 "cross this part of the path")
        return v
    if from_host or (not probe.get("sent") and walk is not None and walk.published
                     and walk.listening in ("any", None)):
        v.update(reachable=True, stopped_at=None, direction=None,
                 explanation=("published; the datagram reached the container's bound port "
                              "and no port unreachable came back (a UDP service answers only "
                              "its own protocol)") if delivered else
                 (f"answered by {walk.proxy}, a userland proxy listening on "
                  f"{walk.proxied}, which connects to the container itself (no DNAT publishes "
                  f"the port)" if walk is not None and walk.proxy else
                  "published and answered" if walk is not None and
                  walk.client_kind != "outside" else "published, forwarded and answered")
                 if from_host else "published and forwarded (not probed)")
        return v
    if refused:
        v.update(cause="container-not-listening" if walk and walk.listening != "any"
                 else "unknown", explanation=f"the connection was refused ({probe.get('detail')})")
        return v
    what = "datagram" if udp else "SYN"
    v.update(cause="unknown", explanation=(
        f"the {what} was last seen at {hv.stopped_at}" if hv.stopped_at else
        f"the {what} was seen on no hop") + (f"; the kernel dropped it: {reason}" if reason
                                            else ""))
    return v


def decide_watched(walk: Optional[Walk], findings: list, probe: dict, sightings: list,
                   drops: list, hits: list) -> dict:
    """The verdict from a real client's connection attempt: what left the uplink back to
    the client decides; where the attempt was last seen, the kernel's drop reason and the
    rule counters say why not. Findings only name a cause the evidence leaves open."""
    reason = drops[0]["reason"] if drops else None
    v = {"reachable": False, "reachable_from_host": None, "stopped_at": None,
         "direction": None, "cause": None, "kernel_drop_reason": reason, "explanation": "",
         "watched": True}
    up = next((s for s in sightings if s.role == "uplink"), None)
    if not probe.get("client"):
        v.update(cause="client-not-seen", explanation=(
            f"{probe.get('detail')}: no SYN reached {up.name if up else 'the uplink'} "
            "(a firewall or NAT before this host, a wrong address or port, or nobody "
            "connected); netdoctor cannot see the path before the uplink"))
        return v
    if probe["outcome"] == "reply":
        v.update(reachable=True, explanation=f"the connection from {probe['client']} was "
                 f"answered ({probe['detail']})")
        return v
    errors = _stopping_errors(findings, walk)
    if probe["outcome"] == "refused":
        if probe.get("answered_by") == "the container":
            v.update(cause="container-not-listening" if walk is None or walk.listening != "any"
                     else "unknown", stopped_at="container", direction="request",
                     explanation=f"the container refused the connection ({probe['detail']})")
        else:
            v.update(cause="inbound-dropped", direction="request",
                     explanation="the host itself refused the connection (a REJECT with "
                                 "tcp-reset) before it reached the container")
            v["rule"] = hits[0]["where"] + ": " + hits[0]["text"] if hits else None
        return v
    hv = localize(sightings, False)
    v.update(stopped_at=hv.stopped_at, direction=hv.direction)
    seen = (f"the {hv.direction or 'SYN'} from {probe['client']} was last seen at "
            f"{hv.stopped_at}" if hv.stopped_at else "it was seen nowhere")
    if hits and reason in (None, "NETFILTER_DROP"):
        v.update(cause="inbound-dropped", rule=hits[0]["where"] + ": " + hits[0]["text"],
                 explanation=f"{seen}; a dropping rule's counter moved")
    elif errors:
        v.update(cause=errors[0].id, explanation=f"{seen}; {errors[0].message}")
    elif reason == "NETFILTER_DROP":
        v.update(cause="inbound-dropped", explanation=f"{seen}; the kernel says a netfilter "
                                                      f"rule dropped it")
    elif hv.stopped_at == "container" and hv.direction == "request":
        v.update(cause="destination-no-reply", explanation=f"{seen}: it reached the "
                 "container, which sent nothing back")
    else:
        v.update(cause="unknown", explanation=seen + (f"; the kernel dropped it: {reason}"
                                                      if reason else ""))
    return v

"""trace(target, dest) -> TraceReport: probe from the container, capture on every hop at once,
follow the probe into the kernel's drop reasons, and say where and why it stopped.

Order of work: resolve the destination from inside the container; run the checks for this
path (read-only); arm a filtered capture on every hop, a private tracefs instance and a read
of the rule counters; send the bounded probes; stop and read everything; localize; decide.
Everything armed is released in `finally`, whatever happens.
"""

from __future__ import annotations

import errno
import os
import random
import socket
import time
from dataclasses import dataclass, field
from typing import Optional

from netdoctor.diagnose.host import resolver
from netdoctor.diagnose.parse import dns_wire
from netdoctor.diagnose.host import gather, netns
from netdoctor.diagnose.targets.destination import parse_destination
from netdoctor.diagnose.errors import (InternalError, NetdoctorError, PathChanged,
                                       TargetNotFound, Unresolved, UsageError)
from netdoctor.diagnose.reason import verdict as L

SCHEMA = "netdoctor.trace/1"
ICMP_PAYLOAD = 61  # an unusual size, so the kernel's device events can be told apart
SETTLE = 0.05  # seconds for a TCP probe's last frames to reach the capture sockets


@dataclass
class TraceReport:
    target: dict
    destination: dict
    probe: dict
    hops: list  # HopSighting
    findings: list
    verdict: L.Verdict
    path: dict
    pmtu: Optional[dict] = None
    evidence: dict = field(default_factory=dict)
    elapsed_ms: int = 0

    def to_dict(self) -> dict:
        t0 = min((h.first_seen_ns for h in self.hops if h.first_seen_ns), default=None)
        return {
            "schema": SCHEMA,
            "target": self.target,
            "destination": self.destination,
            "probe": self.probe,
            "hops": [h.to_dict(t0) for h in self.hops],
            "findings": [f.to_dict() for f in self.findings],
            "verdict": self.verdict.to_dict(),
            "pmtu": self.pmtu,
            "evidence": self.evidence,
            "elapsed_ms": self.elapsed_ms,
        }


def _hop_netns(path: dict, hop: dict) -> netns.Netns:
    inode = hop["netns_inode"]
    for ns in (path["target"]["netns"], path.get("host_netns")):
        if ns and ns["inode"] == inode:
            return netns.Netns.from_dict(ns)
    raise InternalError(f"lost track of the namespace of {hop['name']} (a bug: please report "
                        f"it, with --debug output)")


def trace(target, dest: str, port: Optional[int] = None, proto: Optional[str] = None,
          timeout: float = 1.0, count: int = 2, pcap_dir: Optional[str] = None) -> TraceReport:
    from netdoctor.capture import bpf, probe as P
    from netdoctor.capture.sockets import Closing, HopCapture, pcap_name, write_pcap
    from netdoctor.capture.tracefs import KernelTrace
    from netdoctor.checks import run_checks
    from netdoctor.diagnose.pipeline import snapshot

    started = time.monotonic()
    host, dport, proto = parse_destination(dest, port, proto)
    destination = {"query": dest, "address": None, "nameserver": None, "resolved": True}
    dns_failure = None
    if dns_wire.is_address(host):
        destination["address"] = host
    else:
        conf = resolver.read_resolv_conf(target.resolv_conf)
        try:
            found = resolver.resolve_in(target.netns, conf, host)
            destination.update(address=found.address, nameserver=found.server,
                               name=found.name)
        except Unresolved as e:
            # A DNS failure is a verdict of its own: trace the path to the nameserver instead.
            dns_failure = str(e)
            destination.update(resolved=False, error=dns_failure)
            if not conf.nameservers:
                raise
            destination["nameserver"] = conf.nameservers[0]
            host, dport, proto = conf.nameservers[0], 53, "udp"

    dst = destination["address"] or host
    try:
        snap = snapshot.take([target], destination=dst, probe_dns=False, strict=True)
    except NetdoctorError:
        if not target.netns.present():
            raise _gone(target) from None
        raise
    facts = snap.containers[0]
    _check_family(facts, dst)
    path = dict(facts.path, target=facts.target)
    host_ns = path.get("host_netns")
    from netdoctor.checks.context import ns_label

    subjects = {facts.label} | ({f"host {ns_label(host_ns)}"} if host_ns else set())
    findings = [f for f in run_checks(snap) if f.subject in subjects]
    egress_hop = next((h for h in path["hops"] if h["role"] == "container"), None)
    src = next((a.split("/")[0] for a in (egress_hop or {}).get("addresses", ())
                if ":" not in a), None)

    cookie = random.getrandbits(32)
    sport = P.random_port()
    ident = random.getrandbits(16)
    flow = L.Flow(proto, src or "", dst, cookie=cookie, sport=sport if proto != "icmp" else 0,
                  dport=dport or 0)
    program = bpf.probe_filter(proto, cookie=cookie, port=sport,
                               ident=ident if proto == "icmp" else -1)
    mtu = (egress_hop or {}).get("mtu") or 1500
    big_payload = mtu - 28
    lengths = _probe_lengths(proto, mtu, host if proto == "udp" else None)
    host_handle = netns.Netns.from_dict(host_ns) if host_ns else None

    captures = [HopCapture(h["role"], h["name"], _hop_netns(path, h), h["ifindex"])
                for h in path["hops"]]
    results, big = None, None
    evidence = {"captures": "ok", "tracefs": None, "counters": None}
    host_facts = snap.host(host_handle.inode) if host_handle is not None else None
    counters_before = host_facts.ruleset if host_facts is not None else None
    kt = KernelTrace(lengths)
    path_devices = {h["name"] for h in path["hops"]}

    def all_dropped(sent: int) -> bool:
        # Stop waiting once the kernel has dropped every probe on the path: no reply can
        # come, and the evidence is in. (A silent loss further away still waits it out.)
        return sent > 0 and len(_dropped_skbs(kt.peek(), lengths, path_devices)) >= sent

    closing = None
    try:
        for c in captures:
            c.arm(program)
        with kt:
            if proto == "icmp":
                results = netns.call_in(target.netns, P.icmp_echo, dst, ident, cookie,
                                        ICMP_PAYLOAD, count, timeout, False, all_dropped)
                if results.outcome == "reply" and dns_failure is None:
                    big = netns.call_in(target.netns, P.icmp_echo, dst, ident, cookie,
                                        big_payload, 1, timeout, True)
            elif proto == "tcp":
                results = netns.call_in(target.netns, P.tcp_connect, dst, dport, sport, timeout,
                                        all_dropped)
            elif dport == 53 or dns_failure:
                results = netns.call_in(target.netns, P.dns_query, dst,
                                        host if not dns_wire.is_address(host) else ".", sport,
                                        timeout, all_dropped)
            else:
                results = netns.call_in(target.netns, P.dns_query, dst, ".", sport, timeout,
                                        all_dropped)
            if proto == "tcp":
                # Closing the probe socket sends a RST that the host forwards from its
                # backlog, after close() has returned. Every other probe sends nothing after
                # its answer, and each hop's tap queued a frame before the frame could go on:
                # by the time the answer is in the container, every hop has captured it.
                time.sleep(SETTLE)
            for c in captures:
                c.drain()
            # The sockets close while the tracefs instance is removed: both wait for the
            # kernel (RCU grace periods), and need not wait one after the other.
            closing = Closing(captures)
    finally:
        if closing is not None:
            closing.join()
        for c in captures:
            c.close()
    # Evidence about a path that changed while it was gathered describes no configuration
    # that exists: say so instead of giving a verdict.
    if not target.netns.present():
        raise _gone(target)
    vanished = [f"{h['name']} ({_hop_netns(path, h).label})" for h in path["hops"]
                if not _hop_present(path, h)]
    if vanished:
        raise PathChanged(f"{', '.join(vanished)} went away during the trace; what was seen "
                          f"describes a path that no longer exists: run the trace again")
    evidence["tracefs"] = kt.unavailable or f"{len(kt.events)} kernel events"
    degraded = []  # evidence that could not be had, one line each, for a warning
    if kt.unavailable:
        degraded.append(f"kernel drop reasons not read: {kt.unavailable}")
    counters_after = None
    if host_handle is not None:
        try:
            counters_after = gather.read_netfilter(host_handle)
        except Exception as e:  # counters are evidence, not a requirement
            evidence["counters"] = f"unavailable: {e}"
            degraded.append(f"rule counters not read after the probe: {e}")

    sightings = [L.sight(c.role, c.name, c.netns.label, c.frames, flow, c.error)
                 for c in captures]
    if any(c.error for c in captures):
        evidence["captures"] = "; ".join(c.error for c in captures if c.error)
        degraded.append(f"capture incomplete: {evidence['captures']}")
    replied = results is not None and results.outcome in ("reply", "refused")
    hv = L.localize(sightings, replied)
    if L.answered_by_host(sightings, replied):
        evidence["answered_by_host"] = (f"the {results.detail or 'answer'} came from the host: "
                                        f"it was never seen on the uplink")

    drops = _probe_drops(kt.events, lengths)
    hits = []
    if counters_before is not None and counters_after is not None:
        from netdoctor.diagnose.reason.rules import rule_hits

        hits = rule_hits(counters_before, counters_after)
        evidence["counters"] = f"{len(hits)} dropping rule(s) matched during the probe"
    used = tuple(k for k, v in (("captures", True), ("tracefs", not kt.unavailable),
                                ("counters", counters_after is not None),
                                ("checks", True)) if v)
    # The address each hop's kernel sends the request to: its gateway, else the destination.
    next_hops = {h["role"]: h.get("via") or dst for h in path["hops"]}
    verdict = L.decide(hv, sightings, findings, drops, hits, flow, used, next_hops)
    if dns_failure and verdict.reachable:
        # The probe to the nameserver was answered: it answers, without an address.
        verdict = L.Verdict(False, None, None, "dns-no-answer",
                            evidence_used=used,
                            explanation=f"the nameserver answers, but: {dns_failure}")
    elif dns_failure and verdict.cause in ("upstream-no-reply", "unknown"):
        verdict = L.Verdict(False, verdict.stopped_at, verdict.direction, "dns-unreachable",
                            verdict.kernel_drop_reason, verdict.kernel_location, verdict.rule,
                            used, verdict.explanation)

    pmtu = None
    if big is not None:
        # Told "fragmentation needed" by a router, or "message too long" by the container's
        # own kernel (which already learnt the smaller path MTU): path MTU discovery works,
        # and the path is smaller than the container's MTU, not a black hole.
        told = (big.outcome == "icmp error" and "fragmentation needed" in (big.detail or "")) \
            or (big.outcome == "local error" and big.error == os.strerror(errno.EMSGSIZE))
        pmtu = {"size": mtu, "dont_fragment": True, "answered": big.outcome == "reply",
                "detail": big.error or big.detail, "discovery_works": big.outcome == "reply"
                or told}
        if verdict.reachable and not pmtu["discovery_works"]:
            verdict = L.Verdict(True, None, None, "mtu-mismatch", None, None, None, used,
                                f"small packets pass, a {mtu}-byte don't-fragment packet does "
                                f"not: a path-MTU black hole")

    if pcap_dir:
        os.makedirs(pcap_dir, exist_ok=True)
        for i, c in enumerate(captures, 1):
            write_pcap(os.path.join(pcap_dir, pcap_name(c.role, c.name, i)), c.frames)

    probe_info = {"kind": proto, "port": dport, "count": results.sent if results else 0,
                  "replies": results.replies if results else 0,
                  "outcome": results.outcome if results else None,
                  "detail": (results.error or results.detail) if results else None,
                  "rtt_ms": round(results.rtt_ms, 3) if results and results.rtt_ms else None,
                  "icmp_errors": results.icmp_errors if results else [],
                  "wait_cut_short": bool(results and results.cut_short),
                  "tag": {"icmp_id": ident, "cookie": f"{cookie:08x}"} if proto == "icmp"
                  else {"source_port": sport}}
    evidence["kernel_drops"] = [{"reason": r, "location": loc, "last_device": dev}
                                for r, loc, dev in drops]
    evidence["rule_hits"] = hits
    # What the kernel filters let through to netdoctor: a handful per probe, however busy
    # the interfaces (and none lost for want of buffer).
    evidence["frames_copied"] = sum(len(c.frames) for c in captures)
    evidence["capture_drops"] = sum(c.kernel_drops for c in captures)
    evidence["degraded"] = degraded
    return TraceReport(target=facts.target, destination=destination, probe=probe_info,
                       hops=sightings, findings=findings, verdict=verdict, path=path,
                       pmtu=pmtu, evidence=evidence,
                       elapsed_ms=int((time.monotonic() - started) * 1000))


def _gone(target) -> TargetNotFound:
    return TargetNotFound(f"{target.label} went away during the trace (its network namespace "
                          f"is gone: the container exited or was removed); start it and run "
                          f"the trace again")


def _hop_present(path: dict, hop: dict) -> bool:
    try:
        ns = _hop_netns(path, hop)
        return ns.present() and netns.call_in(ns, socket.if_nametoindex,
                                              hop["name"]) == hop["ifindex"]
    except (OSError, NetdoctorError):
        return False


def _check_family(facts, dst: str) -> None:
    """An IPv6 destination needs an IPv6 address in the container; trace probes IPv4 only."""
    if ":" not in dst:
        return
    has_v6 = any(a.family == "inet6" and a.scope == "global"
                 for link in facts.namespace.links for a in link.addresses)
    name = facts.target["name"]
    if not has_v6:
        raise Unresolved(f"{dst} is an IPv6 address and {name} has no global IPv6 address, so "
                         f"it cannot reach it; trace an IPv4 address (or a name with an A "
                         f"record) instead")
    raise UsageError(f"{dst} is IPv6: trace sends IPv4 probes only so far; `netdoctor path "
                     f"{facts.target['ref']} {dst}` "
                     f"shows the IPv6 path")


def _probe_lengths(proto: str, mtu: int, dns_name: Optional[str]) -> tuple:
    """The IP and Ethernet lengths the probe's packets have on the devices (what the kernel's
    device events report), so its skbs can be picked out of the trace."""
    if proto == "icmp":
        ip_lengths = (20 + 8 + ICMP_PAYLOAD, mtu)
    elif proto == "tcp":
        ip_lengths = (60, 40)  # SYN with Linux's options; a bare SYN/RST
    else:
        name = dns_name if dns_name and not dns_wire.is_address(dns_name) else "."
        ip_lengths = (20 + 8 + len(dns_wire.encode_query(name)[1]),)
    return tuple(sorted({n for l in ip_lengths for n in (l, l + 14)}))


def _probe_frees(events: list, lengths: tuple):
    """(kfree event, last device) for each free with a reason of an skb last seen on a device
    with one of the probe's lengths. The free ends that skb: its memory, reused for the next
    packet, counts again only after another device event of the probe's lengths."""
    last_dev = {}
    for e in events:
        if e.event != "kfree_skb":
            if e.length in lengths:
                last_dev[e.skbaddr] = e.dev
            continue
        if e.reason and e.reason != "NOT_SPECIFIED" and e.skbaddr in last_dev:
            yield e, last_dev.pop(e.skbaddr)


def _dropped_skbs(events: list, lengths: tuple, devices: set) -> list:
    """One entry per probe packet freed with a reason after being seen on one of devices.
    (Counted per free, not per address: the kernel reuses one skb's memory for the next.)"""
    return [(e.skbaddr, e.ts) for e, dev in _probe_frees(events, lengths) if dev in devices]


def _probe_drops(events: list, lengths: tuple) -> list:
    """(reason, location, last device) of every skb that carried one of the probe's lengths
    on a device and was then freed with a reason, first ones first."""
    out = []
    for e, dev in _probe_frees(events, lengths):
        if (e.reason, e.location, dev) not in out:
            out.append((e.reason, e.location, dev))
    return out

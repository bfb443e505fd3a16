"""trace(target, dest) -> TraceReport: probe from the container, capture on every hop at once,
follow the probe into the kernel's drop reasons, and say where and why it stopped.

Six phases, one function each:
  resolve   DEST, resolved inside the container (a DNS failure retargets the probe at the
            nameserver: the failure is the verdict, the path to the nameserver its evidence)
  plan      the snapshot of the path, its checks, the probe's tag and kernel filter
  observe   captures on every hop, a tracefs instance and the rule counters around the
            bounded probes; everything armed is released in `finally`, whatever happens
  evidence  what each hop saw, the probe's own kernel drops, the rules whose counters moved
  decide    reason/verdict.py's ordered rules
  report    the TraceReport (and the pcaps)
"""

from __future__ import annotations

import contextlib
import errno
import os
import random
import time
from dataclasses import dataclass, field, replace
from typing import Optional

from netdoctor.capture import bpf, probe as P
from netdoctor.capture.sockets import HopCapture, capture_around, write_pcaps
from netdoctor.capture.tracefs import Ahead, JournalFilter, KernelTrace
from netdoctor.checks import run_checks
from netdoctor.checks.context import EPHEMERAL_PORTS, contexts, ns_label
from ..errors import (InternalError, NetdoctorError, PathChanged, PeerError, TargetNotFound,
                      Unresolved, UsageError)
from ..host import gather, netns, resolver
from ..parse import dns_wire
from ..parse.nft_trace import parse_trace
from ..parse.resolv_conf import loopback_note
from . import path as discover
from . import snapshot
from ..reason import evidence as E
from ..reason import journal as J
from ..reason import verdict as V
from ..reason.nftrace import OWN_TABLE_PREFIX
from ..reason.path import HOST_EGRESS_ROLES, L3_TUNNELS, VXLAN_OVERHEAD, tunnel_ids
from ..reason.rules import rule_hits
from ..targets.destination import container_reference, parse_destination

SCHEMA = "netdoctor.trace/2"
ICMP_PAYLOAD = 61  # an unusual size, so the kernel's device events can be told apart
SETTLE = 0.05  # seconds for a TCP probe's last frames to reach the capture sockets


@dataclass
class TraceReport:
    target: dict
    destination: dict
    probe: dict
    hops: list  # HopSighting
    findings: list
    verdict: V.Verdict
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


def trace(target, dest: str, port: Optional[int] = None, proto: Optional[str] = None,
          timeout: float = 1.0, count: int = 2, pcap_dir: Optional[str] = None,
          family: Optional[str] = None, pcap: Optional[str] = None,
          peer: Optional[str] = None, ssh_config: Optional[str] = None,
          trace_rules: bool = False, _outward: int = 0) -> TraceReport:
    """trace_rules (--allow-trace-rules): add a private nft table per namespace for the
    window, so that nftables names the rule that decided each probe packet. _outward: how
    many hosts out from the container this trace already is (see _followed_outward)."""
    started = time.monotonic()
    aim = resolve(target, dest, port, proto, family)
    with contextlib.ExitStack() as stack:
        ahead = stack.enter_context(Ahead())  # the kernel's recorder, made while we read
        plan = make_plan(target, aim)
        far, unasked = None, None
        if peer:
            try:
                far = _far_side(plan, aim, peer, ssh_config, stack)
            except _NoNextHost as e:
                unasked = str(e)
        seen = observe(target, plan, timeout, count, far, trace_rules, ahead)
        if unasked:
            seen.degraded.append(unasked)
    found = read_evidence(plan, seen)
    plan.findings += refused_by_the_kernel(plan, found.summary.get("journal") or ())
    plan.findings += _gateway_unanswered(plan, found)
    if seen.results is not None:
        plan.findings = V.confirmed_by_answer(plan.findings, seen.results.icmp_errors,
                                              found.sightings)
    plan.findings = V.confirmed_by_counters(plan.findings, found.hits)
    verdict = V.decide(V.Case(found.hops, found.sightings, plan.findings, found.drops,
                              found.hits, plan.flow, found.used, plan.next_hops,
                              aim.dns_failure, found.pmtu,
                              tuple(found.summary.get("divergences", ())),
                              found.port_closed, found.summary.get("nftrace") or [],
                              aim.nameserver_silent))
    plan.findings = V.still_standing(plan.findings, plan.next_hops, verdict.reachable)
    verdict = _asked_from_the_host(plan, aim, verdict)
    if verdict.cause == "dns-unreachable":
        unwired = _embedded_dns_unwired(target, plan, aim)
        if unwired:  # what the path says is beside the point: the query never reached dockerd
            plan.findings += unwired
            verdict = replace(verdict, explanation=f"{aim.dns_failure}; {unwired[0].message}")
    if not verdict.reachable and aim.destination.get("nameserver") == resolver.HOSTS_FILE:
        verdict = replace(verdict, explanation=(
            f"{verdict.explanation}; {aim.address} is what the container's /etc/hosts gives "
            f"{aim.destination.get('name') or aim.host} (its resolver reads that file before "
            f"DNS, which it does not ask for this name)"))
    verdict = _answered_for_one_flow(target, plan, aim, verdict)
    verdict = _answered_while_shared(plan, verdict)
    outer = None
    if not peer and _outward < discover.MAX_OUTWARD:
        outer = _followed_outward(plan, aim, verdict, timeout, count, family, _outward)
        if outer is not None:
            verdict = _through(plan, verdict, outer)
            if not verdict.reachable and verdict.stopped_at.startswith("outer-"):
                # (the host's own way out is not the container's: its packets are forwarded)
                plan.findings += [f for f in outer.findings if f.severity == "error"
                                  and (f.scope != "container" or f.id == verdict.cause)]
    if pcap:
        write_trace_pcapng(pcap, target, aim, seen.captures)
    done = report(plan, aim, seen, found, verdict, pcap_dir, started)
    if outer is not None:
        # Its hops past the host's own interface, seen by a probe of their own (no time
        # offset against this one's).
        done.hops = list(done.hops) + [replace(h, role=f"outer-{h.role}", first_seen_ns=None)
                                       for h in outer.hops if h.role != "container"]
        done.evidence = dict(done.evidence, outward=outer.to_dict())
    return done


# Findings that say one flow of the container's is dropped on its way out while another
# passes (a host that lets ping through and nothing else).
FLOW_DROPS = ("forward-dropped", "host-input-dropped", "container-output-dropped")


def _answered_for_one_flow(target, plan: Plan, aim: Aim, verdict):
    """The echo was answered (no port was asked about), and the checks find another of the
    flows they judge (TCP to port 80, the web) dropped on the same way out: a ping works and
    a web page does not, reachable but not for everything. The verdict says which, and its
    cause is that finding (exit 1, as for a path-MTU black hole), with the trace that
    follows it."""
    if not verdict.reachable or verdict.cause is not None or plan.flow.kind != "icmp":
        return verdict  # (a port asked about and answered is what was asked)
    own = "icmp"
    f = next((f for f in plan.findings if f.severity == "error" and f.id in FLOW_DROPS
              and (f.evidence or {}).get("direction", "request") == "request"
              and (f.evidence or {}).get("flow") not in (None, own)), None)
    if f is None:
        return verdict
    flow = f.evidence["flow"]
    proto, _, port = flow.partition("/")
    how = f" --{proto}" if proto == "udp" else ""
    dest = aim.destination.get("query") or aim.address
    follow = f"netdoctor trace {target.ref} {dest}:{port}{how}" if port else ""
    return replace(verdict, cause=f.id, explanation=(
        f"{verdict.explanation} ({own}), but {flow} is not: {f.message}"
        + (f"; `{follow}` follows it" if follow else "")))


def _answered_while_shared(plan: Plan, verdict):
    """The probe was answered, and two devices answered the host's ARP request for the
    container's address: the answers reach the container only while the host's entry names
    it (whichever answered first), and the next time they may go to the other holder.
    Reachable, with duplicate-address as its cause (exit 1)."""
    if not verdict.reachable or verdict.cause is not None:
        return verdict
    f = next((f for f in plan.findings if f.id == "duplicate-address"
              and f.severity == "error" and len((f.evidence or {}).get("answered") or ()) > 1),
             None)
    if f is None:
        return verdict
    return replace(verdict, cause=f.id, explanation=(
        f"{verdict.explanation}, for now: {f.message}; the answers reach the container only "
        f"while the host's entry names its MAC"))


def _followed_outward(plan: Plan, aim: Aim, verdict, timeout: float, count: int,
                      family: Optional[str], outward: int):
    """The request left the host's uplink and nothing came back; the uplink is a veth whose
    far end is a port of a bridge in another namespace of this machine, and that bridge
    holds the host's next hop: the "host" is itself a container of an outer host (a kind or
    k3d node, Docker in Docker, a node namespace). The way beyond it is on this machine, not
    out of sight: the trace of the host's own namespace toward the same destination (the
    container's requests leave it with the host's source address where it NATs them), or
    None where the path does not go on into a bridge of this machine."""
    if verdict.reachable or plan.host_ns is None or aim.dns_failure \
            or aim.destination.get("address") is None:
        return None
    # Beyond the uplink: nothing came back; or the kernel's drop reason named a cause no
    # finding of this host holds (one kernel, device names shared with the outer host); or
    # the uplink has no carrier (its other end, out there, is down).
    found_here = any(f.id == verdict.cause and f.severity == "error" for f in plan.findings)
    if not ((verdict.stopped_at == "uplink" and (verdict.cause == "upstream-no-reply"
                                                 or not found_here))
            or verdict.cause == "uplink-down"):
        return None
    found = discover.outer_host(plan.path, plan.host_ns, aim.address, family)
    if found is None:
        return None
    host = found[0]
    try:
        return trace(host, aim.address, aim.dport, aim.proto,
                     timeout, count, family=family, _outward=outward + 1)
    except NetdoctorError:
        return None


def _through(plan: Plan, verdict, outer: "TraceReport"):
    """The verdict of a trace followed outward (see _followed_outward), told as the way
    beyond the host's uplink: the outer host's cause, where it stopped there ("outer-"
    and the hop's role), and the evidence from there; or, where the host's own packets
    get an answer, the verdict as it was, with that said."""
    up = next(h for h in plan.path["hops"] if h["role"] == "uplink")
    o = outer.verdict
    where = (f"the request {'left' if verdict.cause != 'uplink-down' else 'goes out'} "
             f"{up['name']} of {plan.host_ns.label} for its next hop "
             f"{up['via']}, a bridge of another namespace on this machine ({up['name']} is a "
             f"veth to one of its ports): {plan.host_ns.label} is itself a container of that "
             f"host, and netdoctor traced from it too")
    if o.reachable:
        return replace(verdict, explanation=(
            f"{verdict.explanation}; {where}, and its own probe was answered: what differs "
            f"is the container's packets as they leave {plan.host_ns.label} (their source "
            f"address: its NAT, the outer host's rules and routes back for it)"))
    theirs = next((f for f in outer.findings if f.id == o.cause), None)
    inside = o.stopped_at in (None, "container")  # its own request never left the host
    if inside and (theirs is None or theirs.id.startswith("container-")):
        # Its own probe stopped in it, by its own namespace's fault (its OUTPUT, its INPUT,
        # its routes): the container's packets are forwarded by it and never meet those;
        # no evidence about the way beyond. (A fault of the outer host's side of its link,
        # a port down, is.)
        return replace(verdict, explanation=(
            f"{verdict.explanation}; {where}, but its own probe stopped inside it "
            f"({o.cause}), which the container's forwarded packets do not meet"))
    hop = next((h for h in outer.path["hops"] if h["role"] == o.stopped_at), None)
    there = f" ({hop['name']} in {hop['netns']})" if hop is not None else ""
    told = (f"its own request never left {up['name']}: {theirs.message}" if inside
            else o.explanation + there)  # (inside: the outer side of its link, out there)
    return replace(o, stopped_at=f"outer-{o.stopped_at}" if o.stopped_at else "outer-host",
                   evidence_used=tuple(dict.fromkeys(tuple(verdict.evidence_used)
                                                     + tuple(o.evidence_used))),
                   explanation=f"{where}; from there, {told}")


def _asked_from_the_host(plan: Plan, aim: Aim, verdict):
    """A nameserver that is the host's own address and was silent for the name, though it
    answered the probe, is a resolver on the host (podman's aardvark-dns, a dnsmasq) that
    forwards from the host's namespace to the host's nameservers: they are asked the name
    from there (one query each, at most three). Silent there too, the host's own DNS is
    what fails, and the verdict says so; otherwise it stands."""
    server = aim.destination.get("nameserver")
    if verdict.cause != "dns-no-answer" or not aim.nameserver_silent \
            or plan.host_ns is None or plan.judged is None:
        return verdict
    host = plan.judged.host(plan.host_ns.inode)
    if host is None or server not in host.namespace.held_addresses:
        return verdict
    # podman's aardvark-dns says where it forwards (its network's servers, else the host's);
    # another resolver on the host is taken to ask the host's.
    upstreams, source = resolver.aardvark_upstreams(server) or resolver.host_upstreams()
    if not upstreams:
        return verdict
    from ..parse.resolv_conf import ResolvConf

    name = aim.destination.get("asked") or aim.destination.get("query")
    asked = upstreams[:3]
    try:
        netns.call_in(plan.host_ns, resolver.lookup, ResolvConf(nameservers=asked), name, 1.0)
        return verdict  # the host resolves it: the resolver on it is what does not
    except NetdoctorError as e:
        silent = [u for u in asked if u in getattr(e, "silent", ())]
    if len(silent) < len(asked):
        return verdict
    where = plan.host_ns.label
    return replace(verdict, cause="dns-unreachable", explanation=(
        f"{verdict.explanation}. {server} is the host's own address: a resolver on the host "
        f"(podman's aardvark-dns, a dnsmasq) forwards the name to the host's nameservers "
        f"({', '.join(asked)}, from {source}), and asked from the host's namespace ({where}) "
        f"they do not answer either: the host's own DNS is what fails (`nslookup {name} "
        f"{asked[0]}` on the host)"))


def _embedded_dns_unwired(target, plan: Plan, aim: Aim) -> list:
    """Docker's embedded DNS server refused the query (nothing listens on 127.0.0.11:53
    itself): dockerd serves it on another port, through DNAT rules it writes into the
    container's nat table. Where that table sends the query nowhere (the rules flushed by
    a firewall reload inside the container), dns-unreachable says so, and restarting the
    container makes Docker write them again."""
    from ..reason.rules import Packet, evaluate

    server = aim.destination.get("nameserver")
    if server != resolver.DOCKER_EMBEDDED or target.kind != "docker" \
            or aim.nameserver_silent or plan.judged is None:
        return []
    try:
        rules = gather.read_netfilter(target.netns)
    except NetdoctorError:
        return []
    query = Packet(src="127.0.0.1", dst=server, iif=None, oif="lo", proto="udp", dport=53,
                   sport=EPHEMERAL_PORTS, src_local=True, dst_local=True)
    out = evaluate(rules, "output", query, type_="nat")
    if out.verdict == "dnat":
        return []
    ctx, check = _judged_by(plan, "dns-unreachable")
    if ctx is None:
        return []
    return [check.finding(
        ctx, f"{ctx.subject} asks Docker's embedded DNS server ({server}), but its own nat "
             f"table sends the query to no port of dockerd's: the DNAT rules Docker writes "
             f"there (chain DOCKER_OUTPUT) are gone, a firewall flushed or reloaded inside "
             f"the container, and nothing listens on {server}:53 itself",
        {"nameserver": server, "nat_output": out.describe() if out.chain else "no chain",
         "chains_walked": list(out.trail)},
        "docker restart {container_name}", nameserver=server)]


def refused_by_the_kernel(plan: Plan, journal) -> list:
    """host-no-route (reply-path-asymmetric) from the host's own lookup for the probe's
    request (reply), read by tracefs, where it refused it and the checks found nothing
    missing: their lookup (`ip route get`) is asked without the probe's marks, which the
    policy rules may route by."""
    refused = [e for e in journal if e["kind"] == "route" and e["error"] is not None and (
        e["direction"] == "request" and e["hop"] in ("host-veth", "bridge")
        or e["direction"] == "reply" and e["hop"] in HOST_EGRESS_ROLES)]
    if not refused or plan.judged is None:
        return []
    # (a request the host refused has no reply: the first refusal is the one)
    name = "host-no-route" if refused[0]["direction"] == "request" \
        else "reply-path-asymmetric"
    if any(f.id == name for f in plan.findings):
        return []
    ctx, check = _judged_by(plan, name)
    return list(check.for_decision(ctx, refused[0])) if ctx is not None else []


def _gateway_unanswered(plan: Plan, found) -> list:
    """container-wrong-gateway from the trace's evidence: the container asked for its own
    default gateway and nothing on its link answered, where its wiring names another."""
    gone = E.unanswered_next_hop(found.sightings, found.hops, plan.next_hops)
    if gone is None or gone[0].role != "container" or plan.judged is None \
            or any(f.id == "container-wrong-gateway" for f in plan.findings):
        return []
    ctx, check = _judged_by(plan, "container-wrong-gateway")
    return list(check.for_unanswered(ctx, gone[1])) if ctx is not None else []


def _judged_by(plan: Plan, check_id: str) -> tuple:
    """(the container's context as the checks judged it, the check check_id) for a finding
    the trace's evidence adds; (None, None) when the plan has no such context."""
    from netdoctor.checks import REGISTRY, load_all

    ctx = next((c for c in contexts(plan.judged) if c.scope == "container"
                and c.subject == plan.facts.label), None) if plan.judged is not None else None
    if ctx is None:
        return None, None
    load_all()
    return ctx, REGISTRY[check_id]()


def write_trace_pcapng(path: str, target, aim: Aim, captures: list) -> None:
    """Every hop's frames in one pcapng, an interface per hop named for what it is."""
    from netdoctor.capture.pcapng import write_pcapng
    from .. import __version__

    hops = [(c.name, f"{c.role} {c.name} (ifindex {c.ifindex}) in netns {c.netns.label}",
             c.frames) for c in captures]
    write_pcapng(path, hops, f"netdoctor {__version__}",
                 f"netdoctor trace {target.label} -> {aim.destination.get('query')} "
                 f"({aim.address})")


# ------------------------------------------------------------------ resolve

@dataclass
class Aim:
    """Where the probe goes: DEST resolved, or the nameserver when DEST did not resolve."""
    destination: dict  # query, address, nameserver, name, resolved, error (for the report)
    host: str  # what the probe is addressed to, or the name it asks for (DNS probes)
    dport: Optional[int]
    proto: str
    dns_failure: Optional[str] = None
    far: Optional[object] = None  # the destination container (a Target), when DEST is one

    @property
    def address(self) -> str:
        return self.destination["address"] or self.host

    @property
    def nameserver_silent(self) -> bool:
        """The nameserver traced to sent no answer at all to the name's query."""
        return self.destination.get("nameserver") in (self.destination.get("silent") or ())


def resolve(target, dest: str, port: Optional[int], proto: Optional[str],
            family: Optional[str] = None) -> Aim:
    destination = {"query": dest, "address": None, "nameserver": None, "resolved": True}
    ref = container_reference(dest, port)
    if ref is not None:  # a container: its address, probed as an address would be
        from .. import targets

        far = targets.resolve(ref[0])
        destination.update(discover.container_destination(target, far, family))
        _, dport, proto = parse_destination(destination["address"], ref[1], proto)
        return Aim(destination, destination["address"], dport, proto, far=far)
    host, dport, proto = parse_destination(dest, port, proto)
    discover.check_family(host, family)
    if dns_wire.is_address(host):
        destination["address"] = host
        return Aim(destination, host, dport, proto)
    try:
        found = resolver.resolve_for(target, host)
    except Unresolved as e:
        conf = resolver.read_resolv_conf(target.resolv_conf)
        far = discover.container_named(host)
        if far is not None:
            destination.update(discover.container_destination(target, far, family))
            return Aim(destination, destination["address"], dport, proto, far=far)
        if not conf.nameservers:
            raise
        # A DNS failure is a verdict of its own: trace the path to the nameserver instead.
        server = conf.nameservers[0]
        why = str(e) + loopback_note(server)
        upstreams, source = resolver.embedded_upstreams(target) \
            if server == resolver.DOCKER_EMBEDDED and server in e.silent else ((), "")
        if upstreams:
            # Docker's embedded server got the query (its DNAT sends it to dockerd) and did
            # not answer: dockerd waits on the servers it forwards to, from the container's
            # own namespace. The path that fails is the one to them.
            destination["via"] = server
            server = upstreams[0]
            why = (f"{e}; 127.0.0.11 is Docker's embedded DNS server, which forwards this "
                   f"container's queries to {', '.join(upstreams)} ({source}) from the "
                   f"container's own namespace: the path traced is the one to {server}")
        destination.update(resolved=False, error=str(e), nameserver=server,
                           silent=list(e.silent), asked=host)
        return Aim(destination, server, 53, "udp", dns_failure=why)
    destination.update(nameserver=found.server, name=found.name,
                       **discover.choose_address(target, found, family))
    return Aim(destination, host, dport, proto)


# ------------------------------------------------------------------ plan

@dataclass
class Plan:
    facts: object  # ContainerFacts
    path: dict
    findings: list
    flow: E.Flow
    program: list  # the capture sockets' filter
    lengths: tuple  # the probe's packet lengths on the devices
    mtu: int
    host_ns: Optional[netns.Netns]
    counters_before: object  # the host's Ruleset, or None
    ident: int
    next_hops: dict  # role -> the address its kernel sends the request to
    dns_name: str  # what a UDP probe asks: DEST's name on port 53, else the root
    tunnel_port: int = 0  # the path's VXLAN UDP port: its underlay carries the probe inside
    tunnel_program: Optional[list] = None  # the filter for the underlay hop
    # The other ports of the path's bridge (other containers' veths): a drop an skb met
    # after one of them happened in another container, whatever its device is called.
    foreign_ports: frozenset = frozenset()
    tunnel_vni: Optional[int] = None  # the path's VXLAN network id
    judged: object = None  # the Snapshot the checks judged (its contexts, for evidence later)

    def new_captures(self) -> list:
        """A capture per hop, not armed yet (an underlay's decapsulates the tunnel)."""
        return [HopCapture(h["role"], h["name"], hop_netns(self.path, h), h["ifindex"],
                           tunnel_port=self.tunnel_port if h["role"] == "underlay" else 0)
                for h in self.path["hops"]]

    def program_for(self, capture) -> list:
        return self.tunnel_program if capture.tunnel_port else self.program


def make_plan(target, aim: Aim) -> Plan:
    try:
        snap = snapshot.take([target], destination=aim.address, probe_dns=False, strict=True)
    except NetdoctorError:
        if not target.netns.present():
            raise _gone(target) from None
        raise
    facts = snap.containers[0]
    # DEST given as the address of a container here: that container, as its runtime names it
    local = _local_destination(target, facts.path) if aim.far is None else None
    named = aim.far if aim.far is not None else (
        local if local is not None and local.kind != "netns" else None)
    if named is not None:  # the checks judge the path toward a container as such
        facts.path["destination"] = dict(facts.path.get("destination") or {},
                                         container=named.label)
        aim.destination.setdefault("container", named.label)  # (and the report names it)
    # The probe's own flow, which the checks judge beside theirs (a port of its own).
    facts.path["destination"] = dict(facts.path.get("destination") or {},
                                     proto=aim.proto, port=aim.dport)
    path = dict(facts.path, target=facts.target)
    host = path.get("host_netns")
    subjects = {facts.label} | ({f"host {ns_label(host)}"} if host else set())
    findings = [f for f in run_checks(snap) if f.subject in subjects]
    _check_family(facts, aim.address, findings)
    egress = next((h for h in path["hops"] if h["role"] == "container"), {})
    # The source the container's kernel picks: the one the checks judged.
    src = next(c.address for c in contexts(snap)
               if c.scope == "container" and c.subject == facts.label) or ""
    if ":" in aim.address:
        src = _source6(facts, path)
    far = aim.far if aim.far is not None else local
    if far is not None and src:
        findings += destination_findings(far, src, aim.proto, aim.dport)
    cookie, sport, ident = random.getrandbits(32), P.random_port(), random.getrandbits(16)
    icmp = aim.proto == "icmp"
    flow = E.Flow(aim.proto, src, aim.address, cookie=cookie, sport=0 if icmp else sport,
                  dport=aim.dport or 0)
    mtu = egress.get("mtu") or 1500
    dns_name = aim.host if aim.dport == 53 and not dns_wire.is_address(aim.host) else "."
    host_ns = netns.Netns.from_dict(host) if host else None
    host_facts = snap.host(host_ns.inode) if host_ns is not None else None
    tunnel = next((h for h in path["hops"] if h["role"] == "tunnel"), None)
    tunnel_link = host_facts.namespace.link(name=tunnel["name"]) \
        if tunnel is not None and host_facts is not None else None
    tunnel_port, vni = tunnel_ids(tunnel_link)
    lengths = probe_lengths(aim.proto, mtu, dns_name, ":" in aim.address)
    if tunnel_port:  # the underlay's devices see the probe with the VXLAN headers around it
        lengths = tuple(sorted(set(lengths) | {n + VXLAN_OVERHEAD for n in lengths}))
    tag = dict(cookie=cookie, port=sport, ident=ident if icmp else -1)
    return Plan(facts, path, findings, flow, bpf.probe_filter(aim.proto, **tag), lengths, mtu,
                host_ns, host_facts.ruleset if host_facts is not None else None, ident,
                {h["role"]: h.get("via") or aim.address for h in path["hops"]}, dns_name,
                tunnel_port, bpf.probe_filter(aim.proto, tunnel_port=tunnel_port, **tag)
                if tunnel_port else None, _foreign_ports(path, host_facts), vni, snap)


def _local_destination(target, path: dict):
    """The namespace the path ends in on this host, as a Target, when DEST was given as an
    address that a container here holds: its side is judged as a named container's is."""
    from ..targets import Target

    hop = next((h for h in path["hops"] if h["role"] == "destination"), None)
    if hop is None or hop.get("netns_inode") in (target.netns.inode, (path.get(
            "host_netns") or {}).get("inode")):
        return None
    try:
        ns = hop_netns(path, hop)
    except NetdoctorError:
        return None
    from .. import targets

    named = targets.holding(ns.inode, (path.get("destination") or {}).get("address") or "")
    if named is not None:
        return named
    name = ns.name or f"net:[{ns.inode}]"
    conf = f"/etc/netns/{ns.name}/resolv.conf" if ns.name else None
    return Target(ref=f"netns:{name}", kind="netns", name=name, netns=ns,
                  resolv_conf=conf if conf and os.path.exists(conf) else None)


def _foreign_ports(path: dict, host_facts) -> frozenset:
    """The ports of the path's bridges that are not on the path."""
    if host_facts is None:
        return frozenset()
    ns = host_facts.namespace
    on_path = {h["name"] for h in path["hops"]}
    bridges = {h["ifindex"] for h in path["hops"] if h["role"] in ("bridge", "out-bridge")
               and h.get("netns_inode") == ns.netns.get("inode")}
    return frozenset(l.name for l in ns.links if l.master in bridges and l.name not in on_path)


def destination_findings(other, src: str, proto: str = "icmp", dport=None,
                         with_host: bool = False) -> list:
    """The checks of the destination container (a Target), on its way back to src: both
    sides of an east-west path are judged (its findings marked side="destination"), and
    its own INPUT rules for the probe's request itself. with_host: its host's findings too
    (a far host's, read by its agent; on this host they are the source's already)."""
    from dataclasses import replace as with_side

    from netdoctor.checks import REGISTRY, load_all

    snap = snapshot.take([other], destination=src, probe_dns=False)
    if not snap.containers:
        return []
    label = snap.containers[0].label
    host = snap.containers[0].path.get("host_netns")
    subjects = {label} | ({f"host {ns_label(host)}"} if with_host and host else set())
    found = [f for f in run_checks(snap) if f.subject in subjects and f.id != "not-judged"]
    load_all()
    ctx = next((c for c in contexts(snap) if c.scope == "container" and c.subject == label),
               None)
    if ctx is not None and with_host:
        # A far host's FORWARD meets the request on its way in (on this host, the source's
        # own checks judged it): what it drops is this trace's fault there, and the same
        # policy's drop of the destination's own requests is not.
        arriving = REGISTRY["forward-dropped"]().for_arriving(ctx, src, proto, dport)
        if arriving is not None:
            found = [arriving] + [f for f in found if f.id != "forward-dropped"]
    if ctx is not None:
        request = REGISTRY["container-input-dropped"]().for_request(ctx, src, proto, dport)
        if request is not None:
            # The traced request is what its INPUT drops here; the same rule may drop the
            # answers to the destination's own requests too, which is not this trace's fault.
            found = [f for f in found if f.id != "container-input-dropped"] + [request]
    if ctx is not None:
        found += _holds_the_source(snap.containers[0], ctx, src)
    return [with_side(f, side="destination") for f in found]


def _holds_the_source(facts, ctx, src: str) -> list:
    """The destination holds the source's own address: it answers the source inside itself
    (and either of the two may answer ARP for the address). Which one holds it wrongly only
    their owners know: the finding shows both addresses."""
    from netdoctor.checks import REGISTRY

    held = [l.name for l in facts.namespace.links if not l.is_loopback
            for a in l.addresses if a.local == src]
    if not held:
        return []
    return [REGISTRY["ip-conflict"]().finding(
        ctx, f"{ctx.subject} holds {src}, the source's own address, on {held[0]}: its answers "
             f"to {src} stay inside it, and either container may answer ARP for it",
        {"interface": held[0], "address": src, "container_ip": ctx.address},
        "{in_container}ip -br addr show dev " + held[0], verify=True)]


# ------------------------------------------------------------------ observe

@dataclass
class Observation:
    captures: list  # HopCapture, with their frames
    kernel: KernelTrace
    results: object  # ProbeResult of the probe
    big: object  # ProbeResult of the full-size don't-fragment echo, when one was sent
    counters_after: object  # the host's Ruleset after the probe, or None
    degraded: list  # evidence that could not be had, one line each
    far: Optional[dict] = None  # the far host's agent's collect answer (--peer)
    nftrace: Optional[list] = None  # capture.nftrace.NsTrace per namespace (--allow-trace-rules)


@dataclass
class FarSide:
    """The far host of an overlay path, observed through its agent (--peer)."""

    peer: object  # host.peer.Peer, open for the probe window
    hops: list  # the agent's hop dicts (role, name, ifindex, netns...)
    collected: Optional[dict] = None  # the agent's collect answer, after the probe
    checks: str = "ok"  # whether the far host's own checks were read


class _NoNextHost(Exception):
    pass


def _far_side(plan: Plan, aim: Aim, spec: str, ssh_config: Optional[str], stack) -> FarSide:
    """Connect to the far host (the remote VTEP the path found, with --peer auto) and ask
    for its hops: the underlay device the encapsulated probe arrives on, its VXLAN device,
    its bridge, the destination's veth and interface."""
    from ..host.peer import Peer

    try:
        spec, vtep = discover.next_host(plan.path["hops"], spec)
    except UsageError as e:
        if any(h["role"] in ("tunnel", "uplink") for h in plan.path["hops"]):
            # The path would leave this host, and does not get that far (no VTEP for the
            # destination, no route): the trace goes on, and says the far host was not asked.
            raise _NoNextHost("--peer: the path does not reach a next host from here (see "
                              "the path's notes): the far host was not asked") from e
        raise
    peer = stack.enter_context(Peer(spec, ssh_config))
    hops = peer.ask({"op": "far_path", "dst": aim.address, "src": plan.flow.src,
                     "vtep": vtep, "tunnel_port": plan.tunnel_port,
                     "vni": plan.tunnel_vni})["hops"]
    try:
        plan.findings += _far_findings(peer, hops, plan, aim)
        checked = "ok"
    except PeerError as e:  # the far host's checks are evidence, not a requirement
        checked = f"not run: {e}"
    return FarSide(peer, hops, checks=checked)


def _far_findings(peer, hops: list, plan: Plan, aim: Aim) -> list:
    """The far host's own checks for the destination it found, toward the probe's source:
    a fault that exists only there (its route back, its firewall) is named by its check.
    Their subjects say which host they are about; their commands are for that host."""
    from dataclasses import replace as with_where

    from netdoctor.checks import Finding

    dest = next((h for h in hops if h["role"] == "destination"), None)
    if dest is None or not plan.flow.src:
        return []
    answer = peer.ask({"op": "findings", "netns_path": dest["netns_path"],
                       "netns_name": dest.get("netns_name"), "toward": plan.flow.src,
                       "proto": aim.proto, "dport": aim.dport})
    there = peer.there
    out = []
    for f in map(Finding.from_dict, answer["findings"]):
        # A whole command runs there as one argument (its pipes and `;` included); the
        # runbook's per-command prefixes get the same way there in front of them.
        wrapped = {k: peer.command(v) if v else v for k, v in (("fix", f.fix),
                                                                ("verify", f.verify))}
        names = dict(f.vars, **{k: there + f.vars.get(k, "") for k in
                                ("in_host", "in_container")})
        out.append(with_where(f, side="destination", subject=f"{f.subject} on {peer.where}",
                              vars=names, **wrapped))
    return out


def observe(target, plan: Plan, timeout: float, count: int,
            far: Optional[FarSide] = None, trace_rules: bool = False,
            ahead: Optional[Ahead] = None) -> Observation:
    flow = plan.flow
    routers = tuple(h["ifindex"] for h in plan.path["hops"]
                    if h["role"] in ("bridge", "host-veth") + HOST_EGRESS_ROLES)
    icmp = 58 if ":" in flow.dst else 1  # (IPv6 lookups have their own tracepoint: none read)
    journal = JournalFilter({"icmp": icmp, "tcp": 6, "udp": 17}[flow.kind], flow.sport or None,
                            routers)
    captures, kt = plan.new_captures(), KernelTrace(plan.lengths, journal, ahead)
    path_devices = {h["name"] for h in plan.path["hops"]}

    def all_dropped(sent: int) -> bool:
        # Stop waiting once the kernel has dropped every probe on the path: no reply can
        # come, and the evidence is in. (A silent loss further away still waits it out.)
        return E.all_probes_dropped(kt.peek(), plan.lengths, path_devices, plan.foreign_ports,
                                    sent)

    if far is not None:  # armed first: the far side must be watching when the probe leaves
        far.peer.ask({"op": "arm", "hops": far.hops, "program": plan.program,
                      "tunnel_program": plan.tunnel_program, "tunnel_port": plan.tunnel_port,
                      "lengths": list(plan.lengths)})
    counting = []  # the rule counters' programs, started as soon as the probes are answered

    def probe_then_count():
        answered = _send_probes(target, plan, timeout, count, all_dropped)
        if plan.host_ns is not None:
            # They run while the window closes (removing the tracefs instance waits ~50 ms
            # for the kernel), and are read after it.
            with contextlib.suppress(Exception):
                counting.append(netns.call_in(plan.host_ns, gather.RulesSoon, plan.host_ns))
        return answered

    with contextlib.ExitStack() as window:
        rule_trace = window.enter_context(_rule_trace(target, plan)) if trace_rules else None
        try:
            results, big = capture_around(captures, plan.program_for, kt, probe_then_count)
        except BaseException:
            for soon in counting:
                soon.close()
            raise
    if rule_trace is not None:
        for t in rule_trace.traces:
            t.passages = parse_trace(t.lines)
            rule_trace.list_chains(t, {(s.family, s.table, s.chain) for p in t.passages
                                       for s in p.steps if s.handle is not None
                                       and not s.table.startswith(OWN_TABLE_PREFIX)})
    if far is not None:
        far.collected = far.peer.ask({"op": "collect"})
        far.collected["where"] = far.peer.where
        far.collected["checks"] = far.checks
    _still_there(target, plan)
    degraded = [f"kernel drop reasons not read: {kt.unavailable}"] if kt.unavailable else []
    counters_after = None
    if plan.host_ns is not None:
        try:
            counters_after = (counting[0].ruleset() if counting
                              else gather.read_netfilter(plan.host_ns))
        except Exception as e:  # counters are evidence, not a requirement
            degraded.append(f"rule counters not read after the probe: {e}")
    if rule_trace is not None:
        degraded += [f"nftrace in {t.ns.label}: {t.error}" for t in rule_trace.traces if t.error]
    return Observation(captures, kt, results, big, counters_after, degraded,
                       far.collected if far is not None else None,
                       rule_trace.traces if rule_trace is not None else None)


def _rule_trace(target, plan: Plan):
    """The nftrace tables for every namespace of this host the probe crosses."""
    from netdoctor.capture.nftrace import RuleTrace, marking_rules

    spaces = [target.netns] + [hop_netns(plan.path, h) for h in plan.path["hops"]]
    flow = plan.flow
    return RuleTrace(spaces, marking_rules(flow.kind, flow.cookie, flow.sport))


def _send_probes(target, plan: Plan, timeout: float, count: int, all_dropped) -> tuple:
    """(result, full-size result or None): the bounded probes, sent from the container."""
    flow, big = plan.flow, None
    if flow.kind == "icmp":
        headers = 48 if ":" in flow.dst else 28  # IP and ICMP headers around the payload
        results = netns.call_in(target.netns, P.icmp_echo, flow.dst, plan.ident, flow.cookie,
                                ICMP_PAYLOAD, count, timeout, False, all_dropped)
        if results.outcome == "reply":
            big = netns.call_in(target.netns, P.icmp_echo, flow.dst, plan.ident, flow.cookie,
                                plan.mtu - headers, 1, timeout, True)
        return results, big
    if flow.kind == "tcp":
        results = netns.call_in(target.netns, P.tcp_connect, flow.dst, flow.dport, flow.sport,
                                timeout, all_dropped)
        # Closing the probe socket sends a RST that the host forwards from its backlog, after
        # close() has returned. Every other probe sends nothing after its answer, and each
        # hop's tap queued a frame before the frame could go on: by the time the answer is
        # in the container, every hop has captured it.
        time.sleep(SETTLE)
        return results, None
    return netns.call_in(target.netns, P.dns_query, flow.dst, plan.dns_name, flow.sport,
                         timeout, all_dropped), None


def _still_there(target, plan: Plan) -> None:
    """Evidence about a path that changed while it was gathered describes no configuration
    that exists: say so instead of giving a verdict."""
    if not target.netns.present():
        raise _gone(target)
    vanished = [f"{h['name']} ({hop_netns(plan.path, h).label})" for h in plan.path["hops"]
                if not _hop_present(plan.path, h)]
    if vanished:
        raise PathChanged(f"{', '.join(vanished)} went away during the trace; what was seen "
                          f"describes a path that no longer exists: run the trace again")


# ------------------------------------------------------------------ evidence

@dataclass
class Evidence:
    sightings: list  # HopSighting, container first
    hops: E.HopVerdict
    drops: list  # (reason, location, last device) of the probe's freed skbs
    hits: list  # dropping rules whose counters moved
    used: tuple  # the sources the verdict rests on
    pmtu: Optional[dict]
    summary: dict  # TraceReport.evidence
    port_closed: bool = False  # the destination answered "port unreachable"


def read_evidence(plan: Plan, seen: Observation) -> Evidence:
    flow, kt, results = plan.flow, seen.kernel, seen.results
    hops = plan.path["hops"]
    sightings = [E.sight(c.role, c.name, c.netns.label, c.frames, flow, c.error,
                         E.asking_addresses(hops, i), _observes(hops, i))
                 for i, c in enumerate(seen.captures)]
    summary = {"captures": "ok", "tracefs": kt.unavailable or f"{len(kt.events)} kernel events",
               "counters": None}
    degraded = list(seen.degraded)
    if any(c.error for c in seen.captures):
        summary["captures"] = "; ".join(c.error for c in seen.captures if c.error)
        degraded.append(f"capture incomplete: {summary['captures']}")
    far_drops = []
    if seen.far is not None:
        far_sightings, far_drops = _far_sightings(seen.far, flow, plan.tunnel_port)
        sightings += far_sightings
        summary["peer"] = {"where": seen.far["where"], "tracefs": seen.far.get("tracefs"),
                           "checks": seen.far.get("checks"),
                           "note": "the far host's hops are ordered by the probe's tag, "
                                   "not by time: two hosts' clocks do not compare"}
    closed = results is not None and results.outcome == "icmp error" \
        and E.port_closed_at_destination(sightings, results.icmp_errors, flow.dst)
    refused_by = E.refused_by(sightings) \
        if results is not None and results.outcome == "refused" else None
    if refused_by is not None:
        # A refused connection is a RST or an ICMP error: which, and from whom, the
        # captures say. The destination's own refusal says the path works and the port is
        # closed there; an error from anyone else is where it stopped.
        results.detail = (f"port {flow.dport} closed (RST)" if refused_by == "rst" else
                          f"refused by an ICMP error from {refused_by}")
        closed = refused_by in ("rst", flow.dst)
    # (refused, where the captures saw neither a RST nor an error: the socket's word stands)
    replied = results is not None and (results.outcome == "reply" or (
        results.outcome == "refused" and refused_by is None)) or closed
    host_addresses = {a.split("/")[0] for h in hops
                      if h["role"] in ("host-veth", "bridge") + HOST_EGRESS_ROLES
                      for a in h.get("addresses") or ()}
    elsewhere = E.answered_elsewhere(sightings, flow.dst, host_addresses)
    if E.answered_by_host(sightings, replied, elsewhere):
        summary["answered_by_host"] = (f"the {results.detail or 'answer'} came from the host: "
                                       f"it was never seen on the uplink")
    hits = []
    if plan.counters_before is not None and seen.counters_after is not None:
        hits = rule_hits(plan.counters_before, seen.counters_after)
        summary["counters"] = f"{len(hits)} dropping rule(s) matched during the probe"
    elif plan.host_ns is not None:
        summary["counters"] = "unavailable: not read after the probe"
    used = tuple(k for k, v in (("captures", True), ("tracefs", not kt.unavailable),
                                ("counters", seen.counters_after is not None),
                                ("nftrace", seen.nftrace is not None),
                                ("checks", True)) if v)
    drops = E.probe_drops(kt.events, plan.lengths, {h["name"] for h in plan.path["hops"]},
                          plan.foreign_ports)
    drops += [d for d in far_drops if d not in drops]
    if seen.nftrace is not None:
        summary["nftrace"] = _rules_met(plan, seen)
    decided = J.entries(kt.decisions, plan.path["hops"], flow)
    summary["journal"] = decided
    summary["divergences"] = J.divergences(decided, plan.path["hops"])
    summary.update(kernel_drops=[{"reason": r, "location": loc, "last_device": dev}
                                 for r, loc, dev in drops], rule_hits=hits,
                   # What the kernel filters let through to netdoctor: a handful per probe,
                   # however busy the interfaces (and none lost for want of buffer).
                   frames_copied=sum(len(c.frames) for c in seen.captures),
                   capture_drops=sum(c.kernel_drops for c in seen.captures), degraded=degraded)
    return Evidence(sightings, E.localize(sightings, replied, elsewhere), drops, hits, used,
                    _pmtu(plan.mtu, seen.big), summary, closed)


def _rules_met(plan: Plan, seen: Observation) -> list:
    """nftables' trace of the probe's packets, per namespace, with the rules named."""
    from ..parse.nft_json import parse_nft_json
    from ..reason.nftrace import rules_met

    container = plan.facts.namespace.netns.get("inode")
    host = plan.host_ns.inode if plan.host_ns is not None else None
    met = []
    for t in seen.nftrace:
        scope = "container" if t.ns.inode == container else \
            "host" if t.ns.inode == host else "destination"
        ruleset = plan.facts.ruleset if scope == "container" else \
            seen.counters_after if scope == "host" else None
        chains = [c for doc in t.chains.values() for c in parse_nft_json(doc)]
        met += rules_met(t.ns.label, scope, t.passages, chains, ruleset, plan.flow)
    return met


def _pmtu(mtu: int, big) -> Optional[dict]:
    if big is None:
        return None
    # Told "fragmentation needed" by a router, or "message too long" by the container's own
    # kernel (which already learnt the smaller path MTU): path MTU discovery works, and the
    # path is smaller than the container's MTU, not a black hole.
    told = (big.outcome == "icmp error" and ("fragmentation needed" in (big.detail or "")
                                             or "packet too big" in (big.detail or ""))) \
        or (big.outcome == "local error" and big.error == os.strerror(errno.EMSGSIZE))
    return {"size": mtu, "dont_fragment": True, "answered": big.outcome == "reply",
            "detail": big.error or big.detail,
            "discovery_works": big.outcome == "reply" or told}


# ------------------------------------------------------------------ report

def report(plan: Plan, aim: Aim, seen: Observation, found: Evidence, verdict: V.Verdict,
           pcap_dir: Optional[str], started: float) -> TraceReport:
    if pcap_dir:
        write_pcaps(pcap_dir, seen.captures)
    r, flow = seen.results, plan.flow
    probe = {"kind": flow.kind, "port": aim.dport, "count": r.sent if r else 0,
             "replies": r.replies if r else 0, "outcome": r.outcome if r else None,
             "detail": (r.error or r.detail) if r else None,
             "rtt_ms": round(r.rtt_ms, 3) if r and r.rtt_ms else None,
             "icmp_errors": r.icmp_errors if r else [],
             "wait_cut_short": bool(r and r.cut_short),
             "tag": {"icmp_id": plan.ident, "cookie": f"{flow.cookie:08x}"}
             if flow.kind == "icmp" else {"source_port": flow.sport}}
    return TraceReport(target=plan.facts.target, destination=aim.destination, probe=probe,
                       hops=found.sightings, findings=plan.findings, verdict=verdict,
                       path=plan.path, pmtu=found.pmtu, evidence=found.summary,
                       elapsed_ms=int((time.monotonic() - started) * 1000))


# ------------------------------------------------------------------ helpers

def _far_sightings(far: dict, flow: E.Flow, tunnel_port: int) -> tuple:
    """(sightings, drops) of the far host's hops, from the frames its agent captured (the
    same parser as here: the agent runs the same version). Their times are another clock's:
    dropped, so that no order across hosts is implied."""
    from dataclasses import replace as _replace

    from netdoctor.capture.sockets import parse_frame, parse_tunnelled

    out = []
    for h in far["hops"]:
        frames = [parse_tunnelled(bytes.fromhex(f["raw"]), f["ts"], f["out"], tunnel_port)
                  if h["role"] == "far-underlay" and tunnel_port
                  else parse_frame(bytes.fromhex(f["raw"]), f["ts"], f["out"])
                  for f in h["frames"]]
        s = E.sight(h["role"], h["name"], f"{h.get('netns') or '?'} (peer)", frames, flow,
                    h.get("error"))
        out.append(_replace(s, first_seen_ns=None))
    return out, [tuple(d[:3]) for d in far.get("kernel_drops", ())]


def _observes(hops: list, i: int) -> str:
    """What hops[i]'s capture can see of the probe: the container's bridge followed by one
    of its own ports carries the probe from port to port, past its own device (a bridge the
    host routes the probe onto sends it through its device, and sees it)."""
    hop, after = hops[i], hops[i + 1] if i + 1 < len(hops) else None
    if hop["role"] == "bridge" and after is not None and after.get("master") == hop["name"] \
            and after["role"] in ("bridge-port", "tunnel"):  # (a VXLAN port: Docker's)
        return E.BRIDGED_PAST
    if hop.get("kind") in L3_TUNNELS:
        return E.NOT_DECODED
    return "all"


def hop_netns(path: dict, hop: dict) -> netns.Netns:
    inode = hop["netns_inode"]
    for ns in (path["target"]["netns"], path.get("host_netns"), path.get("far_netns")):
        if ns and ns["inode"] == inode:
            return netns.Netns.from_dict(ns)
    if hop.get("netns_path"):  # a namespace of its own (an overlay's underlay, ...)
        return netns.Netns(hop["netns_path"], inode, None if hop["netns"].startswith(
            "net:[") else hop["netns"])
    raise InternalError(f"lost track of the namespace of {hop['name']} (a bug: please report "
                        f"it, with --debug output)")


def _gone(target) -> TargetNotFound:
    return TargetNotFound(f"{target.label} went away during the trace (its network namespace "
                          f"is gone: the container exited or was removed); start it and run "
                          f"the trace again")


def _hop_present(path: dict, hop: dict) -> bool:
    try:
        return netns.has_link(hop_netns(path, hop), hop["name"], hop["ifindex"])
    except NetdoctorError:
        return False


def _check_family(facts, dst: str, findings: list) -> None:
    """An IPv6 destination needs an IPv6 address in the container (the answer a user needs
    is "it has none", not a probe that cannot be sent). A check that names why (IPv6
    switched off, its address a duplicate) makes it a verdict instead."""
    if ":" not in dst:
        return
    if any(f.severity == "error" and ("request", None) in f.blocks_at for f in findings):
        return
    has_v6 = any(a.family == "inet6" and a.scope == "global"
                 for link in facts.namespace.links for a in link.addresses)
    if not has_v6:
        raise Unresolved(f"{dst} is an IPv6 address and {facts.target['name']} has no global "
                         f"IPv6 address, so it cannot reach it; trace an IPv4 address (or a "
                         f"name with an A record) instead")


def _source6(facts, path: dict) -> str:
    """The IPv6 source the container's kernel picks: its route lookup's answer, else the
    first global IPv6 address of its interface toward the destination."""
    mine = path["target"]["netns"].get("name") or f"net:[{path['target']['netns']['inode']}]"
    for lookup in path.get("route_lookups", ()):
        if lookup.get("netns") == mine and lookup.get("prefsrc") and ":" in lookup["prefsrc"]:
            return lookup["prefsrc"]
    egress = next((h for h in path["hops"] if h["role"] == "container"), {})
    link = facts.namespace.link(ifindex=egress.get("ifindex")) if egress else None
    for a in (link.addresses if link else ()):
        if a.family == "inet6" and a.scope == "global":
            return a.local
    return ""


def probe_lengths(proto: str, mtu: int, dns_name: str, v6: bool = False) -> tuple:
    """The IP and Ethernet lengths the probe's packets have on the devices (what the kernel's
    device events report), so its skbs can be picked out of the trace."""
    ip = 40 if v6 else 20
    if proto == "icmp":
        ip_lengths = (ip + 8 + ICMP_PAYLOAD, mtu)
    elif proto == "tcp":
        ip_lengths = (ip + 40, ip + 20)  # SYN with Linux's options; a bare SYN/RST
    else:
        ip_lengths = (ip + 8 + len(dns_wire.encode_query(dns_name)[1]),)
    return tuple(sorted({n for l in ip_lengths for n in (l, l + 14)}))

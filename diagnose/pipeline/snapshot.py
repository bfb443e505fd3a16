"""take(targets) -> Snapshot: read the host and its containers once (pipeline stage 1).

Namespaces are read over rtnetlink by one thread entering each in turn; each container's
nameservers get one DNS query (the only packets `checks` sends; skipped with
probe_dns=False), sent by a forked process from the start and answered while the
namespaces are read, each target's path is discovered and the rules are read; containers
whose namespace may filter get their own rules dumped.
"""

from __future__ import annotations

import gc
from dataclasses import replace
from typing import Optional

from .. import __version__
from ..errors import MissingDependency, NetdoctorError, ParseError, UsageError
from ..facts.snapshot import (DEFAULT_DESTINATION, ContainerFacts, HostFacts,
                                               Snapshot)
from ..host import gather, netns, resolver
from ..parse import dns_wire

def _read_text(path: Optional[str]) -> Optional[str]:
    if not path:
        return None
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read(65536)
    except OSError:
        return None


# From this many containers on, the DNS probe's sender also reads namespaces (for fewer, a
# reading is over before the sender could start).
SHARED_READING = 8


def _redirects_to_itself(ruleset, facts) -> bool:
    """Whether a nat rule may send packets to this namespace itself: a REDIRECT, or a DNAT
    to one of its own addresses (whose listeners then decide). Every nat chain is looked
    at: a PREROUTING's rules are often in the chains it jumps to (Docker's DOCKER)."""
    mine = facts.held_addresses
    for chain in ruleset.chains:
        if chain.table != "nat" and chain.type != "nat":
            continue
        for rule in chain.rules:
            if rule.verdict == "redirect":
                return True
            if rule.verdict == "dnat" and rule.nat_target()[0] in mine:
                return True
    return False


def take(targets: list, destination: Optional[str] = None, probe_dns: bool = True,
         strict: bool = False, toward: Optional[dict] = None, progress=None) -> Snapshot:
    """The snapshot of targets. A target whose path cannot be read is a problem of the
    snapshot, and the others go on; strict=True raises its error instead (one target, as
    trace has: its error, with its exit status, is the answer). toward: {target label:
    destination} for targets whose path goes elsewhere (an east-west trace's destination
    container, judged on its way back to the source). progress(step, done, total) is told
    how far the reading is."""
    snap, answered = take_deferred(targets, destination, probe_dns, strict, toward, progress)
    return answered()


def take_deferred(targets: list, destination: Optional[str] = None, probe_dns: bool = True,
                  strict: bool = False, toward: Optional[dict] = None, progress=None) -> tuple:
    """(snapshot, answered): take's snapshot before its DNS probe is answered, and a call
    that waits for what is left of the probe's timeout and returns the snapshot with the
    answers (the same one each time). In between, whatever needs no answer can be judged:
    the answers wait in the sender's sockets."""
    # No cyclic collection while the facts are read: they are what it would walk (a full
    # collection amid a thousand containers' records takes ~20 ms), they make no cycles to
    # collect, and they live as long as the run: frozen, no later collection walks them.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _take_deferred(targets, destination, probe_dns, strict, toward, progress)
    finally:
        if collecting:
            gc.freeze()
            gc.enable()


def _take_deferred(targets, destination, probe_dns, strict, toward, progress) -> tuple:
    tell = progress or (lambda step, done, total: None)
    read = gather.NamespaceReader()
    me = netns.own()
    # The machine's neighbour tables before the run adds entries (the DNS probe resolves
    # the containers' gateways): their overflows during the run are counted against it.
    tables_before = gather.read_neighbour_tables(me)
    conf_texts = [_read_text(t.resolv_conf) for t in targets]
    # The nameservers are asked first, by a process of its own, and the one-second wait for
    # silent ones runs while the namespaces are read, the paths are walked and judged. The
    # queries make neighbour entries: the tables kept are those the sender read before.
    # Once its queries are out, the sender reads namespaces too, taking turns with this
    # process's reader.
    probe, shared = None, None
    namespaces = [me] + [t.netns for t in targets]
    try:
        if probe_dns and targets:
            if len(targets) >= SHARED_READING:
                try:
                    shared = gather.SharedReading(namespaces)
                except OSError:  # no memory file (seccomp, an old kernel): not shared
                    shared = None
            probe = resolver.NameserverProbe(list(zip([t.netns for t in targets], conf_texts)),
                                             first=(me,), shared=shared)
            # Where netdoctor runs is, as a rule, the containers' host: its rule programs
            # start now and print while the namespaces are read (before the queries pass
            # its rules).
            read.rules_soon = gather.RulesSoon(me)
        read.prefetch(namespaces, shared)
        if probe is not None:
            early = probe.neighbours()  # once the sender has read its part too
            if shared is not None:
                read.take_shared(shared)
            read.use_neighbours(early)
        read(me)
        # one thread walks every path, entering each namespace itself
        snap, probed = netns.hopping(_take, targets, destination, strict, toward, tell, read,
                                     me, conf_texts, tables_before)
    except BaseException:
        if probe is not None:
            probe.close()
        raise
    finally:
        read.close()
        if shared is not None:
            shared.close()
    return snap, _Answers(snap, probe, probed, tell, me, tables_before)


class _Answers:
    """The snapshot with its DNS probe's answers, waited for once (see take_deferred)."""

    def __init__(self, snap, probe, probed: list, tell, me, tables_before):
        self.snap, self.probe, self.probed, self.tell = snap, probe, probed, tell
        self.me, self.tables_before = me, tables_before
        self.done = None

    def __call__(self) -> Snapshot:
        if self.done is None:
            snap, probe = self.snap, self.probe
            try:
                if probe is not None and snap.containers:
                    self.tell("asking their nameservers", 0, 1)
                    answers = probe.results()
                    snap = replace(snap, containers=tuple(
                        replace(c, dns_probe=answers[i])
                        for c, i in zip(snap.containers, self.probed)))
                    # The machine's neighbour tables once the queries' next hops were
                    # resolved (or refused): one reading for every host, as they share them.
                    tables = gather.read_neighbour_tables(self.me, self.tables_before)
                    if tables is not None:
                        snap = replace(snap, hosts={
                            k: replace(h, neighbour_tables=tables) if h.neighbour_tables
                            is not None else h for k, h in snap.hosts.items()})
            finally:
                if probe is not None:
                    probe.close()
            self.done = snap
        return self.done


def _containers_on_bridges(containers: list, host_label: str) -> dict:
    """{(a container's address, its bridge): its MAC} for the containers on bridges of the
    host host_label: an entry of the host's that names another MAC for the address is left
    from an earlier holder, or names a second one (duplicate-address), which asking tells."""
    out = {}
    for c in containers:
        hops = c.path.get("hops") or ()
        br = next((h for h in hops if h["role"] == "bridge" and h.get("netns") == host_label),
                  None)
        me = next((h for h in hops if h["role"] == "container"), None)
        if br is None or me is None or not me.get("mac"):
            continue
        for a in me.get("addresses") or ():
            out[(a.split("/")[0], br["name"])] = me["mac"]
    return out


def _rules_if_used(target, report, own_ns) -> Optional[tuple]:
    """The container's policy rules when its own kernel refused the route to the
    destination (a rule may be why), or when it has routes in tables of its own (which only
    rules look up); None otherwise, or when they cannot be read."""
    mine = target.netns.label
    own = next((l for ns, l in report.lookups if ns == mine), None)
    refused = own is not None and own.error
    if not refused and all(r.table in ("local", "main", "default") for r in own_ns.routes):
        return None
    try:
        return gather.read_policy_rules(target.netns)
    except NetdoctorError:
        return None


def _take(targets, destination, strict, toward, tell, read, me, conf_texts, tables_before):
    """(snapshot without DNS answers, each of its containers' index among targets)."""
    containers, probe_from, problems, host_inodes = [], [], [], {me.inode: me}
    probed = []  # each container's index among targets
    asking = []  # (its namespace, its facts, its next hops): see gather.ask_neighbours
    for done, t in enumerate(targets):
        tell("reading containers", done, len(targets))
        try:
            report = discover_path(t, (toward or {}).get(t.label, destination), read)
        except NetdoctorError as e:
            if strict:
                raise
            problems.append(f"{t.label}: {e}")
            continue
        host = report.host_netns
        host_inode = host["inode"] if host else None
        if host_inode is not None and host_inode not in host_inodes:
            host_inodes[host_inode] = netns.open_path(host["path"], host.get("name"))
        conf_text = conf_texts[done]
        listeners = None
        if t.ports:  # what listens behind a published port
            try:
                listeners = gather.read_listeners(t.netns)
            except NetdoctorError as e:
                problems.append(f"{t.label}: its listening sockets: {e}")
        own = read(t.netns)
        asking.append((t.netns, own, [(l.gateway, l.dev) for label, l in report.lookups
                                      if label == t.netns.label]))
        containers.append(ContainerFacts(
            target=t.to_dict(), path=report.to_dict(), namespace=own,
            host_inode=host_inode, resolv_conf=conf_text, listeners=listeners,
            policy_rules=_rules_if_used(t, report, own)))
        probe_from.append(t.netns)
        probed.append(done)
    tell("reading containers", len(targets), len(targets))
    # Their next hops asked about together: a fleet of failed gateways costs one wait.
    containers = [replace(c, namespace=facts) if facts is not c.namespace else c
                  for c, facts in zip(containers, gather.ask_neighbours(asking))]
    containers = _with_own_rules(containers, probe_from, problems, me.inode)
    hosts = {}
    tell("reading the hosts' rules", 0, 1)
    agents = gather.overlay_agents()  # once for every host of the snapshot
    for inode, ns in host_inodes.items():
        try:
            facts, = gather.ask_neighbours([(ns, read(ns), [
                (l.get("gateway"), l.get("dev")) for c in containers
                for l in c.path.get("route_lookups", ()) if l.get("netns") == ns.label],
                _containers_on_bridges(containers, ns.label))])
            tunnels = [l.name for l in facts.tunnels]
            ruleset = read.netfilter(ns)
            hosts[str(inode)] = HostFacts(facts, ruleset,
                                          gather.read_tc_hooks(ns),
                                          gather.read_intent(ns, agents),
                                          gather.read_offloads(ns, tunnels),
                                          gather.read_neighbour_tables(ns, tables_before),
                                          gather.read_policy_rules(ns),
                                          gather.read_listeners(ns)
                                          if _redirects_to_itself(ruleset, facts) else None)
        except MissingDependency:
            raise  # no rule reader at all: every verdict about rules would be a guess
        except NetdoctorError as e:
            problems.append(f"host {ns.label}: {e}")
    meta = dict(gather.machine_facts(), netdoctor=__version__)
    return Snapshot(hosts=hosts, containers=tuple(containers), own_inode=me.inode,
                    destination=destination or DEFAULT_DESTINATION, meta=meta,
                    problems=tuple(problems)), probed


def _can_filter(tables: tuple) -> bool:
    """Whether netfilter tables may hold a rule that drops what the container sends. nat
    tables cannot (Docker's DNS redirection lives there, in every container of a
    user-defined network); a native nft table's chain types are only known by reading it."""
    return any(not t.endswith(" nat") for t in tables)


def _with_own_rules(containers: list, namespaces: list, problems: list, own_inode: int) -> list:
    """The containers, each with its own firewall rules where its namespace may filter."""
    todo = [i for i, c in enumerate(containers)
            if _can_filter(c.namespace.netfilter_tables)
            and c.namespace.netns.get("inode") not in (c.host_inode, own_inode)]
    if not todo:
        return containers

    def read(i):
        try:
            return i, gather.read_netfilter(namespaces[i]), None
        except NetdoctorError as e:
            return i, None, f"{containers[i].label}: its own firewall rules: {e}"

    from concurrent.futures import ThreadPoolExecutor

    out = list(containers)
    with ThreadPoolExecutor(max_workers=min(8, len(todo))) as pool:
        for i, ruleset, why in pool.map(read, todo):
            if why:
                problems.append(why)
            else:
                out[i] = replace(out[i], ruleset=ruleset)
    return out


def _resolve_in_each(chosen: list, name: str) -> tuple:
    """({target label: address}, [problem]) for a destination name, asked from inside each
    container at once (a container where it does not resolve is judged for the default
    destination, and says so)."""
    from concurrent.futures import ThreadPoolExecutor

    from ..errors import Unresolved
    from .path import choose_address

    def one(t):
        try:
            found = resolver.resolve_for(t, name)
            return t.label, choose_address(t, found)["address"], None  # as trace picks
        except (Unresolved, NetdoctorError) as e:
            return t.label, None, f"{t.label}: --dest {name} did not resolve there ({e}); " \
                                  f"judged for {DEFAULT_DESTINATION} instead"

    toward, problems = {}, []
    if not chosen:
        return toward, problems
    with ThreadPoolExecutor(max_workers=min(32, len(chosen))) as pool:
        for label, address, problem in pool.map(one, chosen):
            if address:
                toward[label] = address
            else:
                problems.append(problem)
    return toward, problems


def discover_path(target, destination: Optional[str], read):
    from . import path as discover

    return discover.discover(target, destination or DEFAULT_DESTINATION, read=read)


def of_targets(refs, all_containers: bool, destination: Optional[str],
               probe_dns: bool, progress=None) -> Snapshot:
    """The snapshot `checks` and `snapshot` take: the named targets, or every running
    container when none is named (or with all_containers)."""
    snap, answered = of_targets_deferred(refs, all_containers, destination, probe_dns,
                                         progress)
    return answered()


def of_targets_deferred(refs, all_containers: bool, destination: Optional[str],
                        probe_dns: bool, progress=None) -> tuple:
    """of_targets as (snapshot, answered): see take_deferred."""
    from .. import targets

    if destination is not None and not (dns_wire.is_address(destination)
                                        or dns_wire.is_host_name(destination)):
        raise UsageError(f"--dest '{destination}' is neither an IP address nor a host name")
    chosen = [targets.resolve(ref) for ref in refs or ()]
    problems = []
    if not refs or all_containers:
        more, problems = targets.all_running()
        seen = {t.netns.inode for t in chosen}
        chosen += [t for t in more if t.netns.inode not in seen]
    toward = None
    if destination is not None and not dns_wire.is_address(destination):
        # A name is resolved inside each container, as its own libc would (and as trace
        # does): containers with different resolvers may reach different addresses.
        toward, unresolved = _resolve_in_each(chosen, destination)
        problems = list(problems) + unresolved
        destination = None
    snap, answered = take_deferred(chosen, destination=destination, probe_dns=probe_dns,
                                   toward=toward, progress=progress)
    outer = _outer_hosts(snap, chosen)
    if outer is not None:
        first = answered
        snap = _with_outer(snap, outer)
        answered = lambda: _with_outer(first(), outer)  # noqa: E731
    if not problems:
        return snap, answered

    def with_problems(s: Snapshot) -> Snapshot:
        return replace(s, problems=s.problems + tuple(problems))
    return with_problems(snap), lambda: with_problems(answered())


def _outer_hosts(snap: Snapshot, taken: list) -> Optional[Snapshot]:
    """The snapshot of the hosts of snap's containers that are themselves containers of an
    outer host on this machine (path.outer_host: a kind node, Docker in Docker), each as a
    container toward its containers' destination: their way beyond is this machine's and
    is judged too. None when there is none."""
    from . import path as discover

    seen = {t.netns.inode for t in taken}
    found, level = [], snap
    for _ in range(discover.MAX_OUTWARD):
        nodes, toward = [], {}
        for c in level.containers:
            host = c.path.get("host_netns")
            dest = (c.path.get("destination") or {}).get("address")
            if not host or not dest or host["inode"] in seen:
                continue
            seen.add(host["inode"])
            try:
                ns = netns.open_path(host["path"], host.get("name"))
            except NetdoctorError:
                continue
            outer = discover.outer_host(c.path, ns, dest)
            if outer is not None:
                nodes.append(outer[0])
                toward[outer[0].label] = dest
        if not nodes:
            break
        level = take(nodes, probe_dns=False, toward=toward)
        found.append(level)
    if not found:
        return None
    return Snapshot(hosts={k: h for s in found for k, h in s.hosts.items()},
                    containers=tuple(c for s in found for c in s.containers),
                    problems=tuple(p for s in found for p in s.problems))


def _with_outer(snap: Snapshot, outer: Snapshot) -> Snapshot:
    """snap with the outer hosts' containers and hosts added (see _outer_hosts)."""
    return replace(snap, hosts={**outer.hosts, **snap.hosts},
                   containers=snap.containers + outer.containers,
                   problems=snap.problems + outer.problems)


def from_file(path: str) -> Snapshot:
    """A snapshot saved by `netdoctor snapshot`, validated field by field."""
    import json

    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise UsageError(f"no such file: {path}") from None
    except (OSError, ValueError) as e:
        raise UsageError(f"cannot read snapshot {path}: {e}") from None
    try:
        return Snapshot.from_dict(data)
    except ParseError as e:
        raise UsageError(f"{path}: {e}") from None

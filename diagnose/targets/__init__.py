"""resolve(TARGET) -> Target: from what the user typed to the network namespace to examine.

TARGET forms, as the README documents them:
  docker:NAME|ID   podman:NAME|ID   containerd:ID   lab:NAME
  pid:N            netns:NAME       NAME or ID prefix (every runtime, then the lab, then `ip netns`)

A bare name is looked up everywhere; when it matches in more than one place of the same
kind, the error lists the matches with the prefix that picks each one.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from typing import Optional

from ..host import netns
from ..errors import (MissingDependency, NetdoctorError, NoPermission,
                                       TargetNotFound, UsageError)
from .records import ContainerRecord, port_bindings

RUNTIME_NAMES = ("docker", "podman", "containerd")
PREFIXES = RUNTIME_NAMES + ("lab", "pid", "netns")


@dataclass(frozen=True)
class Target:
    ref: str  # what the user typed
    kind: str  # "docker", "podman", "containerd", "lab", "pid", "netns"
    name: str
    netns: netns.Netns
    id: Optional[str] = None
    pid: Optional[int] = None
    network_mode: Optional[str] = None  # the runtime's word for it, when it has one
    shares_with: Optional[str] = None  # container whose namespace this one joined (container:X)
    host_netns: Optional[netns.Netns] = None  # known host (the lab's); else discovered
    resolv_conf: Optional[str] = None
    hosts_file: Optional[str] = None  # read before the nameservers (hosts(5))
    notes: tuple = field(default_factory=tuple)
    ports: tuple = ()  # PortBinding: what the runtime publishes (and the port a user asked)
    # The nameservers the runtime was told to use for it (`docker run --dns`): Docker's
    # embedded DNS server forwards its queries to them.
    dns_servers: tuple = ()

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.name}"

    def to_dict(self) -> dict:
        return {
            "ref": self.ref,
            "kind": self.kind,
            "name": self.name,
            "id": self.id,
            "pid": self.pid,
            "netns": self.netns.to_dict(),
            "network_mode": self.network_mode,
            "shares_with": self.shares_with,
            "ports": [p if isinstance(p, dict) else p.to_dict() for p in self.ports],
        }


# ------------------------------------------------------------------ runtimes

def _runtime(name: str):
    if name == "docker":
        from . import docker as mod
    elif name == "podman":
        from . import podman as mod
    else:
        from . import containerd as mod
    return mod


_ENDPOINT_HINT = {"docker": "set DOCKER_HOST if it listens elsewhere",
                  "podman": "set CONTAINER_HOST if it listens elsewhere",
                  "containerd": "set CONTAINERD_ADDRESS if it listens elsewhere"}


def _list_runtime(name: str, explicit: bool) -> tuple:
    """(records, why-not). With explicit=True an unusable runtime is an error."""
    mod = _runtime(name)
    why = mod.unavailable()
    if why:
        if explicit:
            if why.startswith("permission denied"):
                raise NoPermission(f"{name}: {why} (run netdoctor as root, or as a member of "
                                   f"the group that owns the socket)")
            raise MissingDependency(f"{name} is not usable here: {why} (is the daemon "
                                    f"running? {_ENDPOINT_HINT.get(name, '')})".replace(
                                        "? )", "?)"))
        return [], why
    try:
        return mod.containers(), None
    except NetdoctorError as e:
        if explicit:
            raise
        return [], str(e)


def _match_records(records: list, key: str) -> list:
    exact = [r for r in records if r.name == key or r.id == key]
    if exact:
        return exact
    if all(c in "0123456789abcdef" for c in key.lower()) and key:
        return [r for r in records if r.id.startswith(key.lower())]
    return []


def _from_record(ref: str, rec: ContainerRecord, all_records: list) -> Target:
    mod = _runtime(rec.runtime)
    if not rec.running:
        raise TargetNotFound(
            f"{rec.runtime} container '{rec.name}' is not running ({rec.status or 'stopped'}): "
            f"it has no network namespace; start it first"
        )
    info = mod.inspect(rec) if rec.runtime != "containerd" else {}
    pid = rec.pid or mod.pid_of(rec)
    if not pid:
        raise TargetNotFound(f"{rec.runtime} did not report a process for container '{rec.name}'")
    mode = rec.network_mode or ((info.get("HostConfig") or {}).get("NetworkMode"))
    shares_with = None
    if mode and mode.startswith("container:"):
        other = mode.split(":", 1)[1]
        match = _match_records(all_records, other)
        shares_with = match[0].name if match else other
    return Target(
        ref=ref,
        kind=rec.runtime,
        name=rec.name,
        id=rec.id,
        pid=pid,
        netns=netns.of_pid(pid),
        network_mode=mode,
        shares_with=shares_with,
        resolv_conf=f"/proc/{pid}/root/etc/resolv.conf",
        hosts_file=f"/proc/{pid}/root/etc/hosts",
        ports=port_bindings(info),
        dns_servers=_dns_servers(info),
    )


def _dns_servers(info) -> tuple:
    """HostConfig.Dns of an inspect answer: the addresses among them."""
    import ipaddress

    servers = (info.get("HostConfig") or {}).get("Dns") if isinstance(info, dict) else None
    out = []
    for s in servers if isinstance(servers, list) else ():
        if not isinstance(s, str):
            continue
        try:
            out.append(str(ipaddress.ip_address(s)))
        except (TypeError, ValueError):
            continue
    return tuple(out)


# ------------------------------------------------------------------ lab, pid, netns

def _lab_target(ref: str, name: str) -> Optional[Target]:
    from ..lab import control
    from ..lab import layout as L

    if name not in L.CONTAINERS or L.container_ns(name) not in control.present_namespaces():
        return None
    shape = (control.read_state() or {}).get("shape") or "bridge"
    ports = ()
    if name == L.PUBLISHED_CONTAINER and control.publishes(shape):
        from .records import PortBinding

        host_ip = (control.read_state() or {}).get("publish_ip") or L.UPLINK_ADDRESS
        ports = (PortBinding(L.PUBLISHED_HOST_PORT, L.PUBLISHED_PORT, "tcp", host_ip),)
        if shape == "bridge" and host_ip == L.UPLINK_ADDRESS:  # and on IPv6, like Docker
            ports += (PortBinding(L.PUBLISHED_HOST_PORT, L.PUBLISHED_PORT, "tcp",
                                  L.UPLINK_ADDRESS6),)
    return Target(
        ref=ref,
        kind="lab",
        name=name,
        netns=netns.named(L.container_ns(name)),
        network_mode=shape,
        ports=ports,
        host_netns=netns.named(L.HOST_NS),
        resolv_conf=L.resolv_conf_path(name),
        hosts_file=netns_etc_file(L.container_ns(name), "hosts"),
    )


def netns_etc_file(name: str, file: str) -> str:
    """The file a program run by `ip netns exec NAME` reads as /etc/FILE: the namespace's
    own copy in /etc/netns/NAME when there is one, else the machine's."""
    own = f"/etc/netns/{name}/{file}"
    return own if os.path.exists(own) else f"/etc/{file}"


def _netns_target(ref: str, name: str) -> Target:
    return Target(ref=ref, kind="netns", name=name, netns=netns.named(name),
                  resolv_conf=netns_etc_file(name, "resolv.conf"),
                  hosts_file=netns_etc_file(name, "hosts"))


def _pid_target(ref: str, value: str) -> Target:
    try:
        pid = int(value)
    except ValueError:
        raise UsageError(f"'{ref}': pid: takes a process id, e.g. pid:1234") from None
    return Target(ref=ref, kind="pid", name=str(pid), pid=pid, netns=netns.of_pid(pid),
                  resolv_conf=f"/proc/{pid}/root/etc/resolv.conf",
                  hosts_file=f"/proc/{pid}/root/etc/hosts")


# ------------------------------------------------------------------ resolve

def resolve(ref: str) -> Target:
    ref = ref.strip()
    if not ref:
        raise UsageError("TARGET is empty: give a container name or ID, pid:N or netns:NAME")
    prefix, sep, rest = ref.partition(":")
    if sep and prefix in PREFIXES:
        if not rest:
            raise UsageError(f"'{ref}': nothing after '{prefix}:'")
        return _resolve_prefixed(ref, prefix, rest)
    return _resolve_bare(ref)


def _resolve_prefixed(ref: str, prefix: str, rest: str) -> Target:
    if prefix == "pid":
        return _pid_target(ref, rest)
    if prefix == "netns":
        return _netns_target(ref, rest)
    if prefix == "lab":
        t = _lab_target(ref, rest)
        if t is None:
            from ..lab import layout as L
            raise TargetNotFound(
                f"no lab container '{rest}' (lab containers: {', '.join(L.CONTAINERS)}; "
                f"is the lab up? `netdoctor lab up`)"
            )
        return t
    records, _ = _list_runtime(prefix, explicit=True)
    matches = _match_records(records, rest)
    if len(matches) == 1:
        return _from_record(ref, matches[0], records)
    if len(matches) > 1:
        raise TargetNotFound(_ambiguous(ref, matches))
    raise TargetNotFound(_unknown(rest, [r.name for r in records], [],
                                  what=f"no {prefix} container"))


def _all_records() -> tuple:
    """(records, unusable): the containers of every runtime present, each once, and the
    runtimes that refused us (a missing runtime is no problem)."""
    from concurrent.futures import ThreadPoolExecutor

    # Each runtime is a socket round trip or a CLI run (podman ps: 30 ms): ask them all at once.
    with ThreadPoolExecutor(max_workers=len(RUNTIME_NAMES)) as pool:
        listed = list(pool.map(lambda name: _list_runtime(name, explicit=False), RUNTIME_NAMES))
    records, unusable = [], []
    for name, (recs, why) in zip(RUNTIME_NAMES, listed):
        records.extend(recs)
        if why and "permission denied" in why:
            unusable.append(f"{name}: {why}")
    # containerd lists Docker's own containers too (namespace "moby"): keep Docker's view.
    docker_ids = {r.id for r in records if r.runtime == "docker"}
    return [r for r in records if not (r.runtime == "containerd" and r.id in docker_ids)], unusable


def _resolve_bare(ref: str) -> Target:
    all_records, unusable = _all_records()
    matches = _match_records(all_records, ref)
    if len(matches) == 1:
        return _from_record(ref, matches[0], all_records)
    if len(matches) > 1:
        raise TargetNotFound(_ambiguous(ref, matches))
    lab = _lab_target(ref, ref)
    if lab is not None:
        return lab
    named = [n.name for n in netns.list_named()]
    if ref in named:
        return _netns_target(ref, ref)
    candidates = [r.name for r in all_records] + named + _lab_names()
    raise TargetNotFound(_unknown(ref, candidates, unusable))


def _lab_names() -> list:
    from ..lab import control
    from ..lab import layout as L

    present = control.present_namespaces()
    return [n for n in L.CONTAINERS if L.container_ns(n) in present]


def _ambiguous(ref: str, matches: list) -> str:
    listed = ", ".join(sorted(f"{m.runtime}:{m.name} ({m.id[:12]})" for m in matches))
    return f"'{ref}' is ambiguous: it matches {listed}; name one with its prefix"


def _unknown(ref: str, candidates: list, unusable: list,
             what: str = "no container, lab container or network namespace") -> str:
    close = difflib.get_close_matches(ref, sorted(set(candidates)), n=5, cutoff=0.5)
    msg = f"{what} named '{ref}'"
    if close:
        msg += f"; did you mean: {', '.join(close)}?"
    if unusable:
        msg += f" (not asked: {'; '.join(unusable)})"
    return msg


def holding(inode: int, address: str) -> Optional[Target]:
    """The container, of a runtime or of the lab, whose network namespace is inode (one that
    holds address): found by the address its runtime lists for it or by its listed pid,
    each confirmed by its namespace. None when no runtime or lab container is that one."""
    for name in _lab_names():
        t = _lab_target(f"lab:{name}", name)
        if t is not None and t.netns.inode == inode:
            return t
    try:
        records, _ = _all_records()
    except NetdoctorError:
        return None
    for rec in records:
        if not rec.running or (address not in rec.addresses and not rec.pid):
            continue
        if rec.pid and address not in rec.addresses:
            try:  # (the listing gave its pid: its namespace is one stat away)
                if netns.of_pid(rec.pid).inode != inode:
                    continue
            except NetdoctorError:
                continue
        try:
            t = _from_record(f"{rec.runtime}:{rec.name}", rec, records)
        except NetdoctorError:
            continue
        if t.netns.inode == inode:
            return t
    return None


def all_running() -> tuple:
    """(targets, problems): every running container the runtimes report, and the lab's."""
    found = []
    records, problems = _all_records()
    for rec in records:
        if not rec.running:
            continue
        try:
            found.append(_from_record(f"{rec.runtime}:{rec.name}", rec, records))
        except NetdoctorError as e:  # it stopped since the listing, or has no process
            problems.append(f"{rec.ref}: {e}")
    for name in _lab_names():
        t = _lab_target(f"lab:{name}", name)
        if t is not None:
            found.append(t)
    return found, problems

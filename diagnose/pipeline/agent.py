"""`netdoctor agent`: the far host's half of a trace across hosts, spoken over one pipe
(an ssh session, or `ip netns exec` in the lab) as JSON lines: one request per line on
stdin, one answer per line on stdout. It runs in the far host's own network namespace and
only reads and captures there; it sends no packet.

  {"op": "hello", "version": V}           the same version, or a refusal
  {"op": "far_path", "dst", "src", "vtep", "tunnel_port", "vni"}
                                          this host's hops for the probe: the device holding
                                          the VTEP address (or, routed, the address the near
                                          host sends to), the VXLAN device,
                                          the device the kernel routes dst to, the
                                          destination's host veth and its own interface
  {"op": "findings", "netns_path", "netns_name", "toward", "proto", "dport"}
                                          this host's checks, judging the destination's
                                          namespace on its way back to `toward` (the
                                          probe's source): the far end's own faults
  {"op": "arm", "hops", "program", "tunnel_program", "lengths"}
                                          captures on those hops (and tracefs), armed
  {"op": "collect"}                       the frames each hop saw, the kernel's drops
  {"op": "bye"}
"""

from __future__ import annotations

import json
import sys
from typing import Optional

from netdoctor.capture.sockets import Closing, HopCapture
from netdoctor.capture.tracefs import KernelTrace
from .. import __version__
from ..errors import NetdoctorError
from ..host import gather, netns
from ..reason import evidence as E


class Agent:
    def __init__(self):
        self.captures: list = []
        self.kernel: Optional[KernelTrace] = None
        self.lengths: tuple = ()

    def handle(self, req: dict) -> dict:
        op = req.get("op")
        if op == "hello":
            if req.get("version") != __version__:
                return {"ok": False, "error": f"the peer runs netdoctor {__version__}, this "
                                              f"side {req.get('version')}: run the same "
                                              f"version on both"}
            return {"ok": True, "version": __version__, "netns": netns.own().label}
        if op == "far_path":
            vni = req.get("vni")
            return {"ok": True, "hops": far_path(req["dst"], req.get("src"), req["vtep"],
                                                 int(req.get("tunnel_port") or 0),
                                                 int(vni) if vni is not None else None)}
        if op == "findings":
            return {"ok": True, "findings": [f.to_dict() for f in findings(req)]}
        if op == "arm":
            return self.arm(req)
        if op == "collect":
            return self.collect()
        if op == "bye":
            self.release()
            return {"ok": True}
        return {"ok": False, "error": f"unknown request {op!r}"}

    def arm(self, req: dict) -> dict:
        self.release()
        program = [tuple(i) for i in req["program"]]
        tunnel_program = [tuple(i) for i in req.get("tunnel_program") or req["program"]]
        port = int(req.get("tunnel_port") or 0)
        for h in req["hops"]:
            ns = netns.open_path(h["netns_path"], h.get("netns_name"))
            c = HopCapture(h["role"], h["name"], ns, h["ifindex"],
                           tunnel_port=port if h["role"] == "far-underlay" else 0)
            c.arm(tunnel_program if c.tunnel_port else program)
            self.captures.append(c)
        self.lengths = tuple(req.get("lengths") or ())
        if self.lengths:
            self.kernel = KernelTrace(self.lengths)
            try:
                self.kernel.__enter__()
            except Exception:  # tracefs is evidence, not a requirement
                self.kernel = None
        return {"ok": True, "errors": [c.error for c in self.captures if c.error]}

    def collect(self) -> dict:
        for c in self.captures:
            c.drain()
        drops, unavailable = [], None
        if self.kernel is not None:
            self.kernel.__exit__(None, None, None)
            unavailable = self.kernel.unavailable
            drops = E.probe_drops(self.kernel.events, self.lengths,
                                  {c.name for c in self.captures})
            self.kernel = None
        hops = [{"role": c.role, "name": c.name, "error": c.error, "netns": c.netns.label,
                 "frames": [{"ts": f.ts_ns, "out": f.outgoing, "raw": f.raw.hex()}
                            for f in c.frames]} for c in self.captures]
        self.release()
        return {"ok": True, "hops": hops, "kernel_drops": [list(d) for d in drops],
                "tracefs": unavailable or "ok"}

    def release(self) -> None:
        if self.kernel is not None:
            self.kernel.__exit__(None, None, None)
            self.kernel = None
        Closing(self.captures).join()
        self.captures = []


def findings(req: dict) -> list:
    """The checks of this host and of the destination's namespace on it, toward the probe's
    source: what a user would run here with `netdoctor checks netns:... --dest SOURCE`."""
    from ..targets import Target
    from .trace import destination_findings

    ns = netns.open_path(req["netns_path"], req.get("netns_name"))
    # Its host is found as for any target (its veth's peer): this namespace, or a sandbox
    # of its own (Docker's overlay).
    target = Target(ref=ns.label, kind="netns", name=ns.label, netns=ns)
    return destination_findings(target, req["toward"], req.get("proto") or "icmp",
                                req.get("dport"), with_host=True)


def _hop(role: str, link, ns) -> dict:
    return {"role": role, "name": link.name, "ifindex": link.ifindex, "netns": ns.label,
            "netns_path": ns.path, "netns_name": ns.name, "netns_inode": ns.inode,
            "kind": link.kind, "addresses": [str(a) for a in link.addresses
                                             if a.scope == "global"], "mtu": link.mtu,
            "mac": link.mac, "state": link.state}


def far_path(dst: str, src: Optional[str], vtep: str, tunnel_port: int,
             vni: Optional[int] = None) -> list:
    """This host's hops for a probe that arrives (encapsulated to vtep, or routed to vtep, an
    address of this host, when tunnel_port is 0) and goes on to dst."""
    me = netns.own()
    snap = gather.read_namespace(me)
    hops = []
    under = next((l for l in snap.links if any(a.local == vtep for a in l.addresses)), None)
    where, wsnap = me, snap  # the namespace the packet is decapsulated into
    if not tunnel_port:  # routed to this host (host-gw): no encapsulation to undo
        if under is None:
            return hops
        hops.append(_hop("far-uplink", under, me))
        ingress = under
    else:
        if under is not None:
            hops.append(_hop("far-underlay", under, me))
        found = _far_tunnel(me, snap, vtep, tunnel_port, vni)
        if found is None:
            return hops
        where, wsnap, ingress = found
        hops.append(_hop("far-tunnel", ingress, where))
    if ingress.master is not None and tunnel_port:
        # An L2 overlay (Docker's): the VXLAN device is a port of the bridge that the
        # destination's veth is a port of; the bridge forwards, nothing routes.
        out = wsnap.link(ifindex=ingress.master)
    else:
        lookup = gather.route_get(where, dst, src=src, iif=ingress.name)
        out = wsnap.link(name=lookup.dev) if lookup.dev else None
    if out is not None and out.kind == "bridge":
        hops.append(_hop("far-bridge", out, where))
    # The destination: behind one of the ports of that device, in the namespace a port's
    # peer lives in. Only the namespaces those ports lead to are read (nsids, one netlink
    # socket for all), not every namespace of a host with a thousand containers. Where
    # this host routes dst nowhere (its bridge is down, its route gone), the destination is
    # looked for behind every veth: what stops the probe there is its fault to name.
    ports = [l for l in wsnap.links if l.peer_netnsid is not None and l.kind != "vxlan"
             and (out is None or l.master == out.ifindex or l.ifindex == out.ifindex)]
    wanted = {p.peer_netnsid for p in ports}
    others = [ns for ns in netns.candidates() if ns.inode != where.inode]
    ids = gather.nsids_of(where, others) if wanted and others else []
    for ns, nsid in zip(others, ids):
        if nsid not in wanted:
            continue
        try:
            theirs = gather.read_namespace(ns)
        except NetdoctorError:
            continue
        link = next((l for l in theirs.links if any(a.local == dst for a in l.addresses)),
                    None)
        if link is None:
            continue
        veth = next((p for p in ports if p.ifindex == link.peer_ifindex
                     and p.peer_netnsid == nsid), None)
        if out is None and veth is None:
            continue  # (not behind a veth of this namespace: not this host's to judge)
        if out is None and veth.master is not None:
            bridge = wsnap.link(ifindex=veth.master)
            if bridge is not None:
                hops.append(_hop("far-bridge", bridge, where))
        if veth is not None:  # a bridge's port, or the routed veth the route names itself
            hops.append(_hop("far-veth", veth, where))
        hops.append(_hop("destination", link, ns))
        break
    return hops


def _far_tunnel(me, snap, vtep: str, port: int, vni: Optional[int]):
    """(namespace, its snapshot, the VXLAN device) that decapsulates what arrives for vtep
    on UDP port: this namespace's own, else one bound to a file whose device sends from
    here (Docker keeps an overlay's VXLAN device in a sandbox namespace under its
    exec-root; its socket stays in the engine's namespace). None when there is none."""
    def matches(link) -> bool:
        t = link.tunnel
        return t.get("port") == str(port) and (vni is None or t.get("vni") == str(vni))

    tunnels = [l for l in snap.tunnels if matches(l)]
    if tunnels:
        return me, snap, next((l for l in tunnels if l.tunnel.get("local") == vtep),
                              tunnels[0])
    for path, inode in netns.mounted():
        if inode == me.inode:
            continue
        try:
            ns = netns.open_path(path)
            theirs = gather.read_namespace(ns)
        except (NetdoctorError, OSError):
            continue
        here = [l for l in theirs.tunnels if matches(l) and l.peer_netnsid is not None]
        if not here:
            continue
        # Its socket's namespace, as that namespace knows this one: it must be this host.
        if gather.nsids_of(ns, [me])[0] in {l.peer_netnsid for l in here}:
            return ns, theirs, here[0]
    return None


def serve(stdin=None, stdout=None) -> int:
    """Answer requests until `bye` or the end of stdin; whatever happens, release."""
    stdin, stdout = stdin or sys.stdin, stdout or sys.stdout
    agent = Agent()
    try:
        for line in stdin:
            if not line.strip():
                continue
            req = {}
            try:
                parsed = json.loads(line)
                if not isinstance(parsed, dict):
                    raise ValueError("a request is a JSON object")
                req = parsed
                answer = agent.handle(req)
            except NetdoctorError as e:
                answer = {"ok": False, "error": str(e)}
            except (ValueError, KeyError, TypeError) as e:
                answer = {"ok": False, "error": f"bad request: {e}"}
            stdout.write(json.dumps(answer) + "\n")
            stdout.flush()
            if req.get("op") == "bye":
                break
    finally:
        agent.release()
    return 0

"""What a check sees: one host or one container of a Snapshot, with its path resolved.

Pure: built from the snapshot only. Names and addresses for runbooks and fix commands
are collected in `vars`, so a report can say `ip netns exec ndlab-host sysctl ...`
instead of a template.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from functools import cached_property
from typing import Iterator, Optional

from netdoctor.diagnose.facts.namespace import Link, NamespaceSnapshot, Route
from netdoctor.diagnose.reason.path import HOST_EGRESS_ROLES
from netdoctor.diagnose.reason.rules import Packet, evaluate

# The flows checks follow for a container: ICMP echo, web, DNS.
PROBE_FLOWS = (("icmp", None), ("tcp", 80), ("tcp", 443), ("udp", 53))
# Network modes in which the container's interface is a child of a host device.
LOWER_DEVICE_MODES = ("macvlan", "ipvlan", "macvtap")
# Linux's default net.ipv4.ip_local_port_range: where a client's source port comes from.
EPHEMERAL_PORTS = (32768, 60999)


def ns_label(netns: dict) -> str:
    return netns.get("name") or f"net:[{netns.get('inode')}]"


def lookup(routes: tuple, address: str, table: str = "main") -> Optional[Route]:
    """Longest-prefix match among routes of one table (policy rules are not modelled)."""
    try:
        addr = ipaddress.ip_address(address)
    except ValueError:
        return None
    family = "inet" if addr.version == 4 else "inet6"
    best = None
    for r in routes:
        if r.table != table or r.family != family:
            continue
        try:
            net = r.network
        except ValueError:
            continue
        if addr in net and (best is None or net.prefixlen > best.network.prefixlen):
            best = r
    return best


def unread_rules(ruleset, tables: tuple) -> list:
    """Why part of a namespace's IPv4 rules was not read, one line per gap: a reader that
    failed (or is missing) where nothing else read the tables it covers. tables: what the
    namespace's kernel listed ("nft ip filter", "legacy ip nat", "unknown")."""
    sources = ruleset.sources

    def ok(reader):
        return sources.get(reader, "ok") == "ok"

    def failed(reader):
        return sources.get(reader, "ok") not in ("ok", "not installed")

    listed = set(tables)
    gaps = []
    # iptables-nft-save reads the tables iptables-nft made; nft reads the others, and all
    # of them when iptables-nft-save read nothing.
    made_by_iptables = ruleset.tables_of.get("iptables-nft", set())
    if failed("iptables-nft-save") and not ok("nft"):
        gaps.append(f"iptables-nft-save: {sources['iptables-nft-save']}")
    if not ok("nft"):
        native = sorted(t for t in listed - made_by_iptables
                        if t.startswith(("nft ip ", "nft inet ")))
        if native or (failed("nft") and (not listed or "unknown" in listed)):
            gaps.append(f"nft: {sources.get('nft')}"
                        + (f" (tables {', '.join(t[4:] for t in native)})" if native else ""))
    legacy = sorted(t for t in listed if t.startswith("legacy ip "))
    if failed("iptables-legacy-save") or (legacy and not ok("iptables-legacy-save")):
        gaps.append(f"iptables-legacy-save: {sources.get('iptables-legacy-save')}"
                    + (f" (tables {', '.join(t[10:] for t in legacy)})" if legacy else ""))
    return gaps


def uplink_addresses(ns: NamespaceSnapshot) -> set:
    """The addresses a host reaches its default gateways with ("198.51.100.2/24" on eth0):
    what no fix may remove. An address of a default route's link whose network holds the
    gateway (or every address of a link whose default route has no gateway)."""
    out = set()
    for r in ns.default_routes("inet") + ns.default_routes("inet6"):
        link = ns.link(name=r.dev) if r.dev else None
        if link is None:
            continue
        for a in link.addresses:
            try:
                holds = r.gateway is None or ipaddress.ip_address(r.gateway) in a.interface.network
            except ValueError:
                holds = False
            if holds and a.scope == "global":
                out.add(str(a))
    return out


def link_evidence(link: Link, **more) -> dict:
    """The facts a link finding rests on, as `ip -d link` shows them."""
    return dict({"interface": link.name, "flags": list(link.flags),
                 "operstate": link.operstate}, **more)


def global_addresses(link: Optional[Link], family: str = "inet") -> list:
    if link is None:
        return []
    return [a for a in link.addresses if a.family == family and a.scope == "global"]


def ipv6_disabled_keys(sysctls: dict, ifname: str) -> list:
    """The disable_ipv6 switches that are on for ifname: its own, and `all` (which turns
    IPv6 off on every interface when set)."""
    keys = [f"net.ipv6.conf.{ifname}.disable_ipv6", "net.ipv6.conf.all.disable_ipv6"]
    return [k for k in keys if sysctls.get(k) == "1"]


def flannel_intent(host) -> Optional[dict]:
    """A host's flannel intent when it describes that host, as networks: {network, own
    (this node's subnet), source}; None without one. A subnet file read for a namespace
    that holds no address of its node subnet is another node's."""
    f = ((host.intent or {}) if host is not None else {}).get("flannel") or {}
    if "network" not in f or host is None:
        return None
    own = ipaddress.ip_interface(f["subnet"]).network
    if not any(a.family == "inet" and ipaddress.ip_address(a.local) in own
               for link in host.namespace.links for a in link.addresses):
        return None
    return {"network": ipaddress.ip_network(f["network"], strict=False), "own": own,
            "source": f["source"]}


def bgp_intent(host) -> Optional[dict]:
    """A host's BGP intent (its BIRD's configuration), as networks: {pools, blocks (this
    node's), peers, source, socket, sessions (BIRD's BGP protocols and their states, or
    None when BIRD was not asked), sessions_error}; None without one (or one that could not
    be read)."""
    b = ((host.intent or {}) if host is not None else {}).get("bgp") or {}
    if "pools" not in b:
        return None
    return {"pools": [ipaddress.ip_network(p, strict=False) for p in b["pools"]],
            "blocks": [ipaddress.ip_network(p, strict=False) for p in b.get("blocks", ())],
            "peers": [p["address"] for p in b.get("peers", ())], "source": b["source"],
            "socket": b.get("socket"), "sessions": b.get("sessions"),
            "sessions_error": b.get("sessions_error")}


def docker_overlay_intent(host) -> Optional[dict]:
    """What the engine says of the Docker overlay network whose sandbox this host namespace
    is: {name, vnis, peers, remote: [{name, ip, node}] (endpoints on other nodes), source};
    None without one (or one that could not be read)."""
    o = ((host.intent or {}) if host is not None else {}).get("docker_overlay") or {}
    if "endpoints" not in o:
        return None
    local = set(o.get("local") or ())
    return {"name": o["name"], "vnis": list(o.get("vnis") or ()), "peers": list(o["peers"]),
            "remote": [e for e in o["endpoints"] if e["ip"] not in local and e.get("node")],
            "source": o["source"]}


@dataclass
class HostContext:
    snapshot: object
    inode: int
    host: object  # HostFacts
    containers: list
    scope: str = "host"
    vars: dict = field(default_factory=dict)

    @property
    def namespace(self) -> NamespaceSnapshot:
        return self.host.namespace

    @property
    def ruleset(self):
        return self.host.ruleset

    @property
    def subject(self) -> str:
        return f"host {ns_label(self.namespace.netns)}"

    @cached_property
    def host_rules_unread(self) -> list:
        return unread_rules(self.ruleset, self.namespace.netfilter_tables)


@dataclass
class ContainerContext:
    snapshot: object
    container: object  # ContainerFacts
    host: object  # HostFacts or None
    scope: str = "container"
    vars: dict = field(default_factory=dict)

    @property
    def subject(self) -> str:
        return self.container.label

    @property
    def namespace(self) -> NamespaceSnapshot:
        return self.container.namespace

    @property
    def host_ns(self) -> Optional[NamespaceSnapshot]:
        return self.host.namespace if self.host else None

    @property
    def path(self) -> dict:
        return self.container.path

    @cached_property
    def host_rules_unread(self) -> list:
        if self.host is None:
            return []
        return unread_rules(self.host.ruleset, self.host.namespace.netfilter_tables)

    @cached_property
    def destination(self) -> str:
        return (self.path.get("destination") or {}).get("address") or self.snapshot.destination

    def hop(self, role: str) -> Optional[dict]:
        for h in self.path.get("hops", ()):
            if h["role"] == role:
                return h
        return None

    def _link_of_hop(self, role: str, snap: Optional[NamespaceSnapshot]) -> Optional[Link]:
        h = self.hop(role)
        if h is None or snap is None:
            return None
        return snap.link(ifindex=h["ifindex"])

    def host_of_hop(self, role: str):
        """The HostFacts of the namespace that holds the hop (the host's own, or another
        host namespace of the snapshot: an overlay's underlay outside Docker's sandbox);
        None when the snapshot has none for it."""
        h = self.hop(role)
        if h is None:
            return None
        inode = h.get("netns_inode")
        if self.host is not None and (inode is None or
                                      self.host.namespace.netns.get("inode") == inode):
            return self.host
        return next((f for f in self.snapshot.hosts.values()
                     if f.namespace.netns.get("inode") == inode), None)

    def run_in(self, host) -> str:
        """The prefix that runs a command in that HostFacts' namespace, as pasted here."""
        return _host_vars(self.snapshot, host.namespace.netns)["in_host"]

    def link_of_hop(self, role: str) -> Optional[Link]:
        """The hop's interface, in the host namespace of the snapshot that holds it (an
        overlay's underlay may be outside the container's host: Docker's bridge and VXLAN
        port are in a sandbox, its underlay in the engine's namespace)."""
        host = self.host_of_hop(role)
        return host.namespace.link(ifindex=self.hop(role)["ifindex"]) if host else None

    @cached_property
    def egress(self) -> Optional[Link]:
        link = self._link_of_hop("container", self.namespace)
        if link is not None:
            return link
        others = [l for l in self.namespace.links if not l.is_loopback]
        return others[0] if len(others) == 1 else None

    @cached_property
    def host_veth(self) -> Optional[Link]:
        return self._link_of_hop("host-veth", self.host_ns)

    @cached_property
    def bridge(self) -> Optional[Link]:
        return self._link_of_hop("bridge", self.host_ns)

    @cached_property
    def uplink(self) -> Optional[Link]:
        return self._link_of_hop("uplink", self.host_ns)

    @cached_property
    def host_egress(self) -> Optional[Link]:
        """Where the container's request leaves the host's IP layer: the uplink; for a
        destination on this machine, the bridge or veth that leads to it (the container's
        own bridge when both ends are its ports)."""
        for role in HOST_EGRESS_ROLES:
            link = self._link_of_hop(role, self.host_ns)
            if link is not None:
                return link
        if self.hop("bridge-port") is not None:
            return self.bridge
        return None

    @cached_property
    def routed(self) -> bool:
        """A routed veth (CNI ptp, Calico): no bridge, the host routes to the veth itself."""
        return self.host_veth is not None and self.bridge is None \
            and self.network_bridge is None

    @cached_property
    def east_west(self) -> bool:
        """The destination is a container on this machine."""
        return self.hop("destination") is not None

    @cached_property
    def network_bridge(self) -> Optional[Link]:
        """The host bridge that owns the container's network (holds its gateway's subnet),
        whether or not the container's veth is attached to it. The network is the path's
        interface's: a default route by another interface (a container on two networks)
        says nothing of this one's bridge."""
        h = self.host_ns
        r, eth = self.default_route, self.egress
        gateway = self.gateway if r is not None and eth is not None and r.dev == eth.name \
            else None
        target = gateway or self.address
        if h is None or not target:
            return None
        try:
            ip = ipaddress.ip_address(target)
        except ValueError:
            return None
        fam = "inet" if ip.version == 4 else "inet6"
        for link in h.bridges:
            if any(ip in a.interface.network for a in global_addresses(link, fam)):
                return link
        return None

    @cached_property
    def ingress(self) -> Optional[Link]:
        """Where the container's packets enter the host's IP layer: its bridge; its veth in a
        routed setup; None when the veth should be on a bridge and is not (the frames then
        never reach IP at all)."""
        if self.bridge is not None:
            return self.bridge
        if self.host_veth is not None and self.network_bridge is None:
            return self.host_veth
        return None

    @cached_property
    def own_route_lookup(self) -> Optional[dict]:
        """The kernel's route lookup of the destination in the container's namespace, as
        the path recorded it (dev, gateway, prefsrc, error), or None."""
        mine = self.namespace.netns.get("name") or f"net:[{self.namespace.netns.get('inode')}]"
        return next((l for l in self.path.get("route_lookups", ()) if l.get("netns") == mine),
                    None)

    @cached_property
    def source(self):
        """The address the container's kernel sends from, as it picks one: the source its
        route lookup answered (or the route's src hint), else the address whose network
        holds the gateway, else the first global one on the egress interface."""
        addrs = global_addresses(self.egress, self.family)
        if not addrs:
            return None
        hints = [self.own_route_lookup.get("prefsrc")] if self.own_route_lookup else []
        if self.default_route is not None:
            hints.append(self.default_route.prefsrc)
        for hint in hints:
            chosen = next((a for a in addrs if a.local == hint), None)
            if chosen is not None:
                return chosen
        if self.gateway:
            try:
                gw = ipaddress.ip_address(self.gateway)
            except ValueError:
                gw = None
            chosen = next((a for a in addrs if gw is not None and gw in a.interface.network),
                          None)
            if chosen is not None:
                return chosen
        return addrs[0]

    @cached_property
    def address(self) -> Optional[str]:
        return self.source.local if self.source is not None else None

    @cached_property
    def interface(self):
        return self.source.interface if self.source is not None else None

    @cached_property
    def family(self) -> str:
        """The address family of the traffic judged: the destination's."""
        return "inet6" if ":" in (self.destination or "") else "inet"

    @cached_property
    def default_route(self) -> Optional[Route]:
        d = self.namespace.default_routes(self.family)
        return d[0] if d else None

    @cached_property
    def gateway(self) -> Optional[str]:
        r = self.default_route
        return r.gateway if r else None

    @cached_property
    def bridged(self) -> bool:
        return self.path.get("mode") in ("bridge", "routed") and self.host_veth is not None

    @cached_property
    def flannel(self) -> Optional[dict]:
        return flannel_intent(self.host)

    @cached_property
    def bgp(self) -> Optional[dict]:
        return bgp_intent(self.host)

    @cached_property
    def inbound(self) -> list:
        """The inbound walk of each port the container publishes (or a user asked about):
        reason.inbound.Walk, from the host's rules and the container's listeners."""
        from netdoctor.diagnose.reason.inbound import DEFAULT_CLIENT, DEFAULT_CLIENT6, walk

        ports = self.container.target.get("ports") or []
        if not ports or self.host is None or not self.address or not self.bridged:
            return []
        up = self.uplink
        walks = []
        for p in ports:
            # The binding's family (Docker lists 0.0.0.0 and :: apart), or the client's.
            v6 = ":" in (p.get("host_ip") or "") or ":" in (p.get("client") or "")
            family = "inet6" if v6 else "inet"
            mine = global_addresses(self.egress, family)
            container = (mine[0].local if mine else None) if v6 else self.address
            if container is None:
                continue  # no address of that family in the container: nothing to reach
            ups = global_addresses(up, family)
            walks.append(walk(self.host.ruleset, p, container, up.name if up else None,
                              ups[0].local if ups else None,
                              self.ingress.name if self.ingress else None,
                              self.container.listeners,
                              p.get("client") or (DEFAULT_CLIENT6 if v6 else DEFAULT_CLIENT)))
        return walks

    @cached_property
    def probe_flows(self) -> tuple:
        """The flows the checks judge: a trace's own (its protocol and port) first, then
        PROBE_FLOWS."""
        d = self.path.get("destination") or {}
        proto, port = d.get("proto"), d.get("port")
        if proto not in ("icmp", "tcp", "udp"):
            return PROBE_FLOWS
        flow = (proto, None if proto == "icmp" else port)
        return (flow,) + tuple(f for f in PROBE_FLOWS if f != flow)

    @cached_property
    def ephemeral_ports(self) -> tuple:
        """The range the container's kernel picks a client's source port from."""
        words = self.namespace.sysctls.get("net.ipv4.ip_local_port_range", "").split()
        if len(words) == 2 and all(w.isdigit() and w.isascii() for w in words):
            lo, hi = sorted(int(w) for w in words)
            return lo, hi
        return EPHEMERAL_PORTS

    def request(self, proto: str = "icmp", dport: Optional[int] = None,
                dst: Optional[str] = None) -> Optional[Packet]:
        """The container's request, as the host's FORWARD hook meets it."""
        if not (self.address and self.ingress and self.host_egress):
            return None
        sport = self.ephemeral_ports if proto in ("tcp", "udp") else None
        dst = dst or self.destination
        held = self.host_ns.held_addresses if self.host_ns is not None else None
        return Packet(src=self.address, dst=dst, iif=self.ingress.name,
                      oif=self.host_egress.name, proto=proto, dport=dport, sport=sport,
                      family="ip6" if self.family == "inet6" else "ip",
                      dst_local=None if held is None else dst in held,
                      src_local=None if held is None else self.address in held)

    @cached_property
    def source_nat(self) -> Optional[tuple]:
        """(the container's request, what nat POSTROUTING does to it) as it leaves the host,
        or None when there is no such request to judge (walked once for every check that
        asks: nat-missing, snat-foreign-address)."""
        packet = self.request()
        if self.host is None or packet is None or not self.bridged:
            return None
        return packet, evaluate(self.host.ruleset, "postrouting", packet, type_="nat")

    def reply(self, proto: str = "icmp", dport: Optional[int] = None) -> Optional[Packet]:
        """The answer to request(proto, dport): from the service's port to the client's."""
        if not (self.address and self.ingress and self.host_egress):
            return None
        ports = proto in ("tcp", "udp")
        held = self.host_ns.held_addresses if self.host_ns is not None else None
        return Packet(src=self.destination, dst=self.address, iif=self.host_egress.name,
                      oif=self.ingress.name, proto=proto, sport=dport if ports else None,
                      dport=self.ephemeral_ports if ports else None, ctstate="established",
                      family="ip6" if self.family == "inet6" else "ip",
                      dst_local=None if held is None else self.address in held,
                      src_local=None if held is None else self.destination in held)


def _host_vars(snapshot, host_netns: Optional[dict]) -> dict:
    if not host_netns:
        return {"host_ns": "?", "in_host": ""}
    own = host_netns.get("inode") == snapshot.own_inode
    label = ns_label(host_netns)
    if own:
        in_host = ""
    elif host_netns.get("name"):
        in_host = f"ip netns exec {host_netns['name']} "
    else:
        in_host = f"nsenter --net={host_netns.get('path')} "
    return {"host_ns": label, "in_host": in_host}


def in_container_prefix(target: dict) -> str:
    """The prefix that runs a command in a container's network namespace, as pasted."""
    ns = target.get("netns") or {}
    if ns.get("name"):
        return f"ip netns exec {ns['name']} "
    if target.get("pid"):
        return f"nsenter -t {target['pid']} -n "
    return f"nsenter --net={ns.get('path')} "


def _container_vars(ctx: ContainerContext) -> dict:
    t = ctx.container.target
    ns = t.get("netns") or {}
    in_container = in_container_prefix(t)
    egress, veth, bridge, uplink = ctx.egress, ctx.host_veth, ctx.bridge, ctx.uplink
    iface = ctx.interface
    v = {
        "container": ctx.subject, "container_name": t.get("name"), "container_ns": ns_label(ns),
        "in_container": in_container,
        "eth": egress.name if egress else "eth0",
        "container_ip": ctx.address or "?", "subnet": str(iface.network) if iface else "?",
        "gateway": ctx.gateway or "?",
        "veth": veth.name if veth else "?", "bridge": bridge.name if bridge else "?",
        "uplink": uplink.name if uplink else "?", "destination": ctx.destination,
        "ingress": ctx.ingress.name if ctx.ingress else "?",
    }
    host_netns = ctx.path.get("host_netns")
    v.update(_host_vars(ctx.snapshot, host_netns))
    return v


def contexts(snapshot) -> Iterator:
    """A HostContext per host, then a ContainerContext per container. A host's runbook names
    come from its first container on a bridge or routed veth, so a host finding's report
    reads with a real bridge, container address and destination (the finding lists every
    container it concerns)."""
    by_host: dict = {}
    for c in snapshot.containers:
        by_host.setdefault(c.host_inode, []).append(c)
    containers = []
    for c in snapshot.containers:
        ctx = ContainerContext(snapshot, c, snapshot.host(c.host_inode))
        ctx.vars = _container_vars(ctx)
        containers.append(ctx)
    for inode_str, host in sorted(snapshot.hosts.items()):
        inode = int(inode_str)
        ctx = HostContext(snapshot, inode, host, by_host.get(inode, []))
        example = next((cc for cc in sorted(containers, key=lambda cc: cc.subject)
                        if cc.container.host_inode == inode and cc.bridged), None)
        ctx.vars = dict(example.vars if example is not None else {},
                        **_host_vars(snapshot, host.namespace.netns))
        yield ctx
    yield from containers


def renewed(old_contexts: list, old, new) -> Optional[list]:
    """old_contexts (of snapshot old) about snapshot new, which differs from old only in
    what the DNS probe's answers added (each container's dns_probe, the hosts' neighbour
    tables): what each context worked out from the rest (addresses, paths, runbook names)
    is kept instead of worked out again. None when new is not such a snapshot of old."""
    if len(old.containers) != len(new.containers) or set(old.hosts) != set(new.hosts):
        return None
    facts = {id(a): b for a, b in zip(old.containers, new.containers)}
    hosts = {id(h): new.hosts[k] for k, h in old.hosts.items()}
    out = []
    for ctx in old_contexts:
        c = object.__new__(type(ctx))  # (copy.copy's reduce protocol: 20 us a context)
        c.__dict__.update(ctx.__dict__)
        c.snapshot = new
        if c.host is not None:
            c.host = hosts.get(id(c.host), c.host)
        if isinstance(c, ContainerContext):
            if id(c.container) not in facts:
                return None
            c.container = facts[id(c.container)]
        else:
            c.containers = [facts.get(id(x), x) for x in c.containers]
        out.append(c)
    return out


# Neighbour states in which an entry holds the address of something that answered.
RESOLVED = {"REACHABLE", "STALE", "DELAY", "PROBE", "PERMANENT", "NOARP"}


def gateway_on_link(ctx, br):
    """(gateway, the container's address whose network holds it) when the container's
    default route leaves by its interface to a gateway on that interface's network (of the
    container's family) that bridge br should hold, else None (a router beyond the host on
    br's segment answers for it: router_on_segment): br's address for it is gateway/that
    prefix."""
    import ipaddress

    eth, gw, route = ctx.egress, ctx.gateway, ctx.default_route
    if eth is None or not gw or route is None or route.dev != eth.name:
        return None
    try:
        address = ipaddress.ip_address(gw)
    except ValueError:
        return None
    mine = next((a for a in global_addresses(eth, ctx.family)
                 if address in a.interface.network), None)
    if mine is None or router_on_segment(ctx.host_ns, br, gw):
        return None
    return gw, mine


def router_on_segment(host_ns, br, gw: str) -> bool:
    """Whether the bridge's segment reaches beyond this host's containers, where the gateway
    may be a router of its own (a LAN bridge: LXD, libvirt, a CNI bridge with the NIC
    enslaved): the host routes by that gateway on the bridge itself, holds a neighbour entry
    for it there that something other than the bridge answered, or the bridge has a port
    that is not a veth (a NIC, a bond, a VM's tap)."""
    if host_ns.routes_via(gw, br.name):
        return True
    if any(n.lladdr and n.lladdr != br.mac and RESOLVED & set(n.state)
           for n in host_ns.neighbours_of(gw, br.name)):
        return True
    return lan_bridge(host_ns, br)


def proxy_arp_on(sysctls: dict, ifname: str) -> bool:
    """Whether the interface answers ARP for addresses it routes elsewhere: the kernel
    takes proxy_arp on when the interface's or `all`'s is."""
    return "1" in (sysctls.get(f"net.ipv4.conf.{ifname}.proxy_arp"),
                   sysctls.get("net.ipv4.conf.all.proxy_arp"))


def lan_bridge(host_ns, br) -> bool:
    """The bridge has a port that is not a veth (a NIC, a bond, a VM's tap): its segment
    reaches beyond this host's containers, with machines and routers of its own."""
    return bool(host_ns.outer_ports(br.ifindex))


def default_route_fix(ctx, eth, verb: str) -> Optional[str]:
    """`ip route VERB default via GATEWAY dev ETH` in the container, the gateway the one its
    wiring provides (gateway_for); None when the wiring names none."""
    gw, on_link = gateway_for(ctx, eth)
    if gw is None:
        return None
    return f"{{in_container}}ip route {verb} default via {gw} dev {{eth}}" + (
        " onlink" if on_link else "")


def engine_restart(ctx) -> Optional[str]:
    """`docker restart NAME` (podman's likewise) for a runtime's container, whose IPAM gives
    it its address again; None for a namespace something else set up."""
    engine = ctx.container.target.get("kind")
    return f"{engine} restart {{container_name}}" if engine in ("docker", "podman") else None


def no_gateway_shown(family: str) -> str:
    """What to show when no gateway can be named: the container's routes of the family and
    its addresses."""
    six = " -6" if family == "inet6" else ""
    return "{in_container}ip" + six + " route show && {in_container}ip -br addr show {eth}"


def gateway_for(ctx, eth) -> tuple:
    """(gateway, on_link): the gateway the container's wiring provides. The address, in the
    container's network, of its bridge, or of the bridge that holds its network (its veth
    detached from it is another finding: the gateway is still that bridge's); for a routed
    veth (no bridge holds the network) the host veth's own address (ptp), else, IPv4 with
    proxy ARP answering for anything, the link-local 169.254.1.1 (Calico's), on-link;
    (None, False) when the wiring names none."""
    fam = ctx.family
    mine = [a.interface.network for a in global_addresses(eth, fam)]
    bridges = [b for b in (ctx.bridge, ctx.network_bridge) if b is not None]
    for br in bridges:
        for a in global_addresses(br, fam):
            if any(ipaddress.ip_address(a.local) in n for n in mine):
                return a.local, False
    # A container address narrower than its bridge's network (a /32 on a /24 bridge): the
    # bridge still routes for it, reached on-link.
    held = [ipaddress.ip_address(a.local) for a in global_addresses(eth, fam)]
    for br in bridges:
        for a in global_addresses(br, fam):
            if any(h in a.interface.network for h in held):
                return a.local, True
    if bridges:
        return None, False
    if ctx.path.get("mode") in LOWER_DEVICE_MODES and ctx.host_ns is not None:
        # a macvlan child on its parent's segment: the router the host uses there
        for r in ctx.host_ns.default_routes(fam):
            if r.gateway and any(ipaddress.ip_address(r.gateway) in n for n in mine):
                return r.gateway, False
    if ctx.path.get("mode") == "routed" and ctx.host_veth is not None:
        own = [a.local for a in ctx.host_veth.addresses if a.family == fam
               and a.scope in ("global", "link") and not a.local.startswith("fe80")]
        if own:
            return own[0], True
        if fam == "inet":
            return "169.254.1.1", True
        link_local = [a.local for a in ctx.host_veth.addresses if a.family == fam
                      and a.local.startswith("fe80")]
        if link_local:
            return link_local[0], True
    return None, False

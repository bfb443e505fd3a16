from . import Check, register
from .context import flannel_intent

ZERO_MAC = "00:00:00:00:00:00"


@register
class OverlayPeerIncomplete(Check):
    """A peer of the overlay is wired only in part: its route, neighbour or FDB entry is
    missing, or points at this host"""

    id = "overlay-peer-incomplete"
    severity = "error"
    scope = "host"
    tags = ("overlay", "vxlan")

    def run(self, ctx):
        ns = ctx.namespace
        own = {a.local for l in ns.links for a in l.addresses}
        flannel = flannel_intent(ctx.host)
        for tunnel in ns.tunnels:
            t = tunnel.tunnel
            if not tunnel.up or t.get("learning") == "true" or t.get("group") \
                    or t.get("remote"):
                continue  # a device that finds its peers itself, or has one fixed remote
            for finding in self._peers(ctx, tunnel, own, flannel):
                yield finding

    def _peers(self, ctx, tunnel, own, flannel):
        ns = ctx.namespace
        routes = {}  # next hop -> [route]
        for r in ns.routes:
            if r.dev == tunnel.name and r.gateway and r.family == "inet" and r.table == "main":
                routes.setdefault(r.gateway, []).append(r)
        neighbours = {n.dst: n for n in ns.neighbours
                      if n.dev == tunnel.name and ":" not in n.dst}
        fdb = {}
        for e in ns.fdb:
            if e.dev == tunnel.name and e.dst:
                fdb.setdefault(e.mac.lower(), []).append(e.dst)
        default = fdb.get(ZERO_MAC, [])
        used = set()
        for peer in list(routes) + [d for d in neighbours if d not in routes]:
            mac = ns.neighbour_mac(peer, tunnel.name)
            if mac:
                used.add(mac.lower())
            wrong = []
            if peer not in routes:
                expected = _flannel_subnet(peer, flannel)
                if expected is None:
                    continue  # a neighbour that no route uses, and no intent to say it should
                wrong.append(f"no route to {expected} via {peer} (flannel's subnet file puts "
                             f"its pods there)")
            if mac is None:
                n = neighbours.get(peer)
                wrong.append(f"no usable neighbour entry for {peer}" + (
                    f" ({','.join(n.state)})" if n else ""))
            else:
                remotes = fdb.get(mac.lower()) or default
                if not remotes:
                    wrong.append(f"no FDB entry for {mac}: the kernel knows no VTEP to send "
                                 f"it to (NO_TX_TARGET)")
                elif set(remotes) & own:
                    wrong.append(f"the FDB entry for {mac} sends to {', '.join(remotes)}, "
                                 f"an address of this host")
            if wrong:
                yield self._finding(ctx, tunnel, peer, mac, wrong, routes.get(peer, ()),
                                    fdb.get((mac or "").lower(), []))
        stale = sorted(m for m in fdb if m != ZERO_MAC and m not in used)
        if stale and all(ns.neighbour_mac(p, tunnel.name) for p in routes):
            yield self.finding(
                ctx, f"{tunnel.name} has FDB entries for MACs no peer has any more "
                     f"({', '.join(stale)}): left by removed nodes; harmless until a new "
                     f"node's VTEP takes one of those MACs",
                {"tunnel": tunnel.name, "stale_fdb": {m: fdb[m] for m in stale}},
                "{in_host}bridge fdb show dev " + tunnel.name, verify=True,
                severity="info", tunnel=tunnel.name, mac=stale[0], next_hop="")

    def _finding(self, ctx, tunnel, peer, mac, wrong, routes, remotes):
        return self.finding(
            ctx, f"peer {peer} of {tunnel.name} is wired only in part: {'; '.join(wrong)}. "
                 f"Pods behind it are unreachable from this host",
            {"tunnel": tunnel.name, "peer": peer, "mac": mac, "problems": wrong,
             "routes": [f"{r.dst} via {r.gateway} dev {r.dev}" for r in routes],
             "fdb": remotes},
            "{in_host}ip route show dev " + tunnel.name + "; {in_host}ip neigh show dev "
            + tunnel.name + "; {in_host}bridge fdb show dev " + tunnel.name, verify=True,
            tunnel=tunnel.name, next_hop=peer, mac=mac or "")


def _flannel_subnet(peer: str, flannel):
    """The pod subnet flannel gives the node whose VTEP address is peer (flannel names each
    node's VTEP by the network address of its subnet), when the intent is read."""
    import ipaddress

    if flannel is None:
        return None
    try:
        net = ipaddress.ip_network(f"{peer}/{flannel['own'].prefixlen}", strict=False)
    except ValueError:
        return None
    if net.subnet_of(flannel["network"]) and net != flannel["own"]:
        return str(net)
    return None

import ipaddress

from . import Check, register


@register
class PeerRouteMissing(Check):
    """The host has no route to a peer node's pod subnet that its overlay's intent says
    exists (flannel: FLANNEL_NETWORK minus this node's FLANNEL_SUBNET; BGP: an IP pool of
    BIRD's configuration minus this node's blocks)"""

    id = "peer-route-missing"
    severity = "error"
    scope = "host"
    runs_on = "container"
    tags = ("routing", "overlay")
    # where the host routes the pod's packet: its bridge, or (routed, as Calico) its veth
    blocks_at = (("request", "bridge"), ("request", "host-veth"), ("request", "uplink"))
    precedence = 11  # before host-no-route (12): the missing peer route is why there is none
    needs = ("host-rules",)

    def run(self, ctx):
        flannel = ctx.flannel
        if not ctx.destination or ":" in ctx.destination:
            return
        if flannel is None:
            yield from self._bgp(ctx)
            return
        network, own = flannel["network"], flannel["own"]
        dst = ipaddress.ip_address(ctx.destination)
        if dst not in network or dst in own:
            return
        # flannel writes one route per peer subnet (via flannel.1, or via the peer's underlay
        # address with host-gw), longer than its network's prefix.
        if _routed_within(ctx.host_ns, dst, network):
            return
        peer = ipaddress.ip_network(f"{dst}/{own.prefixlen}", strict=False)
        yield self.finding(
            ctx, f"{ctx.vars['host_ns']} has no route to {peer}, the pod subnet of the peer "
                 f"node that holds {dst}: flannel's network is {network} ({flannel['source']}), "
                 f"and only this node's {own} is local; the packet follows "
                 f"{'the default route' if ctx.host_ns.default_routes() else 'no route'} "
                 f"instead (flannel has not programmed this peer: its lease, or this node's "
                 f"flanneld)",
            {"flannel_network": str(network), "node_subnet": str(own), "peer_subnet": str(peer),
             "intent": flannel["source"]},
            "kubectl describe nodes | grep -e Name: -e PodCIDR  # which node holds "
            f"{peer}; then that node's and this node's flanneld logs", verify=True,
            peer_subnet=str(peer))

    def _bgp(self, ctx):
        bgp = ctx.bgp
        if bgp is None:
            return
        dst = ipaddress.ip_address(ctx.destination)
        pool = next((p for p in bgp["pools"] if dst in p), None)
        if pool is None or any(dst in b for b in bgp["blocks"]):
            return
        if _routed_within(ctx.host_ns, dst, pool):  # BIRD writes a route per block
            return
        peers = ", ".join(bgp["peers"]) or "none configured"
        blocks = ", ".join(str(b) for b in bgp["blocks"]) or "none"
        birdcl = "birdcl" + (f" -s {bgp['socket']}" if bgp["socket"] else "")
        sessions = bgp["sessions"]
        down = [s for s in sessions or () if s["bgp_state"] != "Established"]
        if sessions is None:
            why = (f"the session with the node that owns it is down, or that node does not "
                   f"export it (BIRD's sessions were not read: {bgp['sessions_error']})"
                   if bgp["sessions_error"] else "the session with the node that owns it is "
                   "down, or that node does not export it")
            verify = f"{birdcl} show protocols  # is the session with each peer Established?"
        elif down:
            why = "BIRD's session " + ", ".join(
                f"{s['name']} with {s['neighbor'] or '?'} is {s['bgp_state'] or s['state']}"
                for s in down) + " (bgp-session-down)"
            verify = f"{birdcl} show protocols all {down[0]['name']}"
        else:
            why = ("every BGP session of BIRD is Established, so the node that owns it does "
                   "not announce it, or this node's import filter rejects it")
            verify = f"{birdcl} show route for {dst} all  # learnt, filtered, or never sent?"
        yield self.finding(
            ctx, f"{ctx.vars['host_ns']} has no route to the block that holds {dst}: it is in "
                 f"the IP pool {pool} ({bgp['source']}), not in this node's blocks ({blocks}), "
                 f"so BIRD is to learn its route from a BGP peer ({peers}), and none is in the "
                 f"kernel: {why}. The packet follows "
                 f"{'the default route' if ctx.host_ns.default_routes() else 'no route'} "
                 f"instead",
            {"ip_pool": str(pool), "node_blocks": [str(b) for b in bgp["blocks"]],
             "bgp_peers": bgp["peers"], "intent": bgp["source"],
             "bgp_sessions": [{k: s[k] for k in ("name", "neighbor", "bgp_state")}
                              for s in sessions] if sessions is not None else None},
            "{in_host}" + verify, verify=True, peer_subnet=str(pool))


def _routed_within(host_ns, dst, network) -> bool:
    """Whether the host's main table has a route for dst more specific than network."""
    return any(r.family == "inet" and r.table == "main" and r.dst != "default"
               and _covers(r.dst, dst)
               and ipaddress.ip_network(r.dst, strict=False).prefixlen > network.prefixlen
               for r in host_ns.routes)


def _covers(prefix: str, address) -> bool:
    try:
        return address in ipaddress.ip_network(prefix, strict=False)
    except ValueError:
        return False

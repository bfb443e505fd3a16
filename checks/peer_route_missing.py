import ipaddress

from . import Check, register


@register
class PeerRouteMissing(Check):
    """The host has no route to a peer node's pod subnet that its overlay's intent says
    exists (flannel: FLANNEL_NETWORK minus this node's FLANNEL_SUBNET)"""

    id = "peer-route-missing"
    severity = "error"
    scope = "host"
    runs_on = "container"
    tags = ("routing", "overlay")
    blocks_at = (("request", "bridge"), ("request", "uplink"))
    precedence = 11  # before host-no-route (12): the missing peer route is why there is none
    needs = ("host-rules",)

    def run(self, ctx):
        flannel = ctx.flannel
        if flannel is None or not ctx.destination or ":" in ctx.destination:
            return
        network, own = flannel["network"], flannel["own"]
        dst = ipaddress.ip_address(ctx.destination)
        if dst not in network or dst in own:
            return
        # flannel writes one route per peer subnet (via flannel.1, or via the peer's underlay
        # address with host-gw), longer than its network's prefix.
        covering = [r for r in ctx.host_ns.routes if r.family == "inet" and r.table == "main"
                    and r.dst != "default" and _covers(r.dst, dst)
                    and ipaddress.ip_network(r.dst, strict=False).prefixlen > network.prefixlen]
        if covering:
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
            f"{peer}; then that node's and this node's flanneld logs", verify=True, peer_subnet=str(peer))


def _covers(prefix: str, address) -> bool:
    try:
        return address in ipaddress.ip_network(prefix, strict=False)
    except ValueError:
        return False

from . import Check, register
from ._tunnel import up_tunnel_of


@register
class VxlanNeighbourMissing(Check):
    """The overlay has no neighbour entry for the peer's tunnel address"""

    id = "vxlan-neighbour-missing"
    severity = "error"
    scope = "host"
    runs_on = "container"
    tags = ("overlay", "vxlan", "arp", "path")
    blocks_at = (("request", "bridge"), ("request", "tunnel"))
    precedence = 8
    structural = True

    def run(self, ctx):
        tunnel, nexthop = up_tunnel_of(ctx)
        if tunnel is None:
            return
        if tunnel.tunnel.get("learning") == "true" or tunnel.tunnel.get("group"):
            return  # the device resolves its peers itself (multicast or learning)
        if ctx.host_ns.neighbour_mac(nexthop, tunnel.name) is not None:
            return
        yield self.finding(
            ctx, f"{tunnel.name} has no neighbour entry for {nexthop}, the next hop "
                 f"{ctx.subject}'s packets are routed to: with learning off, an ARP question "
                 f"on the overlay reaches nobody (flannel writes this entry for every peer)",
            {"tunnel": tunnel.name, "next_hop": nexthop,
             "neighbours": [f"{n.dst} {n.lladdr} {','.join(n.state)}"
                            for n in ctx.host_ns.neighbours if n.dev == tunnel.name]},
            "{in_host}ip neigh show dev " + tunnel.name, verify=True, next_hop=nexthop,
            tunnel=tunnel.name)

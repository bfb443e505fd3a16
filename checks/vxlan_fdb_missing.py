from . import Check, register
from ._tunnel import tunnel_of


@register
class VxlanFdbMissing(Check):
    """The overlay's forwarding table has no entry for the peer: the kernel has no VTEP to
    send to"""

    id = "vxlan-fdb-missing"
    severity = "error"
    scope = "host"
    runs_on = "container"
    tags = ("overlay", "vxlan", "path")
    blocks_at = (("request", "bridge"), ("request", "tunnel"))
    precedence = 8
    structural = True

    def run(self, ctx):
        tunnel, nexthop = tunnel_of(ctx)
        if tunnel is None or not tunnel.up or not nexthop:
            return
        mac = ctx.host_ns.neighbour_mac(nexthop, tunnel.name)
        if mac is None or tunnel.tunnel.get("remote") or tunnel.tunnel.get("group"):
            return
        if ctx.host_ns.tunnel_destination(tunnel.name, mac) is not None:
            return
        yield self.finding(
            ctx, f"{tunnel.name} has no FDB entry for {mac}, the MAC of {nexthop}: the kernel "
                 f"drops {ctx.subject}'s packets for it (NO_TX_TARGET), as it knows no remote "
                 f"VTEP to send them to",
            {"tunnel": tunnel.name, "next_hop": nexthop, "mac": mac,
             "fdb": [f"{e.mac} dst {e.dst}" for e in ctx.host_ns.fdb if e.dev == tunnel.name]},
            "{in_host}bridge fdb append " + mac + " dev " + tunnel.name +
            " dst <the peer's underlay address>", next_hop=nexthop, tunnel=tunnel.name,
            mac=mac)

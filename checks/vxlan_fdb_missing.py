from . import Check, register
from ._tunnel import up_tunnel_of
from .context import docker_overlay_intent


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
        tunnel, nexthop = up_tunnel_of(ctx)
        if tunnel is None:
            return
        mac = ctx.host_ns.neighbour_mac(nexthop, tunnel.name)
        if mac is None or tunnel.tunnel.get("remote") or tunnel.tunnel.get("group"):
            return
        # Where the next hop lives, when the overlay's control plane says (Docker's engine)
        intent = docker_overlay_intent(ctx.host)
        node = next((e["node"] for e in (intent or {}).get("remote", ())
                     if e["ip"] == nexthop), None)
        sends_to = sorted({e.dst for e in ctx.host_ns.fdb if e.dev == tunnel.name and e.dst
                           and e.mac.lower() == mac.lower()})
        if node and sends_to and node not in sends_to:
            yield self.finding(
                ctx, f"{tunnel.name}'s FDB sends {mac}, the MAC of {nexthop}, to "
                     f"{', '.join(sends_to)}, but {intent['source']} says it lives on {node}: "
                     f"the entry for it is missing and a stale one sends {ctx.subject}'s "
                     f"packets to a node that does not have it",
                {"tunnel": tunnel.name, "next_hop": nexthop, "mac": mac, "node": node,
                 "fdb_sends_to": sends_to},
                "{in_host}bridge fdb replace " + mac + " dev " + tunnel.name +
                f" dst {node} self permanent", next_hop=nexthop, tunnel=tunnel.name, mac=mac)
            return
        if ctx.host_ns.tunnel_destination(tunnel.name, mac) is not None:
            return
        yield self.finding(
            ctx, f"{tunnel.name} has no FDB entry for {mac}, the MAC of {nexthop}: the kernel "
                 f"drops {ctx.subject}'s packets for it (NO_TX_TARGET), as it knows no remote "
                 f"VTEP to send them to"
                 + (f" ({intent['source']} says it lives on {node})" if node else ""),
            {"tunnel": tunnel.name, "next_hop": nexthop, "mac": mac,
             "fdb": [f"{e.mac} dst {e.dst}" for e in ctx.host_ns.fdb if e.dev == tunnel.name],
             "node": node},
            "{in_host}bridge fdb append " + mac + " dev " + tunnel.name +
            (f" dst {node} self permanent" if node else " dst <the peer's underlay address>"),
            next_hop=nexthop, tunnel=tunnel.name, mac=mac)

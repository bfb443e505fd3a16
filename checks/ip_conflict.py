from . import Check, register
from .context import global_addresses


@register
class IpConflict(Check):
    """An address of the container's network is also on a host interface that is not its bridge"""

    id = "ip-conflict"
    severity = "error"
    scope = "container"
    tags = ("address", "arp", "path")
    blocks_at = (("request", None),
                 ("request", "container"),
                 ("request", "bridge"),
                 ("reply", "uplink"),
                 ("reply", "bridge"))
    precedence = 9
    structural = True

    def run(self, ctx):
        h, iface = ctx.host_ns, ctx.interface
        if h is None or iface is None:
            return
        net = iface.network
        own = {l.ifindex for l in (ctx.ingress, ctx.host_veth, ctx.network_bridge)
               if l is not None}
        for link in h.links:
            if link.ifindex in own or link.is_loopback:
                continue
            for a in global_addresses(link, "inet"):
                if a.interface.ip not in net or a.interface.network.prefixlen == 0:
                    continue
                what = ("the container's own address" if a.local == ctx.address else
                        "its gateway" if a.local == ctx.gateway else f"an address of {net}")
                yield self.finding(
                    ctx, f"{link.name} in {ctx.vars['host_ns']} has {a} — {what}: the host "
                         f"answers ARP and routes for it there, not toward {ctx.subject}",
                    {"interface": link.name, "address": str(a), "container_ip": ctx.address,
                     "container_network": str(net)},
                    "{in_host}ip addr del " + str(a) + " dev " + link.name,
                    conflict_iface=link.name, conflict_addr=str(a))

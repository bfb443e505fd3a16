from . import Check, register
from .context import LOWER_DEVICE_MODES, global_addresses, uplink_addresses

TUNNEL_KINDS = ("vxlan", "geneve", "ipip", "gre", "wireguard")


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
        # A macvlan or ipvlan child shares its parent's segment by design: the parent in the
        # same subnet is the normal wiring, a conflict only when it holds the child's address.
        parent = ctx.uplink if ctx.path.get("mode") in LOWER_DEVICE_MODES else None
        # The addresses the host reaches its gateways with are never the thing to remove.
        protected = uplink_addresses(h)
        for link in h.addressed_links:
            if link.ifindex in own:
                continue
            for a in global_addresses(link, ctx.family):
                if a.interface.ip not in net or a.interface.network.prefixlen == 0:
                    continue
                if parent is not None and link.ifindex == parent.ifindex \
                        and a.local != ctx.address:
                    continue
                # An overlay's tunnel device holds a /32 of the pod network as its VTEP
                # address (flannel: 10.244.1.0/32 on flannel.1): by design, not a conflict.
                if link.kind in TUNNEL_KINDS and a.prefixlen == 32 \
                        and a.local not in (ctx.address, ctx.gateway):
                    continue
                what = ("the container's own address" if a.local == ctx.address else
                        "its gateway" if a.local == ctx.gateway else f"an address of {net}")
                if str(a) in protected:
                    fix = (f"{{in_host}}ip -br addr show dev {link.name}  # the host's uplink "
                           f"address: keep {a}; give {ctx.subject} an address outside it")
                else:
                    fix = "{in_host}ip addr del " + str(a) + " dev " + link.name
                yield self.finding(
                    ctx, f"{link.name} in {ctx.vars['host_ns']} has {a} — {what}: the host "
                         f"answers ARP and routes for it there, not toward {ctx.subject}",
                    {"interface": link.name, "address": str(a), "container_ip": ctx.address,
                     "container_network": str(net), "host_uplink": str(a) in protected},
                    fix, conflict_iface=link.name, conflict_addr=str(a))

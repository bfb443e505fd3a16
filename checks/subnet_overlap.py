from . import Check, register


@register
class SubnetOverlap(Check):
    """The container network overlaps another network the host routes elsewhere"""

    id = "subnet-overlap"
    severity = "warning"
    scope = "host"
    runs_on = "container"
    tags = ("routing",)

    def run(self, ctx):
        h = ctx.host_ns
        iface = ctx.interface
        own = {l.name for l in (ctx.ingress, ctx.host_veth, ctx.network_bridge) if l is not None}
        if h is None or iface is None or not own:
            return
        net = iface.network
        if net.version != 4:
            return
        for r in h.routes_overlapping(net):
            other = r.network
            if r.dev in own or other.prefixlen == 32 or r.type != "unicast":
                continue  # a blackhole (Calico's own block) or unreachable routes nowhere
            yield self.finding(
                ctx, f"{ctx.subject}'s network {net} overlaps {other} which "
                     f"{ctx.vars['host_ns']} routes via {r.dev}"
                     + (f" (gateway {r.gateway})" if r.gateway else ""),
                {"container_network": str(net), "route": r.dst, "dev": r.dev,
                 "gateway": r.gateway},
                # (The fix, moving the network to a free range, is the runbook's: which
                # range is free is the operator's to say.)
                "{in_host}ip route show " + str(other), verify=True, other_net=str(other))

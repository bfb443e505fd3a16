from . import Check, register


@register
class MtuMismatch(Check):
    """The container's MTU is larger than the smallest MTU on its path"""

    id = "mtu-mismatch"
    severity = "warning"
    scope = "container"
    tags = ("mtu",)
    blocks_at = (("request", "container"), ("request", "host-veth"), ("request", "bridge"))
    precedence = 18

    def run(self, ctx):
        eth = ctx.egress
        hops = [l for l in (ctx.host_veth, ctx.bridge, ctx.uplink) if l is not None]
        if eth is None or not hops:
            return
        smallest = min(hops, key=lambda l: l.mtu)
        if eth.mtu <= smallest.mtu:
            return
        yield self.finding(
            ctx, f"{ctx.subject}'s {eth.name} has MTU {eth.mtu}, but {smallest.name} on its "
                 f"path has {smallest.mtu}: full-size packets are dropped or need "
                 f"fragmenting (a path-MTU black hole when ICMP is filtered)",
            {"container_mtu": eth.mtu, "path_mtus": {l.name: l.mtu for l in hops}},
            "{in_container}ip link set {eth} mtu " + str(smallest.mtu),
            path_mtu=smallest.mtu)

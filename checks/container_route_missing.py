from . import Check, register
from .context import lookup


@register
class ContainerRouteMissing(Check):
    """The host routes a routed container's address elsewhere than its veth"""

    id = "container-route-missing"
    severity = "error"
    scope = "host"
    runs_on = "container"
    tags = ("routing", "veth", "path")
    # Replies come back to the host and go elsewhere; with strict rp_filter on the veth, the
    # request itself is dropped as it enters the host.
    blocks_at = (("reply", "uplink"), ("request", "host-veth"))
    precedence = 6
    structural = True

    def run(self, ctx):
        h, veth, address = ctx.host_ns, ctx.host_veth, ctx.address
        if h is None or veth is None or not address or not ctx.routed:
            return
        route = lookup(h.routes, address)
        if route is not None and route.dev == veth.name and not route.gateway:
            return
        now = "no route at all" if route is None else (
            f"{route.dst}" + (f" via {route.gateway}" if route.gateway else "")
            + f" dev {route.dev}")
        yield self.finding(
            ctx, f"{ctx.vars['host_ns']} routes {ctx.subject}'s address {address} by {now}, "
                 f"not into its veth {veth.name}: the answers to what it sends cannot reach it",
            {"address": address, "host_route": now, "veth": veth.name,
             "expected": f"{address} dev {veth.name} scope link"},
            "{in_host}ip route replace {container_ip}/32 dev {veth} scope link")

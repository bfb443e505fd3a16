from . import Check, register
from ._routing import container_misrouted, rp_filter_refuses


@register
class ContainerRouteMissing(Check):
    """The host routes a routed container's address elsewhere than its veth"""

    id = "container-route-missing"
    severity = "error"
    scope = "host"
    runs_on = "container"
    tags = ("routing", "veth", "path")
    # Replies come back to the host and go elsewhere; with strict rp_filter on the veth, the
    # request itself is dropped as it enters the host, and the container's ARP for its
    # gateway is not answered (the kernel validates the sender's route back too).
    blocks_at = (("reply", "uplink"), ("request", "host-veth"), ("request", None),
                 ("request", "container"))
    precedence = 6
    structural = True

    def run(self, ctx):
        misrouted, route = container_misrouted(ctx)
        if not misrouted:
            return
        h, veth, address = ctx.host_ns, ctx.host_veth, ctx.address
        refused, _ = rp_filter_refuses(h, veth.name, address)
        now = "no route at all" if route is None else (
            f"{route.dst}" + (f" via {route.gateway}" if route.gateway else "")
            + f" dev {route.dev}")
        yield self.finding(
            ctx, f"{ctx.vars['host_ns']} routes {ctx.subject}'s address {address} by {now}, "
                 f"not into its veth {veth.name}: the answers to what it sends cannot reach it",
            {"address": address, "host_route": now, "veth": veth.name,
             "expected": f"{address} dev {veth.name} scope link",
             "stops_at": ["uplink", "host-veth", None, "container"] if refused else ["uplink"],
             "rp_filter_refuses": bool(refused)},
            "{in_host}ip route replace {container_ip}/32 dev {veth} scope link")

from . import Check, register
from .context import lan_bridge, lookup


@register
class DestinationShadowed(Check):
    """The host delivers the destination onto a local network of its own instead of routing
    it out"""

    id = "destination-shadowed"
    severity = "error"
    scope = "host"
    runs_on = "container"
    tags = ("routing", "path")
    # The host asks ARP for the destination on that local network; nobody there answers,
    # and the request is last seen where it entered the host's IP layer.
    blocks_at = (("request", "bridge"), ("request", "host-veth"), ("request", "uplink"))
    precedence = 12

    def run(self, ctx):
        h, out, dest = ctx.host_ns, ctx.uplink, ctx.destination
        hop = ctx.hop("uplink")
        if h is None or out is None or hop is None or hop.get("via") or not dest:
            return
        if out.kind != "bridge" or lan_bridge(h, out):
            return  # a NIC, or a bridge with one in it, on the destination's own LAN
        route = lookup(h.routes, dest)  # (None for a destination that is no address)
        if route is None or route.gateway or route.dev != out.name or route.is_default:
            return
        family = ctx.family
        default = next((r for r in h.default_routes(family)
                        if r.dev != out.name and r.gateway), None)
        if default is None:
            return  # no other way out to compare with
        host_len = 128 if family == "inet6" else 32
        yield self.finding(
            ctx, f"{dest} is inside {route.dst}, the network of bridge {out.name} on "
                 f"{ctx.vars['host_ns']}: the host delivers {ctx.subject}'s requests there "
                 f"(and asks ARP for {dest} on {out.name}, where nobody holds it) instead of "
                 f"sending them to {default.gateway} by its default route on {default.dev} (a "
                 f"container network created over an outside range)",
            {"destination": dest, "route": route.dst, "dev": route.dev,
             "default_gateway": default.gateway, "default_dev": default.dev},
            "{in_host}ip route add " + f"{dest}/{host_len} via {default.gateway} dev "
            f"{default.dev}", shadowing_net=route.dst, shadowing_dev=route.dev)

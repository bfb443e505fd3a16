from . import Check, register
from ._tunnel import tunnel_of
from .context import link_evidence


@register
class VxlanDeviceDown(Check):
    """The overlay's VXLAN device on the container's path is down"""

    id = "vxlan-device-down"
    severity = "error"
    scope = "host"
    runs_on = "container"
    tags = ("overlay", "vxlan", "link", "path")
    blocks_at = (("request", "bridge"), ("request", "tunnel"))
    precedence = 5
    structural = True

    def run(self, ctx):
        tunnel, _ = tunnel_of(ctx)
        if tunnel is not None:
            if not tunnel.up:
                yield self._down(ctx, tunnel, "")
            return
        # Not on the path: a device that goes down takes its routes with it, so the host has
        # no route to the destination, and a VXLAN device that is down is the likely reason.
        if ctx.host_ns is None or not ctx.bridged:
            return
        lookups = [l for l in ctx.path.get("route_lookups", ())
                   if l["netns"] == ctx.vars["host_ns"]]
        if not lookups or lookups[-1].get("dev"):
            return
        for link in ctx.host_ns.tunnels:
            if not link.up:
                yield self._down(ctx, link, " (the kernel removed its routes: the host has no "
                                            f"route to {ctx.destination} any more)")

    def _down(self, ctx, tunnel, why):
        return self.finding(
            ctx, f"{tunnel.name}, a VXLAN device of the overlay, is DOWN in "
                 f"{ctx.vars['host_ns']}{why}: nothing crosses the overlay",
            link_evidence(tunnel, vni=tunnel.tunnel.get("vni")),
            "{in_host}ip link set " + tunnel.name + " up", tunnel=tunnel.name)

from . import Check, register
from .context import global_addresses, link_evidence


@register
class UplinkDown(Check):
    """The host's uplink interface is down or has no carrier"""

    id = "uplink-down"
    severity = "error"
    scope = "host"
    runs_on = "container"
    tags = ("link", "path")
    blocks_at = (("request", "bridge"),)
    precedence = 11

    def run(self, ctx):
        h = ctx.host_ns
        if h is None or not ctx.bridged:
            return
        up = ctx.uplink
        if up is not None:
            if up.state in ("DOWN", "NO-CARRIER"):
                yield self._down(ctx, up, "")
            return
        # No uplink on the path: the kernel removes the routes of a link that goes down,
        # so a down interface that still holds an address is the likely reason.
        lookups = [l for l in ctx.path.get("route_lookups", ())
                   if l["netns"] == ctx.vars["host_ns"]]
        if lookups and lookups[-1].get("dev"):
            return
        container_side = {l.ifindex for l in (ctx.host_veth, ctx.bridge, ctx.network_bridge)
                          if l is not None}
        for link in h.addressed_links:
            if link.ifindex in container_side or link.kind in (
                    "bridge", "vxlan"):  # (a tunnel that is down: vxlan-device-down)
                continue
            if link.master is not None or link.state not in ("DOWN", "NO-CARRIER"):
                continue
            if global_addresses(link, "inet") or global_addresses(link, "inet6"):
                yield self._down(ctx, link, " (the kernel removed its routes, the default "
                                            "route with them)")

    def _down(self, ctx, link, why_routes):
        # Up without a carrier: the cable, the switch port, or a veth's peer is down, none
        # of which is this host's to bring up: shown (the peer of a veth, by its netns id).
        carrierless = link.up
        fix = f"{{in_host}}ip -d link show {link.name}" if carrierless else \
            f"{{in_host}}ip link set {link.name} up"
        return self.finding(
            ctx, f"uplink {link.name} in {ctx.vars['host_ns']} is {link.state}{why_routes}"
                 + (": it is up, but its cable, switch port or peer is not" if carrierless
                    else ""),
            link_evidence(link, addresses=[str(a) for a in link.addresses if a.scope == "global"]),
            fix, verify=carrierless, uplink=link.name)

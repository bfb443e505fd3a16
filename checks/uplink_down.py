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
    # A macvlan child's frames go out of its parent, the uplink, from the container itself:
    # with the parent down the child has no carrier, and nothing leaves it.
    blocks_at = (("request", "bridge"), ("request", None), ("request", "container"))
    precedence = 11

    def run(self, ctx):
        h = ctx.host_ns
        macvlan = ctx.path.get("mode") == "macvlan"
        if h is None or not (ctx.bridged or macvlan):
            return
        up = ctx.uplink
        if up is not None:
            if up.state in ("DOWN", "NO-CARRIER"):
                child = ctx.egress.name if ctx.egress is not None else "interface"
                yield self._down(ctx, up, f" (the parent of {ctx.subject}'s macvlan {child}, "
                                          f"which has no carrier while it is)" if macvlan
                                 else "", [None, "container"] if macvlan else ["bridge"])
            return
        if macvlan:
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

    def _down(self, ctx, link, why_routes, stops_at=("bridge",)):
        # Up without a carrier: the cable, the switch port, or a veth's peer is down, none
        # of which is this host's to bring up: shown (the peer of a veth, by its netns id).
        carrierless = link.up
        fix = f"{{in_host}}ip -d link show {link.name}" if carrierless else \
            f"{{in_host}}ip link set {link.name} up"
        return self.finding(
            ctx, f"uplink {link.name} in {ctx.vars['host_ns']} is {link.state}{why_routes}"
                 + (": it is up, but its cable, switch port or peer is not" if carrierless
                    else ""),
            dict(link_evidence(link, addresses=[str(a) for a in link.addresses
                                                if a.scope == "global"]),
                 stops_at=list(stops_at)),
            fix, verify=carrierless, uplink=link.name)

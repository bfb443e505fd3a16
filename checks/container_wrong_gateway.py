import ipaddress

from . import Check, register
from .context import (default_route_fix, no_gateway_shown, gateway_for, global_addresses,
                      router_on_segment)


@register
class ContainerWrongGateway(Check):
    """The container's default gateway is not its bridge, or not on its link"""

    id = "container-wrong-gateway"
    severity = "error"
    scope = "container"
    tags = ("routing", "path")
    blocks_at = (("request", None), ("request", "container"))
    precedence = 8
    structural = True

    def run(self, ctx):
        gw, eth = ctx.gateway, ctx.egress
        if not gw or eth is None or not global_addresses(eth, ctx.family):
            return  # no address of the family at all is container-no-address's finding
        try:
            gw_ip = ipaddress.ip_address(gw)
        except ValueError:
            return
        route = ctx.default_route
        # On the link: in one of its networks, or behind a scope-link route of its own
        # (a routed container's /32 with the gateway 169.254.1.1 dev eth0 scope link).
        fam = ctx.family
        on_link = gw_ip.is_link_local \
            or any(gw_ip in a.interface.network for a in global_addresses(eth, fam)) \
            or any(r.dev == eth.name and r.scope == "link" and not r.gateway
                   and not r.is_default and gw_ip in r.network
                   for r in ctx.namespace.routes if r.family == fam)
        if not on_link and not route.onlink and route.dev == eth.name:
            fix = default_route_fix(ctx, eth, "replace")
            yield self.finding(
                ctx, f"{ctx.subject}'s default gateway {gw} is not on {eth.name}'s network "
                     f"({', '.join(str(a) for a in global_addresses(eth, fam)) or 'no address'})",
                {"gateway": gw, "addresses": [str(a) for a in global_addresses(eth, fam)]},
                fix or no_gateway_shown(ctx.family), verify=fix is None)
            return
        br = ctx.bridge
        if br is None or route.dev != eth.name:
            return  # a default route by another interface: its gateway is not this path's
        if gateway_for(ctx, eth)[0] is None:
            return  # its address is outside the bridge's network: container-address-off-network
        bridge_ips = [a.local for a in global_addresses(br, fam)]
        if bridge_ips and gw not in bridge_ips and not router_on_segment(ctx.host_ns, br, gw):
            yield self.finding(
                ctx, f"{ctx.subject}'s default gateway is {gw}, but its bridge {br.name} has "
                     f"{', '.join(bridge_ips)}: packets go to an address nobody routes for",
                {"gateway": gw, "bridge": br.name, "bridge_addresses": bridge_ips},
                "{in_container}ip route replace default via " + bridge_ips[0] + " dev {eth}",
                bridge_address=bridge_ips[0])


    def for_unanswered(self, ctx, address: str):
        """As a trace saw it: the container asked its link for its default gateway's MAC and
        nothing answered. Where its wiring names another router (a macvlan child's: the one
        its host uses on that segment), the gateway is the fault and that router the fix."""
        eth, route = ctx.egress, ctx.default_route
        if eth is None or route is None or address != ctx.gateway or route.dev != eth.name:
            return
        right, _ = gateway_for(ctx, eth)
        if right is None or right == address:
            return
        yield self.finding(
            ctx, f"{ctx.subject}'s default gateway {address} answers no ARP on {eth.name}'s "
                 f"link (the trace asked, and nothing answered), while its wiring's router is "
                 f"{right}: nothing it sends leaves it",
            {"gateway": address, "expected": right, "arp_unanswered": True},
            default_route_fix(ctx, eth, "replace"), bridge_address=right)

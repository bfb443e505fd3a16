import ipaddress

from . import Check, register
from .context import gateway_for, global_addresses, lan_bridge, lookup, proxy_arp_on


@register
class ContainerRouteBypassesGateway(Check):
    """A route of the container's own sends the destination past its gateway"""

    id = "container-route-bypasses-gateway"
    severity = "error"
    scope = "container"
    tags = ("routing", "path")
    # On its link: the container asks by ARP for the destination itself, and nothing
    # answers (the request never leaves it). Via another address of the bridge: the frame
    # is bridged to whoever holds that address, and never reaches the host's IP layer.
    blocks_at = (("request", None), ("request", "container"), ("request", "host-veth"))
    precedence = 8
    structural = True

    def run(self, ctx):
        eth, br, dest = ctx.egress, ctx.bridge, ctx.destination
        if eth is None or br is None or not ctx.bridged or not dest or ctx.east_west:
            return
        if lan_bridge(ctx.host_ns, br):
            return  # other routers on the segment are the LAN's business
        asked = ctx.own_route_lookup
        if asked is None or asked.get("error") or asked.get("dev") != eth.name:
            return
        try:
            d = ipaddress.ip_address(dest)
        except ValueError:
            return
        fam = ctx.family
        mine = [a.interface.network for a in global_addresses(eth, fam)]
        if any(d in n for n in mine):
            return  # a neighbour on its own network (another container): no gateway needed
        gw, on_link = gateway_for(ctx, eth)
        via = asked.get("gateway")
        if gw is None or via == gw:
            return
        route = lookup(ctx.namespace.routes, dest)
        if route is None or route.is_default or route.dev != eth.name or route.gateway != via:
            return  # the kernel chose by something the main table does not say (policy)
        if via is None:
            if fam != "inet" or proxy_arp_on(ctx.host_ns.sysctls, br.name):
                return  # (the bridge answers ARP for what it routes: on-link works)
            how = (f"on its link ({route.dst} dev {eth.name}, no gateway): it asks by ARP for "
                   f"{dest} itself, and nothing on {br.name} has that address")
            stops = [None, "container"]
        else:
            how = (f"via {via} ({route.dst} via {via} dev {eth.name}), not via its gateway "
                   f"{gw}: the frames go to whatever answers ARP for {via} on {br.name}, if "
                   f"anything does, and never reach the host; unless {via} is a router of "
                   f"its own, they end there")
            stops = [None, "container", "host-veth"]
        own = f"{route.dst}" + (f" via {via}" if via else "") + f" dev {eth.name}"
        yield self.finding(
            ctx, f"{ctx.subject} routes {dest} {how}",
            {"route": own, "kernel_lookup": asked.get("query"), "gateway": gw,
             "stops_at": stops},
            "{in_container}ip route replace " + route.dst + f" via {gw} dev {{eth}}"
            + (" onlink" if on_link else ""), route_dst=route.dst, gateway=gw, own_route=own)

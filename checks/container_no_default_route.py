from . import Check, register
from .context import global_addresses, lookup
from netdoctor.diagnose.facts.namespace import parse_address


@register
class ContainerNoDefaultRoute(Check):
    """The container has no route out"""

    id = "container-no-default-route"
    severity = "error"
    scope = "container"
    tags = ("routing", "path")
    blocks_at = (("request", None),)
    precedence = 3
    structural = True

    def run(self, ctx):
        eth = ctx.egress
        if eth is None or ctx.default_route is not None:
            return
        if not global_addresses(eth, ctx.family):
            return  # no address of the family: that is the fault (container-no-address...)
        dest = ctx.destination
        r = lookup(ctx.namespace.routes, dest)
        if r is not None and r.type == "unicast":
            return  # no default route, but the destination is routed: nothing breaks
        gw = gateway_for(ctx, eth)
        yield self.finding(
            ctx, f"{ctx.subject} has no default route (and no route to {dest})",
            {"routes": [f"{x.dst} dev {x.dev}" + (f" via {x.gateway}" if x.gateway else "")
                        for x in ctx.namespace.routes if x.table == "main"]},
            "{in_container}ip route add default via " + gw + " dev {eth}"
            + (" onlink" if ctx.path.get("mode") == "routed" and gw != "<gateway>" else ""))


def gateway_for(ctx, eth) -> str:
    """The gateway the container's wiring provides: its bridge's address in the container's
    network; for a routed veth the host veth's own address (ptp), else, IPv4 with proxy ARP
    answering for anything, the link-local 169.254.1.1 (Calico's); "<gateway>" when the
    wiring names none."""
    fam = ctx.family
    mine = [a.interface.network for a in global_addresses(eth, fam)]
    if ctx.bridge is not None:
        for a in global_addresses(ctx.bridge, fam):
            if any(parse_address(a.local) in n for n in mine):
                return a.local
        return "<gateway>"
    if ctx.path.get("mode") == "routed" and ctx.host_veth is not None:
        own = [a.local for a in ctx.host_veth.addresses if a.family == fam
               and a.scope in ("global", "link") and not a.local.startswith("fe80")]
        if own:
            return own[0]
        if fam == "inet":
            return "169.254.1.1"
        link_local = [a.local for a in ctx.host_veth.addresses if a.family == fam
                      and a.local.startswith("fe80")]
        if link_local:
            return link_local[0]
    return "<gateway>"

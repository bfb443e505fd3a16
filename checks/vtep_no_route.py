from . import Check, register
from ._routing import a_, describe, refusing_route, refusing_rule, selector
from ._tunnel import up_tunnel_of


@register
class VtepNoRoute(Check):
    """The host has no route to the remote VTEP its tunnel sends the container's packets
    to: the encapsulated packet cannot leave"""

    id = "vtep-no-route"
    severity = "error"
    scope = "host"
    runs_on = "container"
    tags = ("overlay", "vxlan", "routing", "path")
    # The packet enters the tunnel; its encapsulation has no route to the far end.
    blocks_at = (("request", "tunnel"),)
    precedence = 8
    structural = True

    def run(self, ctx):
        tunnel, nexthop = up_tunnel_of(ctx)
        if tunnel is None:
            return
        mac = ctx.host_ns.neighbour_mac(nexthop, tunnel.name)
        vtep = tunnel.tunnel.get("remote") or (
            ctx.host_ns.tunnel_destination(tunnel.name, mac) if mac else None)
        if not vtep:
            return  # no VTEP known at all: vxlan-fdb-missing, vxlan-neighbour-missing
        query = f"ip route get {vtep}"
        asked = next((l for l in ctx.path.get("route_lookups", ())
                      if l.get("netns") == ctx.vars["host_ns"] and l.get("query") == query),
                     None)
        if asked is None or asked.get("dev") or not asked.get("error"):
            return
        evidence = {"tunnel": tunnel.name, "remote_vtep": vtep, "lookup": query,
                    "kernel_answer": asked["error"]}
        said = (f"{ctx.vars['host_ns']} has no route to {vtep}, the remote VTEP {tunnel.name} "
                f"sends {ctx.subject}'s packets to ({asked['error']}): the encapsulated "
                f"packets cannot leave")
        route = refusing_route(ctx.host_ns, vtep, asked["error"])
        rule = refusing_rule(ctx.host.policy_rules, asked, vtep) if route is None else None
        if route is not None and not route.is_default:
            evidence["refusing_route"] = describe(route)
            yield self.finding(ctx, f"{said}; {a_(route.type)} route ({describe(route)}) "
                                    f"covers it", evidence,
                               "{in_host}ip route del " + selector(route), tunnel=tunnel.name)
        elif rule is not None:
            evidence["policy_rule"] = rule.text()
            yield self.finding(ctx, f"{said}; the policy rule `{rule.text()}` refuses it",
                               evidence, "{in_host}" + rule.deletion(), tunnel=tunnel.name)
        else:
            if route is not None:
                evidence["refusing_route"] = describe(route)
            underlay = tunnel.tunnel.get("dev")
            yield self.finding(
                ctx, said, evidence,
                "{in_host}ip route show" + (f" dev {underlay}" if underlay else "")
                + "; {in_host}" + query, verify=True, tunnel=tunnel.name)

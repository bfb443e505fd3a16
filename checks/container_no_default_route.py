from . import Check, register
from ._routing import route_for
from .context import default_route_fix, global_addresses, no_gateway_shown


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
        r = route_for(ctx.namespace, ctx.container.policy_rules, dest, ctx.address)
        if r is not None and r.type == "unicast":
            return  # no default route, but the destination is routed: nothing breaks
        fix = default_route_fix(ctx, eth, "add")
        yield self.finding(
            ctx, f"{ctx.subject} has no default route (and no route to {dest})",
            {"routes": [f"{x.dst} dev {x.dev}" + (f" via {x.gateway}" if x.gateway else "")
                        for x in ctx.namespace.routes if x.table == "main"]},
            fix or no_gateway_shown(ctx.family), verify=fix is None)

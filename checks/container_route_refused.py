from . import Check, register
from ._routing import (REFUSALS, a_, describe, refusing_route, refusing_rule, route_removal,
                       rule_to_table)


@register
class ContainerRouteRefused(Check):
    """The container's own kernel refuses the route to the destination: a blackhole,
    unreachable or prohibit route, or a policy rule, though it has a way out"""

    id = "container-route-refused"
    severity = "error"
    scope = "container"
    tags = ("routing", "path")
    # Its kernel answers the socket with an error: nothing leaves it.
    blocks_at = (("request", None), ("request", "container"))
    precedence = 4
    structural = True

    def run(self, ctx):
        asked, eth, dest = ctx.own_route_lookup, ctx.egress, ctx.destination
        if asked is None or not asked.get("error") or eth is None or not dest:
            return
        if ctx.default_route is None:
            return  # no way out at all: container-no-default-route's
        # (Network unreachable beside a default route without a rule or route to show is
        # also a gateway its address no longer reaches: container-address-off-network's.)
        rules = ctx.container.policy_rules
        route = refusing_route(ctx.namespace, dest, asked["error"])
        rule = refusing_rule(rules, asked, dest) if route is None else None
        evidence = {"lookup": asked.get("query"), "kernel_answer": asked["error"],
                    "default_route": ctx.default_route.dst + (
                        f" via {ctx.default_route.gateway}" if ctx.default_route.gateway
                        else "")}
        said = f"{ctx.subject}'s kernel refuses a route to {dest} ({asked['error']})"
        if route is not None:
            evidence["refusing_route"] = describe(route)
            leads = rule_to_table(rules, asked, dest, route.table)
            why = f"{a_(route.type)} route ({describe(route)}) covers it"
            if leads is not None:
                evidence["policy_rule"] = leads.text()
                why += f", in the table the policy rule `{leads.text()}` sends it to"
            fix, verify = route_removal("{in_container}", route)
            yield self.finding(ctx, f"{said}: {why}", evidence, fix, verify=verify)
        elif rule is not None:
            evidence["policy_rule"] = rule.text()
            yield self.finding(
                ctx, f"{said}: the policy rule `{rule.text()}` refuses it, though its default "
                     f"route would take it", evidence,
                "{in_container}" + rule.deletion())
        elif asked["error"] in {a for answers in REFUSALS.values() for a in answers}:
            yield self.finding(
                ctx, f"{said}, though it has a default route: a policy rule or another "
                     f"table decides", evidence,
                "{in_container}ip rule show; {in_container}" + (asked.get("query") or
                                                                "ip route get " + dest),
                verify=True)

import ipaddress

from . import Check, register
from ._routing import (describe, forwarding_on, kernel_refusal, refusing_route, route_removal,
                       rules_met)
from .context import global_addresses, lookup


def _taken_by(ctx, r: dict) -> tuple:
    """(route, policy rule) the kernel's answer r came from, as the host's routes explain
    it: the route of the first table (by the policy rules the replies meet, in order) that
    has one for the container, where it answers what the kernel did (a refusing route for
    an answer that is an error); the rule when that table is not main. (None, None) where
    the routes do not explain the answer."""
    words = r.get("query", "").split()
    if len(words) < 4:
        return None, None
    container = words[3]
    rules = [p for p in rules_met(ctx.host.policy_rules, r, container) if p.action == "lookup"]
    for p in rules or [None]:
        table = p.table if p is not None else "main"
        route = lookup(ctx.host_ns.routes, container, table)
        if route is None:
            continue  # the kernel goes on to the next rule
        rule = p if table not in ("main", "local", "default") else None
        if not r.get("dev"):
            refusing = refusing_route(ctx.host_ns, container, r.get("error"))
            return (refusing, rule) if refusing is not None and refusing.table == table \
                else (None, None)
        if route.dev != r["dev"] or (route.gateway or None) != (r.get("gateway") or None):
            return None, None
        return route, rule
    return None, None


def _back_without(ctx, route, r: dict, own) -> bool:
    """Whether, that route deleted, main's lookup of the container leads the replies back
    (to the device the requests came in by, or the container network's bridge)."""
    container = r["query"].split()[3]
    left = lookup(tuple(x for x in ctx.host_ns.routes if x is not route), container)
    return left is not None and left.type == "unicast" and \
        left.dev in (r.get("expected_dev"), own)


def _bridge_route_back(ctx, route, r: dict) -> str:
    """`ip route add` of the bridge's own route (its address's network, as the kernel adds
    it) when main has none for the container there and the route the replies took is less
    specific (a default route, or none at all): put back, it takes them. "" otherwise."""
    container = r["query"].split()[3]
    bridge = ctx.network_bridge
    try:
        ip = ipaddress.ip_address(container)
    except ValueError:
        return ""
    held = next((a for a in global_addresses(bridge, "inet6" if ip.version == 6 else "inet")
                 if ip in a.interface.network), None) if bridge is not None else None
    if held is None or route is not None and route.table not in ("main", None):
        return ""
    net = held.interface.network

    def as_specific(x) -> bool:
        """Whether route x is as specific as the bridge's: it would still win."""
        dst = x.dst if x.dst != "default" else ("::/0" if ip.version == 6 else "0.0.0.0/0")
        return ipaddress.ip_network(dst, strict=False).prefixlen >= net.prefixlen

    here = lookup(ctx.host_ns.routes, container)
    if here is not None and (here.dev == bridge.name or as_specific(here)):
        return ""  # main has it, or a route that would still win
    if route is not None and as_specific(route):
        return ""
    return (f"ip route add {net} dev {bridge.name} proto kernel scope link src "
            f"{held.local}")


@register
class ReplyPathAsymmetric(Check):
    """The host routes the replies to the container elsewhere than the requests came from"""

    id = "reply-path-asymmetric"
    severity = "error"
    scope = "host"
    runs_on = "container"
    tags = ("routing", "path")
    blocks_at = (("reply", "uplink"),)
    precedence = 13

    def run(self, ctx):
        if ctx.host is None or not ctx.bridged:
            return
        # The container network's own bridge is where its connected route leads: a veth
        # attached elsewhere is veth-not-attached, not a routing asymmetry.
        own = ctx.network_bridge.name if ctx.network_bridge is not None else None
        for r in ctx.path.get("reply_lookups") or ():
            expected = r.get("expected_dev")
            if not expected or r.get("dev") in (expected, own):
                continue
            if not r.get("dev") and " iif " in r.get("query", "") and not forwarding_on(
                    ctx.host_ns.sysctls, r["query"], ctx.family):
                continue  # refused as forwarding is off where they come in: not a route
            if r.get("dev"):
                what = (f"out of {r['dev']}" + (f" via {r['gateway']}" if r.get("gateway")
                                                else "") + f", not {expected}")
            else:
                what = f"nowhere ({r.get('error')})"
            evidence = {"lookup": r["query"], "kernel_answer": r.get("dev") or r.get("error"),
                        "gateway": r.get("gateway"), "request_came_in_by": expected}
            route, rule = _taken_by(ctx, r)
            fix, verify = "{in_host}ip rule show; {in_host}" + r["query"], True
            why = "a policy rule, a more specific route, a route in another table"
            if route is not None:
                evidence["route"] = describe(route)
                why = f"by the route {describe(route)}"
                if rule is not None:
                    evidence["policy_rule"] = rule.text()
                    why += f", which the policy rule `{rule.text()}` sends them to"
                # Never the host's own connected route (its uplink's network) or a default;
                # and only where what is left leads the replies back.
                if route.protocol != "kernel" and _back_without(ctx, route, r, own):
                    fix, verify = route_removal("{in_host}", route)
            if verify and r.get("expected_dev") == own:
                restored = _bridge_route_back(ctx, route, r)
                if restored:
                    fix, verify = "{in_host}" + restored, False
            yield self.finding(
                ctx, f"{ctx.vars['host_ns']} routes the replies to {ctx.subject} ({r['query']}) "
                     f"{what}: the request goes out one way and its answers come back another "
                     f"({why})", evidence, fix, verify=verify,
                reply_query=r["query"], expected_dev=expected, routed=what, because=why)

    def for_decision(self, ctx, decision: dict):
        """As a trace saw it: the host's kernel refused the replies to the container in its
        own lookup (the journal's decision), where the checks' lookup, asked without the
        replies' marks, found the way back (see _routing.kernel_refusal)."""
        if ctx.host is None or not ctx.address:
            return
        said = kernel_refusal(ctx, decision, ctx.address)
        if said is None:
            return
        message, evidence, fix, verify = said
        yield self.finding(
            ctx, f"{ctx.vars['host_ns']}'s kernel refused to route the replies to "
                 f"{ctx.subject} back: {message}", dict(evidence, direction="reply"), fix,
            verify=verify, reply_query=f"ip route get {ctx.address} from {ctx.destination} "
                                       f"iif {ctx.host_egress.name if ctx.host_egress else '?'}",
            expected_dev=ctx.ingress.name if ctx.ingress else "?")

import errno
import ipaddress
import os

from . import Check, register
from ._routing import (a_, describe, forwarding_on, kernel_refusal, refusing_route,
                       refusing_rule, route_removal, rule_to_table)


@register
class HostNoRoute(Check):
    """The host has no route toward the destination"""

    id = "host-no-route"
    severity = "error"
    scope = "host"
    runs_on = "container"
    tags = ("routing", "path")
    # Bridged, the bridge is where the host routes the packet; with routed veths the host
    # answers ARP for the containers' gateway by proxy only with a route toward it: without
    # one nothing leaves the container (or, the gateway still known, its host veth is last).
    blocks_at = (("request", "bridge"), ("request", None), ("request", "container"),
                 ("request", "host-veth"))
    precedence = 12

    def run(self, ctx):
        if ctx.host is None or not ctx.bridged:
            return
        if ctx.flannel is not None and ctx.destination and ":" not in ctx.destination \
                and ipaddress.ip_address(ctx.destination) in ctx.flannel["network"]:
            return  # a peer's pod subnet: peer-route-missing says what is missing
        host_ns = ctx.vars["host_ns"]
        # Discovery asks the forwarding question first, then (if refused) the plain one:
        # the host has no route when its last answer has no device.
        lookups = [l for l in ctx.path.get("route_lookups", ()) if l["netns"] == host_ns]
        if lookups and not lookups[-1].get("dev"):
            l = lookups[-1]
            defaults = [r.dst + (f" via {r.gateway}" if r.gateway else "")
                        for r in ctx.host_ns.default_routes(ctx.family)]
            evidence = {"lookup": l["query"], "kernel_answer": l.get("error"),
                        "default_routes": defaults}
            refusing = refusing_route(ctx.host_ns, ctx.destination, l.get("error"))
            rule = None if refusing is not None or not defaults else \
                refusing_rule(_rules(ctx), l, ctx.destination)
            if refusing is not None:
                evidence["refusing_route"] = describe(refusing)
                where = f", table {refusing.table}" if refusing.table != "main" else ""
                message = (f"{host_ns} routes {ctx.destination} into {a_(refusing.type)} route "
                           f"({refusing.dst}{where}): the kernel discards what it matches "
                           f"({l.get('error')})")
                fix, verify = route_removal("{in_host}", refusing)
                yield self.finding(ctx, message, evidence, fix, verify=verify)
            elif rule is not None:
                evidence["policy_rule"] = rule.text()
                yield self.finding(
                    ctx, f"{host_ns} has no route to {ctx.destination} ({l.get('error')}), "
                         f"though it has a default route: the policy rule `{rule.text()}` "
                         f"refuses it", evidence, "{in_host}" + rule.deletion())
            elif defaults:
                # A default route the lookup did not use (a policy rule, another table):
                # adding one would fail; show what the kernel chose instead.
                yield self.finding(
                    ctx, f"{host_ns} has no route to {ctx.destination} ({l.get('error')}), "
                         f"though it has a default route: a policy rule or another table "
                         f"decides", evidence,
                    "{in_host}ip rule show; {in_host}" + l["query"], verify=True)
            else:
                yield self.finding(
                    ctx, f"{host_ns} has no route to {ctx.destination} ({l.get('error')})",
                    evidence, no_gateway_known(ctx.family), verify=True)
        elif lookups and " iif " in lookups[0]["query"] and not lookups[0].get("dev") \
                and forwarding_on(ctx.host_ns.sysctls, lookups[0]["query"], ctx.family) \
                and _policy_refusal(ctx, lookups[0]):
            # The host routes the destination itself, and refuses to forward the
            # container's packets to it: a policy rule or a route for that source decides.
            l = lookups[0]
            evidence = {"lookup": l["query"], "kernel_answer": l.get("error"),
                        "plain_lookup": lookups[-1]["query"], "plain_answer": lookups[-1]["dev"]}
            refusing = refusing_route(ctx.host_ns, ctx.destination, l.get("error"))
            rule = None if refusing is not None else refusing_rule(_rules(ctx), l, ctx.destination)
            by = (f"{a_(refusing.type)} route ({describe(refusing)})" if refusing is not None
                  else f"the policy rule `{rule.text()}`" if rule is not None
                  else "a policy rule (ip rule: prohibit, blackhole, unreachable, or a table "
                       "without a route)")
            if refusing is not None:
                evidence["refusing_route"] = describe(refusing)
                leads = rule_to_table(_rules(ctx), l, ctx.destination, refusing.table)
                if leads is not None:
                    evidence["policy_rule"] = leads.text()
                    by += f", the table the policy rule `{leads.text()}` sends them to"
            message = (f"{host_ns} refuses to forward {ctx.subject}'s packets to "
                       f"{ctx.destination} ({l['query']}: {l.get('error')}), though it routes "
                       f"{ctx.destination} itself: {by} decides for their source")
            if rule is not None:
                evidence["policy_rule"] = rule.text()
                yield self.finding(ctx, message, evidence, "{in_host}" + rule.deletion())
            else:
                yield self.finding(ctx, message, evidence,
                                   "{in_host}ip rule show; {in_host}" + l["query"], verify=True)
        elif not lookups and ctx.uplink is None and not ctx.host_ns.default_routes():
            yield self.finding(
                ctx, f"{host_ns} has no default route",
                {"default_routes": []}, no_gateway_known(ctx.family), verify=True)

    def for_decision(self, ctx, decision: dict):
        """As a trace saw it: the host's kernel refused the probe's request in its own lookup
        (the journal's decision), where the checks' lookup, asked without the probe's marks,
        found a route (see _routing.kernel_refusal)."""
        if ctx.host is None or not ctx.destination:
            return
        said = kernel_refusal(ctx, decision, ctx.destination)
        if said is None:
            return
        message, evidence, fix, verify = said
        yield self.finding(
            ctx, f"{ctx.vars['host_ns']}'s kernel refused to route {ctx.subject}'s probe to "
                 f"{ctx.destination}: {message}", dict(evidence, direction="request"), fix,
            verify=verify)


# No route at all: the gateway of the uplink's network is the network's (its DHCP lease, its
# configuration), which netdoctor cannot know; the addresses and routes there are, shown.
def no_gateway_known(family: str) -> str:
    """What to show when the host's gateway cannot be named: its addresses and routes."""
    six = " -6" if family == "inet6" else ""
    return "{in_host}ip -br addr show && {in_host}ip" + six + " route show table main"


def _policy_refusal(ctx, lookup: dict) -> bool:
    """A refusal of the forwarding lookup that a policy decision makes: prohibit (EACCES),
    unreachable (EHOSTUNREACH, forwarding being on), a table without a route
    (ENETUNREACH); EINVAL only with a blackhole route or rule to show for it, as rp_filter
    and a martian source refuse with it too (rp-filter-drop's), and EXDEV is rp_filter's."""
    error = lookup.get("error")
    if error == os.strerror(errno.EINVAL):
        return refusing_route(ctx.host_ns, ctx.destination, error) is not None \
            or refusing_rule(_rules(ctx), lookup, ctx.destination) is not None
    return error in (os.strerror(errno.EACCES), os.strerror(errno.EHOSTUNREACH),
                     os.strerror(errno.ENETUNREACH))


def _rules(ctx):
    return ctx.host.policy_rules if ctx.host is not None else None

from dataclasses import replace

from netdoctor.diagnose.reason.rules import evaluate

from . import Check, register
from ._rules import delete_rule, flow_name, iptables_for
from .context import lookup

BAD_NEIGHBOUR = {"FAILED", "INCOMPLETE"}


@register
class DestinationRedirected(Check):
    """The host's nat PREROUTING sends the container's requests somewhere other than their
    destination"""

    id = "destination-redirected"
    severity = "error"
    scope = "host"
    runs_on = "container"
    tags = ("nat", "rules", "path")
    blocks_at = (("request", "host-veth"), ("request", "bridge"), ("request", "uplink"))
    precedence = 13

    def run(self, ctx):
        if ctx.host is None or ctx.host_ns is None or not ctx.bridged:
            return
        by_rule = {}  # rule -> the probe flows it translates, in probe_flows' order
        for proto, port in ctx.probe_flows:
            packet = ctx.request(proto, port)
            if packet is None:
                return
            out = evaluate(ctx.host.ruleset, "prerouting", replace(packet, oif=None),
                           type_="nat")
            if out.verdict in ("dnat", "redirect") and out.rule is not None:
                by_rule.setdefault(out.rule, ([], out.guessed))[0].append((proto, port))
        for rule, (flows, guessed) in by_rule.items():
            found = self._where_it_lands(ctx, flows, rule)
            if guessed:
                # The walk reached the rule only by taking a match it cannot evaluate as met
                # (a module netdoctor does not model): it may not apply at all.
                g = guessed[0]
                found = replace(found, severity="warning", fix="",
                                verify=found.verify or _shown(rule, ctx.vars.get("in_host", "")),
                                message=f"{found.message} (if {g.where} matches: "
                                        f"netdoctor cannot evaluate all of `{g.text}`)")
            yield found

    def _where_it_lands(self, ctx, flows, rule):
        host = ctx.host_ns
        addr, to_port = rule.nat_target()
        _, port = flows[0]
        names = ", ".join(flow_name(p, n) for p, n in flows)
        local = rule.verdict == "redirect" or addr in host.held_addresses
        there = (f"port {to_port or port} of the host itself" if local and (to_port or port)
                 else "the host itself" if local
                 else f"{addr}" + (f" port {to_port}" if to_port else ""))
        said = (f"the host's nat PREROUTING sends {ctx.subject}'s requests to "
                f"{ctx.destination} ({names}) to {there} instead ({rule.where}: {rule.text})")
        evidence = {"rule": f"{rule.where}: {rule.text}", "flows": [flow_name(p, n)
                                                                     for p, n in flows],
                    "to": rule.to, "address": addr, "local": local, "direction": "request",
                    "stops_at": ["host-veth", "bridge"] if local else
                    ["host-veth", "bridge", "uplink"]}
        fix = delete_rule(rule, "{in_host}")
        extra = {"rule": f"{rule.where}: {rule.text}", "redirected_to": there}
        ported = [(p, to_port or n) for p, n in flows if p in ("tcp", "udp") and (to_port or n)]
        listening = ctx.host.listeners
        if local and ported and listening is not None:
            silent = [(p, n) for p, n in ported
                      if not any(s["proto"] == p and s["port"] == n for s in listening)]
            if silent:
                evidence["nothing_listens"] = [flow_name(p, n) for p, n in silent]
                return self.finding(
                    ctx, f"{said}, where nothing listens on "
                         f"{', '.join(flow_name(p, n) for p, n in silent)}: the requests are "
                         f"refused or dropped (a transparent proxy that is not running)",
                    evidence, fix, **extra)
        if not local and addr:
            route = lookup(host.routes, addr)
            if route is None or route.type in ("blackhole", "unreachable", "prohibit"):
                return self.finding(
                    ctx, f"{said}, and the host has no route to {addr}", evidence, fix,
                    **extra)
            nexthop, dev = route.gateway or addr, route.dev
            bad = [n for n in host.neighbours_of(nexthop, dev or "")
                   if BAD_NEIGHBOUR & set(n.state)]
            if bad:
                evidence["neighbour"] = {"address": nexthop, "dev": dev,
                                         "state": list(bad[0].state)}
                return self.finding(
                    ctx, f"{said}, and nothing answers ARP for {nexthop} on {dev} "
                         f"({'/'.join(bad[0].state)})", evidence, fix, **extra)
        # Translated on purpose, maybe (a proxy, a mirror): whether it answers there is
        # not something netdoctor sees; a trace whose probe went unanswered says it did not.
        # (a trace that sees nothing answer ARP for it makes this an error, this its fix)
        deletion = delete_rule(rule, ctx.vars.get("in_host", ""))
        return self.finding(
            ctx, f"{said}: whatever answers there answers for {ctx.destination}", evidence,
            _shown(rule, "{in_host}"), severity="warning", verify=True, deletion=deletion,
            **extra)


def _shown(rule, where: str) -> str:
    """The command that lists the rule's chain, run `where`."""
    if rule.backend == "nft":
        return f"{where}nft -a list chain {rule.family} {rule.table} {rule.chain}"
    return f"{where}{iptables_for(rule)} -S {rule.chain}"

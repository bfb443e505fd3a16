import ipaddress

from . import Check, register
from ._rules import replace_rule, rule_evidence, translated_to


@register
class SnatForeignAddress(Check):
    """The container's requests are translated to a source address this host does not hold"""

    id = "snat-foreign-address"
    severity = "error"
    scope = "host"
    runs_on = "container"
    tags = ("netfilter", "nat", "path")
    # The request leaves with that source; its answer goes to whoever holds the address.
    blocks_at = (("request", "uplink"),)
    precedence = 15
    needs = ("host-rules",)

    def run(self, ctx):
        walked = ctx.source_nat
        if walked is None or walked[1].verdict != "snat" or walked[1].rule is None:
            return
        packet, out = walked
        span = translated_to(out.rule.to)
        if span is None:
            return
        held = [ipaddress.ip_address(a) for a in ctx.host_ns.held_addresses]
        if any(span[0] <= a <= span[1] for a in held if a.version == span[0].version):
            return
        to = out.rule.to
        ev = rule_evidence(out)
        ev.update({"packet": f"{packet.src} -> {packet.dst} out {packet.oif}",
                   "translated_to": to, "host_addresses": sorted(map(str, held))})
        uplink = ctx.host_ns.link(name=packet.oif) if packet.oif else None
        own = next((a.local for a in (uplink.addresses if uplink else ())
                    if a.scope == "global" and ipaddress.ip_address(a.local).version
                    == span[0].version), None)
        message = (f"{ctx.subject}'s requests leave {packet.oif} translated to {to} "
                   f"({out.describe()}), an address no interface of {ctx.vars['host_ns']} "
                   f"holds: their answers go to that address, not to this host")
        fix = None
        if own and span[0].version == 4:  # the same rule, to the uplink's own address
            ports = ":" + to.split(":", 1)[1] if ":" in to else ""
            fix = replace_rule(out.rule, "{in_host}", to, own + ports)
        if fix is None:
            yield self.finding(ctx, message, ev, "{in_host}ip -br addr", verify=True)
        else:
            yield self.finding(ctx, message, ev, fix)

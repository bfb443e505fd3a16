from . import Check, register
from ._rules import PAST, delete_rule, flow_name, iptables_program, list_chain, rule_evidence
from netdoctor.diagnose.reason.rules import Packet, evaluate


def _fix(outcome, eth: str) -> tuple:
    """(command, verify). A device's policy (nft netdev) is only shown: what else it is
    meant to keep in is not known."""
    c = outcome.chain
    if outcome.rule is not None:
        return delete_rule(outcome.rule, "{in_container}"), False
    if c.family == "netdev":
        return "{in_container}" + list_chain(c), True
    if c.backend == "nft":
        return (f"{{in_container}}nft add rule {c.family} {c.table} {c.name} oifname {eth} "
                f"accept"), False
    return (f"{{in_container}}{iptables_program(c)} -t {c.table} -I {c.name} -o {eth} "
            f"-j ACCEPT"), False


@register
class ContainerOutputDropped(Check):
    """The container's own firewall drops what it sends"""

    id = "container-output-dropped"
    severity = "error"
    scope = "container"
    tags = ("netfilter", "path")
    blocks_at = (("request", None),)
    precedence = 4
    structural = True

    def run(self, ctx):
        ruleset = ctx.container.ruleset
        eth = ctx.egress
        if ruleset is None or eth is None or not ctx.address:
            return
        for proto, port in ctx.probe_flows:
            packet = Packet(src=ctx.address, dst=ctx.destination, iif=None, oif=eth.name,
                            proto=proto, dport=port,
                            sport=ctx.ephemeral_ports if port is not None else None,
                            family="ip6" if ctx.family == "inet6" else "ip")
            hook = "OUTPUT"
            out = evaluate(ruleset, "output", packet)
            if out.verdict not in ("drop", "reject"):
                # Then the egress hook of its interface (nft netdev).
                hook = "the egress hook of " + eth.name
                out = evaluate(ruleset, "egress", packet, family="netdev", device=eth.name)
            if out.verdict not in ("drop", "reject"):
                continue
            flow = flow_name(proto, port)
            how = "by policy" if out.by_policy else "by a rule"
            ev = rule_evidence(out)
            ev.update({"flow": flow, "packet": f"{packet.src} -> {packet.dst} out {eth.name}"})
            fix, verify = _fix(out, eth.name)
            yield self.finding(
                ctx, f"{ctx.subject}'s own firewall {PAST[out.verdict]} what it sends "
                     f"({flow}, {packet.src} -> {packet.dst}) {how} in {hook}: "
                     f"{out.describe()}; nothing leaves the container",
                ev, fix, verify=verify, rule=out.describe())
            return

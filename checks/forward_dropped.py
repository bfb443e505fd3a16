from . import Check, register
from ._rules import PAST, PLURAL, delete_rule, flow_name, rule_evidence
from .context import PROBE_FLOWS
from netdoctor.diagnose.reason.rules import evaluate


def docker_isolation(outcome) -> bool:
    """The drop is Docker keeping its networks apart (a rule of, or reached through,
    DOCKER-ISOLATION-STAGE-1/2). (icc=false is a plain FORWARD rule: named as any rule is.)"""
    r = outcome.rule
    return r is not None and (r.chain.startswith("DOCKER-ISOLATION")
                              or any("/DOCKER-ISOLATION" in t for t in outcome.trail))


def _fix(outcome) -> str:
    if docker_isolation(outcome):
        # Docker puts the rule back on its next start: the fix is to share a network.
        return "docker network connect <a network of {destination}> {container_name}"
    if outcome.rule is None:
        c = outcome.chain
        if c.backend == "nft":
            return (f"{{in_host}}nft add rule {c.family} {c.table} {c.name} "
                    f"iifname {{ingress}} accept")
        return f"{{in_host}}iptables -I {c.name} -i {{ingress}} -j ACCEPT"
    return delete_rule(outcome.rule, "{in_host}")


@register
class ForwardDropped(Check):
    """The host's forwarding firewall drops the container's traffic"""

    id = "forward-dropped"
    severity = "error"
    scope = "host"
    runs_on = "container"
    tags = ("netfilter", "path")
    blocks_at = (("request", "bridge"), ("reply", "uplink"))
    precedence = 14
    needs = ("host-rules",)

    def run(self, ctx):
        if ctx.host is None or not ctx.bridged:
            return
        if ctx.host_egress is not None and ctx.host_egress == ctx.ingress and \
                ctx.host_ns.sysctls.get("net.bridge.bridge-nf-call-iptables") != "1":
            return  # bridged from port to port: FORWARD sees it only through br_netfilter
        for direction, make in (("request", ctx.request), ("reply", ctx.reply)):
            uncertain = []
            for proto, port in PROBE_FLOWS:
                packet = make(proto, port)
                if packet is None:
                    return
                out = evaluate(ctx.host.ruleset, "forward", packet)
                if out.verdict in ("drop", "reject"):
                    how = "by policy" if out.by_policy else "by a rule"
                    if docker_isolation(out):
                        how = "by Docker's network isolation"
                    ev = rule_evidence(out)
                    ev.update({"direction": direction, "flow": flow_name(proto, port),
                               "packet": f"{packet.src} -> {packet.dst} in {packet.iif} "
                                         f"out {packet.oif}" + (
                                             " (established)" if direction == "reply" else "")})
                    yield self.finding(
                        ctx, f"{PLURAL[direction]} of {ctx.subject} ({flow_name(proto, port)}, "
                             f"{packet.src} -> {packet.dst}) are {PAST[out.verdict]} {how} in "
                             f"FORWARD: {out.describe()}",
                        ev, _fix(out), rule=out.describe(), direction=direction)
                    return
                uncertain.extend(out.uncertain)
            if uncertain:
                r = uncertain[0]
                why = ("a rule hands them to a user-space program (queue), which decides"
                       if r.verdict == "queue" else
                       "a rule whose matches netdoctor cannot evaluate")
                yield self.finding(
                    ctx, f"{PLURAL[direction]} of {ctx.subject} may be dropped in FORWARD by "
                         f"{why}: {r.where}: {r.text}",
                    {"direction": direction, "rule": r.text, "where": r.where,
                     "packets": r.packets},
                    f"{{in_host}}iptables-save -c | grep -n -- '{r.chain}'", severity="warning",
                    verify=True, rule=r.where)

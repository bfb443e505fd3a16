from . import Check, register
from ._rules import (PAST, PLURAL, delete_rule, docker_internal, docker_isolation,
                     flow_name, iptables_program, rule_evidence)
from .context import PROBE_FLOWS
from netdoctor.diagnose.reason.rules import evaluate


def docker_network(bridge):
    """The Docker network a bridge device is, as `docker network connect` takes it: the
    default network's docker0 is "bridge", a user-defined network's br-<id> its id."""
    if bridge == "docker0":
        return "bridge"
    if bridge and bridge.startswith("br-") and len(bridge) > 3:
        return bridge[3:]
    return None


def _fix(outcome, packet, direction: str = "request") -> tuple:
    """(command, verify): the change that fixes the drop, or only a command that shows it.
    A policy's drop of the requests is lifted for what the container's bridge sends, of
    the replies for the answers to its connections (as Docker's own rules do)."""
    if docker_isolation(outcome):
        # Docker puts the rule back on its next start: the fix is to share a network.
        if docker_internal(outcome):
            return "docker network connect bridge {container_name}", False
        network = docker_network(packet.oif)
        if network is not None:
            return f"docker network connect {network} {{container_name}}", False
        return "docker network ls; docker inspect {container_name}", True
    if outcome.rule is None:
        c = outcome.chain
        if c.backend == "nft":
            match = "iifname {ingress}" if direction == "request" else \
                "oifname {ingress} ct state established,related"
            return f"{{in_host}}nft add rule {c.family} {c.table} {c.name} {match} accept", False
        match = "-i {ingress}" if direction == "request" else \
            "-o {ingress} -m conntrack --ctstate RELATED,ESTABLISHED"
        return f"{{in_host}}{iptables_program(c)} -I {c.name} {match} -j ACCEPT", False
    return delete_rule(outcome.rule, "{in_host}"), False


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
                        how = "by Docker's network isolation" + (
                            " (the network is internal: nothing outside its subnet)"
                            if docker_internal(out) else "")
                    ev = rule_evidence(out)
                    ev.update({"direction": direction, "flow": flow_name(proto, port),
                               "packet": f"{packet.src} -> {packet.dst} in {packet.iif} "
                                         f"out {packet.oif}" + (
                                             " (established)" if direction == "reply" else "")})
                    fix, verify = _fix(out, packet, direction)
                    yield self.finding(
                        ctx, f"{PLURAL[direction]} of {ctx.subject} ({flow_name(proto, port)}, "
                             f"{packet.src} -> {packet.dst}) are {PAST[out.verdict]} {how} in "
                             f"FORWARD: {out.describe()}",
                        ev, fix, verify=verify, rule=out.describe(), direction=direction)
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

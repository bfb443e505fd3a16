from . import Check, register
from ._rules import delete_rule, docker_icc, iptables_for, rule_evidence, ufw_decides
from netdoctor.diagnose.reason.rules import Packet, evaluate


@register
class BridgeNetfilter(Check):
    """Bridged traffic between containers is sent through iptables and dropped there"""

    id = "bridge-netfilter"
    severity = "error"
    scope = "host"
    runs_on = "container"
    tags = ("netfilter", "bridge", "path")
    blocks_at = (("request", "bridge"),)
    precedence = 17
    needs = ("host-rules",)

    def run(self, ctx):
        h = ctx.host_ns
        br = ctx.bridge
        if h is None or br is None or not ctx.interface:
            return
        if h.sysctls.get("net.bridge.bridge-nf-call-iptables") != "1":
            return
        # A neighbour on the same bridge: the destination when it is one (east-west), else
        # the first address of the network that is neither this container nor its gateway
        # (rules that single out one neighbour are rare).
        net = ctx.interface.network
        if ctx.east_west and ctx.host_egress == br:
            other = ctx.destination
        else:
            hosts = [str(a) for a, _ in zip(net.hosts(), range(4))]
            other = next((a for a in hosts if a not in (ctx.address, ctx.gateway)), None)
        if other is None:
            return
        for proto, port in (("icmp", None), ("tcp", 80)):
            packet = Packet(src=ctx.address, dst=other, iif=br.name, oif=br.name, proto=proto,
                            dport=port, sport=ctx.ephemeral_ports if port else None)
            out = evaluate(ctx.host.ruleset, "forward", packet)
            if out.verdict in ("drop", "reject"):
                break
        else:
            return
        if docker_icc(out):
            return  # Docker's own inter-container isolation, which needs br_netfilter
        if out.rule is not None:
            # The same rule dropping what the container routes out is a rule against the
            # container (forward-dropped's), not against bridged frames.
            routed = ctx.request(proto, port) if ctx.host_egress not in (None, br) else None
            if routed is not None and evaluate(ctx.host.ruleset, "forward",
                                               routed).rule == out.rule:
                return
        ev = rule_evidence(out)
        ev.update({"net.bridge.bridge-nf-call-iptables": "1",
                   "packet": f"{ctx.address} -> {other} in {br.name} out {br.name}"})
        yield self.finding(
            ctx, f"br_netfilter sends frames bridged on {br.name} through iptables, and "
                 f"FORWARD {'drops' if out.verdict == 'drop' else 'rejects'} {ctx.subject} -> {other}: {out.describe()}",
            ev, "{in_host}ufw route allow in on {bridge} out on {bridge}" if ufw_decides(out)
            else delete_rule(out.rule, "{in_host}") if out.rule is not None else
            "{in_host}" + _accept_in(out.chain) + " -I FORWARD -i {bridge} -o {bridge} -j ACCEPT")


def _accept_in(chain) -> str:
    """The iptables command for the table whose FORWARD chain dropped it (mangle's ACCEPT
    in filter's FORWARD would leave mangle's drop in place)."""
    if chain is None or chain.backend == "nft":
        return "iptables"
    return iptables_for(chain)

from . import Check, register
from ._rules import PAST, delete_rule, flow_name, list_chain, rule_evidence
from .context import EPHEMERAL_PORTS
from netdoctor.diagnose.reason.rules import Packet, evaluate


@register
class ContainerInputDropped(Check):
    """The container's own firewall drops what comes to it: the answers to its requests,
    or (as a trace's destination) the request itself"""

    id = "container-input-dropped"
    severity = "error"
    scope = "container"
    tags = ("netfilter", "path")
    blocks_at = (("reply", "container"),)
    precedence = 4
    structural = True

    def run(self, ctx):
        """The answers to what the container sends: established, in INPUT."""
        ruleset, eth = ctx.container.ruleset, ctx.egress
        if ruleset is None or eth is None or not ctx.address or not ctx.destination:
            return
        for proto, port in ctx.probe_flows:
            found = self._judge(ctx, proto, port, "established")
            if found is not None:
                yield found
                return

    def for_request(self, ctx, src: str, proto: str, port):
        """As a trace's destination: the request that arrives from src (a new connection)."""
        if ctx.container.ruleset is None or ctx.egress is None or not ctx.address:
            return None
        return self._judge(ctx, proto, port, "new", src)

    def _judge(self, ctx, proto, port, state, src=None):
        eth = ctx.egress
        ports = proto in ("tcp", "udp")
        if state == "new":  # src's request to the container's port
            packet = Packet(src=src, dst=ctx.address, iif=eth.name, oif=None, proto=proto,
                            dport=port, sport=EPHEMERAL_PORTS if ports else None,
                            family="ip6" if ":" in ctx.address else "ip")
            what = f"the request from {src} ({flow_name(proto, port)})"
        else:  # the answer to the container's own request
            packet = Packet(src=ctx.destination, dst=ctx.address, iif=eth.name, oif=None,
                            proto=proto, sport=port if ports else None,
                            dport=ctx.ephemeral_ports if ports else None, ctstate="established",
                            family="ip6" if ":" in ctx.address else "ip")
            what = f"the answers to its {flow_name(proto, port)} requests to {ctx.destination}"
        # The ingress hook of its interface (nft netdev) comes first, INPUT after.
        hook = "the ingress hook of " + eth.name
        out = evaluate(ctx.container.ruleset, "ingress", packet, family="netdev",
                       device=eth.name)
        if out.verdict not in ("drop", "reject"):
            hook = "INPUT"
            out = evaluate(ctx.container.ruleset, "input", packet)
        if out.verdict not in ("drop", "reject"):
            return None
        ev = rule_evidence(out)
        ev.update({"flow": flow_name(proto, port), "state": state,
                   "packet": f"{packet.src} -> {packet.dst} in {eth.name}"})
        how = "by policy" if out.by_policy else "by a rule"
        fix = delete_rule(out.rule, "{in_container}") if out.rule is not None else (
            f"{{in_container}}iptables -t filter -I INPUT -i {eth.name} -m conntrack "
            f"--ctstate ESTABLISHED,RELATED -j ACCEPT" if state == "established" else
            f"{{in_container}}iptables -t filter -I INPUT -i {eth.name} -s {src} -j ACCEPT")
        if out.rule is None and out.chain is not None and out.chain.backend == "nft":
            fix = (f"{{in_container}}nft insert rule {out.chain.family} {out.chain.table} "
                   f"{out.chain.name} iifname {eth.name} "
                   + ("ct state established,related accept" if state == "established"
                      else f"ip saddr {src} accept"))
        verify = False
        if out.rule is None and out.chain is not None and out.chain.family == "netdev":
            # A device's policy: what else it keeps out is not known, only shown.
            fix, verify = "{in_container}" + list_chain(out.chain), True
        return self.finding(
            ctx, f"{ctx.subject}'s own firewall {PAST[out.verdict]} {what} {how} in {hook}: "
                 f"{out.describe()}", ev, fix, verify=verify, rule=out.describe())

from . import Check, register
from ._rules import (PAST, delete_rule, delivered_drop, flow_name, iptables_for, list_chain,
                     rule_evidence, ufw_decides)
from netdoctor.diagnose.reason.rules import Packet, evaluate


@register
class HostInputDropped(Check):
    """The host's own firewall drops what the container sends to the host itself"""

    id = "host-input-dropped"
    severity = "error"
    scope = "host"
    runs_on = "container"
    tags = ("netfilter", "path")
    # Seen on the bridge (or the routed veth) as it arrives, dropped in INPUT after.
    blocks_at = (("request", "bridge"), ("request", "host-veth"))
    precedence = 14
    needs = ("host-rules",)

    def run(self, ctx):
        """A destination that is one of the host's own addresses (a service on the host, a
        resolver on the bridge's address): the request is delivered, not forwarded, and
        meets the host's PREROUTING and INPUT; a DNAT or REDIRECT before that sends it
        elsewhere (a published port), which other checks judge."""
        h = ctx.host_ns
        if ctx.host is None or h is None or not ctx.destination \
                or ctx.destination not in h.held_addresses:
            return
        if not ctx.address or ctx.ingress is None:
            return
        # (A trace's own flow first: it is what the fix opens when a policy drops several.)
        dropped = []  # (flow, hook, outcome, packet)
        for proto, port in ctx.probe_flows:
            packet = Packet(src=ctx.address, dst=ctx.destination, iif=ctx.ingress.name,
                            oif=None, proto=proto, dport=port,
                            sport=ctx.ephemeral_ports if proto in ("tcp", "udp") else None,
                            dst_local=True, src_local=ctx.address in h.held_addresses)
            if _translated(ctx, packet):
                continue
            drop = delivered_drop(ctx.host.ruleset, packet)
            if drop is not None:
                dropped.append(((proto, port), *drop, packet))
        if not dropped:
            return
        (proto, port), hook, out, packet = dropped[0]
        # Every flow the same rule (or policy) drops: a trace's probe is judged by them.
        same = [flow_name(*f) for f, k, o, _ in dropped
                if k == hook and o.rule == out.rule and o.chain == out.chain]
        how = "by policy" if out.by_policy else "by a rule"
        ev = rule_evidence(out)
        ev.update({"direction": "request", "flow": same[0], "flows": same, "hook": hook,
                   "packet": f"{packet.src} -> {packet.dst} in {packet.iif}",
                   "stops_at": ["bridge" if ctx.bridge is not None else "host-veth"]})
        fix, verify = _fix(out, packet, proto, port)
        yield self.finding(
            ctx, f"the host's own firewall {PAST[out.verdict]} what {ctx.subject} sends to the "
                 f"host's address {ctx.destination} ({', '.join(same)}) {how} in "
                 f"{hook.upper()}: {out.describe()}", ev, fix, verify=verify,
            rule=out.describe())


def _translated(ctx, packet) -> bool:
    """Whether the host's nat PREROUTING sends the request elsewhere (or to another port)."""
    out = evaluate(ctx.host.ruleset, "prerouting", packet, type_="nat")
    return out.verdict in ("dnat", "redirect")


def _fix(outcome, packet, proto: str, port) -> tuple:
    """(command, verify): the dropping rule's deletion; for a policy of INPUT, an ACCEPT of
    this flow alone from the container's side (the rest of the policy stands); a policy
    before routing drops the host's own traffic too: shown."""
    c = outcome.chain
    if ufw_decides(outcome) and proto in ("tcp", "udp") and port:
        # ufw's 'deny incoming': a rule of its own lasts (ufw rewrites its chains).
        return f"{{in_host}}ufw allow in on {packet.iif} to any port {port} proto {proto}", \
            False
    if outcome.rule is not None:
        return delete_rule(outcome.rule, "{in_host}"), False
    if c.hook != "input":
        return "{in_host}" + list_chain(c), True
    # The protocol as both name it: IPv6's ICMP is ipv6-icmp.
    name = "ipv6-icmp" if proto == "icmp" and packet.family == "ip6" else proto
    if c.backend == "nft":
        what = f"{proto} dport {port}" if port else f"meta l4proto {name}"
        return (f"{{in_host}}nft insert rule {c.family} {c.table} {c.name} iifname "
                f"{packet.iif} {what} accept"), False
    match = f"-p {name}" + (f" --dport {port}" if port else "")
    return f"{{in_host}}{iptables_for(c)} -I {c.name} -i {packet.iif} {match} -j ACCEPT", False

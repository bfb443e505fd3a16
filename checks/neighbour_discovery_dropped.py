import ipaddress

from . import Check, register
from ._rules import delete_rule, delivered_drop, iptables_for, rule_evidence
from netdoctor.diagnose.reason.rules import Packet, evaluate

SOLICITED_NODE = ipaddress.ip_address("ff02::1:ff00:0")  # + the address's low 24 bits


@register
class NeighbourDiscoveryDropped(Check):
    """The host's firewall drops the container's questions for its gateway's MAC: IPv6
    neighbour solicitations, or ARP requests (an arp table: arptables-nft)"""

    id = "neighbour-discovery-dropped"
    severity = "error"
    scope = "host"
    runs_on = "container"
    tags = ("netfilter", "ipv6", "neighbour", "path")
    # The container never learns its gateway's MAC: nothing leaves it.
    blocks_at = (("request", None), ("request", "container"))
    precedence = 7
    needs = ("host-rules",)

    def run(self, ctx):
        h, ingress, gw, me = ctx.host_ns, ctx.ingress, ctx.gateway, ctx.address
        if h is None or ingress is None or not gw or not me:
            return
        if not ingress.holds(gw):
            return  # the host does not answer for it on that interface
        if ctx.family == "inet":
            yield from self._arp(ctx, ingress, gw, me)
            return
        # IPv6 neighbour discovery: ICMPv6 from the container's address to the gateway's
        # solicited-node multicast address, as the kernel sends it.
        low = int(ipaddress.ip_address(gw)) & 0xFFFFFF
        solicited = str(ipaddress.ip_address(int(SOLICITED_NODE) | low))
        # (Built here, not as ctx.request: a destination on the host itself has no way out.)
        packet = Packet(src=me, dst=solicited, iif=ingress.name, oif=None, proto="icmp",
                        icmp_type=135, family="ip6")
        drop = delivered_drop(ctx.host.ruleset, packet)
        if drop is not None:
            hook, out = drop
            ev = rule_evidence(out)
            ev.update({"hook": hook, "packet": f"{me} -> {solicited} (neighbour solicitation "
                                               f"for {gw}) in {ingress.name}"})
            yield self.finding(
                ctx, f"{ctx.subject} asks for its gateway {gw} by IPv6 neighbour discovery "
                     f"(ICMPv6 to {solicited}), and {ctx.vars['host_ns']} "
                     f"{'drops' if out.verdict == 'drop' else 'rejects'} the question in "
                     f"{hook.upper()}: {out.describe()}; the container never learns where "
                     f"to send anything",
                ev, _fix(out, ingress.name), rule=out.describe())

    def _arp(self, ctx, ingress, gw, me):
        """The ARP request the container sends for its gateway, as the host's arp tables
        (nftables' arp family, where arptables-nft writes) meet it on its way in."""
        question = Packet(src=me, dst=gw, iif=ingress.name, oif=None, proto="arp",
                          family="arp")
        out = evaluate(ctx.host.ruleset, "input", question, family="arp")
        if out.verdict not in ("drop", "reject"):
            return
        ev = rule_evidence(out)
        ev.update({"hook": "input", "packet": f"ARP request: who has {gw}? tell {me}, in "
                                              f"{ingress.name}"})
        yield self.finding(
            ctx, f"{ctx.subject} asks for its gateway {gw} by ARP, and {ctx.vars['host_ns']}'s "
                 f"arp table drops the question on {ingress.name}: {out.describe()}; the "
                 f"container never learns where to send anything",
            ev, _fix(out, ingress.name), rule=out.describe())


def _fix(outcome, ingress: str) -> str:
    if outcome.rule is not None:
        return delete_rule(outcome.rule, "{in_host}")
    c = outcome.chain
    if c.backend == "nft" and c.family == "arp":
        return f"{{in_host}}nft insert rule arp {c.table} {c.name} iifname {ingress} accept"
    if c.backend == "nft":
        return (f"{{in_host}}nft insert rule {c.family} {c.table} {c.name} iifname {ingress} "
                f"meta l4proto ipv6-icmp accept")
    return f"{{in_host}}{iptables_for(c)} -I {c.name} -i {ingress} -p ipv6-icmp -j ACCEPT"

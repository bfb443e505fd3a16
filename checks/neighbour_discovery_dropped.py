import ipaddress
from dataclasses import replace

from . import Check, register
from ._rules import (DELIVERED_HOOKS, SENT_HOOKS, delete_rule, delivered_drop, iptables_for,
                     rule_evidence)
from netdoctor.diagnose.reason.rules import Packet, evaluate

SOLICITED_NODE = ipaddress.ip_address("ff02::1:ff00:0")  # + the address's low 24 bits


@register
class NeighbourDiscoveryDropped(Check):
    """A firewall drops the container's neighbour discovery for its gateway: IPv6
    solicitations or their answers, ARP requests or their replies (the arp tables that
    arptables-nft writes), in the host's rules or the container's own"""

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
        yield from self._ndp(ctx, ingress, gw, me)

    def _ndp(self, ctx, ingress, gw, me):
        """IPv6 neighbour discovery: the solicitation (ICMPv6 135) from the container's
        address to the gateway's solicited-node multicast address, as the kernel sends it,
        and the advertisement (136) back to the container's address; each meets the
        firewall of the namespace that sends it and of the one that takes it in. The
        first that drops one, in that order, is the finding."""
        low = int(ipaddress.ip_address(gw)) & 0xFFFFFF
        solicited = str(ipaddress.ip_address(int(SOLICITED_NODE) | low))
        eth = ctx.egress.name if ctx.egress is not None else None
        # (Built here, not as ctx.request: a destination on the host itself has no way out.)
        question = dict(src=me, dst=solicited, proto="icmp", icmp_type=135, family="ip6")
        answer = dict(src=gw, dst=me, proto="icmp", icmp_type=136, family="ip6")
        walks = [
            ("container", SENT_HOOKS, Packet(iif=None, oif=eth, **question), "question"),
            ("host", DELIVERED_HOOKS, Packet(iif=ingress.name, oif=None, **question),
             "question"),
            ("host", SENT_HOOKS, Packet(iif=None, oif=ingress.name, **answer), "answer"),
            ("container", DELIVERED_HOOKS, Packet(iif=eth, oif=None, **answer), "answer")]
        for side, hooks, packet, what in walks:
            ruleset = ctx.host.ruleset if side == "host" else ctx.container.ruleset
            if ruleset is None or (side == "container" and eth is None):
                continue
            drop = delivered_drop(ruleset, packet, hooks)
            if drop is None:
                continue
            hook, out = drop
            ev = rule_evidence(out)
            dev = packet.iif or packet.oif
            said = (f"neighbour solicitation for {gw}" if what == "question" else
                    f"neighbour advertisement of {gw}")
            ev.update({"hook": hook, "side": side, "packet":
                       f"{packet.src} -> {packet.dst} ({said}) "
                       f"{'in' if packet.iif else 'out'} {dev}"})
            whose = (f"{ctx.subject}'s own firewall" if side == "container"
                     else ctx.vars["host_ns"])
            how = "drops" if out.verdict == "drop" else "rejects"
            if what == "question":
                told = (f"{ctx.subject} asks for its gateway {gw} by IPv6 neighbour discovery "
                        f"(ICMPv6 to {solicited}), and {whose} {how} the question")
            else:
                told = (f"{ctx.subject} asks for its gateway {gw} by IPv6 neighbour discovery, "
                        f"and {whose} {how} the answer (ICMPv6 from {gw} to {me})")
            found = self.finding(
                ctx, f"{told} in {hook.upper()}: {out.describe()}; the container never learns "
                     f"where to send anything",
                ev, _fix(out, dev, "-i" if packet.iif else "-o",
                         "{in_host}" if side == "host" else "{in_container}"),
                rule=out.describe())
            yield replace(found, scope=side)
            return

    def _arp(self, ctx, ingress, gw, me):
        """The ARP request the container sends for its gateway and the host's reply, as the
        arp tables (nftables' arp family, where arptables-nft writes) of the namespace that
        sends each and of the one that takes it in meet them: the first that drops one, in
        that order, is the finding."""
        eth = ctx.egress.name if ctx.egress is not None else None
        question = dict(src=me, dst=gw, proto="arp", family="arp", arp_op=1)
        answer = dict(src=gw, dst=me, proto="arp", family="arp", arp_op=2)
        walks = [("container", "output", Packet(iif=None, oif=eth, **question), "question"),
                 ("host", "input", Packet(iif=ingress.name, oif=None, **question), "question"),
                 ("host", "output", Packet(iif=None, oif=ingress.name, **answer), "answer"),
                 ("container", "input", Packet(iif=eth, oif=None, **answer), "answer")]
        for side, hook, packet, what in walks:
            ruleset = ctx.host.ruleset if side == "host" else ctx.container.ruleset
            if ruleset is None or (side == "container" and eth is None):
                continue
            out = evaluate(ruleset, hook, packet, family="arp")
            if out.verdict not in ("drop", "reject"):
                continue
            dev = packet.iif or packet.oif
            ev = rule_evidence(out)
            ev.update({"hook": hook, "side": side, "packet": (
                f"ARP request: who has {gw}? tell {me}" if what == "question" else
                f"ARP reply: {gw} is at the gateway's MAC, to {me}")
                + f", {'in' if packet.iif else 'out'} {dev}"})
            whose = (f"{ctx.subject}'s own arp table" if side == "container"
                     else f"{ctx.vars['host_ns']}'s arp table")
            told = ("the question" if what == "question" else f"the answer (from {gw})")
            found = self.finding(
                ctx, f"{ctx.subject} asks for its gateway {gw} by ARP, and {whose} drops "
                     f"{told} {'arriving on' if packet.iif else 'leaving by'} {dev} "
                     f"({hook.upper()}): {out.describe()}; the container never learns where "
                     f"to send anything",
                ev, _fix(out, dev, "-i" if packet.iif else "-o",
                         "{in_host}" if side == "host" else "{in_container}"),
                rule=out.describe())
            yield replace(found, scope=side)
            return


def _fix(outcome, dev: str, flag: str = "-i", where: str = "{in_host}") -> str:
    """Delete the dropping rule; where a policy drops, let the family's questions (ARP) or
    ICMPv6 through on dev first (flag: -i for what comes in by it, -o for what leaves)."""
    if outcome.rule is not None:
        return delete_rule(outcome.rule, where)
    c = outcome.chain
    nft_dev = "iifname" if flag == "-i" else "oifname"
    if c.backend == "nft" and c.family == "arp":
        return f"{where}nft insert rule arp {c.table} {c.name} {nft_dev} {dev} accept"
    if c.backend == "nft":
        return (f"{where}nft insert rule {c.family} {c.table} {c.name} {nft_dev} {dev} "
                f"meta l4proto ipv6-icmp accept")
    return f"{where}{iptables_for(c)} -I {c.name} {flag} {dev} -p ipv6-icmp -j ACCEPT"

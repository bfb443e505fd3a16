import ipaddress
from dataclasses import replace

from . import Check, register
from ._rules import delete_rule, docker_internal, docker_isolation, rule_evidence
from netdoctor.diagnose.facts.namespace import is_unrouted
from netdoctor.diagnose.reason.rules import evaluate


def needs_translation(src: str, dst: str) -> bool:
    """A private source talking to a non-private destination must be translated on the way."""
    try:
        s, d = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    except ValueError:
        return False
    if s.version != d.version:
        return False
    if s.version == 6:  # a unique-local source (fc00::/7) to a global destination: NAT66
        ula = ipaddress.ip_network("fc00::/7")
        return s in ula and d not in ula and not (d.is_link_local or d.is_loopback
                                                   or d.is_multicast)
    return is_unrouted(src) and not is_unrouted(dst)


@register
class NatMissing(Check):
    """No source NAT for the container's private address on its way out of the uplink"""

    id = "nat-missing"
    severity = "error"
    scope = "host"
    runs_on = "container"
    tags = ("netfilter", "nat", "path")
    blocks_at = (("request", "uplink"),)
    precedence = 15
    needs = ("host-rules",)

    def run(self, ctx):
        walked = ctx.source_nat
        if walked is None or not needs_translation(walked[0].src, walked[0].dst):
            return
        packet, out = walked
        if out.verdict in ("masquerade", "snat"):
            yield from self._untracked(ctx, packet, out)
            return
        forward = evaluate(ctx.host.ruleset, "forward", packet)
        if forward.verdict in ("drop", "reject") and docker_isolation(forward) \
                and docker_internal(forward):
            return  # an internal network: no way out, and so no NAT, by design
        ev = rule_evidence(out) if out.chain is not None else {"verdict": "no nat chain"}
        ev.update({"packet": f"{packet.src} -> {packet.dst} out {packet.oif}"})
        # A rule that ends the walk first (a RETURN from POSTROUTING, an ACCEPT) takes the
        # request past any NAT rule after it: that is what to name.
        stopper = out.returned if out.rule is None else out.rule
        why = (f"{stopper.where}: {stopper.text} takes it past any NAT rule after it"
               if stopper is not None else f"POSTROUTING: {out.describe()}")
        if out.returned is not None:
            ev["returned_by"] = f"{out.returned.where}: {out.returned.text}"
        # Inserted first, the MASQUERADE is met before whatever ended the walk.
        yield self.finding(
            ctx, f"{ctx.subject}'s private address {packet.src} leaves {packet.oif} "
                 f"untranslated ({why}): replies cannot find their way back",
            ev, ("{in_host}ip6tables" if packet.family == "ip6" else "{in_host}iptables")
            + " -t nat -I POSTROUTING -s {subnet} ! -o {bridge} -j MASQUERADE")

    def _untracked(self, ctx, packet, out):
        """The translation is there, but a rule before conntrack marks the request
        untracked (NOTRACK, CT --notrack, nft notrack): NAT is done by conntrack, for the
        connections it tracks, so the request leaves with its private source all the same."""
        before = evaluate(ctx.host.ruleset, "prerouting", replace(packet, oif=None))
        rule = before.untracking_rule
        if rule is None:
            return
        ev = {"untracked_by": rule.where, "rule": rule.text,
              "chain_priority": before.untracked[1].priority,
              "nat": out.describe(),
              "packet": f"{packet.src} -> {packet.dst} in {packet.iif}"}
        yield self.finding(
            ctx, f"{ctx.subject}'s requests are marked untracked before conntrack sees them "
                 f"({rule.where}: {rule.text}): NAT only translates tracked connections, so "
                 f"the translation ({out.describe()}) never applies and {packet.src} leaves "
                 f"{packet.oif} untranslated: replies cannot find their way back",
            ev, delete_rule(rule, "{in_host}"))

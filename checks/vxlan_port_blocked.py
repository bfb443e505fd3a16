from . import Check, register
from ._rules import (DELIVERED_HOOKS, PAST, SENT_HOOKS, delete_rule, delivered_drop,
                     iptables_for, list_chain, rule_evidence)
from ._tunnel import tunnel_of
from .context import ns_label
from netdoctor.diagnose.reason.rules import Packet


@register
class VxlanPortBlocked(Check):
    """The host's firewall drops the overlay's VXLAN packets, arriving from the peer or
    sent to it"""

    id = "vxlan-port-blocked"
    severity = "error"
    scope = "host"
    runs_on = "container"
    tags = ("overlay", "vxlan", "netfilter", "path")
    # The far host's answer arrives encapsulated on the underlay and is dropped (before
    # routing, in INPUT) before the VXLAN device can decapsulate it; what the tunnel
    # encapsulates is dropped in OUTPUT before the underlay sees it.
    blocks_at = (("reply", "underlay"), ("request", "tunnel"))
    precedence = 6
    needs = ("host-rules",)

    def run(self, ctx):
        tunnel, _ = tunnel_of(ctx)
        under = ctx.hop("underlay")
        # The rules of the namespace the underlay is in: the host's, or (Docker's overlay
        # sandbox) the engine's, where the tunnel's socket lives.
        host = ctx.host_of_hop("underlay")
        if tunnel is None or under is None or not under.get("via") or host is None:
            return
        if host is not ctx.host and not host.ruleset.sources:
            return  # that namespace's rules were not read
        port = int(tunnel.tunnel.get("port") or 0)
        local = tunnel.tunnel.get("local") or next(
            (a.split("/")[0] for a in under.get("addresses") or ()), None)
        if not port or not local:
            return
        family = "ip6" if ":" in local else "ip"
        peer, dev = under["via"], under["name"]
        arriving = Packet(src=peer, dst=local, iif=dev, oif=None, proto="udp", dport=port,
                          sport=(1024, 65535), family=family)
        leaving = Packet(src=local, dst=peer, iif=None, oif=dev, proto="udp", dport=port,
                         sport=(1024, 65535), family=family)
        there = "{in_host}" if host is ctx.host else ctx.run_in(host)
        who = ctx.vars["host_ns"] if host is ctx.host else ns_label(host.namespace.netns)
        for direction, packet, hooks in (("reply", arriving, DELIVERED_HOOKS),
                                         ("request", leaving, SENT_HOOKS)):
            drop = delivered_drop(host.ruleset, packet, hooks)
            if drop is None:
                continue
            hook, out = drop
            chain, flag = ("INPUT", "-i") if direction == "reply" else ("OUTPUT", "-o")
            verify = False
            if out.rule is not None:
                fix = delete_rule(out.rule, there)
            elif hook == chain.lower() and out.chain.backend != "nft":
                fix = (f"{there}{iptables_for(out.chain)} -I {chain} {flag} {dev} -p udp "
                       f"--dport {port} {'-s' if direction == 'reply' else '-d'} {peer} "
                       f"-j ACCEPT")
            else:  # a policy before routing, or an nft chain's: only shown
                fix, verify = f"{there}{list_chain(out.chain)}", True
            ev = rule_evidence(out)
            ev.update({"packet": f"{packet.src} -> {packet.dst} udp/{port} "
                                 f"{'in' if direction == 'reply' else 'out'} {dev}",
                       "tunnel": tunnel.name, "vni": tunnel.tunnel.get("vni"),
                       "hook": hook, "direction": direction})
            said = (f"the VXLAN packets from the peer {peer} (udp/{port} on {dev}) in "
                    f"{hook.upper()}: {out.describe()}; whatever that peer sends through the "
                    f"overlay is lost before {tunnel.name} sees it" if direction == "reply"
                    else f"the VXLAN packets it sends to the peer {peer} (udp/{port} out of "
                    f"{dev}) in {hook.upper()}: {out.describe()}; nothing {tunnel.name} "
                    f"encapsulates reaches that peer")
            yield self.finding(
                ctx, f"{who}'s firewall {PAST[out.verdict]} {said}", ev, fix, verify=verify,
                rule=out.describe(), tunnel=tunnel.name, device=dev)

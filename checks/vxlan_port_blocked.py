from . import Check, register
from ._rules import PAST, delete_rule, rule_evidence
from ._tunnel import tunnel_of
from .context import ns_label
from netdoctor.diagnose.reason.rules import Packet, evaluate


@register
class VxlanPortBlocked(Check):
    """The host's firewall drops the overlay's VXLAN packets arriving from the peer"""

    id = "vxlan-port-blocked"
    severity = "error"
    scope = "host"
    runs_on = "container"
    tags = ("overlay", "vxlan", "netfilter", "path")
    # The far host's answer arrives encapsulated on the underlay and is dropped in INPUT
    # before the VXLAN device can decapsulate it.
    blocks_at = (("reply", "underlay"),)
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
        packet = Packet(src=under["via"], dst=local, iif=under["name"], oif=None, proto="udp",
                        dport=port, sport=(1024, 65535),
                        family="ip6" if ":" in local else "ip")
        out = evaluate(host.ruleset, "input", packet)
        if out.verdict not in ("drop", "reject"):
            return
        there = "{in_host}" if host is ctx.host else ctx.run_in(host)
        fix = delete_rule(out.rule, there) if out.rule is not None else (
            f"{there}iptables -I INPUT -i {under['name']} -p udp --dport {port} "
            f"-s {under['via']} -j ACCEPT")
        who = ctx.vars["host_ns"] if host is ctx.host else ns_label(host.namespace.netns)
        ev = rule_evidence(out)
        ev.update({"packet": f"{packet.src} -> {local} udp/{port} in {under['name']}",
                   "tunnel": tunnel.name, "vni": tunnel.tunnel.get("vni")})
        yield self.finding(
            ctx, f"{who}'s firewall {PAST[out.verdict]} the VXLAN packets "
                 f"from the peer {under['via']} (udp/{port} on {under['name']}) in INPUT: "
                 f"{out.describe()}; whatever that peer sends through the overlay is lost "
                 f"before {tunnel.name} sees it",
            ev, fix, rule=out.describe(), tunnel=tunnel.name, device=under["name"])

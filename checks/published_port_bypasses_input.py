from . import Check, register
from ._inbound import port_name, port_vars
from netdoctor.diagnose.reason.inbound import DEFAULT_CLIENT
from netdoctor.diagnose.reason.rules import Packet, evaluate


@register
class PublishedPortBypassesInput(Check):
    """A host firewall seems to deny a published port, but the port is reachable: published
    ports go through FORWARD, never INPUT"""

    id = "published-port-bypasses-input"
    severity = "info"
    scope = "host"
    runs_on = "container"
    tags = ("inbound", "netfilter", "security")
    precedence = 90
    needs = ("host-rules",)

    def run(self, ctx):
        for w in ctx.inbound:
            if not w.published or w.dropped is not None or not w.host_address \
                    or not w.host_port or ctx.uplink is None:
                continue
            # The client's first packet as INPUT would meet it, were the port the host's own.
            packet = Packet(src=w.client or DEFAULT_CLIENT, dst=w.host_address,
                            iif=ctx.uplink.name, oif=None, proto=w.proto, dport=w.host_port,
                            sport=(1024, 65535), family="ip6" if ":" in w.host_address else "ip")
            out = evaluate(ctx.host.ruleset, "input", packet)
            if out.verdict not in ("drop", "reject") or out.rule is None:
                continue  # a default-deny policy alone says nothing about this port
            yield self.finding(
                ctx, f"{ctx.vars['host_ns']}'s INPUT {out.verdict}s {w.proto} port "
                     f"{w.host_port} ({out.describe()}), but {port_name(w)} for {ctx.subject} "
                     f"is published through DNAT and FORWARD, which INPUT never sees: the port "
                     f"is open to outside clients all the same (ufw and firewalld's INPUT rules "
                     f"do not protect published ports)",
                {"input_rule": out.describe(), "walk": w.to_dict()},
                "{in_host}iptables -t nat -S PREROUTING", verify=True, rule=out.describe(), **port_vars(w))

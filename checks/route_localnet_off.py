from . import Check, register
from ._inbound import port_name, port_vars
from .context import EPHEMERAL_PORTS
from netdoctor.diagnose.reason.rules import Packet, evaluate

LOOPBACK = "127.0.0.1"


@register
class RouteLocalnetOff(Check):
    """The host's own connections to a published port on 127.0.0.1 are DNATed to the
    container and refused by the kernel: route_localnet is off where they leave"""

    id = "route-localnet-off"
    severity = "error"
    scope = "host"
    runs_on = "container"
    tags = ("inbound", "nat", "sysctl")
    precedence = 16
    needs = ("host-rules",)

    def run(self, ctx):
        dev = ctx.ingress
        if dev is None or ":" in (ctx.address or ":"):
            return
        sysctls = ctx.host.namespace.sysctls
        mine = sysctls.get(f"net.ipv4.conf.{dev.name}.route_localnet")
        every = sysctls.get("net.ipv4.conf.all.route_localnet")
        if mine is None or every is None or "1" in (mine, every):
            return  # not read (an older snapshot), or on: the kernel lets them out
        for w in ctx.inbound:
            if not w.host_port or w.family != "ip":
                continue
            # A connection from this host to 127.0.0.1:PORT, as nat OUTPUT meets it.
            packet = Packet(src=LOOPBACK, dst=LOOPBACK, iif=None, oif="lo", proto=w.proto,
                            dport=w.host_port, sport=EPHEMERAL_PORTS)
            out = evaluate(ctx.host.ruleset, "output", packet, type_="nat")
            if out.verdict != "dnat" or out.rule is None or not out.rule.to \
                    or not out.rule.to.startswith(ctx.address):
                continue
            yield self.finding(
                ctx, f"connections from {ctx.vars['host_ns']} itself to "
                     f"{LOOPBACK}:{w.host_port} ({port_name(w)}) are DNATed to {out.rule.to} "
                     f"({out.describe()}) and would leave {dev.name} with the source "
                     f"{LOOPBACK}, which the kernel refuses while route_localnet is 0 there "
                     f"(Docker sets it on its bridge when the userland proxy is off)",
                {"device": dev.name, "route_localnet": mine, "all": every,
                 "dnat": out.describe(), "walk": w.to_dict()},
                f"{{in_host}}sysctl -w net.ipv4.conf.{dev.name}.route_localnet=1",
                device=dev.name, rule=out.describe(), **port_vars(w))

from . import Check, register
from ._inbound import port_vars


@register
class PortNotPublished(Check):
    """A port asked about is not published: no DNAT leads it to the container"""

    id = "port-not-published"
    severity = "error"
    scope = "host"
    runs_on = "container"
    tags = ("inbound", "nat")
    precedence = 20
    needs = ("host-rules",)

    def run(self, ctx):
        for w in ctx.inbound:
            if w.source != "asked" or w.published or w.dropped or w.proxied:
                continue
            yield self.finding(
                ctx, f"{w.proto} port {w.host_port} of {w.host_address} is not published to "
                     f"{ctx.subject}: no DNAT rule sends it there, and the runtime lists no such "
                     f"port",
                {"port": w.host_port, "proto": w.proto, "walk": w.to_dict()},
                "{in_host}iptables-save -t nat | grep -e DNAT -e DOCKER",
                verify=True, **port_vars(w))

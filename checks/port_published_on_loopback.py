from . import Check, register
from ._inbound import loopback, port_name, port_vars


@register
class PortPublishedOnLoopback(Check):
    """The runtime publishes the port on a loopback address only: this host can reach it,
    clients on other machines cannot"""

    id = "port-published-on-loopback"
    # What `docker run -p 127.0.0.1:...` asks for, often on purpose: a warning in `checks`;
    # for `netdoctor inbound` from an outside client it is the cause.
    severity = "warning"
    scope = "host"
    runs_on = "container"
    tags = ("inbound", "nat")
    precedence = 12
    needs = ("host-rules",)

    def run(self, ctx):
        for w in ctx.inbound:
            if w.source != "runtime" or not loopback(w.host_address):
                continue
            if loopback(w.client):
                lan = ""  # the host's own connection: what the LAN meets was not walked
            elif w.dropped is not None and w.dropped.hook.startswith("raw"):
                lan = (f"; what arrives for it on another interface is dropped in "
                       f"{w.dropped.hook} before any FORWARD or DOCKER-USER rule "
                       f"({w.dropped.said}), as Docker 28 does for loopback-published ports")
            elif w.published and w.dropped is None:
                lan = ("; and no raw-table rule drops what arrives for it on other "
                       "interfaces: a neighbour on the LAN that routes 127.0.0.1 to this host "
                       "reaches it through the DNAT (Docker before 28 left this open)")
            else:
                lan = ""
            yield self.finding(
                ctx, f"{ctx.subject} publishes {port_name(w)}: on {w.host_address} only, so "
                     f"this host reaches it and clients on other machines cannot (publish it on "
                     f"0.0.0.0 or on the address they connect to){lan}",
                {"walk": w.to_dict()}, _confirm(ctx), verify=True, **port_vars(w))


def _confirm(ctx) -> str:
    kind = ctx.container.target.get("kind")
    return {"docker": "docker port {container_name}", "podman": "podman port {container_name}",
            }.get(kind, "{in_host}iptables-save -t nat | grep -n -- '--dport {host_port}'")

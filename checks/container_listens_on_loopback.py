from . import Check, register
from ._inbound import port_vars


@register
class ContainerListensOnLoopback(Check):
    """The service in the container listens on its loopback address only"""

    id = "container-listens-on-loopback"
    severity = "error"
    scope = "container"
    tags = ("inbound", "listener")
    precedence = 29

    def run(self, ctx):
        for w in ctx.inbound:
            if w.listening != "loopback":
                continue
            where = ", ".join(f"{s['address']}:{s['port']}" for s in w.listeners)
            yield self.finding(
                ctx, f"{ctx.subject} listens on {where} only: connections forwarded to its "
                     f"{ctx.address}:{w.container_port} find nobody (configure the service to "
                     f"listen on 0.0.0.0)",
                {"port": w.container_port, "proto": w.proto, "listeners": w.listeners},
                "{in_container}ss -lntp  # make the service bind 0.0.0.0 (e.g. --host 0.0.0.0)",
                verify=True, **port_vars(w))

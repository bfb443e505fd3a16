from . import Check, register
from ._inbound import host_port, port_vars


@register
class ContainerNotListening(Check):
    """Nothing in the container listens on a published port"""

    id = "container-not-listening"
    severity = "error"
    scope = "container"
    tags = ("inbound", "listener")
    precedence = 30

    def run(self, ctx):
        for w in ctx.inbound:
            if w.listening != "none":
                continue
            yield self.finding(
                ctx, f"nothing in {ctx.subject} listens on {w.proto} port {w.container_port}: "
                     f"a connection to {host_port(w.host_address, w.host_port)} is refused there",
                {"port": w.container_port, "proto": w.proto, "listeners": []},
                "{in_container}ss -lntup  # start the service, or publish the port it uses",
                verify=True, **port_vars(w))

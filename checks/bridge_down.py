from . import Check, register
from .context import link_evidence


@register
class BridgeDown(Check):
    """The container's bridge is administratively down"""

    id = "bridge-down"
    severity = "error"
    scope = "host"
    runs_on = "container"
    tags = ("link", "bridge", "path")
    blocks_at = (("request", None), ("request", "container"), ("request", "host-veth"))
    precedence = 7
    structural = True

    def run(self, ctx):
        br = ctx.bridge
        if br is None or br.up:
            return
        yield self.finding(
            ctx, f"bridge {br.name} in {ctx.vars['host_ns']} is DOWN: {ctx.subject}'s frames "
                 f"reach its port but the bridge neither switches nor routes them",
            link_evidence(br),
            "{in_host}ip link set {bridge} up")

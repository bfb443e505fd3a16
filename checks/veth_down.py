from . import Check, register
from .context import link_evidence


@register
class VethDown(Check):
    """The host side of the container's veth pair is down"""

    id = "veth-down"
    severity = "error"
    scope = "container"
    tags = ("link", "veth", "path")
    blocks_at = (("request", None), ("request", "container"))
    precedence = 5
    structural = True

    def run(self, ctx):
        veth = ctx.host_veth
        if veth is None or veth.up:
            return
        yield self.finding(
            ctx, f"{veth.name}, the host side of {ctx.subject}'s {ctx.vars['eth']}, is DOWN in "
                 f"{ctx.vars['host_ns']}: the container's frames go nowhere",
            link_evidence(veth),
            "{in_host}ip link set {veth} up")

from . import Check, register
from .context import link_evidence


@register
class ContainerLinkDown(Check):
    """The container's interface is down"""

    id = "container-link-down"
    severity = "error"
    scope = "container"
    tags = ("link", "path")
    blocks_at = (("request", None),)
    precedence = 1
    structural = True

    def run(self, ctx):
        eth = ctx.egress
        if eth is None or eth.up:
            return
        yield self.finding(
            ctx, f"{eth.name} in {ctx.subject} is DOWN", link_evidence(eth),
            "{in_container}ip link set {eth} up")

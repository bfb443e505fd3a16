from . import Check, register
from .context import global_addresses


@register
class ContainerNoAddress(Check):
    """The container's interface has no IP address"""

    id = "container-no-address"
    severity = "error"
    scope = "container"
    tags = ("address", "path")
    blocks_at = (("request", None),)
    precedence = 2
    structural = True

    def run(self, ctx):
        eth = ctx.egress
        if eth is None or global_addresses(eth, "inet") or global_addresses(eth, "inet6"):
            return
        yield self.finding(
            ctx, f"{eth.name} in {ctx.subject} has no global IPv4 or IPv6 address",
            {"interface": eth.name, "addresses": [str(a) for a in eth.addresses]},
            "{in_container}ip addr add <address>/<prefix> dev {eth}")

from . import Check, register
from .context import global_addresses, ipv6_disabled_keys


@register
class ContainerIpv6Disabled(Check):
    """IPv6 is disabled inside the container"""

    id = "container-ipv6-disabled"
    severity = "error"
    scope = "container"
    tags = ("ipv6", "address", "sysctl", "path")
    blocks_at = (("request", None),)
    precedence = 1
    structural = True

    def run(self, ctx):
        eth = ctx.egress
        if ctx.family != "inet6" or eth is None or global_addresses(eth, "inet6"):
            return
        keys = ipv6_disabled_keys(ctx.namespace.sysctls, eth.name)
        if not keys:
            return
        yield self.finding(
            ctx, f"IPv6 is disabled in {ctx.subject} ({', '.join(f'{k} = 1' for k in keys)}): "
                 f"{eth.name} has no IPv6 address, so {ctx.destination} cannot be reached",
            {**{k: "1" for k in keys}, "interface": eth.name,
             "addresses": [str(a) for a in eth.addresses]},
            "{in_container}sysctl -w " + " ".join(f"{k}=0" for k in keys))

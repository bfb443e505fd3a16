from . import Check, register
from .context import global_addresses, ipv6_disabled_keys


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
        if eth is None or eth.is_loopback:
            return  # a destination it holds itself is routed to lo: lo needs no address
        evidence = {"interface": eth.name, "addresses": [str(a) for a in eth.addresses]}
        fix = "{in_container}ip addr add <address>/<prefix> dev {eth}"
        if not (global_addresses(eth, "inet") or global_addresses(eth, "inet6")):
            yield self.finding(
                ctx, f"{eth.name} in {ctx.subject} has no global IPv4 or IPv6 address",
                evidence, fix)
        elif ctx.family == "inet6" and not global_addresses(eth, "inet6") \
                and not ipv6_disabled_keys(ctx.namespace.sysctls, eth.name):
            # An IPv4-only container asked about an IPv6 destination (IPv6 switched off is
            # container-ipv6-disabled).
            yield self.finding(
                ctx, f"{eth.name} in {ctx.subject} has no global IPv6 address, so it cannot "
                     f"reach the IPv6 address {ctx.destination}: its network is IPv4-only",
                evidence, fix, family="IPv6")

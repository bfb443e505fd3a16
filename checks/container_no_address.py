from . import Check, register
from .context import engine_restart, global_addresses, ipv6_disabled_keys


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
        # The runtime's IPAM knows the address and gives it again on a restart (an IPv4-only
        # network's IPv6 is no restart's to give: shown, not fixed); another
        # namespace's address is whoever set it up (CNI, a script): shown, not guessed at.
        restart = engine_restart(ctx)
        verify = restart is None
        fix = restart or "{in_container}ip -br addr show {eth}"
        if not (global_addresses(eth, "inet") or global_addresses(eth, "inet6")):
            yield self.finding(
                ctx, f"{eth.name} in {ctx.subject} has no global IPv4 or IPv6 address",
                evidence, fix, verify=verify)
        elif ctx.family == "inet6" and not global_addresses(eth, "inet6") \
                and not ipv6_disabled_keys(ctx.namespace.sysctls, eth.name):
            # An IPv4-only container asked about an IPv6 destination (IPv6 switched off is
            # container-ipv6-disabled).
            yield self.finding(
                ctx, f"{eth.name} in {ctx.subject} has no global IPv6 address, so it cannot "
                     f"reach the IPv6 address {ctx.destination}: its network is IPv4-only",
                evidence, "{in_container}ip -6 addr show {eth}", verify=True, family="IPv6")

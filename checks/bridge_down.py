from . import Check, register
from .context import gateway_on_link, global_addresses, link_evidence


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
        lost = self._address_lost(ctx, br)
        yield self.finding(
            ctx, f"bridge {br.name} in {ctx.vars['host_ns']} is DOWN: {ctx.subject}'s frames "
                 f"reach its port but the bridge neither switches nor routes them"
            + (f"; the kernel took its IPv6 address with it (IPv6 addresses go when their "
               f"link goes down, unless keep_addr_on_down is set): brought up alone, it "
               f"still does not hold the gateway {lost.split('/')[0]}" if lost else ""),
            link_evidence(br),
            "{in_host}ip link set {bridge} up"
            + (" && {in_host}ip addr add " + lost + " dev {bridge}" if lost else ""))

    @staticmethod
    def _address_lost(ctx, br):
        """gateway/prefix for an IPv6 container whose down bridge holds no IPv6 address
        while its gateway is on its link: the kernel removed it when the bridge went down
        (an IPv4 address stays); None otherwise."""
        if ctx.family != "inet6" or global_addresses(br, "inet6"):
            return None
        on_link = gateway_on_link(ctx, br)
        if on_link is None:
            return None
        gw, mine = on_link
        return f"{gw}/{mine.prefixlen}"

from . import Check, register
from .context import link_evidence, proxy_arp_on


@register
class ProxyArpOff(Check):
    """A routed container's gateway is no address of the host, and its veth does not answer
    ARP for it (proxy_arp off)"""

    id = "proxy-arp-off"
    severity = "error"
    scope = "host"
    runs_on = "container"
    tags = ("routing", "arp", "veth", "path")
    # The container asks ARP for its gateway and nobody answers: nothing leaves it.
    blocks_at = (("request", None), ("request", "container"))
    precedence = 7
    structural = True

    def run(self, ctx):
        h, veth, gw = ctx.host_ns, ctx.host_veth, ctx.gateway
        if h is None or veth is None or not gw or not ctx.routed:
            return
        if gw in h.held_addresses:
            return  # the host owns it (CNI ptp puts it on the veth): it answers ARP itself
        mine = h.sysctls.get(f"net.ipv4.conf.{veth.name}.proxy_arp")
        every = h.sysctls.get("net.ipv4.conf.all.proxy_arp")
        if mine is None or proxy_arp_on(h.sysctls, veth.name):
            return
        yield self.finding(
            ctx, f"{ctx.subject}'s gateway {gw} is no address of {ctx.vars['host_ns']}, and "
                 f"{veth.name} does not answer ARP for it (proxy_arp is {mine}): the "
                 f"container's packets never leave it",
            link_evidence(veth, gateway=gw, **{
                f"net.ipv4.conf.{veth.name}.proxy_arp": mine,
                "net.ipv4.conf.all.proxy_arp": every}),
            "{in_host}sysctl -w net.ipv4.conf.{veth}.proxy_arp=1")

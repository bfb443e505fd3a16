from . import Check, register
from .context import gateway_on_link, global_addresses


@register
class BridgeNoAddress(Check):
    """The container's bridge lost the address its containers use as their gateway"""

    id = "bridge-no-address"
    severity = "error"
    scope = "host"
    runs_on = "container"
    tags = ("routing", "bridge", "path")
    # Nothing answers ARP for the gateway: the request never leaves the container (its
    # frames for the gateway's old MAC, while an entry lasts, die at the bridge).
    blocks_at = (("request", None), ("request", "container"), ("request", "host-veth"),
                 ("request", "bridge"))
    precedence = 7
    structural = True

    def run(self, ctx):
        br = ctx.bridge
        if br is None or not br.up:
            return
        fam = ctx.family
        if global_addresses(br, fam):
            return  # an address of its own: container-wrong-gateway judges the gateway
        on_link = gateway_on_link(ctx, br)
        if on_link is None:
            return  # not its on-link gateway, or a router beyond the host answers for it
        gw, mine = on_link
        network = str(mine.interface.network)
        yield self.finding(
            ctx, f"bridge {br.name} in {ctx.vars['host_ns']} has no "
                 f"{'IPv6' if fam == 'inet6' else 'IPv4'} address: {ctx.subject}'s gateway "
                 f"{gw} is gone from the host, which neither answers "
                 f"{'neighbour solicitations' if fam == 'inet6' else 'ARP'} for it nor routes "
                 f"{network} (a network manager or DHCP client that manages {br.name}, or an "
                 f"address flush, takes it)",
            {"bridge": br.name, "bridge_addresses": [str(a) for a in br.addresses],
             "gateway": gw, "container_network": network},
            "{in_host}ip addr add " + f"{gw}/{mine.prefixlen}" + " dev {bridge}",
            gateway=gw, prefix=f"{gw}/{mine.prefixlen}")


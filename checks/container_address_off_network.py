import ipaddress

from . import Check, register
from .context import engine_restart, global_addresses, lookup, router_on_segment


@register
class ContainerAddressOffNetwork(Check):
    """The container's address is outside the network of the bridge it is on"""

    id = "container-address-off-network"
    severity = "error"
    scope = "container"
    tags = ("address", "bridge", "path")
    # It may get its requests out (a gateway taken on-link), never an answer back: the host
    # routes its address elsewhere. Or nothing leaves (no gateway on its link).
    blocks_at = (("request", None), ("request", "container"), ("request", "uplink"),
                 ("reply", "uplink"))
    precedence = 7
    structural = True

    def run(self, ctx):
        br, eth, h = ctx.bridge, ctx.egress, ctx.host_ns
        if br is None or eth is None or h is None or not ctx.bridged:
            return
        fam = ctx.family
        networks = [a.interface.network for a in global_addresses(br, fam)]
        mine = global_addresses(eth, fam)
        if not networks or not mine or router_on_segment(h, br, ctx.gateway or ""):
            return  # no bridge address is bridge-no-address's; a LAN bridge has routers
        if any(ipaddress.ip_address(a.local) in n for a in mine for n in networks):
            return
        address = mine[0]
        back = lookup(h.routes, address.local)
        if back is not None and back.dev == br.name:
            return  # the host routes it to the bridge all the same: answers find it
        now = ("no route" if back is None else f"{back.dst}" + (
            f" via {back.gateway}" if back.gateway else "") + f" dev {back.dev}")
        restart = engine_restart(ctx)
        yield self.finding(
            ctx, f"{ctx.subject}'s address {address} is outside the network of its bridge "
                 f"{br.name} ({', '.join(str(n) for n in networks)}): the host routes "
                 f"{address.local} by {now}, not to {br.name}, so no answer comes back to it "
                 f"(and NAT rules made for the bridge's network do not cover it)",
            {"address": str(address), "bridge": br.name,
             "bridge_networks": [str(n) for n in networks], "host_route_back": now},
            restart or "{in_container}ip -br addr show {eth} && {in_host}ip -br addr show {bridge}",
            verify=restart is None, container_address=str(address),
            bridge_network=str(networks[0]))

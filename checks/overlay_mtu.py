from . import Check, register
from ._tunnel import tunnel_of
from netdoctor.diagnose.reason.path import VXLAN_OVERHEAD


@register
class OverlayMtu(Check):
    """Packets the container may send do not fit the underlay once encapsulated"""

    id = "overlay-mtu"
    severity = "warning"
    scope = "host"
    runs_on = "container"
    tags = ("overlay", "vxlan", "mtu", "path")
    blocks_at = (("request", "tunnel"),)
    precedence = 40

    def run(self, ctx):
        tunnel, _ = tunnel_of(ctx)
        if tunnel is None or ctx.egress is None:
            return
        underlay = ctx.link_of_hop("underlay")  # not always in the tunnel's namespace
        if underlay is None:
            return
        fits = underlay.mtu - VXLAN_OVERHEAD
        biggest = tunnel.mtu  # what the tunnel accepts; past it, path MTU discovery works
        if biggest <= fits:
            return
        yield self.finding(
            ctx, f"{tunnel.name} (MTU {biggest}) takes {biggest}-byte packets from "
                 f"{ctx.subject}, but "
                 f"{underlay.name}'s MTU {underlay.mtu} leaves room for {fits} after the "
                 f"{VXLAN_OVERHEAD}-byte VXLAN overhead: larger packets are fragmented outside or, "
                 f"where the underlay drops fragments, silently lost",
            {"container_mtu": ctx.egress.mtu, "tunnel_mtu": tunnel.mtu,
             "underlay": underlay.name, "underlay_mtu": underlay.mtu, "room": fits},
            "{in_host}ip link set " + tunnel.name + f" mtu {fits}", tunnel=tunnel.name,
            path_mtu=str(fits))

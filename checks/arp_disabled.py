from . import Check, register
from .context import link_evidence

NEVER = "8"  # arp_ignore 8: answer no ARP request at all (4-7 are reserved: they answer)


@register
class ArpDisabled(Check):
    """An interface on the container's path neither asks nor answers ARP"""

    id = "arp-disabled"
    severity = "error"
    scope = "host"
    runs_on = "container"
    tags = ("link", "arp", "path")
    # Where the interface is: the container's own (its frames leave addressed to its own
    # MAC, and the bridge drops them), the host's answer for the container's gateway (the
    # container's ARP goes unanswered: nothing leaves it), the host's uplink (the request
    # leaves addressed to the uplink's own MAC, and the next hop drops it). Each finding
    # names its own place in its evidence.
    blocks_at = (("request", None), ("request", "container"), ("request", "host-veth"),
                 ("request", "uplink"), ("reply", "bridge"), ("reply", "host-veth"),
                 ("reply", "uplink"))
    precedence = 6
    structural = True

    def run(self, ctx):
        eth, h = ctx.egress, ctx.host_ns
        if eth is not None and _noarp(eth):
            yield self._noarp(ctx, eth, "in_container", [None, "container", "host-veth"],
                              f"{ctx.subject}'s {eth.name}")
        elif eth is not None and ctx.family == "inet":
            yield from self._container_ignoring(ctx, eth)
        answering = self._answering(ctx)
        if answering is not None and _noarp(answering):
            yield self._noarp(ctx, answering, "in_host", [None, "container"],
                              f"{answering.name}, the interface that answers "
                              f"{ctx.subject}'s ARP for its gateway {ctx.gateway},")
        elif answering is not None and ctx.family == "inet" and answering.holds(ctx.gateway):
            yield from self._ignoring_gateway(ctx, h, answering)
        up = ctx.uplink
        if up is not None and up is not answering and _noarp(up):
            yield self._noarp(ctx, up, "in_host", ["uplink"],
                              f"{up.name}, the uplink {ctx.subject}'s requests leave by,")
        elif up is not None and up is not answering and ctx.family == "inet" and h is not None:
            yield from self._uplink_ignoring(ctx, h, up)

    def _answering(self, ctx):
        """The host interface that answers the container's ARP for its gateway: its bridge
        (holding the gateway), or its routed veth (holding it, or by proxy ARP)."""
        if ctx.host_ns is None or not ctx.gateway:
            return None
        if ctx.bridge is not None:
            return ctx.bridge
        return ctx.host_veth if ctx.routed else None

    def _noarp(self, ctx, link, where: str, stops_at: list, what: str):
        return self.finding(
            ctx, f"{what} has ARP off (NOARP): it neither asks for its neighbours' MAC "
                 f"addresses nor answers for its own, and sends every frame to its own MAC "
                 f"{link.mac}",
            link_evidence(link, mac=link.mac, stops_at=stops_at),
            "{" + where + "}ip link set " + link.name + " arp on", interface=link.name,
            in_interface_ns=ctx.vars[where])

    def _container_ignoring(self, ctx, eth):
        """The container answers no ARP: its gateway learns its MAC only from the
        container's own questions, and loses it when the entry ages (a minute or so), after
        which the answers wait for a MAC nobody gives."""
        values, never, on, fix = _arp_ignore(ctx.namespace.sysctls, eth.name, "in_container")
        if never:
            yield self.finding(
                ctx, f"{ctx.subject}'s {eth.name} answers no ARP request (arp_ignore 8 on "
                     f"{on}): the host reaches it only while the neighbour entry its own "
                     f"questions left lasts, so the answers to its traffic stop arriving when "
                     f"that entry ages out",
                dict(values, interface=eth.name, direction="reply",
                     stops_at=["bridge", "host-veth", "uplink"]),
                fix, interface=eth.name, in_interface_ns=ctx.vars["in_container"])

    def _ignoring_gateway(self, ctx, h, link):
        values, never, on, fix = _arp_ignore(h.sysctls, link.name, "in_host")
        if never:
            yield self.finding(
                ctx, f"{link.name} in {ctx.vars['host_ns']} holds {ctx.subject}'s gateway "
                     f"{ctx.gateway} but answers no ARP request (arp_ignore 8 on {on}): the "
                     f"container never learns its gateway's MAC",
                dict(values, interface=link.name, gateway=ctx.gateway,
                     stops_at=[None, "container"]),
                fix, interface=link.name, in_interface_ns=ctx.vars["in_host"])


    def _uplink_ignoring(self, ctx, h, up):
        """The uplink answers no ARP: the next hop upstream learns the host's MAC only from
        the host's own questions, and when that entry ages the answers addressed to the
        host (to its uplink address, or routed to it for the containers) stop at the next
        hop, which asks and gets no answer."""
        if not any(a.family == "inet" and a.scope == "global" for a in up.addresses):
            return
        values, never, on, fix = _arp_ignore(h.sysctls, up.name, "in_host")
        if never:
            yield self.finding(
                ctx, f"{up.name}, the uplink {ctx.subject}'s requests leave by, answers no "
                     f"ARP request (arp_ignore 8 on {on}): the next hop reaches "
                     f"{ctx.vars['host_ns']} only while the entry the host's own questions "
                     f"left lasts, so the answers stop arriving when it ages out",
                dict(values, interface=up.name, direction="request", stops_at=["uplink"]),
                fix, interface=up.name, in_interface_ns=ctx.vars["in_host"])


def _arp_ignore(sysctls: dict, ifname: str, where: str) -> tuple:
    """(the interface's and `all`'s arp_ignore, the keys set to 8, their names ("eth0 and
    all"), the command that sets them to 0, run `where`). The kernel applies the higher of
    the two: 8 in either answers nothing."""
    names = {f"net.ipv4.conf.{ifname}.arp_ignore": ifname, "net.ipv4.conf.all.arp_ignore": "all"}
    values = {k: sysctls.get(k) for k in names}
    never = [k for k, v in values.items() if v == NEVER]
    on = " and ".join(names[k] for k in never)
    fix = " && ".join("{" + where + "}sysctl -w " + f"{k}=0" for k in never)
    return values, never, on, fix


def _noarp(link) -> bool:
    """ARP off on an Ethernet link that needs it (a point-to-point link has no neighbours;
    an ipvlan in L3 mode has ARP off by design: its parent routes for it)."""
    return link.up and link.kind != "ipvlan" and link.mac is not None and "NOARP" in link.flags \
        and "POINTOPOINT" not in link.flags and not link.is_loopback

from . import Check, register


@register
class BridgeFdbPinned(Check):
    """The bridge's forwarding table pins the container's MAC to another port"""

    id = "bridge-fdb-pinned"
    severity = "error"
    scope = "host"
    runs_on = "container"
    tags = ("link", "bridge", "path")
    # Every frame for the container's MAC leaves by the pinned port (a sticky entry, or a
    # static one where the container's port does not learn, stays whatever comes in; a
    # permanent one is delivered to the host itself): the host's ARP answer first (nothing
    # leaves the container), then every reply. A plain static entry moves to the port the
    # MAC next comes in by: no fault.
    blocks_at = (("request", None), ("request", "container"), ("reply", "bridge"))
    precedence = 6
    structural = True

    def run(self, ctx):
        br, port, eth, h = ctx.bridge, ctx.host_veth, ctx.egress, ctx.host_ns
        if br is None or port is None or eth is None or h is None or not eth.mac \
                or port.master != br.ifindex:
            return
        mac = eth.mac.lower()
        on_bridge = {l.name for l in h.links if l.master == br.ifindex}
        for e in h.fdb:
            if e.mac.lower() != mac or e.dev == port.name or e.dev not in on_bridge:
                continue
            stays = e.state == "permanent" or e.state == "static" and (
                e.sticky or port.learning is False)
            if not stays:
                continue
            where = ("the host itself (a permanent entry is the bridge's own address: frames "
                     "for it are delivered to the host, not forwarded)"
                     if e.state == "permanent" else f"{e.dev}")
            kind = "sticky static" if e.sticky and e.state == "static" else e.state
            yield self.finding(
                ctx, f"bridge {br.name} in {ctx.vars['host_ns']} holds a {kind} entry for "
                     f"{ctx.subject}'s MAC {mac} on {e.dev}, not on its port {port.name}: "
                     f"every frame for the container (its gateway's ARP answer, every reply) "
                     f"goes to {where}, whatever the bridge learns",
                {"mac": mac, "entry_dev": e.dev, "state": e.state, "sticky": e.sticky,
                 "port": port.name, "port_learning": port.learning, "bridge": br.name},
                "{in_host}bridge fdb del {mac} dev {entry_dev} master", mac=mac,
                entry_dev=e.dev, port=port.name)
            return

from . import Check, register


@register
class VethNotAttached(Check):
    """The container's host-side veth is not a port of the container network's bridge"""

    id = "veth-not-attached"
    severity = "error"
    scope = "container"
    tags = ("veth", "bridge", "path")
    blocks_at = (("request", None),
                 ("request", "container"),
                 ("request", "host-veth"),
                 ("request", "bridge"))  # on the wrong bridge, the host still routes it
    precedence = 6
    structural = True

    def run(self, ctx):
        veth, h = ctx.host_veth, ctx.host_ns
        if veth is None or h is None or not ctx.address:
            return
        expected = ctx.network_bridge
        if expected is None:
            return  # a routed setup (no bridge owns the network): nothing to attach to
        master = h.link(ifindex=veth.master) if veth.master is not None else None
        if master is not None and master.ifindex == expected.ifindex:
            return
        now = f"is attached to {master.name}" if master else "has no master"
        yield self.finding(
            ctx, f"{veth.name} ({ctx.subject}'s host side) {now}, but {ctx.subject}'s network "
                 f"lives on bridge {expected.name}",
            {"interface": veth.name, "master": master.name if master else None,
             "expected_bridge": expected.name},
            "{in_host}ip link set {veth} master " + expected.name, expected_bridge=expected.name)

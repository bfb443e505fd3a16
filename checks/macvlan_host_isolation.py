from . import Check, register
from .context import LOWER_DEVICE_MODES


@register
class MacvlanHostIsolation(Check):
    """A macvlan/ipvlan container and its own host cannot reach each other through the parent"""

    id = "macvlan-host-isolation"
    severity = "error"
    scope = "host"
    runs_on = "container"
    tags = ("macvlan", "path")
    # The parent never hands its children's frames to the host's own stack: the container's
    # ARP for the host's address is never answered, and nothing leaves it.
    blocks_at = (("request", None), ("request", "container"))
    precedence = 6
    structural = True

    def run(self, ctx):
        mode = ctx.path.get("mode")
        h, parent = ctx.host_ns, ctx.uplink
        if mode not in LOWER_DEVICE_MODES or h is None or parent is None or not ctx.address:
            return
        dest = ctx.destination
        holder = next((l for l in h.links for a in l.addresses if a.local == dest), None)
        if holder is None:
            return
        yield self.finding(
            ctx, f"{ctx.subject} is a {mode} child of {parent.name}, and {dest} is an address "
                 f"of its own host ({holder.name} in {ctx.vars['host_ns']}): the kernel never "
                 f"passes frames between a {mode} parent and its children, so the two cannot "
                 f"reach each other",
            {"mode": mode, "parent": parent.name, "destination": dest,
             "held_by": holder.name, "container_address": ctx.address},
            "{in_host}ip link add {shim} link {uplink} type " + mode
            + (" mode l2" if mode == "ipvlan" else " mode bridge") + " && "
            "{in_host}ip link set {shim} up && "
            "{in_host}ip route add {container_ip}/32 dev {shim}",
            shim=f"{mode}-shim")

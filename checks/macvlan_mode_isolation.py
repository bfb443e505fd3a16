from . import Check, register
from .context import LOWER_DEVICE_MODES

# What each mode does to frames between two children of one parent.
BETWEEN_CHILDREN = {
    "private": "drops every frame between two children of one parent, even one a switch "
               "reflects back",
    "vepa": "sends frames between two children out to the switch, which must reflect them "
            "(802.1Qbg reflective relay, `hairpin` on a Linux bridge): most switches do not",
}


@register
class MacvlanModeIsolation(Check):
    """Two macvlan children of one parent cannot reach each other in this mode"""

    id = "macvlan-mode-isolation"
    severity = "error"
    scope = "container"
    tags = ("macvlan", "path")
    # The children's ARP for each other dies in the parent too: the request may never leave.
    blocks_at = (("request", None), ("request", "container"), ("request", "uplink"))
    precedence = 3
    structural = True

    def run(self, ctx):
        eth = ctx.egress
        other = (ctx.path.get("destination") or {}).get("container")
        if ctx.path.get("mode") not in LOWER_DEVICE_MODES or eth is None or not other:
            return
        if eth.mode not in BETWEEN_CHILDREN:
            return
        parent = ctx.uplink.name if ctx.uplink is not None else "its parent"
        yield self.finding(
            ctx, f"{eth.name} of {ctx.subject} is a {eth.kind} child of {parent} in {eth.mode} "
                 f"mode, which {BETWEEN_CHILDREN[eth.mode]}: {other} at {ctx.destination} is "
                 f"another child" + ("" if eth.mode == "private" else
                                     "; reachable only if the switch reflects the frames"),
            {"interface": eth.name, "kind": eth.kind, "mode": eth.mode, "parent": parent,
             "destination_container": other},
            "{in_container}ip link set {eth} type " + (eth.kind or "macvlan") + " mode bridge",
            severity="error" if eth.mode == "private" else "warning", macvlan_mode=eth.mode)

from netdoctor.checks import Check, register


@register
class UplinkDown(Check):
    """The host's uplink interface is down or has no carrier"""

    id = "uplink-down"
    severity = "error"
    scope = "host"
    runs_on = "container"
    tags = ("link", "path")

    def run(self, ctx):
        up = ctx.uplink
        if up is None or up.state not in ("DOWN", "NO-CARRIER"):
            return
        fix = "{in_host}ip link set {uplink} up" if not up.up else \
            "check the cable/peer of {uplink}: it is up but has no carrier"
        yield self.finding(
            ctx, f"uplink {up.name} in {ctx.vars['host_ns']} is {up.state}",
            {"interface": up.name, "flags": list(up.flags), "operstate": up.operstate}, fix)

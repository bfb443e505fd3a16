from netdoctor.checks import Check, register

BAD = ("FAILED", "INCOMPLETE")


def _bad_entry(snap, address, dev):
    for n in snap.neighbours:
        if n.dst == address and (dev is None or n.dev == dev) and set(n.state) & set(BAD):
            return n
    return None


@register
class NeighbourFailed(Check):
    """The next hop does not answer ARP/neighbour discovery"""

    id = "neighbour-failed"
    severity = "error"
    scope = "container"
    tags = ("arp", "neighbour", "path")

    def run(self, ctx):
        eth = ctx.egress
        gw = ctx.gateway
        if gw and eth is not None:
            n = _bad_entry(ctx.namespace, gw, eth.name)
            if n:
                yield self.finding(
                    ctx, f"{ctx.subject}: its gateway {gw} on {eth.name} is {'/'.join(n.state)} "
                         f"in the neighbour table: nothing answers ARP for it",
                    {"netns": ctx.vars["container_ns"], "neighbour": n.dst, "dev": n.dev,
                     "state": list(n.state), "lladdr": n.lladdr},
                    "{in_container}ip neigh del {gateway} dev {eth}", next_hop=gw)
        uplink_hop = ctx.hop("uplink")
        if uplink_hop and uplink_hop.get("via") and ctx.host_ns is not None:
            via = uplink_hop["via"]
            n = _bad_entry(ctx.host_ns, via, uplink_hop["name"])
            if n:
                yield self.finding(
                    ctx, f"{ctx.vars['host_ns']}: the uplink gateway {via} on {n.dev} is "
                         f"{'/'.join(n.state)}: nothing answers ARP for it",
                    {"netns": ctx.vars["host_ns"], "neighbour": n.dst, "dev": n.dev,
                     "state": list(n.state), "lladdr": n.lladdr},
                    "{in_host}ip neigh del " + via + " dev {uplink}", next_hop=via)

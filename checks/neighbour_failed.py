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
        uplink_hop = ctx.hop("uplink")
        # (namespace, its label, next hop, device, how to flush it)
        next_hops = []
        if ctx.gateway and eth is not None:
            next_hops.append((ctx.namespace, ctx.vars["container_ns"], ctx.gateway, eth.name,
                              "{in_container}ip neigh del {gateway} dev {eth}",
                              "its gateway"))
        if uplink_hop and uplink_hop.get("via") and ctx.host_ns is not None:
            next_hops.append((ctx.host_ns, ctx.vars["host_ns"], uplink_hop["via"],
                              uplink_hop["name"],
                              "{in_host}ip neigh del " + uplink_hop["via"] + " dev {uplink}",
                              "the uplink gateway"))
        for snap, label, address, dev, fix, what in next_hops:
            n = _bad_entry(snap, address, dev)
            if n:
                yield self.finding(
                    ctx, f"{label}: {what} {address} on {dev} is {'/'.join(n.state)} in the "
                         f"neighbour table: nothing answers ARP for it",
                    {"netns": label, "neighbour": n.dst, "dev": n.dev, "state": list(n.state),
                     "lladdr": n.lladdr}, fix, next_hop=address)

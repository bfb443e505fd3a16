from . import Check, register

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
    blocks_at = (("request", None),
                 ("request", "container"),
                 ("request", "host-veth"),
                 ("request", "bridge"))
    precedence = 16

    def run(self, ctx):
        eth = ctx.egress
        uplink_hop = ctx.hop("uplink")
        # (namespace, its label, next hop, device, how to flush it, what it is, the prefix
        # that runs a command there)
        next_hops = []
        if ctx.gateway and eth is not None:
            next_hops.append((ctx.namespace, ctx.vars["container_ns"], ctx.gateway, eth.name,
                              "{in_container}ip neigh del {gateway} dev {eth}",
                              "its gateway", ctx.vars["in_container"]))
        if uplink_hop and uplink_hop.get("via") and ctx.host_ns is not None:
            next_hops.append((ctx.host_ns, ctx.vars["host_ns"], uplink_hop["via"],
                              uplink_hop["name"],
                              "{in_host}ip neigh del " + uplink_hop["via"] + " dev {uplink}",
                              "the uplink gateway", ctx.vars["in_host"]))
        wrong = self._gateway_mac_wrong(ctx)
        if wrong is not None:
            yield wrong
            return
        for snap, label, address, dev, fix, what, there in next_hops:
            n = _bad_entry(snap, address, dev)
            if n:
                yield self.finding(
                    ctx, f"{label}: {what} {address} on {dev} is {'/'.join(n.state)} in the "
                         f"neighbour table: nothing answers ARP for it",
                    {"netns": label, "neighbour": n.dst, "dev": n.dev, "state": list(n.state),
                     "lladdr": n.lladdr}, fix, next_hop=address, neighbour_dev=dev,
                    in_neighbour_ns=there)

    def _gateway_mac_wrong(self, ctx):
        """The container's ARP entry for its gateway names a MAC the gateway does not have
        (a static entry left behind, a recreated bridge): frames go to a dead address."""
        gw, eth, br = ctx.gateway, ctx.egress, ctx.network_bridge
        if not (gw and eth and br and br.mac) or gw not in [a.local for a in br.addresses]:
            return None
        for n in ctx.namespace.neighbours:
            if n.dst == gw and n.dev == eth.name and n.lladdr and \
                    n.lladdr.lower() != br.mac.lower() and not set(n.state) & set(BAD):
                return self.finding(
                    ctx, f"{ctx.subject}: its gateway {gw} is cached as {n.lladdr} "
                         f"({'/'.join(n.state)}), but {br.name} has {br.mac}: frames for the "
                         f"gateway go to an address nobody has",
                    {"netns": ctx.vars["container_ns"], "neighbour": gw, "dev": n.dev,
                     "lladdr": n.lladdr, "state": list(n.state), "gateway_mac": br.mac},
                    "{in_container}ip neigh del {gateway} dev {eth}", next_hop=gw,
                    neighbour_dev=eth.name, in_neighbour_ns=ctx.vars["in_container"])
        return None

from . import Check, register
from .context import RESOLVED, link_evidence


@register
class BridgePortFloodOff(Check):
    """The container's bridge port neither learns nor floods: frames for the container are
    never sent out of it"""

    id = "bridge-port-flood-off"
    severity = "error"
    scope = "host"
    runs_on = "container"
    tags = ("link", "bridge", "path")
    # Frames for the container's MAC: the host's ARP answer (the container cannot resolve
    # its gateway, nothing leaves it) and every reply. (Broadcasts alone cut: a warning.)
    blocks_at = (("request", None), ("request", "container"), ("reply", "bridge"),
                 ("reply", "host-veth"))
    precedence = 6
    structural = True

    def run(self, ctx):
        br, port, eth = ctx.bridge, ctx.host_veth, ctx.egress
        h = ctx.host_ns
        if br is None or port is None or eth is None or h is None or not eth.mac \
                or port.master != br.ifindex:
            return
        if port.learning is False and port.unicast_flood is False:
            yield from self._unlearned(ctx, br, port, eth)
        elif port.broadcast_flood is False and ctx.address and not ctx.east_west:
            yield self._no_broadcasts(ctx, br, port, eth.mac.lower())
        far = ctx.link_of_hop("bridge-port") if ctx.east_west else None
        if far is not None and far.master == br.ifindex and far.broadcast_flood is False:
            yield self._neighbour_unasked(ctx, br, far, eth.mac.lower())

    def _unlearned(self, ctx, br, port, eth):
        mac = eth.mac.lower()
        on_port = [e for e in ctx.host_ns.fdb if e.dev == port.name]
        if any(e.mac.lower() == mac for e in on_port):
            return  # an entry, static or learnt before: the bridge knows where it is
        yield self.finding(
            ctx, f"{port.name} ({ctx.subject}'s port on bridge {br.name} in "
                 f"{ctx.vars['host_ns']}) has learning off and flood off, and the bridge has "
                 f"no forwarding entry for {ctx.subject}'s MAC {mac} on it: frames for the "
                 f"container (its gateway's ARP answer, every reply) are sent out of no "
                 f"port",
            link_evidence(port, bridge=br.name, learning=False, flood=False, mac=mac,
                          fdb_entries_on_port=len(on_port)),
            "{in_host}bridge link set dev {port} learning on", port=port.name, mac=mac)

    def _no_broadcasts(self, ctx, br, port, mac):
        # The kernel floods the bridge's own broadcasts (the host's ARP) out of every port
        # whatever the flag: only the other ports' (the other containers') are held back.
        return self.finding(
            ctx, f"{port.name} ({ctx.subject}'s port on bridge {br.name} in "
                 f"{ctx.vars['host_ns']}) has bcast_flood off: ARP requests from the other "
                 f"containers on {br.name} never reach {ctx.subject} (the host's own do), so "
                 f"a container without an entry for {ctx.address} cannot reach it",
            link_evidence(port, bridge=br.name, bcast_flood=False),
            "{in_host}bridge link set dev {port} bcast_flood on", severity="warning",
            port=port.name, mac=mac)

    def _neighbour_unasked(self, ctx, br, far, mac):
        """An east-west path whose destination's port holds back the bridge's broadcasts:
        the source's ARP for the destination never reaches it."""
        dest = ctx.destination
        entry = [n for n in ctx.namespace.neighbours if n.dst == dest and n.lladdr
                 and RESOLVED & set(n.state)]
        now = (f"{ctx.subject}'s entry for it ({entry[0].lladdr}, "
               f"{'/'.join(entry[0].state)}) works until it expires" if entry else
               f"{ctx.subject} holds no usable entry for {dest}: its packets wait for an ARP "
               f"answer that never comes")
        return self.finding(
            ctx, f"{far.name} (the port that leads to {dest} on bridge {br.name} in "
                 f"{ctx.vars['host_ns']}) has bcast_flood off: {ctx.subject}'s ARP requests "
                 f"for {dest} never reach it; {now}",
            link_evidence(far, bridge=br.name, bcast_flood=False,
                          source_neighbour="/".join(entry[0].state) if entry else None,
                          stops_at=[None, "container"], direction="request"),
            "{in_host}bridge link set dev " + far.name + " bcast_flood on",
            severity="warning" if entry else None, port=far.name, mac=mac)

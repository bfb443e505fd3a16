from . import Check, register
from .context import link_evidence


@register
class BridgePortBlocked(Check):
    """A bridge port on the container's path is not forwarding (its STP state), or both
    ports of a container-to-container path are isolated"""

    id = "bridge-port-blocked"
    severity = "error"
    scope = "host"
    runs_on = "container"
    tags = ("link", "bridge", "stp", "path")
    # The bridge drops every frame that comes in by the port (the container's ARP for its
    # gateway first: nothing leaves it) and sends none out of it.
    blocks_at = (("request", None), ("request", "container"), ("request", "host-veth"),
                 ("request", "bridge"))
    precedence = 6
    structural = True

    def run(self, ctx):
        br = ctx.bridge
        if br is None or not br.up:
            return  # bridge-down judges a bridge that is down
        ports = {}
        for role in ("host-veth", "bridge-port"):
            port = ctx.link_of_hop(role)
            if port is None or not port.up or not port.lower_up or port.master != br.ifindex:
                continue  # a port that is down is disabled by the bridge: veth-down's
            ports[role] = port
            if port.port_state in (None, "forwarding"):
                continue
            yield self._blocked(ctx, br, port, role)
        mine, theirs = ports.get("host-veth"), ports.get("bridge-port")
        if mine is not None and theirs is not None and mine.isolated and theirs.isolated:
            yield self.finding(
                ctx, f"{mine.name} ({ctx.subject}'s veth) and {theirs.name} (the port that "
                     f"leads to the destination) are both isolated ports of bridge {br.name} "
                     f"in {ctx.vars['host_ns']}: the bridge passes nothing between two "
                     f"isolated ports, their ARP first (to and from the others, it does)",
                link_evidence(mine, bridge=br.name, isolated=True, other_port=theirs.name),
                "{in_host}bridge link set dev " + mine.name + " isolated off", port=mine.name)

    def _blocked(self, ctx, br, port, role):
        whose = (f"{ctx.subject}'s veth" if role == "host-veth"
                 else "the port that leads to the destination")
        evidence = link_evidence(port, bridge=br.name, port_state=port.port_state, stp=br.stp)
        if role == "bridge-port":
            evidence["stops_at"] = ["bridge"]
        message = (f"{port.name} ({whose}) is in STP state {port.port_state} on bridge "
                   f"{br.name} in {ctx.vars['host_ns']}: the bridge passes no frame in or out "
                   f"of it")
        if br.stp:
            # The kernel's spanning tree owns the state; setting it by hand is refused.
            why = ("STP put it in blocking: the bridge sees a loop or a better path through "
                   "another port" if port.port_state == "blocking" else
                   f"STP holds a new port in {port.port_state} for the bridge's forward delay "
                   f"(twice, 30 s by default) before it forwards")
            return self.finding(ctx, f"{message} ({why})", evidence,
                                "{in_host}bridge link show dev " + port.name, verify=True,
                                port=port.name)
        return self.finding(ctx, f"{message} (STP is off on {br.name}: the state was set by "
                                 f"hand or by a tool)", evidence,
                            "{in_host}bridge link set dev " + port.name + " state 3",
                            port=port.name)

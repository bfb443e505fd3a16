from . import Check, register
from .context import in_container_prefix

# Entry states whose MAC someone gave the host recently: REACHABLE was confirmed within
# seconds, DELAY and PROBE were REACHABLE a moment ago. STALE may be a container recreated
# with a new MAC that the kernel has not asked again yet (it will, on the next packet).
RECENT = {"REACHABLE", "DELAY", "PROBE"}


@register
class DuplicateAddress(Check):
    """Another device on the container's bridge holds the container's (or its gateway's)
    address"""

    id = "duplicate-address"
    severity = "error"
    scope = "container"
    tags = ("address", "arp", "path")
    # The host sends the container's replies to the other holder; the container's own ARP
    # for its gateway may be answered by a container that holds the gateway's address.
    blocks_at = (("reply", "bridge"), ("reply", "host-veth"), ("request", "container"),
                 ("request", "host-veth"), ("request", None))
    precedence = 7

    def run(self, ctx):
        eth, br = ctx.egress, ctx.bridge
        if eth is None or br is None or not ctx.address:
            return
        mine = ctx.container
        for other in ctx.snapshot.containers:
            if other is mine or other.host_inode != mine.host_inode:
                continue
            theirs = _on_bridge(other, br.name)
            if theirs is None:
                continue
            held = {a.local for a in theirs.addresses}
            for address, what, direction in ((ctx.address, "its own address", "reply"),
                                             (ctx.gateway, "its gateway's address",
                                              "request")):
                if address and address in held:
                    there = in_container_prefix(other.target)
                    yield self.finding(
                        ctx, f"{other.label} holds {address}, {what}, on the same bridge "
                             f"({br.name}): both answer ARP for it, and packets for it go to "
                             f"whichever answered last",
                        {"address": address, "other": other.label, "other_mac": theirs.mac,
                         "direction": direction},
                        f"{there}ip -br addr show dev {theirs.name}", verify=True,
                        address=address, other=other.label, other_mac=theirs.mac or "?")
        h = ctx.host_ns
        if h is None or not eth.mac:
            return
        answered = [m.lower() for m in h.answered(ctx.address, br.name) or ()]
        others = [m for m in answered if m != eth.mac.lower()]
        if others:
            # Asked from the bridge: two answered.
            yield self.finding(
                ctx, f"{ctx.vars['host_ns']} asked for {ctx.address} on {br.name} (one ARP "
                     f"request) and {', '.join(others)} answered besides {ctx.subject}'s "
                     f"{eth.name} ({eth.mac}): another device on the bridge holds the same "
                     f"address, and packets for it go to whichever answered last",
                {"address": ctx.address, "answered": answered, "container_mac": eth.mac,
                 "other_mac": others[0], "direction": "reply"},
                "{in_host}bridge fdb show br " + f"{br.name} | grep -i {others[0]}",
                verify=True, address=ctx.address, other=f"the device with {others[0]}",
                other_mac=others[0])
            return
        if answered:
            return  # only the container answered: an entry left from an earlier holder
        for n in h.neighbours_of(ctx.address, br.name):
            if n.lladdr and n.lladdr.lower() != eth.mac.lower() and RECENT & set(n.state):
                yield self.finding(
                    ctx, f"{ctx.vars['host_ns']}'s neighbour entry for {ctx.address} on "
                         f"{br.name} names {n.lladdr} ({'/'.join(n.state)}: it answered "
                         f"ARP just now), but {ctx.subject}'s {eth.name} is {eth.mac}: another "
                         f"device on the bridge holds the same address, and the host sends "
                         f"the container's replies to it",
                    {"address": ctx.address, "other_mac": n.lladdr, "state": list(n.state),
                     "container_mac": eth.mac, "direction": "reply"},
                    "{in_host}bridge fdb show br " + f"{br.name} | grep -i {n.lladdr}",
                    verify=True, address=ctx.address, other=f"the device with {n.lladdr}",
                    other_mac=n.lladdr)


def _on_bridge(other, bridge: str):
    """other's interface when its path crosses the same bridge (by name, on the same host),
    or None."""
    hops = other.path.get("hops") or []
    if not any(h["role"] == "bridge" and h["name"] == bridge for h in hops):
        return None
    name = next((h["name"] for h in hops if h["role"] == "container"), None)
    return next((l for l in other.namespace.links if l.name == name), None)

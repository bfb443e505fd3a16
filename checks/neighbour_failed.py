from . import Check, register
from .context import LOWER_DEVICE_MODES, proxy_arp_on

BAD = ("FAILED", "INCOMPLETE")
# Where a request waits for a next hop nobody answers for (or goes to a MAC nobody has).
GATEWAY_STOPS = [None, "container", "host-veth", "bridge"]
LEARNT = {"REACHABLE", "STALE", "DELAY", "PROBE"}


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
    # (Not at the uplink: a macvlan child's frames to a dead gateway MAC leave by its parent,
    # where an old FAILED entry of the host's gateway would be no evidence against what the
    # capture saw leave. The finding stands beside that verdict.)
    # (The replies, when the host's entry for the container names another MAC: flooded to
    # every port and dropped by the container as not its own.)
    blocks_at = (("request", None),
                 ("request", "container"),
                 ("request", "host-veth"),
                 ("request", "bridge"),
                 ("request", "destination"),
                 ("reply", "bridge"),
                 ("reply", "host-veth"),
                 ("reply", "container"),
                 # (only for a static entry of the uplink gateway that ARP contradicts)
                 ("request", "uplink"))
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
        upstream = self._uplink_gateway_pinned(ctx, uplink_hop)
        if upstream is not None:
            yield upstream
            return
        pinned = self._container_mac_pinned(ctx)
        if pinned is not None:
            yield pinned
        peer = self._peer_mac_wrong(ctx)
        if peer is not None:
            yield peer
            return
        for snap, label, address, dev, fix, what, there in next_hops:
            n = _bad_entry(snap, address, dev)
            answered = snap.answered(address, dev) if n else None
            held = _tentative_holder(ctx, address)
            if held is not None:
                # Not silent: still checking that nobody else has it (about a second).
                state = f"is {'/'.join(n.state)} in the neighbour table" if n else \
                    "has no neighbour entry yet"
                yield self.finding(
                    ctx, f"{label}: {what} {address} on {dev} {state}: {held.name}'s address "
                         f"{address} is still tentative (duplicate address detection, about "
                         f"a second after it was added), and answers no neighbour "
                         f"solicitation until that is done; trace again in a moment",
                    {"netns": label, "neighbour": address, "dev": dev,
                     "state": list(n.state) if n else [],
                     "holder": held.name, "flags": ["tentative"], "direction": "request",
                     "stops_at": GATEWAY_STOPS},
                    "{in_host}ip -6 addr show dev " + held.name + " tentative", verify=True,
                    next_hop=address, neighbour_dev=dev, in_neighbour_ns=there)
            elif answered:
                # (Read again after netdoctor's question was answered: the kernel did not
                # take the answer.)
                yield self.finding(
                    ctx, f"{label}: {what} {address} on {dev} stays {'/'.join(n.state)} in "
                         f"the neighbour table, though it answers ARP (netdoctor's request "
                         f"was answered from {', '.join(answered)}): this namespace does not "
                         f"take the answers (an arp table of its own, an ARP setting of "
                         f"{dev})",
                    {"netns": label, "neighbour": n.dst, "dev": n.dev, "state": list(n.state),
                     "answered": answered, "direction": "request", "stops_at": GATEWAY_STOPS},
                    there + "nft list ruleset arp", verify=True, next_hop=address,
                    neighbour_dev=dev, in_neighbour_ns=there)
            elif n:
                yield self.finding(
                    ctx, f"{label}: {what} {address} on {dev} is {'/'.join(n.state)} in the "
                         f"neighbour table: nothing answers ARP for it",
                    {"netns": label, "neighbour": n.dst, "dev": n.dev, "state": list(n.state),
                     "lladdr": n.lladdr, "direction": "request", "stops_at": GATEWAY_STOPS},
                    fix, next_hop=address,
                    neighbour_dev=dev,
                    in_neighbour_ns=there)

    def _gateway_mac_wrong(self, ctx):
        """The container's ARP entry for its gateway names a MAC the gateway does not have
        (a static entry left behind, a recreated bridge, a replaced router): frames go to a
        dead address. The gateway's MAC is its bridge's, or, for a macvlan child whose
        gateway is a router of its parent's segment, the one the host learnt from that
        router on the parent."""
        gw, eth = ctx.gateway, ctx.egress
        if not (gw and eth):
            return None
        known = _gateway_mac(ctx, gw)
        if known is None:
            return None
        mac, holder = known
        n = _cached_otherwise(ctx.namespace, gw, eth.name, mac)
        # Asked and answered: the frames for the gateway that leave by a macvlan parent (the
        # uplink hop) go to a MAC nobody has, which the answer proves.
        asked = holder.startswith("it answered")
        if n is not None:
            return self.finding(
                ctx, f"{ctx.subject}: its gateway {gw} is cached as {n.lladdr} "
                     f"({'/'.join(n.state)}), but {holder} {mac}: frames for the "
                     f"gateway go to an address nobody has",
                {"netns": ctx.vars["container_ns"], "neighbour": gw, "dev": n.dev,
                 "lladdr": n.lladdr, "state": list(n.state), "gateway_mac": mac,
                 "direction": "request",
                 "stops_at": GATEWAY_STOPS + (["uplink"] if asked else [])},
                "{in_container}ip neigh del {gateway} dev {eth}", next_hop=gw,
                neighbour_dev=eth.name, in_neighbour_ns=ctx.vars["in_container"])
        return None

    def _uplink_gateway_pinned(self, ctx, hop):
        """The host's static entry for its uplink gateway names a MAC, and the gateway
        answered netdoctor's one ARP request from another: everything the host routes out
        goes to a MAC nobody there has (a router replaced, a static entry from an old
        setup). The kernel never asks again for a static entry's address."""
        h = ctx.host_ns
        if h is None or not hop or not hop.get("via"):
            return None
        gw, dev = hop["via"], hop["name"]
        answered = h.answered(gw, dev)
        if not answered:
            return None
        for n in h.neighbours_of(gw, dev):
            if n.lladdr and {"PERMANENT", "NOARP"} & set(n.state) \
                    and n.lladdr.lower() not in answered:
                return self.finding(
                    ctx, f"{ctx.vars['host_ns']} holds a {'/'.join(n.state)} neighbour entry "
                         f"for its uplink gateway {gw} on {dev} naming {n.lladdr}, but {gw} "
                         f"answers {'neighbour discovery' if ':' in gw else 'ARP'} from "
                         f"{', '.join(answered)}: the host sends everything "
                         f"it routes out to a MAC the gateway does not have, and never asks "
                         f"again",
                    {"netns": ctx.vars["host_ns"], "neighbour": gw, "dev": dev,
                     "lladdr": n.lladdr, "state": list(n.state), "answered": answered,
                     "direction": "request", "stops_at": ["uplink"]},
                    "{in_host}ip neigh del " + f"{gw} dev {dev}", next_hop=gw,
                    neighbour_dev=dev, in_neighbour_ns=ctx.vars["in_host"])
        return None

    def _peer_mac_wrong(self, ctx):
        """On a path to another container on the same segment: the container's entry for
        it names a MAC its interface does not have (a permanent entry left behind, a
        recreated container with the old address). Frames go to that MAC, which the bridge
        floods, and the destination drops them as not its own."""
        eth, hop, dest = ctx.egress, ctx.hop("destination"), ctx.destination
        mac = (hop or {}).get("mac")
        if eth is None or not mac or not dest:
            return None
        n = _cached_otherwise(ctx.namespace, dest, eth.name, mac)
        if n is None:
            return None
        return self.finding(
            ctx, f"{ctx.subject}: its entry for {dest} names {n.lladdr} "
                 f"({'/'.join(n.state)}), but {dest}'s {hop.get('name')} in "
                 f"{hop.get('netns')} is {mac}: frames for it go to an address it does not "
                 f"have (the bridge floods them, and it drops them as not its own)",
            {"netns": ctx.vars["container_ns"], "neighbour": dest, "dev": n.dev,
             "lladdr": n.lladdr, "state": list(n.state), "destination_mac": mac,
             "direction": "request", "stops_at": ["destination", "bridge"]},
            "{in_container}ip neigh del " + dest + " dev {eth}", next_hop=dest,
            neighbour_dev=eth.name, in_neighbour_ns=ctx.vars["in_container"])

    def _container_mac_pinned(self, ctx):
        """The host holds a permanent (or NOARP) entry for the container's address on the
        bridge that names another MAC than the container's interface has (set by hand, left
        from an earlier container with that address): the replies go to that MAC, which
        the bridge floods to every port, and the container drops them as not its own. A
        learnt entry is asked again when it goes stale; a permanent one never is."""
        eth, br, h = ctx.egress, ctx.bridge or ctx.host_veth, ctx.host_ns
        if eth is None or br is None or h is None or not eth.mac or not ctx.address:
            return None
        # Asked, and only the container answered: an entry that names another MAC still is
        # left from an earlier holder of the address (the kernel kept it: it was confirmed
        # a moment before), not a second holder (duplicate-address).
        answered = [m.lower() for m in h.answered(ctx.address, br.name) or ()]
        left = answered == [eth.mac.lower()]
        for n in h.neighbours_of(ctx.address, br.name):
            if not n.lladdr or n.lladdr.lower() == eth.mac.lower():
                continue
            ev = {"netns": ctx.vars["host_ns"], "neighbour": ctx.address, "dev": br.name,
                  "lladdr": n.lladdr, "state": list(n.state), "container_mac": eth.mac}
            if {"PERMANENT", "NOARP"} & set(n.state):
                told = (f"{ctx.vars['host_ns']} holds a {'/'.join(n.state)} neighbour entry "
                        f"for {ctx.address} on {br.name} naming {n.lladdr}, but "
                        f"{ctx.subject}'s {eth.name} is {eth.mac}: the host sends everything "
                        f"for the container to a MAC it does not have (the container drops "
                        f"it as not its own), and never asks again")
            elif left:
                told = (f"{ctx.vars['host_ns']}'s neighbour entry for {ctx.address} on "
                        f"{br.name} names {n.lladdr} ({'/'.join(n.state)}), but only "
                        f"{ctx.subject}'s {eth.name} ({eth.mac}) answers ARP for it "
                        f"(netdoctor asked): the entry is left from an earlier holder of the "
                        f"address (a container made again with it), and the host sends the "
                        f"container's replies to a MAC nobody has until it asks again")
                ev["answered"] = answered
            else:
                continue
            return self.finding(
                ctx, told, dict(ev, direction="reply"),
                "{in_host}ip neigh del " + ctx.address + " dev " + br.name,
                next_hop=ctx.address, neighbour_dev=br.name,
                in_neighbour_ns=ctx.vars["in_host"])
        return None


def _tentative_holder(ctx, address: str):
    """The host's link (the container's bridge or routed veth) whose copy of address, the
    container's next hop, is still tentative (IPv6 duplicate address detection, not failed
    yet), or None."""
    for link in (ctx.network_bridge, ctx.host_veth):
        if link is None:
            continue
        for a in link.addresses:
            if a.local == address and "tentative" in a.flags and "dadfailed" not in a.flags:
                return link
    return None


def _cached_otherwise(ns, address: str, dev: str, mac: str):
    """ns's usable neighbour entry for address on dev when it names another MAC than mac."""
    return next((n for n in ns.neighbours_of(address, dev) if n.lladdr
                 and n.lladdr.lower() != mac.lower() and not set(n.state) & set(BAD)), None)


def _gateway_mac(ctx, gw: str):
    """(MAC, who says so) of the container's gateway, when netdoctor knows it."""
    br = ctx.network_bridge
    if br is not None and br.mac and br.holds(gw):
        return br.mac, f"{br.name} has"
    veth = ctx.host_veth
    if ctx.routed and veth is not None and veth.mac and (veth.holds(gw) or proxy_arp_on(
            ctx.host_ns.sysctls, veth.name)):
        # a routed veth answers for the gateway itself: its own address, or by proxy ARP
        return veth.mac, f"{veth.name}, which answers ARP for it, has"
    eth = ctx.egress
    answered = ctx.namespace.answered(gw, eth.name) if eth is not None else None
    if answered and len(answered) == 1:  # asked, as a static entry is never asked again
        return answered[0], "it answered netdoctor's ARP request from"
    parent = ctx.uplink if ctx.path.get("mode") in LOWER_DEVICE_MODES else None
    if parent is None or ctx.host_ns is None:
        return None
    for n in ctx.host_ns.neighbours:  # learnt from the router itself (not set by hand)
        if n.dst == gw and n.dev == parent.name and n.lladdr and set(n.state) & LEARNT:
            return n.lladdr, f"the host learnt it on {parent.name} as"
    return None

from . import Check, register
from ._routing import route_removal
from .context import lookup


def _forwards(ns, family: str, dev: str) -> bool:
    """Whether a namespace forwards what arrives on dev (the interface's own switch, read
    where the snapshot has it; IPv6 forwards by `all`)."""
    s = ns.sysctls
    if family == "inet6":
        return s.get("net.ipv6.conf.all.forwarding", "0") == "1"
    return s.get(f"net.ipv4.conf.{dev}.forwarding",
                 s.get("net.ipv4.ip_forward", "0")) == "1"


@register
class RouteBackOut(Check):
    """The host routes the container's packets back out of the network they came from"""

    id = "route-back-out"
    severity = "error"
    scope = "host"
    runs_on = "container"
    tags = ("routing", "path")
    blocks_at = (("request", "bridge"), ("request", "host-veth"))
    precedence = 11

    def run(self, ctx):
        if ctx.host is None or ctx.ingress is None or not ctx.destination:
            return
        own = ctx.own_route_lookup
        if own is not None and not own.get("gateway"):
            return  # it sends on its own link: the host is not its router for this
        host_ns = ctx.vars["host_ns"]
        lookups = [l for l in ctx.path.get("route_lookups", ()) if l["netns"] == host_ns]
        if not lookups:
            return
        l = lookups[0]
        via, back = l.get("gateway"), ctx.ingress.name
        if l.get("dev") != back or not via:
            return
        route = lookup(ctx.host_ns.routes, ctx.destination)
        if route is not None and (route.gateway != via or route.dev != back):
            route = None  # not the route the kernel chose (a policy rule decided)
        fix, verify = ("{in_host}" + l["query"], True) if route is None \
            else route_removal("{in_host}", route)
        evidence = {"lookup": l["query"], "dev": back, "gateway": via,
                    "route": route.dst + (f" via {route.gateway}" if route.gateway else "")
                    if route is not None else None, "direction": "request",
                    "stops_at": ["bridge" if ctx.bridge is not None else "host-veth"]}
        said = (f"{host_ns} routes {ctx.destination} via {via} back out of {back}, the "
                f"network {ctx.subject}'s packets came from")
        peer = next((c for c in ctx.snapshot.containers
                     if via in c.namespace.held_addresses), None)
        if peer is None:
            # A router container, a VPN gateway on the same network: it can work, if that
            # address passes the packets on, and not back (netdoctor does not see it).
            yield self.finding(
                ctx, f"{said}: the path goes on only if {via} forwards them on (and not back "
                     f"to this host), which netdoctor cannot see", evidence, fix,
                severity="warning", verify=verify, next_hop=via)
            return
        label = peer.label
        evidence["next_hop_container"] = label
        if peer is ctx.container:
            yield self.finding(
                ctx, f"{said}, to {label}'s own address: they come back to the container that "
                     f"sent them", evidence, fix, verify=verify, next_hop=via)
            return
        dev = next((k.name for k in peer.namespace.links
                    if any(a.local == via for a in k.addresses)), "eth0")
        if not _forwards(peer.namespace, ctx.family, dev):
            key = ("net.ipv6.conf.all.forwarding" if ctx.family == "inet6"
                   else f"net.ipv4.conf.{dev}.forwarding")
            evidence[key] = peer.namespace.sysctls.get(key, "0")
            yield self.finding(
                ctx, f"{said}, to {label}, which does not forward ({key} = "
                     f"{evidence[key]}): it drops what is not addressed to it", evidence, fix,
                verify=verify, next_hop=via)
            return
        theirs = lookup(peer.namespace.routes, ctx.destination)
        if theirs is not None and theirs.gateway \
                and theirs.gateway in ctx.host_ns.held_addresses:
            evidence["next_hop_route"] = f"{theirs.dst} via {theirs.gateway} dev {theirs.dev}"
            yield self.finding(
                ctx, f"{said}, to {label}, whose route {theirs.dst} via {theirs.gateway} sends "
                     f"them back to this host: a routing loop, round which they go until their "
                     f"TTL runs out", evidence, fix, verify=verify, next_hop=via)
            return
        yield self.finding(
            ctx, f"{said}, to {label}, which forwards them on: a detour through another "
                 f"container (the host also tells {ctx.subject} by ICMP redirect to use it "
                 f"directly)", evidence, fix, severity="info", verify=verify, next_hop=via)

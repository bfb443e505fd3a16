import ipaddress

from . import Check, register


@register
class HostNoRoute(Check):
    """The host has no route toward the destination"""

    id = "host-no-route"
    severity = "error"
    scope = "host"
    runs_on = "container"
    tags = ("routing", "path")
    # Bridged, the bridge is where the host routes the packet; with routed veths the host
    # answers ARP for the containers' gateway by proxy only with a route toward it: without
    # one nothing leaves the container (or, the gateway still known, its host veth is last).
    blocks_at = (("request", "bridge"), ("request", None), ("request", "container"),
                 ("request", "host-veth"))
    precedence = 12

    def run(self, ctx):
        if ctx.host is None or not ctx.bridged:
            return
        if ctx.flannel is not None and ctx.destination and ":" not in ctx.destination \
                and ipaddress.ip_address(ctx.destination) in ctx.flannel["network"]:
            return  # a peer's pod subnet: peer-route-missing says what is missing
        host_ns = ctx.vars["host_ns"]
        # Discovery asks the forwarding question first, then (if refused) the plain one:
        # the host has no route when its last answer has no device.
        lookups = [l for l in ctx.path.get("route_lookups", ()) if l["netns"] == host_ns]
        if lookups and not lookups[-1].get("dev"):
            l = lookups[-1]
            yield self.finding(
                ctx, f"{host_ns} has no route to {ctx.destination} ({l.get('error')})",
                {"lookup": l["query"], "kernel_answer": l.get("error"),
                 "default_routes": [r.dst + (f" via {r.gateway}" if r.gateway else "")
                                    for r in ctx.host_ns.default_routes()]},
                "{in_host}ip route add default via <gateway> dev <uplink>")
        elif not lookups and ctx.uplink is None and not ctx.host_ns.default_routes():
            yield self.finding(
                ctx, f"{host_ns} has no default route",
                {"default_routes": []}, "{in_host}ip route add default via <gateway> dev <uplink>")


from . import Check, register
from .context import global_addresses


# Hops past the host's routing decision: a path that reaches one was routed by the host.
ROUTED_ON = ("uplink", "out-bridge", "far-veth", "tunnel", "underlay")


@register
class IpForwardDisabled(Check):
    """The host does not forward packets between interfaces"""

    id = "ip-forward-disabled"
    severity = "error"
    scope = "host"
    tags = ("forwarding", "sysctl", "path")
    # Bridged, the host drops the packet its bridge received; with routed veths (Calico,
    # ptp) it does not even answer ARP for the containers' gateway by proxy (the kernel
    # proxies only where it forwards): nothing leaves the container, or, with the gateway
    # still in its neighbour table, the host veth is the last hop.
    blocks_at = (("request", "bridge"), ("request", None), ("request", "container"),
                 ("request", "host-veth"), ("reply", "uplink"))
    precedence = 10

    def run(self, ctx):
        # Containers whose path the host routes on: toward an address on their own bridge's
        # network the frame is bridged, and forwarding plays no part.
        bridged = [c for c in ctx.containers
                   if c.path.get("mode") in ("bridge", "routed")
                   and any(h["role"] in ROUTED_ON for h in c.path.get("hops") or ())]
        if not bridged:
            return
        sysctls = ctx.namespace.sysctls
        names = sorted(c.target["name"] for c in bridged)
        v4 = sysctls.get("net.ipv4.ip_forward")
        if v4 == "0":
            yield self.finding(
                ctx, f"net.ipv4.ip_forward is 0 in {ctx.subject}: packets from containers "
                     f"{', '.join(names)} are not routed to the uplink",
                {"net.ipv4.ip_forward": v4, "containers": names},
                "{in_host}sysctl -w net.ipv4.ip_forward=1")
        else:
            # Forwarding can also be off for one interface: packets arriving on it are not
            # routed on, whatever net.ipv4.ip_forward says.
            # Both ways: the requests arrive on the bridge (or host veth), their answers on
            # the device the requests left by (the uplink).
            by_device = {}
            for c in bridged:
                hops = {h["role"]: h["name"] for h in c.path.get("hops", ())}
                ingress = hops.get("bridge") or hops.get("host-veth")
                egress = next((hops[r] for r in ROUTED_ON if r in hops), None)
                for device, what in ((ingress, "packets from containers"),
                                     (egress, "the answers to containers")):
                    if device and sysctls.get(f"net.ipv4.conf.{device}.forwarding") == "0":
                        by_device.setdefault((device, what), []).append(c.target["name"])
            for (device, what), names_off in sorted(by_device.items()):
                key = f"net.ipv4.conf.{device}.forwarding"
                yield self.finding(
                    ctx, f"{key} is 0 in {ctx.subject}: {what} "
                         f"{', '.join(sorted(names_off))} arriving on {device} are not routed on",
                    {key: "0", "net.ipv4.ip_forward": v4, "containers": sorted(names_off)},
                    f"{{in_host}}sysctl -w {key}=1", ingress=device)
        with_v6 = [c.target["name"] for c in bridged
                   if any(global_addresses(l, "inet6") for l in c.namespace.links)]
        v6 = sysctls.get("net.ipv6.conf.all.forwarding")
        if with_v6 and v6 == "0":
            yield self.finding(
                ctx, f"net.ipv6.conf.all.forwarding is 0 in {ctx.subject}, but containers "
                     f"{', '.join(sorted(with_v6))} have IPv6 addresses",
                {"net.ipv6.conf.all.forwarding": v6, "containers": sorted(with_v6)},
                "{in_host}sysctl -w net.ipv6.conf.all.forwarding=1", family="IPv6")

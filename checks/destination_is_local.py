import ipaddress

from . import Check, register


@register
class DestinationIsLocal(Check):
    """The container holds the destination's address itself: it answers what it sends there"""

    id = "destination-is-local"
    severity = "error"
    scope = "container"
    tags = ("address", "path")
    # Nothing leaves the container: its kernel delivers the packets to itself.
    blocks_at = (("request", None), ("request", "container"))
    precedence = 2
    structural = True

    def run(self, ctx):
        """A destination among the container's own addresses, on an interface other than
        the one its path leaves by (lo, a dummy: an address added by hand, a leftover of a
        local proxy): the container's kernel answers everything sent there itself, and the
        host of that address elsewhere is never asked. Its own address on the path's
        interface is a trace of itself, no fault."""
        dest = ctx.destination
        if not dest:
            return
        try:
            ip = ipaddress.ip_address(dest)
        except ValueError:
            return
        if ip.is_loopback or ip.is_link_local or ip.is_multicast:
            return
        # The interfaces it sends out of (a route of main names them): an address there is
        # its own on the network, traced to itself.
        out_of = {r.dev for r in ctx.namespace.routes if r.table == "main" and r.dev}
        for link in ctx.namespace.links:
            if link.name in out_of and not link.is_loopback:
                continue
            held = next((a for a in link.addresses if a.local == dest), None)
            if held is None:
                continue
            cmd = "ip -6" if ip.version == 6 else "ip"
            yield self.finding(
                ctx, f"{ctx.subject} holds the destination's address {dest} itself, on "
                     f"{link.name}: everything it sends there is answered inside it and never "
                     f"leaves, and {dest} elsewhere is never asked",
                {"address": f"{dest}/{held.prefixlen}", "device": link.name,
                 "direction": "request"},
                f"{{in_container}}{cmd} addr del {dest}/{held.prefixlen} dev {link.name}",
                device=link.name, address=f"{dest}/{held.prefixlen}")
            return

"""What the overlay checks share (private): the tunnel hop of a container's path, the link
behind it, and the next hop the host sends into it."""


def tunnel_of(ctx):
    """(tunnel Link, next hop address) of the container's path, or (None, None)."""
    hop = ctx.hop("tunnel")
    if hop is None or ctx.host_ns is None:
        return None, None
    link = ctx.host_ns.link(ifindex=hop["ifindex"])
    return link, hop.get("via") or ctx.destination


def up_tunnel_of(ctx):
    """tunnel_of, when the tunnel is up and there is a next hop to send to (a tunnel that is
    down is vxlan-device-down's); (None, None) otherwise."""
    link, nexthop = tunnel_of(ctx)
    if link is None or not link.up or not nexthop:
        return None, None
    return link, nexthop

from . import Check, register
from .context import docker_overlay_intent


@register
class OverlayEndpointMissing(Check):
    """An endpoint of a Docker overlay network on another node, as the engine lists it, is
    not wired here: no neighbour entry for its address, no FDB entry for its MAC, or one that
    sends it to another node than the one it lives on"""

    id = "overlay-endpoint-missing"
    severity = "error"
    scope = "host"
    tags = ("overlay", "vxlan", "docker")

    def run(self, ctx):
        intent = docker_overlay_intent(ctx.host)
        if intent is None:
            return
        ns = ctx.namespace
        tunnels = [t for t in ns.tunnels
                   if not intent["vnis"] or t.tunnel.get("vni") in intent["vnis"]]
        if len(tunnels) != 1:
            return  # Docker gives a network's sandbox one VXLAN device per subnet
        vx = tunnels[0]
        for e in intent["remote"]:
            where = f"{e['ip']} ({e['name']}, on {e['node']})"
            mac = ns.neighbour_mac(e["ip"], vx.name)
            if mac is None:
                yield self.finding(
                    ctx, f"{ctx.vars['host_ns']}: {vx.name} has no neighbour entry for "
                         f"{where}, an endpoint of the overlay network {intent['name']} "
                         f"({intent['source']}): frames for it have no MAC to go to",
                    {"network": intent["name"], "endpoint": e, "tunnel": vx.name,
                     "intent": intent["source"]},
                    "{in_host}ip neigh show dev " + vx.name + "; {in_host}bridge fdb show dev "
                    + vx.name, verify=True, tunnel=vx.name, next_hop=e["ip"], network=intent["name"])
                continue
            sends_to = sorted({f.dst for f in ns.fdb if f.dev == vx.name and f.dst
                               and f.mac.lower() == mac.lower()})
            if e["node"] in sends_to:
                continue
            what = (f"sends its MAC {mac} to {', '.join(sends_to)}, but it lives on "
                    f"{e['node']}" if sends_to else f"has no FDB entry for its MAC {mac}")
            yield self.finding(
                ctx, f"{ctx.vars['host_ns']}: {vx.name} {what} - {where}, an endpoint of the "
                     f"overlay network {intent['name']} ({intent['source']}): the kernel "
                     + ("sends its frames to a node that does not have it" if sends_to else
                        "drops its frames (NO_TX_TARGET)" + (
                            " until the endpoint sends first (the device learns its entry "
                            "from what arrives)" if vx.tunnel.get("learning") == "true"
                            else "")),
                {"network": intent["name"], "endpoint": e, "tunnel": vx.name, "mac": mac,
                 "fdb_sends_to": sends_to, "intent": intent["source"]},
                "{in_host}bridge fdb replace " + mac + " dev " + vx.name + " dst " + e["node"]
                + " self permanent", tunnel=vx.name, next_hop=e["ip"], network=intent["name"], mac=mac)

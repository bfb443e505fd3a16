from . import Check, register
from ._inbound import host_port, port_name, port_vars
from netdoctor.diagnose.reason.inbound import split_to
from netdoctor.diagnose.reason.rules import Packet, evaluate


@register
class HairpinNatBroken(Check):
    """The container cannot reach its own published port through the host's address
    (hairpin NAT): the DNAT sends it back to itself, and the way back is not set up"""

    id = "hairpin-nat-broken"
    # Outside clients are not affected: a warning, for the container's own connections.
    severity = "warning"
    scope = "host"
    runs_on = "container"
    tags = ("inbound", "nat", "bridge")
    precedence = 35
    needs = ("host-rules",)

    def run(self, ctx):
        br, port = ctx.bridge, ctx.host_veth
        if br is None or port is None or not ctx.address or ":" in ctx.address:
            return
        for w in ctx.inbound:
            if not w.host_address or not w.host_port or w.source != "runtime" \
                    or w.family != "ip":
                continue
            # The container's own connection to HOST:PORT, as it arrives from its bridge.
            packet = Packet(src=ctx.address, dst=w.host_address, iif=br.name, oif=None,
                            proto=w.proto, dport=w.host_port, sport=ctx.ephemeral_ports)
            nat = evaluate(ctx.host.ruleset, "prerouting", packet, type_="nat")
            if nat.verdict != "dnat" or nat.rule is None or not nat.rule.to:
                continue  # not DNATed from the bridge: a userland proxy serves it, or nothing
            addr, to_port = split_to(nat.rule.to)
            if addr != ctx.address:
                continue
            if to_port and w.container_port and to_port != w.container_port:
                continue  # a DNAT to another port than the published one: publish-dnat-missing's
            why = []
            back = Packet(src=ctx.address, dst=ctx.address, iif=br.name, oif=br.name,
                          proto=w.proto, dport=to_port or w.container_port,
                          sport=ctx.ephemeral_ports)
            masq = evaluate(ctx.host.ruleset, "postrouting", back, type_="nat")
            if masq.verdict not in ("masquerade", "snat"):
                why.append(f"no MASQUERADE for {ctx.address} -> {ctx.address} in nat "
                           f"POSTROUTING, so the container would get its own address as the "
                           f"source and answer itself")
            bridged = ctx.host.namespace.sysctls.get("net.bridge.bridge-nf-call-iptables")
            if port.hairpin is False and bridged == "1":
                why.append(f"hairpin_mode is off on {port.name}: with br_netfilter the DNATed "
                           f"frame is bridged back out of the port it came in by, which the "
                           f"bridge refuses")
            if not why:
                continue
            fixes = []
            if port.hairpin is False and bridged == "1":
                fixes.append(f"{{in_host}}ip link set {port.name} type bridge_slave hairpin on")
            if masq.verdict not in ("masquerade", "snat"):
                fixes.append(f"{{in_host}}iptables -t nat -I POSTROUTING -s {ctx.address} -d "
                             f"{ctx.address} -p {w.proto} --dport {to_port or w.container_port}"
                             f" -j MASQUERADE")
            yield self.finding(
                ctx, f"{ctx.subject} cannot reach its own {port_name(w)} through "
                     f"{host_port(w.host_address, w.host_port)} ({nat.describe()} sends it back to "
                     f"itself): {'; and '.join(why)}",
                {"dnat": nat.describe(), "hairpin": port.hairpin, "br_netfilter": bridged,
                 "masquerade": masq.describe()}, " && ".join(fixes),
                device=port.name, rule=nat.describe(), **port_vars(w))

from dataclasses import replace

from . import Check, register
from ._rules import (PAST, PLURAL, delete_rule, docker_icc, docker_internal, docker_isolation,
                     flow_name, iptables_for, list_chain, rule_evidence,
                     translated_to, ufw_decides)
from .context import EPHEMERAL_PORTS, global_addresses
from netdoctor.diagnose.reason.rules import Packet, evaluate


def docker_network(bridge):
    """The Docker network a bridge device is, as `docker network connect` takes it: the
    default network's docker0 is "bridge", a user-defined network's br-<id> its id."""
    if bridge == "docker0":
        return "bridge"
    if bridge and bridge.startswith("br-") and len(bridge) > 3:
        return bridge[3:]
    return None


# The hooks a forwarded packet crosses, in order: their filter-type chains (iptables' raw and
# mangle tables in PREROUTING and POSTROUTING, filter and mangle in FORWARD; nft's own).
HOOKS = ("prerouting", "forward", "postrouting")
# A bridged container's frames meet the bridge family's hooks first (nftables' bridge tables,
# ebtables-nft): on their way in from its port up to the host, on the way out to it.
BRIDGE_HOOKS = {"request": ("prerouting", "input"), "reply": ("output", "postrouting")}
# (direction, hook) -> the hops where a drop there leaves the packet last seen. A device's
# ingress hook (nft netdev, inet ingress) runs after captures have seen the frame on that
# device, its egress hook before.
STOPS_AT = {("request", "bridge prerouting"): ["host-veth"],
            ("request", "bridge input"): ["host-veth"],
            ("reply", "bridge output"): ["bridge"], ("reply", "bridge postrouting"): ["bridge"],
            ("request", "prerouting"): ["host-veth", "bridge"],
            ("request", "forward"): ["bridge"], ("request", "postrouting"): ["bridge"],
            ("reply", "prerouting"): ["uplink"], ("reply", "forward"): ["uplink"],
            ("reply", "postrouting"): ["uplink"],
            ("request", "ingress host-veth"): ["host-veth"],
            ("request", "ingress bridge"): ["bridge"],
            ("request", "egress uplink"): ["host-veth", "bridge"],
            ("reply", "ingress uplink"): ["uplink"],
            ("reply", "egress bridge"): ["uplink"],
            ("reply", "egress host-veth"): ["bridge", "uplink"]}


def _steps(ctx, direction: str) -> list:
    """The hooks the packet crosses in the host, in order: (hook, family, device, role of
    the device): the IP hooks, the bridge family's on a bridged container's port, and the
    ingress and egress hooks of each device (nft netdev). direction: "request" (out from
    the container), "reply" or "arriving" (a new connection in to it): in by the uplink."""
    port, bridge, out = ctx.host_veth, ctx.bridge, ctx.host_egress
    on_bridge = bridge is not None and port is not None and port.master == bridge.ifindex
    ip = [(hook, None, None, None) for hook in HOOKS]
    if direction == "request":
        steps = [("ingress", "netdev", port, "host-veth")]
        if on_bridge:
            steps += [(hook, "bridge", None, None) for hook in BRIDGE_HOOKS[direction]]
            steps.append(("ingress", "netdev", bridge, "bridge"))
        return steps + ip + [("egress", "netdev", out, "uplink")]
    steps = [("ingress", "netdev", out, "uplink")] + ip
    if on_bridge:
        steps.append(("egress", "netdev", bridge, "bridge"))
        steps += [(hook, "bridge", None, None) for hook in BRIDGE_HOOKS["reply"]]
    return steps + [("egress", "netdev", port, "host-veth")]


def _first_drop(ctx, packet, direction: str) -> tuple:
    """(hook, the packet as that hook meets it, outcome) of the first hook that drops the
    packet; else FORWARD's outcome (with what it could not judge)."""
    forward = None
    port = ctx.host_veth
    for hook, family, device, role in _steps(ctx, direction):
        if family == "netdev":
            if device is None or role == "uplink" and device == ctx.ingress:
                continue  # (bridged from port to port: no uplink)
            seen = _as_met(ctx, packet, direction, "after" if hook == "egress"
                           else "prerouting")
            if seen is None:
                continue
            seen = replace(seen, iif=device.name, oif=None) if hook == "ingress" else \
                replace(seen, iif=None, oif=device.name)
            out = evaluate(ctx.host.ruleset, hook, seen, family="netdev", device=device.name)
            name = f"{hook} {role}"
        elif family == "bridge":
            seen = replace(packet, iif=port.name, oif=None) if direction == "request" else \
                replace(packet, iif=None, oif=port.name)
            out = evaluate(ctx.host.ruleset, hook, seen, family="bridge")
            name = f"bridge {hook}"
        else:
            seen = _as_met(ctx, packet, direction, hook)
            if seen is None:
                continue
            out = evaluate(ctx.host.ruleset, hook, seen)
            name = hook
            if hook == "forward":
                forward = (hook, seen, out)
        if out.verdict in ("drop", "reject"):
            return name, seen, out
    return forward


def _hook_words(hook: str, packet) -> str:
    """How a message names the hook: FORWARD; the ingress hook of veth1 (nft netdev)."""
    words = hook.split()
    if words[0] in ("ingress", "egress"):
        return f"the {words[0]} hook of {packet.iif or packet.oif}"
    return hook.upper()


def _as_met(ctx, packet, direction: str, hook: str):
    """The packet as the hook meets it: before routing it has no way out yet; an answer
    arriving before its NAT is undone is still addressed to the address the request was
    translated to, and a request leaving after its NAT (a device's egress hook: "after")
    comes from it (None when that address is not known)."""
    if hook == "after" and direction == "request":
        to = _translated_source(ctx)
        return packet if to is None else replace(packet, src=to) if to else None
    if hook != "prerouting":
        return packet
    packet = replace(packet, oif=None)
    if direction != "reply":
        return packet
    to = _translated_source(ctx)
    return packet if to is None else replace(packet, dst=to) if to else None


def _translated_source(ctx):
    """The address nat POSTROUTING gives the container's request ("" when it is not known),
    or None when its source is not translated."""
    walked = ctx.source_nat
    if walked is None or walked[1].verdict not in ("masquerade", "snat"):
        return None
    out = walked[1]
    if out.verdict == "snat":
        span = translated_to(out.rule.to) if out.rule else None
        return str(span[0]) if span else ""
    return next((a.local for a in global_addresses(ctx.host_egress, ctx.family)), "")


def _fix(outcome, packet, direction: str = "request", hook: str = "forward") -> tuple:
    """(command, verify): the change that fixes the drop, or only a command that shows it.
    A policy's drop of the requests is lifted for what the container's bridge sends, of
    the replies for the answers to its connections (as Docker's own rules do). A DROP
    policy before routing or after it (raw, mangle) drops every packet of the host, its own
    included: only shown, as whatever it was meant for is not known."""
    if outcome.rule is None and (hook != "forward" or outcome.chain.family == "bridge"):
        return "{in_host}" + list_chain(outcome.chain), True
    icc = docker_icc(outcome)
    if icc:
        # The network's own setting, which Docker writes again: shown, not deleted.
        network = docker_network(icc)
        return ("docker network inspect -f '{{json .Options}}' " + network if network
                else "{in_host}" + list_chain(outcome.chain)), True
    if docker_isolation(outcome):
        # Docker puts the rule back on its next start: the fix is to share a network.
        if docker_internal(outcome):
            return "docker network connect bridge {container_name}", False
        network = docker_network(packet.oif)
        if network is not None:
            return f"docker network connect {network} {{container_name}}", False
        return "docker network ls; docker inspect {container_name}", True
    if direction == "request" and ufw_decides(outcome):
        # ufw's 'deny routed': a route rule of its own lasts (ufw rewrites its chains).
        out = f" out on {packet.oif}" if packet.oif else ""
        return f"{{in_host}}ufw route allow in on {{ingress}}{out}", False
    if outcome.rule is None:
        c = outcome.chain
        if c.backend == "nft":
            match = "iifname {ingress}" if direction == "request" else \
                "oifname {ingress} ct state established,related"
            return f"{{in_host}}nft add rule {c.family} {c.table} {c.name} {match} accept", False
        match = "-i {ingress}" if direction == "request" else \
            "-o {ingress} -m conntrack --ctstate RELATED,ESTABLISHED"
        return f"{{in_host}}{iptables_for(c)} -I {c.name} {match} -j ACCEPT", False
    return delete_rule(outcome.rule, "{in_host}"), False


def _fix_arriving(outcome, packet, hook: str) -> tuple:
    """(command, verify) for a new connection dropped on its way in to the container: the
    rule's deletion (or what Docker's isolation asks), else what comes in by that device
    for the container's port let through ahead of the policy."""
    if outcome.rule is not None or hook != "forward" or outcome.chain.family == "bridge":
        return _fix(outcome, packet, "reply", hook)
    c = outcome.chain
    if c.backend == "nft":
        return (f"{{in_host}}nft insert rule {c.family} {c.table} {c.name} iifname "
                f"{packet.iif} oifname {packet.oif} accept"), False
    return (f"{{in_host}}{iptables_for(c)} -I {c.name} -i {packet.iif} -o {packet.oif} "
            f"-j ACCEPT"), False


@register
class ForwardDropped(Check):
    """The host's forwarding firewall drops the container's traffic"""

    id = "forward-dropped"
    severity = "error"
    scope = "host"
    runs_on = "container"
    tags = ("netfilter", "path")
    # (A request dropped in PREROUTING by br_netfilter's pass is last seen on its port.)
    blocks_at = (("request", "host-veth"), ("request", "bridge"), ("reply", "uplink"),
                 ("reply", "bridge"))
    precedence = 14
    needs = ("host-rules",)

    def for_arriving(self, ctx, src: str, proto: str, port):
        """As a trace's destination on a far host: the request from src (a new connection)
        on its way in, by the host's way out (its tunnel, its uplink), to the container."""
        if ctx.host is None or not ctx.bridged or not (ctx.address and ctx.ingress
                                                       and ctx.host_egress) \
                or ctx.host_egress == ctx.ingress:
            return None
        ports = proto in ("tcp", "udp")
        packet = Packet(src=src, dst=ctx.address, iif=ctx.host_egress.name,
                        oif=ctx.ingress.name, proto=proto, dport=port,
                        sport=EPHEMERAL_PORTS if ports else None,
                        family="ip6" if ":" in ctx.address else "ip")
        found = _first_drop(ctx, packet, "arriving")
        if found is None or found[2].verdict not in ("drop", "reject"):
            return None
        hook, seen, out = found
        fix, verify = _fix_arriving(out, seen, hook)
        # Its answer goes back out the same way, established: where the same policy drops
        # it too, the fix lets it out as well.
        back = replace(packet, src=packet.dst, dst=packet.src, iif=packet.oif, oif=packet.iif,
                       sport=packet.dport, dport=packet.sport, ctstate="established")
        answered = _first_drop(ctx, back, "request")
        if not verify and out.rule is None and answered is not None \
                and answered[2].verdict in ("drop", "reject") and answered[2].rule is None \
                and answered[2].chain == out.chain:
            c = out.chain
            fix += ("; " + f"{{in_host}}nft insert rule {c.family} {c.table} {c.name} iifname "
                    f"{back.iif} oifname {back.oif} ct state established,related accept"
                    if c.backend == "nft" else
                    f"; {{in_host}}{iptables_for(c)} -I {c.name} -i {back.iif} -o {back.oif} "
                    f"-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT")
        ev = rule_evidence(out)
        ev.update({"direction": "request", "flow": flow_name(proto, port), "hook": hook,
                   "packet": f"{seen.src} -> {seen.dst}" + (f" in {seen.iif}" if seen.iif
                                                           else "")
                   + (f" out {seen.oif}" if seen.oif else "") + " (new)",
                   "stops_at": STOPS_AT.get(("reply", hook), [])})
        return self.finding(
            ctx, f"the request from {src} to {ctx.subject} ({flow_name(proto, port)}, arriving "
                 f"by {ctx.host_egress.name}) is {PAST[out.verdict]} "
                 f"{'by policy' if out.by_policy else 'by a rule'} in "
                 f"{_hook_words(hook, seen)}: {out.describe()}",
            ev, fix, verify=verify, rule=out.describe(), direction="request")

    def run(self, ctx):
        if ctx.host is None or not ctx.bridged:
            return
        if ctx.host_egress is not None and ctx.host_egress == ctx.ingress and \
                ctx.host_ns.sysctls.get("net.bridge.bridge-nf-call-iptables") != "1":
            return  # bridged from port to port: FORWARD sees it only through br_netfilter
        for direction, make in (("request", ctx.request), ("reply", ctx.reply)):
            uncertain = []
            for proto, port in ctx.probe_flows:
                packet = make(proto, port)
                if packet is None:
                    return
                hook, packet, out = _first_drop(ctx, packet, direction)
                if out.verdict in ("drop", "reject"):
                    how = "by policy" if out.by_policy else "by a rule"
                    if docker_isolation(out):
                        how = "by Docker's network isolation" + (
                            " (the network is internal: nothing outside its subnet)"
                            if docker_internal(out) else "")
                    elif icc := docker_icc(out):
                        how = (f"by Docker's inter-container isolation on {icc} "
                               f"(icc off: its containers are kept from each other)")
                    ev = rule_evidence(out)
                    ev.update({"direction": direction, "flow": flow_name(proto, port),
                               "packet": f"{packet.src} -> {packet.dst}" + (
                                   f" in {packet.iif}" if packet.iif else "") + (
                                   f" out {packet.oif}" if packet.oif else "") + (
                                   " (established)" if direction == "reply" else ""),
                               "hook": hook, "stops_at": STOPS_AT[direction, hook]})
                    fix, verify = _fix(out, packet, direction, hook)
                    yield self.finding(
                        ctx, f"{PLURAL[direction]} of {ctx.subject} ({flow_name(proto, port)}, "
                             f"{packet.src} -> {packet.dst}) are {PAST[out.verdict]} {how} in "
                             f"{_hook_words(hook, packet)}: {out.describe()}",
                        ev, fix, verify=verify, rule=out.describe(), direction=direction)
                    return
                uncertain.extend(out.uncertain)
            if uncertain:
                r = uncertain[0]
                why = ("a rule hands them to a user-space program (queue), which decides"
                       if r.verdict == "queue" else
                       "a rule whose matches netdoctor cannot evaluate")
                yield self.finding(
                    ctx, f"{PLURAL[direction]} of {ctx.subject} may be dropped in FORWARD by "
                         f"{why}: {r.where}: {r.text}",
                    {"direction": direction, "rule": r.text, "where": r.where,
                     "packets": r.packets},
                    f"{{in_host}}iptables-save -c | grep -n -- '{r.chain}'", severity="warning",
                    verify=True, rule=r.where,
                    # what a trace's fix is when the rule's counter says it dropped them
                    deletion=delete_rule(r, ctx.vars.get("in_host", "")))

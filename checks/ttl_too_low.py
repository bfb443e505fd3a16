from dataclasses import replace

from netdoctor.diagnose.reason.rules import Packet, evaluate

from . import Check, register
from ._rules import delete_rule
from .context import ns_label

KERNEL_DEFAULT = 64  # what a namespace's sockets start with unless something changed it


def routers_on_path(path: dict) -> list:
    """(netns that sends to it, router address) for every router the path's route lookups
    know of, in order: each namespace's last lookup that answered with a gateway. Routers
    beyond the last one known (the internet's) are not counted."""
    last = {}
    for lookup in path.get("route_lookups", ()):
        last[lookup["netns"]] = lookup  # a namespace's later lookup is the one that held
    return [(ns, l["gateway"]) for ns, l in last.items() if l.get("dev") and l.get("gateway")]


def _edits(ruleset, hooks, packet) -> list:
    """The rules that change the TTL of packet on its way through hooks, in order."""
    if ruleset is None or packet is None or not ruleset.changes_ttl:
        return []
    out = []
    for hook in hooks:
        walked = evaluate(ruleset, hook, packet)
        out += walked.ttl_edits
        if walked.verdict in ("drop", "reject"):
            break  # dropped: what it would have become no longer matters
    return out


@register
class TtlTooLow(Check):
    """The container's packets run out of TTL (hop limit) before they reach the destination"""

    id = "ttl-too-low"
    severity = "error"
    scope = "container"
    tags = ("routing", "sysctl", "rules", "path")
    # Where the router whose turn it is sits: the host (its veth or bridge), or beyond it.
    blocks_at = (("request", "container"), ("request", "host-veth"), ("request", "bridge"),
                 ("request", "uplink"), ("request", "out-bridge"), ("request", "far-veth"),
                 ("request", "tunnel"))
    precedence = 9

    def run(self, ctx):
        eth = ctx.egress
        if eth is None or not ctx.destination or not ctx.address:
            return
        if ctx.family == "inet6":
            key, what = f"net.ipv6.conf.{eth.name.replace('.', '/')}.hop_limit", "hop limit"
        else:
            key, what = "net.ipv4.ip_default_ttl", "TTL"
        value = ctx.namespace.sysctls.get(key)
        try:
            start = int(value)
        except (TypeError, ValueError):
            start, value = KERNEL_DEFAULT, None
        routers = routers_on_path(ctx.path)
        if not routers:
            return
        mine = ns_label(ctx.namespace.netns)
        roles = [h["role"] for h in ctx.path.get("hops", ())]
        through_host = ctx.host is not None and routers[0][0] == mine \
            and ("host-veth" in roles or "bridge" in roles)
        family = "ip6" if ctx.family == "inet6" else "ip"
        # The container's own rules first (OUTPUT, POSTROUTING), then the host's around its
        # forwarding: PREROUTING before the router's check, FORWARD and POSTROUTING after.
        sent = Packet(src=ctx.address, dst=ctx.destination, iif=None, oif=eth.name,
                      family=family)
        ttl, last = start, None
        for rule in _edits(ctx.container.ruleset, ("output", "postrouting"), sent):
            ttl, last = rule.ttl_after(ttl, family), rule
        request = ctx.request() if through_host else None
        for i, (sender, router) in enumerate(routers):
            before = after = []
            if i == 0 and request is not None:
                before = _edits(ctx.host.ruleset, ("prerouting",), replace(request, oif=None))
                after = _edits(ctx.host.ruleset, ("forward", "postrouting"), request)
            for rule in before:
                ttl, last = rule.ttl_after(ttl, family), rule
            if ttl <= 1:
                yield self._expires(ctx, key, value, what, ttl, routers, i, last, through_host,
                                    roles)
                return
            ttl -= 1
            for rule in after:
                ttl, last = rule.ttl_after(ttl, family), rule

    def _expires(self, ctx, key, value, what, ttl, routers, i, rule, through_host, roles):
        sender, router = routers[i]
        if i == 0 and through_host:
            stops = [r for r in ("host-veth", "bridge") if r in roles]
        elif i == 0:
            stops = ["container"]
        else:
            stops = [r for r in ("uplink", "out-bridge", "far-veth", "tunnel") if r in roles]
        listed = ", ".join(f"{gw} (from {ns})" for ns, gw in routers)
        cause = (f"{rule.where} (`{rule.text}`) leaves it {ttl}" if rule is not None
                 else f"{ctx.subject} sends with a {what} of {ttl} ({key} = {value})")
        message = (f"the {what} of {ctx.subject}'s packets to {ctx.destination} runs out at "
                   f"{router}, router {i + 1} of the {len(routers)} on the way ({listed}): "
                   f"{cause}, and a router forwards only what arrives with more than 1; "
                   f"{router} drops them and answers 'time exceeded'")
        # A router whose own lookup is on the path forwards toward the destination; the last
        # one netdoctor knows of may be the destination's own host (then nothing runs out).
        seen = i < len(routers) - 1
        if not seen:
            message += f", unless {router} is the host of {ctx.destination} itself"
        evidence = {"routers": [gw for _, gw in routers], "expires_at": router,
                    "direction": "request", "stops_at": stops}
        if rule is not None:
            evidence["rule"] = f"{rule.where}: {rule.text}"
            fix = delete_rule(rule, "{in_host}" if self._on_host(ctx, rule)
                              else "{in_container}")
            setting = f"the rule {rule.where}: {rule.text}"
        else:
            evidence[key] = value
            fix = "{in_container}sysctl -w " + f"{key}={KERNEL_DEFAULT}"
            setting = f"{key} = {value}"
        return self.finding(ctx, message, evidence, fix,
                            severity=None if seen else "warning", setting=setting,
                            router=router)

    @staticmethod
    def _on_host(ctx, rule) -> bool:
        ruleset = ctx.container.ruleset
        return ruleset is None or not any(rule in c.rules for c in ruleset.chains)

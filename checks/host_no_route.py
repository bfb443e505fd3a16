import errno
import ipaddress
import os
from typing import Optional

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
            defaults = [r.dst + (f" via {r.gateway}" if r.gateway else "")
                        for r in ctx.host_ns.default_routes(ctx.family)]
            evidence = {"lookup": l["query"], "kernel_answer": l.get("error"),
                        "default_routes": defaults}
            refusing = refusing_route(ctx.host_ns, ctx.destination, l.get("error"))
            if refusing is not None:
                evidence["refusing_route"] = describe(refusing)
                where = f", table {refusing.table}" if refusing.table != "main" else ""
                message = (f"{host_ns} routes {ctx.destination} into {_a(refusing.type)} route "
                           f"({refusing.dst}{where}): the kernel discards what it matches "
                           f"({l.get('error')})")
                if refusing.is_default:  # never a fix that takes a default route away
                    yield self.finding(ctx, message, evidence,
                                       "{in_host}ip route show " + _selector(refusing),
                                       verify=True)
                else:
                    yield self.finding(ctx, message, evidence,
                                       "{in_host}ip route del " + _selector(refusing))
            elif defaults and refusing_rule(ctx, l) is not None:
                rule = refusing_rule(ctx, l)
                evidence["policy_rule"] = rule.text()
                yield self.finding(
                    ctx, f"{host_ns} has no route to {ctx.destination} ({l.get('error')}), "
                         f"though it has a default route: the policy rule `{rule.text()}` "
                         f"refuses it", evidence,
                    "{in_host}" + _ip(rule.family) + " rule del " + rule.selector())
            elif defaults:
                # A default route the lookup did not use (a policy rule, another table):
                # adding one would fail; show what the kernel chose instead.
                yield self.finding(
                    ctx, f"{host_ns} has no route to {ctx.destination} ({l.get('error')}), "
                         f"though it has a default route: a policy rule or another table "
                         f"decides", evidence,
                    "{in_host}ip rule show; {in_host}" + l["query"], verify=True)
            else:
                yield self.finding(
                    ctx, f"{host_ns} has no route to {ctx.destination} ({l.get('error')})",
                    evidence, NO_GATEWAY_KNOWN, verify=True)
        elif lookups and " iif " in lookups[0]["query"] and not lookups[0].get("dev") \
                and _forwarding_on(ctx.host_ns.sysctls, lookups[0]["query"], ctx.family) \
                and _policy_refusal(ctx, lookups[0]):
            # The host routes the destination itself, and refuses to forward the
            # container's packets to it: a policy rule or a route for that source decides.
            l = lookups[0]
            evidence = {"lookup": l["query"], "kernel_answer": l.get("error"),
                        "plain_lookup": lookups[-1]["query"], "plain_answer": lookups[-1]["dev"]}
            refusing = refusing_route(ctx.host_ns, ctx.destination, l.get("error"))
            rule = None if refusing is not None else refusing_rule(ctx, l)
            by = (f"{_a(refusing.type)} route ({describe(refusing)})" if refusing is not None
                  else f"the policy rule `{rule.text()}`" if rule is not None
                  else "a policy rule (ip rule: prohibit, blackhole, unreachable, or a table "
                       "without a route)")
            if refusing is not None:
                evidence["refusing_route"] = describe(refusing)
                leads = rule_to_table(ctx, l, refusing.table)
                if leads is not None:
                    evidence["policy_rule"] = leads.text()
                    by += f", the table the policy rule `{leads.text()}` sends them to"
            message = (f"{host_ns} refuses to forward {ctx.subject}'s packets to "
                       f"{ctx.destination} ({l['query']}: {l.get('error')}), though it routes "
                       f"{ctx.destination} itself: {by} decides for their source")
            if rule is not None:
                evidence["policy_rule"] = rule.text()
                yield self.finding(ctx, message, evidence,
                                   "{in_host}" + _ip(rule.family) + " rule del " + rule.selector())
            else:
                yield self.finding(ctx, message, evidence,
                                   "{in_host}ip rule show; {in_host}" + l["query"], verify=True)
        elif not lookups and ctx.uplink is None and not ctx.host_ns.default_routes():
            yield self.finding(
                ctx, f"{host_ns} has no default route",
                {"default_routes": []}, NO_GATEWAY_KNOWN, verify=True)


# No route at all: the gateway of the uplink's network is the network's (its DHCP lease, its
# configuration), which netdoctor cannot know; the addresses and routes there are, shown.
NO_GATEWAY_KNOWN = "{in_host}ip -br addr show && {in_host}ip route show table main"


# The kernel's answer to a lookup that met a route of each refusing type (its errno's text,
# or the type rtnetlink named when it answered with the route).
REFUSALS = {"blackhole": (os.strerror(errno.EINVAL), "blackhole route"),
            "unreachable": (os.strerror(errno.EHOSTUNREACH), "unreachable route"),
            "prohibit": (os.strerror(errno.EACCES), "prohibit route")}


def _policy_refusal(ctx, lookup: dict) -> bool:
    """A refusal of the forwarding lookup that a policy decision makes: prohibit (EACCES),
    unreachable (EHOSTUNREACH, forwarding being on), a table without a route
    (ENETUNREACH); EINVAL only with a blackhole route or rule to show for it, as rp_filter
    and a martian source refuse with it too (rp-filter-drop's), and EXDEV is rp_filter's."""
    error = lookup.get("error")
    if error == os.strerror(errno.EINVAL):
        return refusing_route(ctx.host_ns, ctx.destination, error) is not None \
            or refusing_rule(ctx, lookup) is not None
    return error in (os.strerror(errno.EACCES), os.strerror(errno.EHOSTUNREACH),
                     os.strerror(errno.ENETUNREACH))


def _ip(family: str) -> str:
    return "ip -6" if family == "inet6" else "ip"


def refusing_rule(ctx, lookup: dict):
    """The policy rule that refuses the looked-up packet as the kernel answered (blackhole:
    EINVAL, unreachable: EHOSTUNREACH, prohibit: EACCES): the first, by priority, whose
    selectors the packet meets (its source, destination and incoming interface, as the
    lookup gives them; no mark). None when the rules were not read or none does."""
    kinds = [k for k, answers in REFUSALS.items() if lookup.get("error") in answers]
    for rule in _rules_met(ctx, lookup):
        if rule.action in REFUSALS:
            return rule if rule.action in kinds else None
    return None


def _a(word: str) -> str:
    return ("an " if word[:1] in "aeiou" else "a ") + word


def rule_to_table(ctx, lookup: dict, table: str):
    """The first policy rule the looked-up packet meets that sends it to table (not main):
    how a refusing route of another table came to decide."""
    if table == "main":
        return None
    return next((r for r in _rules_met(ctx, lookup) if r.action == "lookup"
                 and r.table == table), None)


def _rules_met(ctx, lookup: dict) -> list:
    """The policy rules, by priority, whose selectors the looked-up packet meets."""
    rules = (ctx.host.policy_rules if ctx.host is not None else None) or ()
    words = lookup.get("query", "").split()
    src = words[words.index("from") + 1] if "from" in words[:-1] else None
    iif = words[words.index("iif") + 1] if "iif" in words[:-1] else None
    try:
        dst = ipaddress.ip_address(ctx.destination)
        source = ipaddress.ip_address(src) if src else None
    except ValueError:
        return []
    family = "inet6" if dst.version == 6 else "inet"
    return [r for r in sorted((r for r in rules if r.family == family),
                              key=lambda r: r.priority) if _meets(r, source, dst, iif)]


def _meets(rule, source, dst, iif) -> bool:
    """Whether a packet from source (None: the host's own) to dst that came in by iif meets
    the rule's selectors. A rule with a selector netdoctor does not match packets on (a
    mark, tos, ports, an outgoing interface) is not taken to match."""
    if rule.fwmark or rule.oif or rule.other:
        return False

    def inside(address, prefix) -> bool:
        if prefix is None:
            return True
        if address is None:
            return False
        try:
            return address in ipaddress.ip_network(prefix, strict=False)
        except ValueError:
            return False

    met = inside(source, rule.src) and inside(dst, rule.dst) and \
        (rule.iif is None or rule.iif == iif)
    return met != rule.invert


def _forwarding_on(sysctls: dict, query: str, family: str) -> bool:
    """Forwarding of the family is on (IPv4: for the lookup's incoming interface too): a
    refusal with it off is ip-forward-disabled's."""
    if family == "inet6":
        return sysctls.get("net.ipv6.conf.all.forwarding") == "1"
    iif = query.split(" iif ", 1)[1].split()[0]
    return sysctls.get("net.ipv4.ip_forward") == "1" \
        and sysctls.get(f"net.ipv4.conf.{iif}.forwarding") != "0"


def refusing_route(ns, destination: str, answer: Optional[str]):
    """The most specific route of a refusing type (blackhole, unreachable, prohibit) that
    covers destination and agrees with the kernel's answer; None when there is none."""
    try:
        address = ipaddress.ip_address(destination)
    except ValueError:
        return None
    family = "inet6" if address.version == 6 else "inet"
    kinds = [k for k, answers in REFUSALS.items() if answer in answers]
    if not kinds:
        return None
    candidates = [r for r in ns.refusing_routes if r.type in kinds and r.family == family
                  and address in r.network]
    if not candidates:
        return None
    # longest prefix first; among equals, the main table (the one most hosts consult)
    return max(candidates, key=lambda r: (r.network.prefixlen, r.table == "main", -r.metric))


def _selector(route) -> str:
    """The route as `ip route` selects it: type, prefix, table and metric when not default."""
    words = [route.type, route.dst]
    if route.table != "main":
        words += ["table", route.table]
    if route.metric:
        words += ["metric", str(route.metric)]
    return " ".join(words)


def describe(route) -> str:
    return _selector(route) + ("" if route.table != "main" else " (table main)")

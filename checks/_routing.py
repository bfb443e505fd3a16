"""What a namespace's kernel refuses routes with, shared by the routing checks: refusing
routes (blackhole, unreachable, prohibit) and the policy rules (`ip rule`) a looked-up
packet meets, read from a recorded lookup (`ip route get DST [from SRC iif DEV]`)."""

import errno
import ipaddress
import os
from typing import Optional


# The kernel's answer to a lookup that met a route of each refusing type (its errno's text,
# or the type rtnetlink named when it answered with the route).
REFUSALS = {"blackhole": (os.strerror(errno.EINVAL), "blackhole route"),
            "unreachable": (os.strerror(errno.EHOSTUNREACH), "unreachable route"),
            "prohibit": (os.strerror(errno.EACCES), "prohibit route")}


# The kernel's answer to a lookup a policy rule of each refusing action stopped (fib rules
# answer ENETUNREACH for unreachable, where an unreachable route answers EHOSTUNREACH).
RULE_REFUSALS = {"blackhole": os.strerror(errno.EINVAL),
                 "unreachable": os.strerror(errno.ENETUNREACH),
                 "prohibit": os.strerror(errno.EACCES)}


def refusing_rule(rules, lookup: dict, destination: str):
    """The policy rule that refuses the looked-up packet as the kernel answered (blackhole:
    EINVAL, unreachable: ENETUNREACH, prohibit: EACCES): the first, by priority, whose
    selectors the packet meets (its source, destination and incoming interface, as the
    lookup gives them; no mark) among rules (None: not read). None when none does."""
    for rule in rules_met(rules, lookup, destination):
        if rule.action in RULE_REFUSALS:
            return rule if RULE_REFUSALS[rule.action] == lookup.get("error") else None
    return None


def a_(word: str) -> str:
    return ("an " if word[:1] in "aeiou" else "a ") + word


def rule_to_table(rules, lookup: dict, destination: str, table: str):
    """The first policy rule the looked-up packet meets that sends it to table (not main):
    how a refusing route of another table came to decide."""
    if table == "main":
        return None
    return next((r for r in rules_met(rules, lookup, destination) if r.action == "lookup"
                 and r.table == table), None)


def rules_met(rules, lookup: dict, destination: str) -> list:
    """The policy rules, by priority, whose selectors the looked-up packet meets."""
    rules = rules or ()
    words = lookup.get("query", "").split()
    src = words[words.index("from") + 1] if "from" in words[:-1] else None
    iif = words[words.index("iif") + 1] if "iif" in words[:-1] else None
    try:
        dst = ipaddress.ip_address(destination)
        source = ipaddress.ip_address(src) if src else None
    except ValueError:
        return []
    return _by_priority_met(rules, source, dst, iif)


def _by_priority_met(rules, source, dst, iif) -> list:
    """The rules of dst's family, by priority, whose selectors a packet from source (an
    address, or None) to dst (an address) that came in by iif meets."""
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


def selector(route) -> str:
    """The route as `ip route` selects it: type, prefix, table and metric when not default."""
    words = [route.type, route.dst]
    if route.table != "main":
        words += ["table", route.table]
    if route.metric:
        words += ["metric", str(route.metric)]
    return " ".join(words)


def route_removal(where: str, route) -> tuple:
    """(command, verify) for a refusing route, run `where`: its deletion, or, for a default
    route, only showing it (never a fix that takes a default route away)."""
    if route.is_default:
        return where + "ip route show " + selector(route), True
    return where + "ip route del " + selector(route), False


def describe(route) -> str:
    return selector(route) + ("" if route.table != "main" else " (table main)")


def forwarding_on(sysctls: dict, query: str, family: str) -> bool:
    """Forwarding of the family is on (IPv4: for the lookup's incoming interface too): a
    refusal with it off is ip-forward-disabled's."""
    if family == "inet6":
        return sysctls.get("net.ipv6.conf.all.forwarding") == "1"
    iif = query.split(" iif ", 1)[1].split()[0]
    return sysctls.get("net.ipv4.ip_forward") == "1" \
        and sysctls.get(f"net.ipv4.conf.{iif}.forwarding") != "0"


DEFAULT_TABLES = ("local", "main", "default")  # what the kernel looks up without other rules


def route_for(ns, rules, address: str, source: Optional[str] = None):
    """The route ns's kernel sends its own packet to address by (from source): through its
    policy rules by priority where they were read (rules), else local, main and default as
    the kernel's own rules look them up. A rule that refuses gives a Route of its type (no
    prefix); None when no table has a route. Rules with selectors netdoctor does not match
    (a mark, ports...) are not taken to match, as in rules_met."""
    from netdoctor.diagnose.facts.namespace import Route

    from .context import lookup

    try:
        dst = ipaddress.ip_address(address)
        src = ipaddress.ip_address(source) if source else None
    except ValueError:
        return None
    family = "inet6" if dst.version == 6 else "inet"
    if rules is None:
        steps = [("lookup", t) for t in DEFAULT_TABLES]
    else:
        # Sent from this namespace: its packets come in by lo, as the kernel says them.
        steps = [(r.action, r.table) for r in _by_priority_met(rules, src, dst, "lo")]
    for action, table in steps:
        if action == "lookup":
            route = lookup(ns.routes, address, table or "main")
            if route is not None:
                return route
        elif action in RULE_REFUSALS:
            return Route(dst=address, family=family, type=action)
    return None


def kernel_refusal(ctx, decision: dict, address: str):
    """(what it met, evidence, fix, verify) for a lookup the host's kernel made for the
    probe and refused (a trace's journal: the table it looked in, the error), for address:
    the table's refusing route and the policy rules that lead to that table (by a mark,
    say, which `ip route get` without one does not see). The fix deletes a refusing route
    that is not a default one; else the rules and the table are shown. None for an
    address that is not one."""
    from netdoctor.diagnose.reason.journal import ROUTE_TYPE_BY_ERROR

    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    table = str(decision.get("table") or "main")
    kind = ROUTE_TYPE_BY_ERROR.get(decision.get("error"))
    family = "inet6" if ip.version == 6 else "inet"
    candidates = [r for r in ctx.host_ns.refusing_routes if r.type == kind
                  and r.table == table and ip in r.network] if kind else []
    refusing = max(candidates, key=lambda r: r.network.prefixlen) if candidates else None
    leads = [r for r in (ctx.host.policy_rules or ()) if r.action == "lookup"
             and r.table == table and r.family == family] if table != "main" else []
    evidence = {"kernel_decision": decision.get("said"), "table": table,
                "hop": decision.get("hop")}
    met = f"{a_(kind)} route" if kind else "no route"
    if refusing is not None:
        evidence["refusing_route"] = describe(refusing)
        met = f"{a_(refusing.type)} route ({describe(refusing)})"
    by = ""
    if leads:
        evidence["policy_rules"] = [r.text() for r in leads]
        by = ("; the policy rule" + ("s " if len(leads) > 1 else " ")
              + ", ".join(f"`{r.text()}`" for r in leads) + " send"
              + ("" if len(leads) > 1 else "s") + " packets there")
    if any(r.fwmark for r in leads):
        by += " (by the packet's mark, which `ip route get` without one does not see)"
    message = f"its own lookup for it went to table {table} and met {met}{by}"
    if refusing is not None and not refusing.is_default:
        fix, verify = route_removal("{in_host}", refusing)
    else:
        ip_ = "ip -6" if family == "inet6" else "ip"
        fix, verify = (f"{{in_host}}{ip_} rule show; {{in_host}}{ip_} route show table "
                       f"{table}"), True
    return message, evidence, fix, verify


def effective_rp_filter(sysctls: dict, ifname: str) -> int:
    """The reverse-path filter on ifname: the kernel uses the larger of conf.all and
    conf.<iface>."""
    def val(key):
        try:
            return int(sysctls.get(key, "0"))
        except ValueError:
            return 0
    return max(val("net.ipv4.conf.all.rp_filter"), val(f"net.ipv4.conf.{ifname}.rp_filter"))


def rp_filter_refuses(ns, ifname: str, source: str) -> tuple:
    """(mode, route back) when the reverse-path filter on ifname drops what arrives there
    from source (and the ARP requests it sends: the kernel validates their sender too);
    (0, None) when it lets them pass. Strict (1) wants the route back to source out of
    ifname, loose (2) any unicast route back."""
    from .context import lookup

    mode = effective_rp_filter(ns.sysctls, ifname)
    if mode == 0:
        return 0, None
    back = lookup(ns.routes, source)
    if back is not None and back.type == "unicast" and (mode == 2 or back.dev == ifname):
        return 0, None
    return mode, back


def container_misrouted(ctx) -> tuple:
    """(True, the host's route for it or None) when the host routes a routed container's
    own address elsewhere than into its veth (a gateway, another device, no route);
    (False, None) when the route is right or the container is not routed."""
    from .context import lookup

    h, veth, address = ctx.host_ns, ctx.host_veth, ctx.address
    if h is None or veth is None or not address or not ctx.routed:
        return False, None
    route = lookup(h.routes, address)
    return not (route is not None and route.dev == veth.name and not route.gateway), route

from . import Check, register
from ._rules import delete_rule, delivered_drop, rule_evidence
from ._routing import route_for
from netdoctor.diagnose.reason.rules import Packet, evaluate
from netdoctor.diagnose.parse import resolv_conf


@register
class DnsUnreachable(Check):
    """The container's DNS servers cannot be reached or do not answer"""

    id = "dns-unreachable"
    severity = "error"
    scope = "container"
    tags = ("dns",)
    needs = ("dns-probe",)  # the answers of the probe take_deferred sent

    def run(self, ctx):
        c = ctx.container
        if c.resolv_conf is None or not any(not l.is_loopback for l in ctx.namespace.links):
            return
        conf = resolv_conf.parse_resolv_conf(c.resolv_conf)
        if not conf.nameservers:
            yield self.finding(ctx, f"{ctx.subject}'s resolv.conf names no nameserver",
                               {"resolv_conf": c.resolv_conf[:500], "ignored": list(conf.ignored)},
                               # With no nameserver line, the resolver asks this machine:
                               # that is what the command shows. (The fix, a nameserver
                               # line or --dns, is the runbook's.)
                               "{in_container}nslookup example.com 127.0.0.1", verify=True,
                               nameserver="127.0.0.1")
            return
        probes = {p["server"]: p for p in (c.dns_probe or ())}
        broken, unresolved = [], {}
        for server in conf.nameservers:
            r = route_for(ctx.namespace, c.policy_rules, server, ctx.address)
            if r is None or r.type not in ("unicast", "local"):
                broken.append((server, "no route from the container"))
            elif server in probes and not probes[server]["answered"] \
                    and probes[server].get("asked", True):  # False: netdoctor never sent it
                why = probes[server]["error"] or "no answer"
                hop = _unresolved_next_hop(probes[server], server, r)
                if hop:
                    why += (f"; the query never left: its next hop {hop} was not resolved "
                            "(no ARP/neighbour answer)")
                    unresolved[server] = hop
                why += resolv_conf.loopback_note(server)
                broken.append((server, why))
        if not broken:
            return
        severity = "error" if len(broken) == len(conf.nameservers) else "warning"
        # What the host does to each query: a nameserver that is its own address meets its
        # INPUT (the first one dropped there is the finding's); another may be DNATed away.
        stopped = None  # (server, Outcome)
        moved = {}  # server -> (where the host's DNAT sends the query, the rule)
        notes = {}
        for server, _ in broken:
            out = _host_input_drops(ctx, server) if stopped is None else None
            if out is not None:
                stopped = (server, out)
                notes[server] = f"; the host's INPUT {out.verdict}s the query: {out.describe()}"
                continue
            out = _host_redirects(ctx, server)
            if out is not None:
                moved[server] = (out.rule.to, out.describe())
                notes[server] = (f"; the host's nat PREROUTING sends the query to "
                                 f"{out.rule.to} instead ({out.describe()}): that is what did "
                                 f"not answer")
        broken = [(s, why + notes.get(s, "")) for s, why in broken]
        listed = "; ".join(f"{s}: {why}" for s, why in broken)
        evidence = dict({"nameservers": list(conf.nameservers), "failing": dict(broken),
                         "probed": c.dns_probe is not None},
                        **({"next_hop_unresolved": unresolved} if unresolved else {}),
                        **({"translated_by_host": {s: {"to": to, "rule": rule} for s, (to, rule)
                                                   in moved.items()}} if moved else {}))
        message = (f"{ctx.subject} cannot use its nameserver"
                   f"{'s' if len(broken) > 1 else ''} ({listed})")
        if stopped is not None and stopped[1].rule is not None:
            evidence.update(rule_evidence(stopped[1]))
            yield self.finding(ctx, message, evidence,
                               delete_rule(stopped[1].rule, "{in_host}"), severity=severity,
                               nameserver=stopped[0], rule=stopped[1].describe())
            return
        yield self.finding(
            ctx, message, evidence,
            "{in_container}nslookup example.com " + broken[0][0], severity=severity, verify=True,
            nameserver=broken[0][0])


def _host_redirects(ctx, server: str):
    """The host's nat PREROUTING Outcome when it translates the container's query to server
    to another address (a DNS redirect: a local resolver, or one that is gone); else None."""
    packet = ctx.request("udp", 53, dst=server)
    if ctx.host is None or packet is None or server in (ctx.host_ns.held_addresses
                                                         if ctx.host_ns else ()):
        return None
    out = evaluate(ctx.host.ruleset, "prerouting", packet, type_="nat")
    if out.verdict not in ("dnat", "redirect") or out.rule is None or not out.rule.to:
        return None
    return out


def _host_input_drops(ctx, server: str):
    """What the host's INPUT does to the container's query when the nameserver is one of
    the host's own addresses: the Outcome when a rule or policy drops it, else None."""
    h, ingress = ctx.host_ns, ctx.ingress
    if h is None or ctx.host is None or ingress is None or not ctx.address \
            or server not in h.held_addresses:
        return None
    query = Packet(src=ctx.address, dst=server, iif=ingress.name, oif=None, proto="udp",
                   dport=53, sport=ctx.ephemeral_ports,
                   family="ip6" if ":" in server else "ip")
    drop = delivered_drop(ctx.host.ruleset, query)
    return drop[1] if drop is not None else None


def _unresolved_next_hop(probe: dict, server: str, route):
    """The next hop toward server, when the container's neighbour entries after the probe
    (read by the sender for a query with no answer) show it was never resolved; else
    None (not read, or resolved: the query left and the silence is the server's)."""
    after = probe.get("neighbours_after")
    if after is None or route is None or route.type != "unicast":
        return None
    hop = route.gateway or server
    for dst, state in after:
        if dst == hop:
            return hop if set(state) & {"INCOMPLETE", "FAILED"} else None
    return hop  # no entry at all: never even asked for (a full table refuses the entry)

from . import Check, register
from .context import lookup
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
            r = lookup(ctx.namespace.routes, server)
            local = lookup(ctx.namespace.routes, server, table="local")
            if (r is None or r.type != "unicast") and local is None:
                broken.append((server, "no route from the container"))
            elif server in probes and not probes[server]["answered"] \
                    and probes[server].get("asked", True):  # False: netdoctor never sent it
                why = probes[server]["error"] or "no answer"
                hop = _unresolved_next_hop(probes[server], server, r or local)
                if hop:
                    why += (f"; the query never left: its next hop {hop} was not resolved "
                            "(no ARP/neighbour answer)")
                    unresolved[server] = hop
                why += resolv_conf.loopback_note(server)
                broken.append((server, why))
        if not broken:
            return
        severity = "error" if len(broken) == len(conf.nameservers) else "warning"
        listed = "; ".join(f"{s}: {why}" for s, why in broken)
        yield self.finding(
            ctx, f"{ctx.subject} cannot use its nameserver"
                 f"{'s' if len(broken) > 1 else ''} ({listed})",
            dict({"nameservers": list(conf.nameservers), "failing": dict(broken),
                  "probed": c.dns_probe is not None},
                 **({"next_hop_unresolved": unresolved} if unresolved else {})),
            "{in_container}nslookup example.com " + broken[0][0], severity=severity, verify=True,
            nameserver=broken[0][0])


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

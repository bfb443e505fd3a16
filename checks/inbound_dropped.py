from . import Check, register
from ._inbound import loopback, port_name, port_vars
from ._rules import delete_rule
from netdoctor.diagnose.reason.rules import Outcome


@register
class InboundDropped(Check):
    """A client's connection to a published port is dropped on its way in (raw PREROUTING or
    FORWARD), or untracked there, before its DNAT"""

    id = "inbound-dropped"
    severity = "error"
    scope = "host"
    runs_on = "container"
    tags = ("inbound", "netfilter")
    precedence = 14
    needs = ("host-rules",)

    def run(self, ctx):
        for w in ctx.inbound:
            if w.dropped is None:
                continue
            if w.dropped.hook.startswith("raw") and loopback(w.host_address):
                continue  # the runtime's own guard of a loopback-published port: no fault
            rule = _rule_of(ctx, w.dropped.said)
            fix, verify = (delete_rule(rule, "{in_host}"), False) if rule is not None else \
                _let_through(ctx, w)
            if w.dropped.verdict == "untracked":
                what = (f"marked untracked in {w.dropped.hook} ({w.dropped.said}): NAT is "
                        f"conntrack's, so the DNAT that publishes the port never applies, and "
                        f"the host answers the connection itself (refused) or drops it")
            else:
                what = (f"{'rejected' if w.dropped.verdict == 'reject' else 'dropped'} in "
                        f"{w.dropped.hook}: {w.dropped.said}")
            yield self.finding(
                ctx, f"a client's {port_name(w)} for {ctx.subject} is {what}",
                {"hook": w.dropped.hook, "decided_by": w.dropped.said, "walk": w.to_dict()},
                fix, verify=verify, rule=w.dropped.said, **port_vars(w))


def _chain_of(ctx, said: str):
    """The base chain whose policy a walk step names, found again in the host's ruleset."""
    return next((c for c in ctx.host.ruleset.chains if c.policy
                 and said == Outcome(c.policy, None, c).describe()), None)


def _rule_of(ctx, said: str):
    """The rule a walk step names ("<where>: <text>"), found again in the host's ruleset."""
    for chain in ctx.host.ruleset.chains:
        for r in chain.rules:
            if said == f"{r.where}: {r.text}":
                return r
    return None


def _let_through(ctx, w) -> tuple:
    """(command, verify) for a policy's drop: the port let through ahead of it, where Docker
    wants its users' accepts (DOCKER-USER, which it never flushes) or else in the chain
    itself: FORWARD for the container's address and port, INPUT for a proxy's host port. A
    policy before routing (raw, mangle) drops everything else too: only shown."""
    ipt = "ip6tables" if w.family == "ip6" else "iptables"
    c = _chain_of(ctx, w.dropped.said)
    if c is not None and c.backend == "nft" and w.dropped.hook in ("FORWARD", "INPUT"):
        # a native table's policy: let the port through in that chain
        addr = "ip6" if w.family == "ip6" else "ip"
        if w.dropped.hook == "FORWARD":
            return (f"{{in_host}}nft insert rule {c.family} {c.table} {c.name} {addr} daddr "
                    f"{{container_ip}} {{proto}} dport {{container_port}} accept"), False
        return (f"{{in_host}}nft insert rule {c.family} {c.table} {c.name} {{proto}} dport "
                f"{w.host_port} accept"), False
    if w.dropped.hook == "FORWARD":
        if any((ch.family, ch.table, ch.name) == (w.family, "filter", "DOCKER-USER")
               for ch in ctx.host.ruleset.chains):
            return ("{in_host}" + ipt + " -I DOCKER-USER -p {proto} --dport {container_port} "
                    "-j ACCEPT"), False
        return ("{in_host}" + ipt + " -I FORWARD -d {container_ip} -p {proto} --dport "
                "{container_port} -j ACCEPT"), False
    if w.dropped.hook == "INPUT":
        return f"{{in_host}}{ipt} -I INPUT -p {{proto}} --dport {w.host_port} -j ACCEPT", False
    return "{in_host}" + ipt + "-save -c", True

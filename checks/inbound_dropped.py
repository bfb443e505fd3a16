from . import Check, register
from ._inbound import loopback, port_name, port_vars
from ._rules import delete_rule


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
            fix = delete_rule(rule, "{in_host}") if rule is not None else \
                "{in_host}iptables -I DOCKER-USER -p {proto} --dport {container_port} -j ACCEPT"
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
                fix, rule=w.dropped.said, **port_vars(w))


def _rule_of(ctx, said: str):
    """The rule a walk step names ("<where>: <text>"), found again in the host's ruleset."""
    for chain in ctx.host.ruleset.chains:
        for r in chain.rules:
            if said == f"{r.where}: {r.text}":
                return r
    return None

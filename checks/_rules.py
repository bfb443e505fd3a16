"""What the firewall checks share (private: no check imports another): the words of a
verdict, the evidence a rule walk leaves, and the command that deletes a rule."""

PAST = {"drop": "dropped", "reject": "rejected"}
PLURAL = {"request": "requests", "reply": "replies"}


def flow_name(proto, port):
    return proto if port is None else f"{proto}/{port}"


def rule_evidence(outcome) -> dict:
    ev = {"verdict": outcome.verdict, "decided_by": outcome.describe(),
          "chains_walked": list(outcome.trail)}
    if outcome.rule is not None:
        r = outcome.rule
        ev.update({"backend": r.backend, "table": r.table, "chain": r.chain, "rule": r.text,
                   "position": r.index, "handle": r.handle, "packets": r.packets})
    elif outcome.chain is not None:
        c = outcome.chain
        ev.update({"backend": c.backend, "table": c.table, "chain": c.name,
                   "policy": c.policy, "packets": c.policy_packets})
    return ev


def delete_rule(r, where: str) -> str:
    """The command that deletes rule r, run `where` ("{in_host}", "{in_container}")."""
    if r.backend == "nft":
        return f"{where}nft delete rule {r.family} {r.table} {r.chain} handle {r.handle}"
    prog = "iptables-legacy" if r.backend == "iptables-legacy" else "iptables"
    if r.family == "ip6":
        prog = prog.replace("iptables", "ip6tables")
    return f"{where}{prog} -t {r.table} -D {r.chain} {r.index}"

"""What the firewall checks share (private: no check imports another): the words of a
verdict, the evidence a rule walk leaves, the commands that delete or replace a rule, the
addresses a SNAT translates to."""

import ipaddress
from typing import Optional

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


def iptables_program(r) -> str:
    """The iptables command of a rule's or chain's backend and family."""
    prog = "iptables-legacy" if r.backend == "iptables-legacy" else "iptables"
    return prog.replace("iptables", "ip6tables") if r.family == "ip6" else prog


def iptables_for(c) -> str:
    """The iptables command that edits chain (or rule) c's table: `-t TABLE` but for filter."""
    table = "" if c.table in ("filter", None) else f" -t {c.table}"
    return f"{iptables_program(c)}{table}"


def list_chain(c) -> str:
    """The command that shows chain c as its backend lists it (its policy, its rules)."""
    if c.backend == "nft":
        return f"nft list chain {c.family} {c.table} {c.name}"
    return f"{iptables_program(c)} -t {c.table} -S {c.name}"


def replace_rule(r, where: str, old: str, new: str):
    """The command that puts rule r back in its place with the word old changed to new, or
    None when r is not an iptables rule whose saved line holds old once."""
    words = r.text.split()
    if r.backend == "nft" or words[:2] != ["-A", r.chain] or words.count(old) != 1:
        return None
    body = " ".join(new if w == old else w for w in words[2:])
    return f"{where}{iptables_program(r)} -t {r.table} -R {r.chain} {r.index} {body}"


def delete_rule(r, where: str) -> str:
    """The command that deletes rule r, run `where` ("{in_host}", "{in_container}")."""
    if r.backend == "nft":
        return f"{where}nft delete rule {r.family} {r.table} {r.chain} handle {r.handle}"
    return f"{where}{iptables_program(r)} -t {r.table} -D {r.chain} {r.index}"


def ufw_decides(outcome) -> bool:
    """The drop is ufw's own: its default policy (the walk went through ufw's chains and the
    built-in chain's policy decided) or a rule of its fixed chains (before.rules and the
    rest; not a user's `ufw deny`, which is in ufw-user-*). ufw writes those chains again
    on every reload and boot: the change that lasts is a ufw rule, not an iptables one."""
    def ufw(chain: str) -> bool:
        return chain.startswith(("ufw-", "ufw6-"))

    if outcome.chain is None or outcome.chain.backend == "nft":
        return False
    if outcome.rule is not None:
        return ufw(outcome.rule.chain) and not outcome.rule.chain.startswith(
            ("ufw-user-", "ufw6-user-"))
    return any(ufw(step.rpartition("/")[2]) for step in outcome.trail)


def docker_isolation(outcome) -> bool:
    """The drop is Docker keeping its networks apart: a rule of DOCKER-ISOLATION-STAGE-1/2
    (or Docker 28's DOCKER-INTERNAL). A drop by a later rule, after the packet walked
    through them and back, is that rule's. (icc=false is a plain FORWARD rule: docker_icc.)"""
    r = outcome.rule
    return r is not None and r.chain.startswith(("DOCKER-ISOLATION", "DOCKER-INTERNAL"))


def docker_icc(outcome) -> Optional[str]:
    """The Docker bridge whose containers Docker keeps from each other (`--icc=false`, or a
    network's `com.docker.network.bridge.enable_icc=false`): its rule drops what comes in by
    the bridge and goes out by it again, in FORWARD (Docker 28: DOCKER-FORWARD). None when
    the drop is not that rule."""
    r = outcome.rule
    if r is None or r.verdict != "drop" or r.backend == "nft" \
            or r.chain not in ("FORWARD", "DOCKER-FORWARD"):
        return None
    ifs = {m.kind: m.values[0] for m in r.matches if m.kind in ("iif", "oif") and not m.negate}
    if len(r.matches) != 2 or len(ifs) != 2 or ifs["iif"] != ifs["oif"]:
        return None
    bridge = ifs["iif"]
    return bridge if bridge == "docker0" or bridge.startswith("br-") else None


def docker_internal(outcome) -> bool:
    """The isolation rule of an internal network (docker network create --internal): it
    drops whatever its bridge sends outside its own subnet."""
    words = outcome.rule.text.split()
    return outcome.rule.chain.startswith("DOCKER-INTERNAL") or (
        "-i" in words and "-o" not in words and any(
            a == "!" and b == "-d" for a, b in zip(words, words[1:])))


def translated_to(to: str):
    """The addresses a SNAT translates to ("a", "a:ports", "a-b", "a-b:ports", "[v6]:ports"),
    as (first, last), or None when the text says no address."""
    text = (to or "").strip()
    if text.startswith("["):
        text = text[1:].split("]", 1)[0]
    elif text.count(":") == 1:  # IPv4 with ports
        text = text.split(":", 1)[0]
    first, _, last = text.partition("-")
    try:
        a = ipaddress.ip_address(first)
        b = ipaddress.ip_address(last) if last else a
    except ValueError:
        return None
    return (a, b) if a.version == b.version and a <= b else None


# Where the host meets a packet addressed to itself, in order: before routing, and INPUT.
DELIVERED_HOOKS = ("prerouting", "input")


SENT_HOOKS = ("output", "postrouting")


def delivered_drop(ruleset, packet, hooks: tuple = DELIVERED_HOOKS):
    """(hook, Outcome) of the first of a namespace's hooks that drops or rejects a packet it
    delivers to itself (addressed to one of its own addresses; with SENT_HOOKS, one it
    sends); None when none does."""
    from netdoctor.diagnose.reason.rules import evaluate

    for hook in hooks:
        out = evaluate(ruleset, hook, packet)
        if out.verdict in ("drop", "reject"):
            return hook, out
    return None

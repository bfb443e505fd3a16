"""The check registry: one module per check, each a pure function of a Snapshot.

A check is a class with `id` (kebab-case, stable), `severity`, `scope` ("host" or
"container"), `tags`, `needs` (facts that must have been read for it to judge), a docstring
whose first line is its title, and `run(ctx)` yielding Findings. Its runbook is
runbooks/<id>.md. A check that raises becomes an `internal-error` finding and the other
checks go on. A check whose facts could not be read is not run: one `not-judged` warning
per subject names those checks and why, instead of a silent pass.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from dataclasses import dataclass, field
from typing import Iterable, Optional

SEVERITIES = ("error", "warning", "info")
SEVERITY_RANK = {"error": 3, "warning": 2, "info": 1}
ID_FORMAT = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


@dataclass(frozen=True)
class Finding:
    id: str
    severity: str
    scope: str
    subject: str  # "lab:test", "host ndlab-host", ...
    message: str  # one line, with the real names
    evidence: dict  # the exact facts the check used
    fix: str  # one command that fixes it (printed, never run); "" when only `verify` fits
    vars: dict = field(default_factory=dict)  # names and addresses for the runbook
    # "destination" for a finding about the far end of an east-west trace: it explains a
    # failure, but its check's hop roles are the far end's own, not the path's.
    side: str = "source"
    # A command that shows the fault without changing anything, where no single change is
    # the fix (a nameserver that does not answer): the runbook gives the likely fixes.
    verify: str = ""

    @property
    def action(self) -> str:
        """The line a report prints: "fix: ..." or "verify: ..."."""
        return f"fix: {self.fix}" if self.fix else f"verify: {self.verify}"

    @property
    def title(self) -> str:
        check = _check(self.id)
        return check.title() if check else self.id

    # Where the finding's fault stops a packet, and how it ranks as a cause: the check's.
    @property
    def blocks_at(self) -> tuple:
        check = _check(self.id)
        return check.blocks_at if check and self.side == "source" else ()

    @property
    def precedence(self) -> int:
        check = _check(self.id)
        return check.precedence if check else Check.precedence

    @property
    def structural(self) -> bool:
        check = _check(self.id)
        return check.structural if check else False

    def to_dict(self) -> dict:
        return {"id": self.id, "severity": self.severity, "scope": self.scope,
                "subject": self.subject, "title": self.title, "message": self.message,
                "evidence": self.evidence, "fix": self.fix, "runbook": f"runbooks/{self.id}.md",
                "side": self.side, "verify": self.verify, "vars": self.vars}

    @classmethod
    def from_dict(cls, d: dict) -> "Finding":
        """A finding of a saved report (its runbook names in `vars`, when it has them)."""
        return cls(id=d["id"], severity=d["severity"], scope=d["scope"],
                   subject=d["subject"], message=d["message"],
                   evidence=d.get("evidence") or {}, fix=d.get("fix") or "",
                   vars=dict(d.get("vars") or {}), side=d.get("side") or "source",
                   verify=d.get("verify") or "")


class Check:
    id: str = ""
    severity: str = "error"
    scope: str = "container"  # where the fault lives: "host" or "container"
    runs_on: str = ""  # what it is run for, "host" or "container"; default: its scope
    tags: tuple = ()
    # "host-rules": the host's netfilter rules; "dns-probe": the answers to the DNS probe
    # (run after the others, which are judged while the answers come)
    needs: tuple = ()
    # Where the fault stops a probe, for the trace's verdict: (direction, role of the last
    # hop that sees it), role None when the probe never leaves the container. A finding
    # whose evidence names a direction blocks in that direction only; one whose evidence
    # names `stops_at` (a list of roles), at those roles only.
    blocks_at: tuple = ()
    # Root causes first: when several findings explain the same stop, the lowest precedence
    # is the cause and the others are its symptoms (a gateway's neighbour entry fails
    # *because* the veth is down, not the other way round).
    precedence: int = 100
    # A fault of the wiring itself: where it blocks, it is the cause whatever the kernel's
    # drop reason says (a firewall drop of packets on the wrong bridge is a symptom).
    structural: bool = False

    @classmethod
    def target_kind(cls) -> str:
        return cls.runs_on or cls.scope

    @classmethod
    def title(cls) -> str:
        return (cls.__doc__ or cls.id).strip().splitlines()[0]

    def run(self, ctx) -> Iterable[Finding]:  # pragma: no cover - interface
        raise NotImplementedError

    def finding(self, ctx, message: str, evidence: dict, fix: str,
                severity: Optional[str] = None, verify: bool = False,
                **extra_vars) -> Finding:
        """A finding of this check. fix is the command that fixes it; with verify=True it
        is a command that only shows the fault (the runbook's Fix gives the likely fixes)."""
        from netdoctor.runbooks import fill

        vars_ = dict(ctx.vars)
        vars_.update(extra_vars)
        command = fill(fix, vars_)
        vars_["fix"] = command
        return Finding(id=self.id, severity=severity or self.severity, scope=self.scope,
                       subject=ctx.subject, message=message, evidence=evidence,
                       fix="" if verify else command, vars=vars_,
                       verify=command if verify else "")


REGISTRY: dict = {}


def _check(check_id: str):
    if not REGISTRY:
        load_all()
    return REGISTRY.get(check_id)
# Causes that are not checks but have a runbook page: what could not be judged, and why; the
# causes the trace's evidence alone names (a destination that received the probe and did not
# answer; a drop the kernel attributes to a tc filter or eBPF program; a routing decision
# of the kernel that left the path the facts predicted; an upstream that asks for a routed
# container's address on its link instead of routing it back; a watched client whose
# connection attempt never reached the host; a probe the far host of an overlay received
# and did not pass on; a request that came back to a hop it had passed: a routing loop).
NOT_CHECKS = ("not-judged", "destination-no-reply", "tc-drop", "path-diverged",
              "no-route-back", "client-not-seen", "lost-on-peer", "routing-loop")


def register(cls):
    if cls.id in REGISTRY:
        raise ValueError(f"duplicate check id {cls.id}")
    REGISTRY[cls.id] = cls
    return cls


def load_all() -> dict:
    """Import every check module of this package (each registers its class)."""
    for mod in pkgutil.iter_modules(__path__):
        if mod.name != "context" and not mod.name.startswith("_"):
            importlib.import_module(f"{__name__}.{mod.name}")
    return REGISTRY


def select(only: Optional[set] = None, skip: Optional[set] = None,
           tags: Optional[set] = None) -> set:
    """The IDs of the checks to run: all of them, or `only` these, less `skip`, and of those
    only the ones with one of `tags`. Unknown IDs and tags are a usage error."""
    from netdoctor.diagnose.errors import UsageError

    registry = load_all()
    unknown = ((only or set()) | (skip or set())) - set(registry)
    if unknown:
        raise UsageError(f"unknown check id(s): {', '.join(sorted(unknown))} "
                         f"(see `netdoctor checks --list`)")
    known_tags = {t for cls in registry.values() for t in cls.tags}
    if tags and tags - known_tags:
        raise UsageError(f"unknown tag(s): {', '.join(sorted(tags - known_tags))} "
                         f"(tags: {', '.join(sorted(known_tags))})")
    chosen = set(only or registry) - set(skip or ())
    if tags:
        chosen = {cid for cid in chosen if tags & set(registry[cid].tags)}
    return chosen


def run_checks(snapshot, only: Optional[set] = None, answered=None) -> list:
    """Every check against every host and container of snapshot; sorted findings.
    answered: a call that returns the snapshot with its DNS probe's answers (take_deferred):
    the checks that need them ("dns-probe") run after it, the others while the answers
    come."""
    from .context import contexts, renewed

    load_all()
    unknown = (only or set()) - set(REGISTRY)
    if unknown:
        from netdoctor.diagnose.errors import UsageError

        raise UsageError(f"unknown check id(s): {', '.join(sorted(unknown))} "
                         f"(see `netdoctor checks --list`)")
    chosen = [(cid, cls) for cid, cls in sorted(REGISTRY.items()) if not only or cid in only]
    later = [(cid, cls) for cid, cls in chosen if "dns-probe" in cls.needs] \
        if answered is not None else []
    findings, unjudged = [], {}  # subject -> (context, ids not judged)
    try:
        first = _contexts(contexts, snapshot)
        findings += _run(first, [c for c in chosen if c not in later], unjudged)
        if later:
            kinds = {cls.target_kind() for _, cls in later}
            final = answered()
            every = renewed(first, snapshot, final) or _contexts(contexts, final)
            findings += _run([c for c in every if c.scope in kinds], later, unjudged)
    except _Unreadable as e:  # a hand-edited snapshot the checks cannot read
        return [Finding(id="internal-error", severity="error", scope="host", subject="snapshot",
                        message=f"the snapshot could not be read: {e}",
                        evidence={}, fix="netdoctor snapshot -o snap.json")]  # a new one
    for ctx, ids in unjudged.values():
        findings.append(_not_judged(ctx, sorted(ids), ctx.host_rules_unread))
    findings = _mark_consequences(findings)
    findings.sort(key=lambda f: (-SEVERITY_RANK.get(f.severity, 0), f.subject, f.id))
    return findings


class _Unreadable(Exception):
    pass


def _contexts(contexts, snapshot) -> list:
    try:
        return list(contexts(snapshot))
    except Exception as e:
        raise _Unreadable(f"{type(e).__name__}: {e}") from None


def _run(every, checks: list, unjudged: dict) -> list:
    """checks (id, class) against each context in every."""
    findings = []
    for ctx in every:
        for check_id, cls in checks:
            if cls.target_kind() != ctx.scope:
                continue
            if "host-rules" in cls.needs and ctx.host_rules_unread:
                unjudged.setdefault(ctx.subject, (ctx, []))[1].append(check_id)
                continue
            try:
                findings.extend(cls().run(ctx))
            except Exception as e:  # a broken check must not hide the others
                findings.append(Finding(
                    id="internal-error", severity="error", scope=ctx.scope, subject=ctx.subject,
                    message=f"check {check_id} crashed: {type(e).__name__}: {e}",
                    evidence={"check": check_id}, fix="",
                    # the snapshot to attach to a bug report (the runbook says so)
                    verify="netdoctor snapshot -o snap.json"))
    return findings


def _not_judged(ctx, checks: list, gaps: list) -> Finding:
    in_host = ctx.vars.get("in_host", "")
    return Finding(
        id="not-judged", severity="warning", scope=ctx.scope, subject=ctx.subject,
        message=f"not judged: {', '.join(checks)}: the host's rules could not be read "
                f"({'; '.join(gaps)})",
        evidence={"checks": checks, "unread": gaps},
        fix=f"{in_host}iptables-save -c >/dev/null; {in_host}nft list ruleset >/dev/null",
        vars=dict(ctx.vars))


def _mark_consequences(findings: list) -> list:
    """A symptom beside its cause says so, so nobody debugs the symptom first: a nameserver
    beyond a broken path does not answer; a route vanishes with its link. The finding stays:
    it is still true."""
    from dataclasses import replace

    blocking = {i for i, c in REGISTRY.items() if "path" in c.tags}
    causes_of = {"dns-unreachable": blocking, "host-no-route": {"uplink-down", "ipv6-ra-ignored"},
                 # a link set down takes its routes with it
                 "container-no-default-route": {"container-link-down"},
                 # with the table full, a gateway that answers gets no entry; a gateway
                 # gone from the bridge answers nothing
                 "neighbour-failed": {"neighbour-table-full", "bridge-no-address",
                                      "arp-disabled", "bridge-port-blocked"},
                 # the connected route to the containers went with the bridge's address
                 "reply-path-asymmetric": {"bridge-no-address", "ip-forward-disabled"}}
    errors_of: dict = {}  # subject -> the ids of its error findings (one pass, not N x N)
    for g in findings:
        if g.severity == "error":
            errors_of.setdefault(g.subject, set()).add(g.id)
    out = []
    for f in findings:
        if f.id in causes_of:
            subjects = (f.subject, f"host {f.vars.get('host_ns')}")
            causes = sorted({i for s in subjects for i in errors_of.get(s, ())
                             if i in causes_of[f.id] and i != f.id})
            if f.id == "dns-unreachable" and not f.evidence.get("next_hop_unresolved"):
                # the probe's queries left this container: a full table did not stop them
                causes = [i for i in causes if i != "neighbour-table-full"]
            if causes:
                f = replace(f, message=f"{f.message}; likely a consequence of "
                                       f"{', '.join(causes)}",
                            evidence=dict(f.evidence, likely_consequence_of=causes))
        out.append(f)
    return out

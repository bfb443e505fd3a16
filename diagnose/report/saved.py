"""Reports read back from their JSON documents (`netdoctor report FILE`): objects the text
and Markdown renderers accept, made from a saved trace, path or checks document."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import UsageError

KINDS = {"netdoctor.trace/2": "trace", "netdoctor.path/2": "path",
         "netdoctor.checks/1": "checks"}


def kind_of(doc) -> str:
    """trace, path or checks, from the document's schema; a one-line error otherwise."""
    schema = doc.get("schema") if isinstance(doc, dict) else None
    if schema in KINDS:
        return KINDS[schema]
    if isinstance(schema, str) and schema.startswith("netdoctor.snapshot/"):
        raise UsageError("this is a snapshot of facts, not a report: judge it with "
                         "`netdoctor checks --from FILE`")
    if isinstance(schema, str) and schema.startswith("netdoctor."):
        raise UsageError(f"schema {schema} is not one this netdoctor reads "
                         f"({', '.join(KINDS)}): re-run it with this version")
    raise UsageError("not a netdoctor report: no netdoctor schema (save one with "
                     "`--format json > FILE`)")


@dataclass
class SavedTrace:
    """The attributes of a TraceReport the renderers use, from its document."""

    doc: dict
    findings: list = field(default_factory=list)

    def __getattr__(self, name):
        if name in ("target", "destination", "probe", "pmtu", "evidence", "elapsed_ms",
                    "verdict"):
            return self.doc.get(name) if name != "evidence" else (self.doc.get(name) or {})
        raise AttributeError(name)

    def to_dict(self) -> dict:
        return self.doc


def trace_report(doc: dict) -> SavedTrace:
    from netdoctor.checks import Finding

    try:
        return SavedTrace(doc, [Finding.from_dict(f) for f in doc.get("findings") or ()])
    except (KeyError, TypeError) as e:
        raise UsageError(f"a finding of the saved trace lacks {e}") from None


@dataclass
class SavedPath:
    """The attributes of a PathReport the renderers use, from its document."""

    doc: dict
    hops: tuple = ()

    def __getattr__(self, name):
        if name in ("target", "destination", "mode", "complete"):
            return self.doc.get(name)
        if name == "notes":
            return tuple(self.doc.get("notes") or ())
        raise AttributeError(name)

    def to_dict(self) -> dict:
        return self.doc


def path_report(doc: dict) -> SavedPath:
    from ..reason.topology import Hop

    try:
        hops = tuple(Hop(role=h["role"], name=h["name"],
                         netns={"name": h.get("netns"), "inode": h.get("netns_inode")},
                         ifindex=h["ifindex"], kind=h.get("kind"), mac=h.get("mac"),
                         addresses=tuple(h.get("addresses") or ()), mtu=h["mtu"],
                         state=h["state"], via=h.get("via"), master=h.get("master"))
                     for h in doc.get("hops") or ())
    except (KeyError, TypeError) as e:
        raise UsageError(f"a hop of the saved path lacks {e}") from None
    return SavedPath(doc, hops)


@dataclass
class _SavedTarget:
    target: dict
    path: dict


@dataclass
class SavedChecks:
    """What the checks renderers read of a Snapshot, from a checks document."""

    meta: dict
    destination: str
    problems: tuple
    hosts: dict
    containers: tuple


def checks_report(doc: dict) -> tuple:
    """(SavedChecks, [Finding]) from a checks document."""
    from netdoctor.checks import Finding

    containers = []
    for row in doc.get("targets") or ():
        kind, _, name = str(row.get("target", "?:?")).partition(":")
        containers.append(_SavedTarget(
            {"kind": kind, "name": name, "netns": {"name": row.get("netns"), "inode": None}},
            {"mode": row.get("mode"), "complete": row.get("complete"),
             "destination": {"address": row.get("destination")},
             "hops": list(row.get("hops") or ())}))
    hosts = {str(i): None for i in range(int(doc.get("host_namespaces") or 1))}
    snap = SavedChecks(dict(doc.get("host") or {}), doc.get("destination") or "",
                       tuple(doc.get("problems") or ()), hosts, tuple(containers))
    try:
        return snap, [Finding.from_dict(f) for f in doc.get("findings") or ()]
    except (KeyError, TypeError) as e:
        raise UsageError(f"a finding of the saved checks lacks {e}") from None

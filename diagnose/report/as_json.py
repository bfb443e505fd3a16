"""Reports for tools: the checks document (schema netdoctor.checks/1); path and trace
documents are their reports' to_dict()."""

from __future__ import annotations

import json
from typing import Optional

CHECKS_SCHEMA = "netdoctor.checks/1"


def summary(findings: list) -> dict:
    out = {"error": 0, "warning": 0, "info": 0}
    for f in findings:
        out[f.severity] = out.get(f.severity, 0) + 1
    return out


def target_rows(snapshot) -> list:
    out = []
    for c in snapshot.containers:
        t = c.target
        ns = t["netns"].get("name") or f"net:[{t['netns']['inode']}]"
        out.append({"target": f"{t['kind']}:{t['name']}", "netns": ns,
                    "mode": c.path.get("mode"), "complete": c.path.get("complete"),
                    "destination": (c.path.get("destination") or {}).get("address"),
                    "hops": [{k: h.get(k) for k in ("role", "name", "netns", "addresses",
                                                    "via")} for h in c.path.get("hops", ())]})
    return out


class Encoded(list):
    """Items of a list already encoded as JSON text, one per item."""


def encoded_target_rows(snapshot) -> Encoded:
    """target_rows as JSON text: what checks_json writes for them. They do not depend on the
    DNS probe's answers, so `checks` encodes them while it waits for those."""
    return Encoded(json.dumps(r, default=str) for r in target_rows(snapshot))


def checks_json(snapshot, findings: list, rows: Optional[Encoded] = None) -> str:
    doc = {
        "schema": CHECKS_SCHEMA,
        "host": {k: snapshot.meta.get(k) for k in ("hostname", "kernel", "taken_at", "netdoctor")},
        "destination": snapshot.destination,
        "host_namespaces": len(snapshot.hosts),
        "targets": rows if rows is not None else target_rows(snapshot),
        "findings": [f.to_dict() for f in findings],
        "summary": summary(findings),
        "problems": list(snapshot.problems),
    }
    return dumps(doc)


def dumps(doc: dict) -> str:
    """A document with a line per key and a line per item of its lists, each item compact:
    readable and grep-able, and written by json's C encoder (indent= takes its pure-Python
    one: 0.8 s for the findings of a thousand containers)."""
    lines = ["{"]
    for n, (key, value) in enumerate(doc.items()):
        comma = "," if n < len(doc) - 1 else ""
        if isinstance(value, list) and value:
            items = value if isinstance(value, Encoded) else \
                [json.dumps(item, default=str) for item in value]
            lines.append(f"  {json.dumps(key)}: [")
            lines += [f"    {item}," for item in items[:-1]]
            lines += [f"    {items[-1]}", f"  ]{comma}"]
        else:
            lines.append(f"  {json.dumps(key)}: {json.dumps(value, default=str)}{comma}")
    return "\n".join(lines + ["}"]) + "\n"

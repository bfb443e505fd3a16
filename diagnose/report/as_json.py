"""Reports for tools: the checks document (schema netdoctor.checks/1); path and trace
documents are their reports' to_dict()."""

from __future__ import annotations

import json

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


def checks_json(snapshot, findings: list) -> str:
    doc = {
        "schema": CHECKS_SCHEMA,
        "host": {k: snapshot.meta.get(k) for k in ("hostname", "kernel", "taken_at", "netdoctor")},
        "destination": snapshot.destination,
        "host_namespaces": len(snapshot.hosts),
        "targets": target_rows(snapshot),
        "findings": [f.to_dict() for f in findings],
        "summary": summary(findings),
        "problems": list(snapshot.problems),
    }
    return json.dumps(doc, indent=2) + "\n"

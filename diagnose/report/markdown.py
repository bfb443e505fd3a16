"""Reports to paste into a ticket: checks and trace as Markdown, each finding with its
runbook's Confirm/Fix/Revert filled in with the real names."""

from __future__ import annotations

import json

from .as_json import summary, target_rows
from . import mermaid
from .text import address_choice, arp_note, nftrace_lines, trace_title, verdict_lines


def md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def findings_markdown(findings: list) -> list:
    """The findings table and, for each finding, its runbook filled with the real names."""
    from netdoctor import runbooks

    lines = ["| Severity | ID | Subject | Finding |", "| --- | --- | --- | --- |"]
    for f in findings:
        lines.append(f"| {f.severity} | `{f.id}` | {md_cell(f.subject)} | {md_cell(f.message)} |")
    for i, f in enumerate(findings, 1):
        lines += ["", f"### {i}. `{f.id}` on {f.subject} ({f.severity})", "", f.message, "",
                  "Evidence:", "", "```json", json.dumps(f.evidence, indent=2, default=str), "```"]
        page = runbooks.text(f.id)
        parts = runbooks.sections(page) if page else {}
        why = parts.get("Why it breaks traffic")
        if why:
            lines += ["", "**Why it breaks traffic.** " + runbooks.fill(why, f.vars)]
        if f.verify:
            lines += ["", "**Verify**", "", f"    {f.verify}"]
        for name in ("Confirm", "Fix", "Revert"):
            body = parts.get(name)
            if name == "Fix" and not body and f.fix:
                body = f"    {f.fix}"
            if body:
                lines += ["", f"**{name}**", "", runbooks.fill(body, f.vars)]
    return lines


PICTURES = 12  # path pictures in one checks report: enough for a host, not a fleet


def checks_markdown(snapshot, findings: list) -> str:
    meta = snapshot.meta
    s = summary(findings)
    lines = [f"# netdoctor checks: {meta.get('hostname', '?')}", "",
             f"- taken: {meta.get('taken_at', '?')}, kernel {meta.get('kernel', '?')}, "
             f"netdoctor {meta.get('netdoctor', '?')}",
             f"- result: {s['error']} error(s), {s['warning']} warning(s), {s['info']} note(s)"]
    targets = target_rows(snapshot)
    if targets:
        lines.append("- targets: " + ", ".join(f"`{t['target']}` (netns {t['netns']})"
                                               for t in targets))
    for p in snapshot.problems:
        lines.append(f"- not checked: {p}")
    lines.append("")
    pictures = [(t, mermaid.path_flowchart(c.path)) for t, c in
                zip(targets, snapshot.containers)][:PICTURES]
    pictures = [(t, p) for t, p in pictures if p]
    if pictures:
        lines += ["## Paths", ""]
        for t, picture in pictures:
            lines += [f"`{t['target']}` toward {t.get('destination') or 'its default route'}:",
                      ""] + mermaid.block(picture) + [""]
        if len(targets) > PICTURES:
            lines += [f"(the first {PICTURES} of {len(targets)} paths)", ""]
    if findings:
        lines += ["## Findings", ""] + findings_markdown(findings)
    else:
        lines.append("No problems found.")
    return "\n".join(lines) + "\n"


def trace_markdown(report) -> str:
    doc = report.to_dict()
    v = doc["verdict"]
    lines = [f"# netdoctor {trace_title(report)}", ""]
    lines += [f"- {line}" for line in verdict_lines(v, report)]
    choice = address_choice(report.destination)
    if choice:
        lines.append(f"- {choice}")
    lines += ["", "## Hops", "", "| hop | interface | netns | requests | replies | first seen (µs) "
              "| addresses seen |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for h in doc["hops"]:
        seen = "; ".join(filter(None, [f"{k}: {a}" for k, a in h["addresses_seen"].items()]
                                + [arp_note(h)])) or "-"
        mark = " **(stopped here)**" if not v["reachable"] and v["stopped_at"] == h["role"] else ""
        lines.append(f"| {h['role']}{mark} | {h['name']} | {h['netns']} | {h['request_seen']} | "
                     f"{h['reply_seen']} | {h['first_seen_us'] if h['first_seen_us'] is not None else '-'} "
                     f"| {md_cell(seen)} |")
    met = (doc.get("evidence") or {}).get("nftrace")
    if met is not None:
        lines += ["", "## Rules the probe met (nftables trace)", ""]
        lines += [f"- `{line}`" for line in nftrace_lines(met)]
    journal = (doc.get("evidence") or {}).get("journal") or []
    if journal:
        lines += ["", "## Kernel decisions (tracefs)", ""]
        lines += [f"- {e['hop']}: `{e['said']}`" for e in journal]
        lines += [f"- **diverges**: {d}" for d in (doc.get("evidence") or {}).get("divergences")
                  or ()]
    picture = mermaid.block(mermaid.trace_flowchart(doc))
    if picture:
        lines += ["", "## Path", ""] + picture
    if report.findings:
        ordered = sorted(report.findings, key=lambda f: f.id != v["cause"])
        lines += ["", "## Findings", ""] + findings_markdown(ordered)
    return "\n".join(lines) + "\n"

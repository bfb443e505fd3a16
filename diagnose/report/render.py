"""render(report, fmt): text for a terminal, JSON for tools."""

from __future__ import annotations

import json

FORMATS = ("text", "json")


def _table(rows: list, header: tuple) -> list:
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    out = []
    for r in [header] + rows:
        out.append("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
    return out


def path_text(report) -> str:
    t = report.target
    dest = report.destination
    where = "its default route"
    if dest.get("address"):
        where = dest["address"]
        if dest.get("query") and dest["query"] != dest["address"]:
            where = f"{dest['query']} ({dest['address']}"
            where += f", resolved by {dest['nameserver']})" if dest.get("nameserver") else ")"
    netns_label = t["netns"]["name"] or f"net:[{t['netns']['inode']}]"
    lines = [f"path from {t['kind']}:{t['name']} (netns {netns_label}) toward {where}"]
    lines.append(f"mode: {report.mode}")
    if report.hops:
        rows = []
        for i, h in enumerate(report.hops, 1):
            d = h.to_dict()
            extra = []
            if h.master and h.role != "bridge":
                extra.append(f"master {h.master}")
            if h.via:
                extra.append(f"via {h.via}")
            rows.append((i, h.role, h.name, d["netns"], h.mac or "-",
                         ",".join(h.addresses) or "-", h.mtu, h.state, " ".join(extra)))
        lines.append("")
        lines += _table(rows, ("#", "ROLE", "INTERFACE", "NETNS", "MAC", "ADDRESSES", "MTU",
                               "STATE", ""))
    lines.append("")
    lines.append("path: complete" if report.complete else "path: INCOMPLETE")
    for note in report.notes:
        lines.append(f"  - {note}")
    return "\n".join(lines) + "\n"


def path(report, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(report.to_dict(), indent=2) + "\n"
    return path_text(report)


# ------------------------------------------------------------------ findings (checks, trace)

CHECKS_SCHEMA = "netdoctor.checks/1"
CHECKS_FORMATS = ("text", "json", "markdown")


def _summary(findings: list) -> dict:
    out = {"error": 0, "warning": 0, "info": 0}
    for f in findings:
        out[f.severity] = out.get(f.severity, 0) + 1
    return out


def _targets(snapshot) -> list:
    out = []
    for c in snapshot.containers:
        t = c.target
        ns = t["netns"].get("name") or f"net:[{t['netns']['inode']}]"
        out.append({"target": f"{t['kind']}:{t['name']}", "netns": ns,
                    "mode": c.path.get("mode"), "complete": c.path.get("complete")})
    return out


def checks_json(snapshot, findings: list) -> str:
    doc = {
        "schema": CHECKS_SCHEMA,
        "host": {k: snapshot.meta.get(k) for k in ("hostname", "kernel", "taken_at", "netdoctor")},
        "destination": snapshot.destination,
        "targets": _targets(snapshot),
        "findings": [f.to_dict() for f in findings],
        "summary": _summary(findings),
        "problems": list(snapshot.problems),
    }
    return json.dumps(doc, indent=2) + "\n"


def _rich_colour(text: str) -> str:
    """Severity words in colour, through Rich (only called when stdout is a terminal)."""
    import io

    from rich.console import Console
    from rich.text import Text

    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=10_000, highlight=False)
    for line in text.splitlines():
        t = Text(line)
        for word, style in (("ERROR", "bold red"), ("WARNING", "yellow"), ("INFO", "cyan")):
            if line.startswith(word):
                t.stylize(style, 0, len(word))
        console.print(t)
    return buf.getvalue()


def checks_text(snapshot, findings: list, colour: bool = False) -> str:
    lines = []
    targets = _targets(snapshot)
    hosts = len(snapshot.hosts)
    lines.append(f"checked {hosts} host namespace{'s' if hosts != 1 else ''} and "
                 f"{len(targets)} container{'s' if len(targets) != 1 else ''}"
                 + (": " + ", ".join(t["target"] for t in targets) if targets else ""))
    for p in snapshot.problems:
        lines.append(f"  not checked: {p}")
    lines.append("")
    for f in findings:
        lines.append(f"{f.severity.upper().ljust(7)} {f.id}  {f.subject}")
        lines.append(f"        {f.message}")
        lines.append(f"        fix: {f.fix}")
        lines.append(f"        runbook: runbooks/{f.id}.md")
    s = _summary(findings)
    if not findings:
        lines.append("no problems found" + (" in what could be checked" if snapshot.problems
                                            else ""))
    lines.append(f"{s['error']} error(s), {s['warning']} warning(s), {s['info']} note(s)")
    text = "\n".join(lines) + "\n"
    return _rich_colour(text) if colour else text


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def findings_markdown(findings: list) -> list:
    """The findings table and, for each finding, its runbook filled with the real names."""
    from netdoctor import runbooks

    lines = ["| Severity | ID | Subject | Finding |", "| --- | --- | --- | --- |"]
    for f in findings:
        lines.append(f"| {f.severity} | `{f.id}` | {_md_cell(f.subject)} | {_md_cell(f.message)} |")
    for i, f in enumerate(findings, 1):
        lines += ["", f"### {i}. `{f.id}` on {f.subject} ({f.severity})", "", f.message, "",
                  "Evidence:", "", "```json", json.dumps(f.evidence, indent=2, default=str), "```"]
        page = runbooks.text(f.id)
        parts = runbooks.sections(page) if page else {}
        why = parts.get("Why it breaks traffic")
        if why:
            lines += ["", "**Why it breaks traffic.** " + runbooks.fill(why, f.vars)]
        for name in ("Confirm", "Fix", "Revert"):
            body = parts.get(name)
            if name == "Fix" and not body:
                body = f"    {f.fix}"
            if body:
                lines += ["", f"**{name}**", "", runbooks.fill(body, f.vars)]
    return lines


def checks_markdown(snapshot, findings: list) -> str:
    meta = snapshot.meta
    s = _summary(findings)
    lines = [f"# netdoctor checks: {meta.get('hostname', '?')}", "",
             f"- taken: {meta.get('taken_at', '?')}, kernel {meta.get('kernel', '?')}, "
             f"netdoctor {meta.get('netdoctor', '?')}",
             f"- result: {s['error']} error(s), {s['warning']} warning(s), {s['info']} note(s)"]
    targets = _targets(snapshot)
    if targets:
        lines.append("- targets: " + ", ".join(f"`{t['target']}` (netns {t['netns']})"
                                               for t in targets))
    for p in snapshot.problems:
        lines.append(f"- not checked: {p}")
    lines.append("")
    if findings:
        lines += ["## Findings", ""] + findings_markdown(findings)
    else:
        lines.append("No problems found.")
    return "\n".join(lines) + "\n"


def checks(snapshot, findings: list, fmt: str, colour: bool = False) -> str:
    if fmt == "json":
        return checks_json(snapshot, findings)
    if fmt == "markdown":
        return checks_markdown(snapshot, findings)
    return checks_text(snapshot, findings, colour)


# ------------------------------------------------------------------ trace

TRACE_FORMATS = ("text", "json", "markdown")


def _trace_header(report) -> str:
    t, d, p = report.target, report.destination, report.probe
    what = {"icmp": "ICMP echo", "tcp": f"TCP SYN to port {p['port']}",
            "udp": f"UDP (DNS) to port {p['port']}"}[p["kind"]]
    where = d["query"]
    if d.get("address") and d["address"] != d["query"]:
        where += f" ({d['address']})"
    if not d.get("resolved", True):
        where += f": name not resolved, tracing the path to nameserver {d.get('nameserver')}"
    return f"trace {t['kind']}:{t['name']} -> {where}, {what}"


def _runbook_exists(check_id: str) -> bool:
    from netdoctor import runbooks

    return runbooks.text(check_id) is not None


def _verdict_lines(v: dict, report) -> list:
    if v["reachable"] and not v["cause"]:
        rtt = report.probe.get("rtt_ms")
        return ["verdict: REACHABLE" + (f" (rtt {rtt:.2f} ms)" if rtt else "")
                + (f"; {report.probe['detail']}" if report.probe.get("detail") else "")]
    lines = []
    if v["reachable"]:
        lines.append(f"verdict: REACHABLE, but {v['cause']}: {v['explanation']}")
    else:
        if v["direction"] is None and v["stopped_at"] is None:  # e.g. a name with no address
            lines.append(f"verdict: NOT REACHABLE; {v['explanation']}")
        else:
            where = v["stopped_at"] or "inside the container (never left it)"
            lines.append(f"verdict: NOT REACHABLE; the {v['direction'] or 'probe'} stopped "
                         f"at {where}")
        lines.append(f"cause: {v['cause']}")
        plain = (f"the {v['direction']} was last seen at {v['stopped_at']}",
                 "the request never left the container")
        if v["explanation"] and v["explanation"] not in plain:
            lines.append(f"why: {v['explanation']}")
    if v.get("kernel_drop_reason"):
        lines.append(f"kernel: dropped with reason {v['kernel_drop_reason']}"
                     + (f" at {v['kernel_location']}" if v.get("kernel_location") else ""))
    if v.get("rule"):
        lines.append(f"rule: {v['rule']}")
    return lines


def trace_text(report) -> str:
    doc = report.to_dict()
    lines = [_trace_header(report), ""]
    rows = []
    v = doc["verdict"]
    for h in doc["hops"]:
        seen = []
        for k in ("request", "reply"):
            if k in h["addresses_seen"]:
                seen.append(f"{k} {h['addresses_seen'][k]}")
        mark = ""
        if not v["reachable"] and v["stopped_at"] == h["role"]:
            mark = "<- stopped here"
        first = "-" if h["first_seen_us"] is None else f"+{h['first_seen_us']}"
        note = h["capture_error"] or ""
        if h.get("arp_unanswered"):
            note = f"ARP for {', '.join(h['arp_unanswered'])}: no reply"
        rows.append((h["role"], h["name"], h["netns"], h["request_seen"], h["reply_seen"], first,
                     "; ".join(seen) or "-", mark or note))
    lines += _table(rows, ("HOP", "INTERFACE", "NETNS", "REQ", "REPLY", "FIRST µs",
                           "ADDRESSES SEEN", ""))
    if not doc["hops"]:
        lines.append("(no hops: the container has no path to trace)")
    lines.append("")
    lines += _verdict_lines(v, report)
    if report.pmtu is not None:
        p = report.pmtu
        if p["answered"]:
            how = "answered"
        elif p.get("discovery_works"):
            how = (f"not answered, but the sender was told ({p['detail']}): the path MTU is "
                   f"smaller than the container's, and path MTU discovery works")
        else:
            how = f"NOT answered ({p['detail'] or 'no reply'})"
        lines.append(f"path MTU: a {p['size']}-byte don't-fragment probe was {how}")
    cause = next((f for f in report.findings if f.id == v["cause"]), None)
    if cause is not None:
        lines += ["", f"{cause.severity.upper()} {cause.id}: {cause.message}",
                  f"  fix: {cause.fix}", f"  runbook: runbooks/{cause.id}.md"]
    elif not v["reachable"] and v["cause"] and _runbook_exists(v["cause"]):
        # The cause rests on the probe's evidence alone (no check found it beforehand).
        lines += ["", f"runbook: runbooks/{v['cause']}.md"]
    others = [f for f in report.findings if f is not cause]
    if others:
        lines.append("")
        lines.append("other findings on this path:")
        for f in others:
            lines.append(f"  {f.severity:<7} {f.id}: {f.message}")
    lines.append("")
    lines.append(f"evidence: {', '.join(v['evidence_used'])}; took {report.elapsed_ms} ms")
    return "\n".join(lines) + "\n"


def trace_markdown(report) -> str:
    doc = report.to_dict()
    v = doc["verdict"]
    lines = [f"# netdoctor trace: {_trace_header(report)}", ""]
    lines += [f"- {line}" for line in _verdict_lines(v, report)]
    lines += ["", "## Hops", "", "| hop | interface | netns | requests | replies | first seen (µs) "
              "| addresses seen |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for h in doc["hops"]:
        seen = "; ".join(f"{k}: {a}" for k, a in h["addresses_seen"].items()) or "-"
        mark = " **(stopped here)**" if not v["reachable"] and v["stopped_at"] == h["role"] else ""
        lines.append(f"| {h['role']}{mark} | {h['name']} | {h['netns']} | {h['request_seen']} | "
                     f"{h['reply_seen']} | {h['first_seen_us'] if h['first_seen_us'] is not None else '-'} "
                     f"| {_md_cell(seen)} |")
    if report.findings:
        ordered = sorted(report.findings, key=lambda f: f.id != v["cause"])
        lines += ["", "## Findings", ""] + findings_markdown(ordered)
    return "\n".join(lines) + "\n"


def trace(report, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(report.to_dict(), indent=2, default=str) + "\n"
    if fmt == "markdown":
        return trace_markdown(report)
    return trace_text(report)

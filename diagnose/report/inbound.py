"""The inbound report as text, Markdown and JSON (schema netdoctor.inbound/1)."""

from __future__ import annotations

import json

from .text import table
from ..reason.inbound import host_port


def _title(doc: dict) -> str:
    t, p = doc["target"], doc["port"]
    host = host_port(doc['walk'].get('host_address'), p.get('host_port') or '?')
    inside = p.get("container_port") or "?"
    how = {"runtime": "published by the runtime", "asked": "as asked"}.get(p.get("source"), "")
    return (f"inbound {p['proto']} {host} -> {t['kind']}:{t['name']} port {inside} ({how}), "
            f"client {doc['client']}")


def _kind(doc: dict) -> str:
    """outside, host (--from 127.0.0.1) or self (the container, through the host's address)."""
    return (doc.get("walk") or {}).get("client_kind") or "outside"


WHENCE = {"outside": "from outside", "host": "from this host",
          "self": "from the container itself, through the host's address"}
WALKED = {"outside": "inbound path, as an outside client's first packet meets it:",
          "host": "inbound path, as this host's own connection meets it:",
          "self": "inbound path, as the container's own connection to the host's address "
                  "meets it (hairpin NAT):"}


PROBE = {"outside": "the host's own probe", "host": "the host's own probe",
         "self": "the container's probe"}


def _verdict(v: dict, kind: str = "outside") -> list:
    whence, local = WHENCE[kind], kind != "outside"
    if v["reachable"]:
        return [f"verdict: REACHABLE {whence} ({v['explanation']})"]
    lines = [f"verdict: NOT REACHABLE {whence}"
             + (f"; {PROBE[kind]} stopped at {v['stopped_at']}" if v.get("stopped_at")
                else "")]
    lines.append(f"cause: {v['cause']}")
    if v.get("explanation"):
        lines.append(f"why: {v['explanation']}")
    if v.get("kernel_drop_reason"):
        lines.append(f"kernel: dropped with reason {v['kernel_drop_reason']}")
    if v.get("reachable_from_host") and not local:
        lines.append("note: the host itself can connect (its probe does not cross "
                     "PREROUTING or FORWARD)")
    return lines


def text(report) -> str:
    doc = report.to_dict()
    lines = [_title(doc), "", WALKED[_kind(doc)]]
    for s in doc["walk"].get("steps", ()):
        lines.append(f"  {s['hook']:<22} {s['verdict']:<14} {s['said']}")
    p = doc["probe"]
    lines.append("")
    if p.get("sent"):
        lines.append(f"probe: {p.get('kind', 'one SYN')} from {p['from']} to {p['to']} (source port "
                     f"{p['source_port']}): {p['outcome'] or 'no answer'}"
                     + (f", {p['detail']}" if p.get("detail") else ""))
        rows = [(h["role"], h["name"], h["netns"], h["request_seen"], h["reply_seen"],
                 "; ".join(f"{k} {a}" for k, a in h["addresses_seen"].items()) or "-")
                for h in doc["hops"]]
        lines += [""] + table(rows, ("HOP", "INTERFACE", "NETNS", "REQ", "REPLY",
                                     "ADDRESSES SEEN"))
    elif p.get("watched"):
        if p.get("client"):
            lines.append(f"watched {p['watched']:g} s: a connection from {p['client']}:"
                         f"{p['client_port']} to {p['to']}: {p['detail']}")
        else:
            lines.append(f"watched {p['watched']:g} s: {p['detail']}")
        rows = [(h["role"], h["name"], h["netns"], h["request_seen"], h["reply_seen"],
                 "; ".join(f"{k} {a}" for k, a in h["addresses_seen"].items()) or "-")
                for h in doc["hops"]]
        lines += [""] + table(rows, ("HOP", "INTERFACE", "NETNS", "REQ", "REPLY",
                                     "ADDRESSES SEEN"))
    else:
        lines.append(f"probe: not sent ({p.get('why_not')})")
    lines += [""] + _verdict(doc["verdict"], _kind(doc))
    cause = next((f for f in report.findings if f.id == doc["verdict"]["cause"]), None)
    if cause is not None:
        lines += ["", f"{cause.severity.upper()} {cause.id}: {cause.message}",
                  f"  {cause.action}", f"  runbook: runbooks/{cause.id}.md"]
    others = [f for f in report.findings if f is not cause]
    if others:
        lines += ["", "other findings:"] + [f"  {f.severity:<7} {f.id}: {f.message}"
                                            for f in others]
    if doc["untested"] and p.get("sent"):
        lines += ["", "not crossed by the host's probe (the static walk above speaks for "
                      "them): " + ", ".join(u["part"] for u in doc["untested"])]
    lines += ["", f"took {doc['elapsed_ms']} ms"]
    return "\n".join(lines) + "\n"


def markdown(report) -> str:
    from .markdown import findings_markdown, md_cell

    doc = report.to_dict()
    lines = [f"# netdoctor {_title(doc)}", ""] + [f"- {l}" for l in _verdict(doc["verdict"], _kind(doc))]
    lines += ["", "## Inbound path", "", "| hook | verdict | decided by |", "| --- | --- | --- |"]
    lines += [f"| {s['hook']} | {s['verdict']} | {md_cell(s['said'])} |"
              for s in doc["walk"].get("steps", ())]
    if report.findings:
        ordered = sorted(report.findings, key=lambda f: f.id != doc["verdict"]["cause"])
        lines += ["", "## Findings", ""] + findings_markdown(ordered)
    return "\n".join(lines) + "\n"


def render(report, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(report.to_dict(), indent=2, default=str) + "\n"
    return markdown(report) if fmt == "markdown" else text(report)

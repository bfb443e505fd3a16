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

"""Reports: one module per format (text.py, markdown.py, as_json.py) and redaction
(redact.py). path(), checks() and trace() give a report in the format asked for."""

from __future__ import annotations

import json

FORMATS = ("text", "json")
CHECKS_FORMATS = ("text", "json", "markdown")
TRACE_FORMATS = ("text", "json", "markdown")


def path(report, fmt: str) -> str:
    from . import text

    if fmt == "json":
        return json.dumps(report.to_dict(), indent=2) + "\n"
    return text.path_text(report)


def checks(snapshot, findings: list, fmt: str, colour: bool = False) -> str:
    from . import as_json, markdown, text

    if fmt == "json":
        return as_json.checks_json(snapshot, findings)
    if fmt == "markdown":
        return markdown.checks_markdown(snapshot, findings)
    return text.checks_text(snapshot, findings, colour)


def trace(report, fmt: str) -> str:
    from . import markdown, text

    if fmt == "json":
        return json.dumps(report.to_dict(), indent=2, default=str) + "\n"
    if fmt == "markdown":
        return markdown.trace_markdown(report)
    return text.trace_text(report)

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


def checks(snapshot, findings: list, fmt: str, colour: bool = False, prepared=None) -> str:
    """prepared: what prepare_checks gave for this format, from the snapshot before its DNS
    answers (the parts that do not depend on them)."""
    from . import as_json, markdown, text

    if fmt == "json":
        return as_json.checks_json(snapshot, findings, prepared)
    if fmt == "markdown":
        return markdown.checks_markdown(snapshot, findings)
    return text.checks_text(snapshot, findings, colour)


def prepare_checks(snapshot, fmt: str):
    """The parts of the checks report that need no DNS answer, made while they come."""
    if fmt == "json":
        from . import as_json

        return as_json.encoded_target_rows(snapshot)
    return None


def trace(report, fmt: str) -> str:
    from . import markdown, text

    if fmt == "json":
        return json.dumps(report.to_dict(), indent=2, default=str) + "\n"
    if fmt == "markdown":
        return markdown.trace_markdown(report)
    return text.trace_text(report)

"""netdoctor report FILE"""

from __future__ import annotations

import json

import typer

from .common import REDACT_HELP, check_format, emit
from ..errors import UsageError

FORMATS = ("text", "markdown", "mermaid", "dot", "json")


def report(
    file: str = typer.Argument(..., help="A saved trace, path or checks report "
                                         "(--format json), or - for standard input."),
    fmt: str = typer.Option("text", "--format", "-f", help="text, markdown, mermaid, dot or json."),
    redact: bool = typer.Option(False, "--redact", help=REDACT_HELP),
) -> None:
    """Render a saved report again (a trace, path or checks JSON document, taken on any
    machine) as text, Markdown, or a Mermaid or Graphviz DOT picture of the path. Reads only the file: no
    root, no namespace, nothing sent."""
    import sys

    from .. import report as reports
    from ..report import markdown, mermaid, saved, text

    check_format(fmt, FORMATS)
    try:
        if file == "-":
            doc = json.load(sys.stdin)
        else:
            with open(file, encoding="utf-8") as f:
                doc = json.load(f)
    except FileNotFoundError:
        raise UsageError(f"no such file: {file}") from None
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read report {file}: {e}") from None
    kind = saved.kind_of(doc)
    if fmt == "dot":
        if kind not in ("trace", "path"):
            raise UsageError("a checks report has no single path to draw: use --format "
                             "text or markdown (or `netdoctor map --format dot`)")
        from ..report.netmap import path_dot

        out = "\n".join(path_dot(doc)) + "\n"
    elif fmt == "json":
        out = json.dumps(doc, indent=2) + "\n"
    elif kind == "trace":
        r = saved.trace_report(doc)
        out = {"text": text.trace_text, "markdown": markdown.trace_markdown}.get(
            fmt, lambda r: "\n".join(mermaid.trace_flowchart(doc)) + "\n")(r)
    elif kind == "path":
        if fmt == "text":
            out = text.path_text(saved.path_report(doc))
        else:
            lines = mermaid.path_flowchart(doc)
            out = "\n".join(mermaid.block(lines) if fmt == "markdown" else lines) + "\n"
    else:
        if fmt == "mermaid":
            raise UsageError("a checks report has no single path to draw: use --format "
                             "text or markdown")
        snap, findings = saved.checks_report(doc)
        out = reports.checks(snap, findings, fmt)
    names = None
    if redact:  # the names the report itself carries: the destination asked for, the host
        dest = doc.get("destination")
        names = [dest.get("query")] if isinstance(dest, dict) else []
        names.append((doc.get("host") or {}).get("hostname"))
    emit(out, names)

"""netdoctor map [TARGET...]"""

from __future__ import annotations

from typing import List, Optional

import typer

from .common import check_format, emit

FORMATS = ("text", "mermaid", "dot", "json")


def map_(
    targets_: List[str] = typer.Argument(None, metavar="[TARGET]...",
                                         help="Containers to draw (default: all running)."),
    fmt: str = typer.Option("text", "--format", "-f", help="text, mermaid, dot or json."),
    problems: bool = typer.Option(False, "--problems",
                                  help="Run the checks and draw their findings on the map."),
    from_file: Optional[str] = typer.Option(None, "--from",
                                            help="Draw a saved snapshot (no root needed)."),
) -> None:
    """Draw this host's container network: every container, veth, bridge, macvlan parent,
    tunnel and uplink with their addresses, which networks can reach which through the
    host's FORWARD rules, and the isolation groups. Read-only; sends nothing."""
    import json

    from ..errors import UsageError
    from ..pipeline import snapshot
    from ..reason import netmap
    from ..report import netmap as draw

    check_format(fmt, FORMATS)
    if from_file:
        if targets_:
            raise UsageError("--from draws a saved snapshot: give no TARGET with it")
        snap = snapshot.from_file(from_file)
    else:
        snap = snapshot.of_targets(targets_, False, None, False)
    findings = []
    if problems:
        from netdoctor.checks import run_checks

        findings = run_checks(snap)
    doc = netmap.build(snap, findings).to_dict()
    if fmt == "json":
        out = json.dumps(doc, indent=2) + "\n"
    else:
        out = "\n".join({"text": draw.text, "mermaid": draw.mermaid, "dot": draw.dot}[fmt](doc))
        out += "\n"
    emit(out, None)

"""netdoctor snapshot [TARGET...] -o FILE"""

from __future__ import annotations

import json
import sys
from typing import List, Optional

import typer


def snapshot(
    targets_: List[str] = typer.Argument(None, metavar="[TARGET]...",
                                         help="Containers to include (default: all running)."),
    output: str = typer.Option(..., "--output", "-o", help="File to write ('-' for stdout)."),
    all_containers: bool = typer.Option(False, "--all-containers",
                                        help="Also include every running container."),
    dest: Optional[str] = typer.Option(None, "--dest", help="Destination address for the path."),
    no_dns_probe: bool = typer.Option(False, "--no-dns-probe", help="Send no DNS query."),
) -> None:
    """Save everything `checks` judges to a JSON file, to check it later anywhere with
    `netdoctor checks --from FILE`."""
    from ..pipeline import snapshot as taking

    snap = taking.of_targets(targets_, all_containers, dest, not no_dns_probe)
    text = json.dumps(snap.to_dict(), indent=1) + "\n"
    if output == "-":
        sys.stdout.write(text)
        return
    with open(output, "w", encoding="utf-8") as f:
        f.write(text)
    typer.echo(f"snapshot of {len(snap.hosts)} host namespace(s) and "
               f"{len(snap.containers)} container(s) written to {output}")

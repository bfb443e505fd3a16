"""netdoctor cleanup [--dry-run]"""

from __future__ import annotations

import json

import typer

from .common import check_format
from .status import ExitStatus
from ..host import privileges


def cleanup(
    dry_run: bool = typer.Option(False, "--dry-run", "-n",
                                 help="Only list what would be removed."),
    fmt: str = typer.Option("text", "--format", "-f", help="text or json."),
) -> None:
    """Remove what netdoctor runs that were killed (SIGKILL, power loss) left on the host:
    tracefs instances and private tracefs mounts, found by their run tag, and the nftrace
    tables of `trace --allow-trace-rules`, found by their run's record. Runs still at work
    are left alone. Exit 0 when nothing is left, 1 when something could not be removed (or,
    with --dry-run, when something would be)."""
    from netdoctor.capture import runs

    check_format(fmt, ("text", "json"))
    privileges.require(privileges.CAP_SYS_ADMIN, why="cleanup unmounts and removes tracefs "
                                                     "instances")
    found, live = runs.cleanup(dry_run=dry_run)
    if fmt == "json":
        typer.echo(json.dumps({"schema": "netdoctor.cleanup/1", "dry_run": dry_run,
                               "residue": [r.to_dict() for r in found],
                               "live_runs": live}, indent=2))
    else:
        for r in found:
            state = ("would remove" if dry_run else "removed" if r.removed
                     else f"could not remove ({r.error})")
            owner = f" (run {r.owner})" if r.owner else ""
            typer.echo(f"{state}: {r.kind} {r.path}{owner}")
        for pid in live:
            typer.echo(f"left alone: run {pid} is still running")
        if not found:
            typer.echo("nothing to clean up")
    left = [r for r in found if not r.removed]
    raise typer.Exit(ExitStatus.PROBLEM if left else ExitStatus.OK)

"""netdoctor checks [TARGET...]"""

from __future__ import annotations

import sys
from typing import List, Optional

import typer

from .common import Progress, REDACT_HELP, check_format, emit, id_list, wants_progress
from .status import ExitStatus
from ..errors import UsageError


def checks(
    targets_: List[str] = typer.Argument(None, metavar="[TARGET]...",
                                         help="Containers to check (default: all running)."),
    all_containers: bool = typer.Option(False, "--all-containers",
                                        help="Also check every running container."),
    only: Optional[str] = typer.Option(None, "--only", help="Run only these check IDs (a,b,...)."),
    skip: Optional[str] = typer.Option(None, "--skip", help="Do not run these check IDs (a,b,...)."),
    tags: Optional[str] = typer.Option(None, "--tags",
                                       help="Run only the checks with one of these tags "
                                            "(a,b,...; see --list)."),
    fmt: str = typer.Option("text", "--format", "-f", help="text, json or markdown."),
    fail_on: str = typer.Option("error", "--fail-on",
                                help="Exit 1 when a finding is at least this severe: "
                                     "warning or error."),
    from_file: Optional[str] = typer.Option(None, "--from",
                                            help="Judge a saved snapshot (no root needed)."),
    dest: Optional[str] = typer.Option(None, "--dest",
                                       help="Destination address or name the traffic is "
                                            "checked for; a name is resolved inside each "
                                            "container (default: any internet address)."),
    no_dns_probe: bool = typer.Option(False, "--no-dns-probe",
                                      help="Send no DNS query (dns-unreachable then only "
                                           "checks routes)."),
    list_: bool = typer.Option(False, "--list", help="List the checks and exit."),
    redact: bool = typer.Option(False, "--redact", help=REDACT_HELP),
) -> None:
    """Check the host and containers for every misconfiguration that can stop container
    traffic. Read-only; sends one DNS query per container nameserver. Exit 1 when a finding
    is at or above --fail-on."""
    from netdoctor.checks import SEVERITY_RANK, load_all, run_checks, select
    from ..pipeline import snapshot
    from .. import report as reports

    chosen = select(id_list(only), id_list(skip), id_list(tags))
    if list_:
        for cid, cls in sorted(load_all().items()):
            if cid in chosen:
                typer.echo(f"{cid:<28} {cls.severity:<8} {cls.scope:<10} "
                           f"{','.join(cls.tags):<24} {cls.title()}")
        return
    check_format(fmt, reports.CHECKS_FORMATS)
    if fail_on not in ("warning", "error"):
        raise UsageError(f"--fail-on must be warning or error (got '{fail_on}')")
    if from_file:
        if targets_ or all_containers or dest:
            raise UsageError("--from judges a saved snapshot: give no TARGET, --dest or "
                             "--all-containers with it")
        snap = snapshot.from_file(from_file)
    else:
        with Progress(wants_progress(fmt)) as progress:
            snap = snapshot.of_targets(targets_, all_containers, dest, not no_dns_probe,
                                       progress)
    findings = run_checks(snap, chosen)
    names = None
    if redact:
        from ..parse.resolv_conf import parse_resolv_conf

        names = [snap.meta.get("hostname")] + [
            n for c in snap.containers for n in parse_resolv_conf(c.resolv_conf or "").search]
    emit(reports.checks(snap, findings, fmt, fmt == "text" and sys.stdout.isatty()), names)
    worst = max((SEVERITY_RANK.get(f.severity, 0) for f in findings), default=0)
    raise typer.Exit(ExitStatus.PROBLEM if worst >= SEVERITY_RANK[fail_on] else ExitStatus.OK)

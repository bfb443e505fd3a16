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
    on: Optional[str] = typer.Option(
        None, "--on", metavar="HOSTS",
        help="Run the checks on these hosts over SSH, at once, and merge the reports: "
             "host1,user@host2,ssh://host3:2222 or @FILE (one per line)."),
    ssh_config: Optional[str] = typer.Option(None, "--ssh-config",
                                             help="With --on: passed to ssh as -F FILE."),
    host_timeout: float = typer.Option(60.0, "--host-timeout",
                                       help="With --on: seconds each host has (5-600)."),
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
    prepared = []  # the report's parts made while the DNS answers come
    if list_:
        for cid, cls in sorted(load_all().items()):
            if cid in chosen:
                typer.echo(f"{cid:<28} {cls.severity:<8} {cls.scope:<10} "
                           f"{','.join(cls.tags):<24} {cls.title()}")
        return
    check_format(fmt, reports.CHECKS_FORMATS)
    if fail_on not in ("warning", "error"):
        raise UsageError(f"--fail-on must be warning or error (got '{fail_on}')")
    if on:
        if from_file:
            raise UsageError("--on checks live hosts: leave out --from")
        return _on_hosts(on, ssh_config, host_timeout, fmt, fail_on, targets_, all_containers,
                         only, skip, tags, dest, no_dns_probe)
    if ssh_config:
        raise UsageError("--ssh-config goes with --on")
    if from_file:
        if targets_ or all_containers or dest:
            raise UsageError("--from judges a saved snapshot: give no TARGET, --dest or "
                             "--all-containers with it")
        snap = snapshot.from_file(from_file)
        findings = run_checks(snap, chosen)
    else:
        with Progress(wants_progress(fmt)) as progress:
            # The DNS probe is sent only for a check that reads its answers.
            probe = not no_dns_probe and any("dns-probe" in load_all()[cid].needs
                                             for cid in chosen)
            snap, answered = snapshot.of_targets_deferred(targets_, all_containers, dest,
                                                          probe, progress)

            def when_answered():
                # what the report needs no answer for is made while they come
                prepared.append(reports.prepare_checks(snap, fmt))
                return answered()

            # judged while the nameservers answer; the DNS checks once they have
            findings = run_checks(snap, chosen, when_answered)
            snap = answered()
    names = None
    if redact:
        from ..parse.resolv_conf import parse_resolv_conf

        names = [snap.meta.get("hostname")] + [
            n for c in snap.containers for n in parse_resolv_conf(c.resolv_conf or "").search]
    emit(reports.checks(snap, findings, fmt, fmt == "text" and sys.stdout.isatty(),
                        prepared[0] if prepared else None), names)
    worst = max((SEVERITY_RANK.get(f.severity, 0) for f in findings), default=0)
    raise typer.Exit(ExitStatus.PROBLEM if worst >= SEVERITY_RANK[fail_on] else ExitStatus.OK)


def _on_hosts(on, ssh_config, timeout, fmt, fail_on, targets_, all_containers, only, skip,
              tags, dest, no_dns_probe) -> None:
    """checks --on: the same checks on every host over SSH, at once; one report, one section
    per host, one exit status (an unreachable host is a problem of the report)."""
    import json
    import os

    from netdoctor.checks import SEVERITY_RANK
    from .. import report as reports
    from ..host.peer import host_list, run_on_each
    from ..report import saved

    hosts = host_list(on)
    if ssh_config and not os.path.isfile(ssh_config):
        raise UsageError(f"--ssh-config {ssh_config}: no such file")
    if not 5 <= timeout <= 600:
        raise UsageError("--host-timeout must be between 5 and 600 seconds")
    args = ["checks", "--format", "json", "--fail-on", fail_on] + list(targets_ or [])
    for flag, value in (("--only", only), ("--skip", skip), ("--tags", tags), ("--dest", dest)):
        if value:
            args += [flag, value]
    if all_containers:
        args.append("--all-containers")
    if no_dns_probe:
        args.append("--no-dns-probe")
    answers = run_on_each(hosts, args, ssh_config, timeout)
    sections, worst, failed = [], 0, []
    for a in answers:
        if a["ok"]:
            try:
                a["report"] = json.loads(a["stdout"])
                snap, findings = saved.checks_report(a["report"])
            except (ValueError, UsageError) as e:
                a.update(ok=False, error=f"its report could not be read: {e}")
        if not a["ok"]:
            failed.append(a)
            sections.append((a, None))
            continue
        worst = max([worst] + [SEVERITY_RANK.get(f.severity, 0) for f in findings])
        sections.append((a, reports.checks(snap, findings, fmt) if fmt != "json" else None))
    if fmt == "json":
        doc = {"schema": "netdoctor.fleet/1",
               "hosts": [{"host": a["host"], "ok": a["ok"], "error": a["error"],
                          "report": a.get("report")} for a in answers]}
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    else:
        out = []
        for a, text in sections:
            head = f"== {a['host']} =="
            out.append(f"## {a['host']}\n" if fmt == "markdown" else head + "\n")
            out.append(text if text is not None else f"not checked: {a['error']}\n")
            out.append("\n")
        ok = len(answers) - len(failed)
        out.append(f"{ok} of {len(answers)} host(s) checked"
                   + (f"; not reached: {', '.join(a['host'] for a in failed)}" if failed
                      else "") + "\n")
        emit("".join(out), None)
    for a in failed:
        sys.stderr.write(f"netdoctor: {a['host']}: {a['error']}\n")
    problem = failed or worst >= SEVERITY_RANK[fail_on]
    raise typer.Exit(ExitStatus.PROBLEM if problem else ExitStatus.OK)

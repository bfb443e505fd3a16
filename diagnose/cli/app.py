"""The `netdoctor` command line. Exceptions become exit statuses here, and only here."""

from __future__ import annotations

import json
import sys
from typing import List, Optional

import typer

from netdoctor.diagnose import __version__
from netdoctor.diagnose.host import privileges
from netdoctor.diagnose.errors import NetdoctorError, UsageError
from netdoctor.diagnose.cli.status import ExitStatus
from netdoctor.diagnose.targets.destination import parse_destination

HELP = """Find where a container's packets stop, and why.

TARGET is a container name or ID (Docker, podman, containerd), docker:NAME,
podman:NAME, containerd:ID, lab:NAME, pid:N or netns:NAME.
"""

app = typer.Typer(help=HELP, no_args_is_help=True, add_completion=False,
                  pretty_exceptions_enable=False, rich_markup_mode=None)
lab_app = typer.Typer(help="The built-in sealed lab: a Docker-like host and a fake internet.",
                      no_args_is_help=True)
app.add_typer(lab_app, name="lab")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"netdoctor {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """Find where a container's packets stop, and why."""


def _check_format(fmt: str, allowed: tuple) -> str:
    if fmt not in allowed:
        raise UsageError(f"--format must be one of: {', '.join(allowed)} (got '{fmt}')")
    return fmt


@app.command()
def path(
    target: str = typer.Argument(..., help="The container (see TARGET above)."),
    dest: Optional[str] = typer.Argument(
        None, help="Destination address or name (resolved from inside the container); "
                   "default: the container's default route."),
    fmt: str = typer.Option("text", "--format", "-f", help="text or json."),
    redact: bool = typer.Option(False, "--redact",
                                help="Replace public addresses and host names with stable "
                                     "placeholders, for pasting in public places."),
) -> None:
    """Show the hops from the container to the host's uplink: container eth0, host veth,
    bridge, uplink NIC. Exit 0 when the path is complete, 1 when it is not."""
    from netdoctor.diagnose.pipeline import path as discover
    from netdoctor.diagnose.report import render
    from netdoctor.diagnose import targets

    _check_format(fmt, render.FORMATS)
    t = targets.resolve(target)
    report = discover.discover(t, dest)
    _emit(render.path(report, fmt),
          _report_names(t, parse_destination(dest, None, None)[0] if dest else None)
          if redact else None)
    raise typer.Exit(ExitStatus.OK if report.complete else ExitStatus.PROBLEM)


@app.command()
def trace(
    target: str = typer.Argument(..., help="The container (see TARGET above)."),
    dest: str = typer.Argument(..., help="Address, name (resolved inside the container), "
                                         "or HOST:PORT."),
    port: Optional[int] = typer.Option(None, "--port", "-p", help="Probe this port (TCP SYN)."),
    proto: Optional[str] = typer.Option(None, "--proto", help="icmp, tcp or udp."),
    fmt: str = typer.Option("text", "--format", "-f", help="text, json or markdown."),
    pcap_dir: Optional[str] = typer.Option(None, "--pcap-dir",
                                           help="Write one pcap per hop into this folder."),
    timeout: float = typer.Option(1.0, "--timeout", help="Seconds to wait for replies (0.1-10)."),
    redact: bool = typer.Option(False, "--redact",
                                help="Replace public addresses and host names with stable "
                                     "placeholders, for pasting in public places."),
) -> None:
    """Probe DEST from inside the container while capturing on every hop at once, and say
    where the packets stop and why. Exit 0 when reachable, 1 when not."""
    from netdoctor.diagnose.report import render
    from netdoctor.diagnose import targets
    from netdoctor.diagnose.pipeline import trace as tracing

    _check_format(fmt, render.TRACE_FORMATS)
    if not 0.1 <= timeout <= 10:
        raise UsageError("--timeout must be between 0.1 and 10 seconds")
    host = parse_destination(dest, port, proto)[0]  # bad input fails before any I/O
    if redact and pcap_dir:
        raise UsageError("--redact cannot redact packet captures: leave out --pcap-dir")
    privileges.require(privileges.CAP_SYS_ADMIN, privileges.CAP_NET_RAW,
                       privileges.CAP_NET_ADMIN, why="trace enters namespaces and captures")
    t = targets.resolve(target)
    report = tracing.trace(t, dest, port=port, proto=proto, timeout=timeout, pcap_dir=pcap_dir)
    _emit(render.trace(report, fmt), _report_names(t, host) if redact else None)
    for why in report.evidence.get("degraded", ()):
        sys.stderr.write(f"netdoctor: warning: {why}\n")
    v = report.verdict
    raise typer.Exit(ExitStatus.OK if v.reachable and not v.cause else ExitStatus.PROBLEM)


def _report_names(target, dest_host: Optional[str]) -> list:
    """The host names a report about target names: its destination and the search domains
    of its resolv.conf (for --redact)."""
    from netdoctor.diagnose.host import resolver

    return [dest_host] + list(resolver.read_resolv_conf(target.resolv_conf).search)


def _emit(report: str, redact_names: Optional[list] = None) -> None:
    """Write a report to stdout; with redact_names (a list, maybe empty), redacted: public
    addresses, these names and this machine's name become placeholders (diagnose/redact.py)."""
    if redact_names is not None:
        import socket

        from netdoctor.diagnose.report.redact import Redactor

        report = Redactor(redact_names + [socket.gethostname()]).text(report)
    sys.stdout.write(report)


def _split_ids(only: Optional[str]) -> Optional[set]:
    if not only:
        return None
    return {i.strip() for i in only.split(",") if i.strip()}


@app.command()
def checks(
    targets_: List[str] = typer.Argument(None, metavar="[TARGET]...",
                                         help="Containers to check (default: all running)."),
    all_containers: bool = typer.Option(False, "--all-containers",
                                        help="Also check every running container."),
    only: Optional[str] = typer.Option(None, "--only", help="Run only these check IDs (a,b,...)."),
    fmt: str = typer.Option("text", "--format", "-f", help="text, json or markdown."),
    fail_on: str = typer.Option("error", "--fail-on",
                                help="Exit 1 when a finding is at least this severe: "
                                     "warning or error."),
    from_file: Optional[str] = typer.Option(None, "--from",
                                            help="Judge a saved snapshot (no root needed)."),
    dest: Optional[str] = typer.Option(None, "--dest",
                                       help="Destination the container traffic is checked for "
                                            "(default: any internet address)."),
    no_dns_probe: bool = typer.Option(False, "--no-dns-probe",
                                      help="Send no DNS query (dns-unreachable then only "
                                           "checks routes)."),
    list_: bool = typer.Option(False, "--list", help="List the checks and exit."),
    redact: bool = typer.Option(False, "--redact",
                                help="Replace public addresses and host names with stable "
                                     "placeholders, for pasting in public places."),
) -> None:
    """Check the host and containers for every misconfiguration that can stop container
    traffic. Read-only; sends one DNS query per container nameserver. Exit 1 when a finding
    is at or above --fail-on."""
    from netdoctor.checks import SEVERITY_RANK, load_all, run_checks
    from netdoctor.diagnose.report import render

    if list_:
        for cid, cls in sorted(load_all().items()):
            typer.echo(f"{cid:<28} {cls.severity:<8} {cls.scope:<10} {cls.title()}")
        return
    _check_format(fmt, render.CHECKS_FORMATS)
    if fail_on not in ("warning", "error"):
        raise UsageError(f"--fail-on must be warning or error (got '{fail_on}')")
    snap = _snapshot_for(targets_, all_containers, dest, not no_dns_probe, from_file)
    findings = run_checks(snap, _split_ids(only))
    colour = fmt == "text" and sys.stdout.isatty()
    names = None
    if redact:
        from netdoctor.diagnose.parse import resolv_conf

        names = [snap.meta.get("hostname")] + [
            n for c in snap.containers for n in resolv_conf.parse_resolv_conf(c.resolv_conf or "").search]
    _emit(render.checks(snap, findings, fmt, colour), names)
    worst = max((SEVERITY_RANK.get(f.severity, 0) for f in findings), default=0)
    raise typer.Exit(ExitStatus.PROBLEM if worst >= SEVERITY_RANK[fail_on] else ExitStatus.OK)


def _snapshot_for(refs, all_containers: bool, dest, probe_dns: bool, from_file):
    from netdoctor.diagnose.pipeline import snapshot
    from netdoctor.diagnose import targets

    if from_file:
        if refs or all_containers or dest:
            raise UsageError("--from judges a saved snapshot: give no TARGET, --dest or "
                             "--all-containers with it")
        return _load_snapshot(from_file)
    chosen, problems = [], []
    for ref in refs or ():
        chosen.append(targets.resolve(ref))
    if not refs or all_containers:
        more, problems = targets.all_running()
        seen = {t.netns.inode for t in chosen}
        chosen += [t for t in more if t.netns.inode not in seen]
    if dest is not None and not _is_ip(dest):
        raise UsageError("--dest takes an IP address")
    snap = snapshot.take(chosen, destination=dest, probe_dns=probe_dns)
    if problems:
        from dataclasses import replace

        snap = replace(snap, problems=snap.problems + tuple(problems))
    return snap


def _is_ip(text: str) -> bool:
    from netdoctor.diagnose.parse import dns_wire

    return dns_wire.is_address(text)


def _load_snapshot(path: str):
    from netdoctor.diagnose.facts import snapshot
    from netdoctor.diagnose.errors import ParseError

    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise UsageError(f"no such file: {path}") from None
    except (OSError, ValueError) as e:
        raise UsageError(f"cannot read snapshot {path}: {e}") from None
    try:
        return snapshot.Snapshot.from_dict(data)
    except ParseError as e:
        raise UsageError(f"{path}: {e}") from None


@app.command("snapshot")
def snapshot_cmd(
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
    snap = _snapshot_for(targets_, all_containers, dest, not no_dns_probe, None)
    text = json.dumps(snap.to_dict(), indent=1) + "\n"
    if output == "-":
        sys.stdout.write(text)
    else:
        with open(output, "w", encoding="utf-8") as f:
            f.write(text)
        typer.echo(f"snapshot of {len(snap.hosts)} host namespace(s) and "
                   f"{len(snap.containers)} container(s) written to {output}")


# ------------------------------------------------------------------ lab

@app.command()
def cleanup(
    dry_run: bool = typer.Option(False, "--dry-run", "-n",
                                 help="Only list what would be removed."),
    fmt: str = typer.Option("text", "--format", "-f", help="text or json."),
) -> None:
    """Remove what netdoctor runs that were killed (SIGKILL, power loss) left on the host:
    tracefs instances and private tracefs mounts, found by their run tag. Runs still at work
    are left alone. Exit 0 when nothing is left, 1 when something could not be removed (or,
    with --dry-run, when something would be)."""
    from netdoctor.capture import runs

    _check_format(fmt, ("text", "json"))
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


@lab_app.command("up")
def lab_up() -> None:
    """Create the lab (namespaces ndlab-*), healthy, with DNS and HTTP in its internet."""
    from netdoctor.diagnose.lab import control, layout

    created, _ = control.up()
    if not created:
        typer.echo("lab is already up (`netdoctor lab heal` restores it, `lab down` removes it)")
        return
    names = ", ".join(layout.CONTAINERS)
    typer.echo(f"lab is up: containers {names} on {layout.BRIDGE} ({layout.SUBNET}), "
               f"host {layout.HOST_NS}, {layout.WEB_NAME} = {layout.WEB_ADDRESS}, "
               f"DNS {layout.DNS_ADDRESS}")
    typer.echo("try: netdoctor path test www.baidu.com")


@lab_app.command("down")
def lab_down() -> None:
    """Remove everything the lab created."""
    from netdoctor.diagnose.lab import control

    removed = control.down()
    if not removed:
        typer.echo("no lab to remove")
        return
    typer.echo(f"lab removed ({len(removed)} objects)")


@lab_app.command("status")
def lab_status(fmt: str = typer.Option("text", "--format", "-f", help="text or json.")) -> None:
    """Say whether the lab is up, its services, and the faults injected. Exit 7 when down."""
    from netdoctor.diagnose.lab import control

    _check_format(fmt, ("text", "json"))
    st = control.status()
    if fmt == "json":
        typer.echo(json.dumps(st, indent=2))
    else:
        if st["up"]:
            typer.echo("lab: up")
        elif st["residue"]:
            typer.echo("lab: down, but residue is present (run `netdoctor lab down`)")
        else:
            typer.echo("lab: down")
        for ns, present in st["namespaces"].items():
            typer.echo(f"  netns {ns}: {'present' if present else 'absent'}")
        for name, svc in st["services"].items():
            state = "running" if svc["running"] else "stopped"
            typer.echo(f"  {name} {svc['address']}: {state}")
        faults = st["faults"]
        typer.echo("  faults: " + (", ".join(
            f["fault"] + (f" ({f['container']})" if f.get("container") else "") for f in faults)
            if faults else "none"))
    raise typer.Exit(ExitStatus.OK if st["up"] else ExitStatus.LAB_STATE)


@lab_app.command("break")
def lab_break(
    fault: Optional[str] = typer.Argument(None, help="The fault to inject (see --list)."),
    container: str = typer.Option("test", "--container", "-c",
                                  help="The lab container a per-container fault hits."),
    list_: bool = typer.Option(False, "--list", help="List the faults and exit."),
) -> None:
    """Inject a fault into the lab (undo with `netdoctor lab heal`)."""
    from netdoctor.diagnose.lab import faults

    if list_ or fault is None:
        for f in faults.FAULTS.values():
            typer.echo(f"{f.name:<18} {f.summary}")
        if fault is None and not list_:
            raise typer.Exit(ExitStatus.USAGE)
        return
    faults.inject(fault, container)
    hit = f" for container {container}" if faults.FAULTS[fault].per_container else ""
    typer.echo(f"injected {fault}{hit}: {faults.FAULTS[fault].summary}")


@lab_app.command("heal")
def lab_heal() -> None:
    """Undo every fault: put the lab back in its healthy configuration."""
    from netdoctor.diagnose.lab import control

    control.heal()
    typer.echo("lab healed")


# ------------------------------------------------------------------ entry point

def main(argv: Optional[List[str]] = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    # SIGTERM unwinds like Ctrl-C, so every capture, tracefs instance and lab object that a
    # `finally` owns is released before the process ends (with a watchdog: see entry.py).
    from netdoctor.diagnose.cli import entry

    entry.install()
    try:
        result = app(args=args, prog_name="netdoctor", standalone_mode=False)
        code = result if isinstance(result, int) else 0
        if code == ExitStatus.INTERRUPTED:  # typer turns Ctrl-C into a returned 130
            sys.stderr.write("netdoctor: interrupted\n")
    except typer.Exit as e:  # not an error: the command chose its status
        code = e.exit_code
    except NetdoctorError as e:
        if debug:
            raise
        sys.stderr.write(f"netdoctor: error: {e}\n")
        code = e.status
    except KeyboardInterrupt:
        sys.stderr.write("netdoctor: interrupted\n")
        code = ExitStatus.INTERRUPTED
    except typer.Abort:
        sys.stderr.write("netdoctor: interrupted\n")
        code = ExitStatus.INTERRUPTED
    except Exception as e:  # click's usage errors, and everything unexpected
        # Usage errors come from click, which typer may vendor: know them by their shape.
        if callable(getattr(e, "show", None)) and isinstance(getattr(e, "exit_code", None), int):
            e.show()
            code = e.exit_code
        else:
            if debug:
                raise
            sys.stderr.write(f"netdoctor: internal error: {type(e).__name__}: {e} "
                             "(run with --debug for a traceback)\n")
            code = ExitStatus.INTERNAL
    sys.exit(int(code))


if __name__ == "__main__":
    main()

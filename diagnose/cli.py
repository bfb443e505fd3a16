"""The `netdoctor` command line. Exceptions become exit statuses here, and only here."""

from __future__ import annotations

import json
import sys
from typing import List, Optional

import typer

from netdoctor.diagnose import __version__
from netdoctor.diagnose.errors import NetdoctorError, UsageError
from netdoctor.diagnose.status import ExitStatus

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
) -> None:
    """Show the hops from the container to the host's uplink: container eth0, host veth,
    bridge, uplink NIC. Exit 0 when the path is complete, 1 when it is not."""
    from netdoctor.diagnose import discover, render, targets

    _check_format(fmt, render.FORMATS)
    t = targets.resolve(target)
    report = discover.discover(t, dest)
    sys.stdout.write(render.path(report, fmt))
    raise typer.Exit(ExitStatus.OK if report.complete else ExitStatus.PROBLEM)


# ------------------------------------------------------------------ lab

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
    try:
        result = app(args=args, prog_name="netdoctor", standalone_mode=False)
        code = result if isinstance(result, int) else 0
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

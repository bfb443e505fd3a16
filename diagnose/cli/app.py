"""The `netdoctor` command line: the app, its commands (one module each) and main(), where
every exception becomes its exit status (cli/status.py). Parsing and printing only."""

from __future__ import annotations

import sys
from typing import List, Optional

import typer

from .. import __version__
from . import checks, cleanup, inbound, lab, path, report, snapshot, trace
from . import agent
from . import map as netmap
from .status import ExitStatus, exit_status_for, interrupted
from ..errors import NetdoctorError

HELP = """Find where a container's packets stop, and why.

TARGET is a container name or ID (Docker, podman, containerd), docker:NAME,
podman:NAME, containerd:ID, lab:NAME, pid:N or netns:NAME.
"""

app = typer.Typer(help=HELP, no_args_is_help=True, add_completion=False,
                  pretty_exceptions_enable=False, rich_markup_mode=None)
app.command()(path.path)
app.command()(trace.trace)
app.command()(inbound.inbound)
app.command()(checks.checks)
app.command("snapshot")(snapshot.snapshot)
app.command()(report.report)
app.command("map")(netmap.map_)
app.command("agent", hidden=True)(agent.agent)
app.command()(cleanup.cleanup)
app.add_typer(lab.app, name="lab")


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


# ------------------------------------------------------------------ entry point

def main(argv: Optional[List[str]] = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    # SIGTERM unwinds like Ctrl-C, so every capture, tracefs instance and lab object that a
    # `finally` owns is released before the process ends (with a watchdog: see entry.py).
    from . import entry

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
        code = exit_status_for(e)
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
        elif interrupted(e):
            sys.stderr.write("netdoctor: interrupted\n")
            code = ExitStatus.INTERRUPTED
        else:
            if debug:
                raise
            sys.stderr.write(f"netdoctor: internal error: {type(e).__name__}: {e} "
                             "(run with --debug for a traceback)\n")
            code = ExitStatus.INTERNAL
    sys.exit(int(code))


if __name__ == "__main__":
    main()

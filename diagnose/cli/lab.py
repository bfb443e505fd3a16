"""netdoctor lab up | down | status | break FAULT | heal"""

from __future__ import annotations

import json
from typing import Optional

import typer

from .common import check_format
from .status import ExitStatus

app = typer.Typer(help="The built-in sealed lab: a Docker-like host and a fake internet.",
                  no_args_is_help=True)


def up(shape: str = typer.Option("bridge", "--shape",
                                  help="bridge (Docker's default), routed (Calico/ptp: /32 "
                                       "per container, no bridge) or macvlan.")) -> None:
    """Create the lab (namespaces ndlab-*), healthy, with DNS and HTTP in its internet."""
    from ..lab import control, layout

    created, state = control.up(shape)
    if not created:
        typer.echo(f"lab is already up, shape {state.get('shape') or 'bridge'} (`netdoctor "
                   f"lab heal` restores it, `lab down` removes it)")
        return
    names = ", ".join(layout.CONTAINERS)
    wiring = {"bridge": f"on {layout.BRIDGE} ({layout.SUBNET})",
              "routed": f"routed, /32s of {layout.SUBNET} via {layout.ROUTED_GATEWAY}",
              "macvlan": f"macvlan children of {layout.UPLINK} "
                         f"({', '.join(layout.MACVLAN_ADDRESSES.values())})"}[shape]
    typer.echo(f"lab is up: containers {names} {wiring}, "
               f"host {layout.HOST_NS}, {layout.WEB_NAME} = {layout.WEB_ADDRESS}, "
               f"DNS {layout.DNS_ADDRESS}")
    typer.echo("try: netdoctor path test www.baidu.com")


def down() -> None:
    """Remove everything the lab created."""
    from ..lab import control

    removed = control.down()
    if not removed:
        typer.echo("no lab to remove")
        return
    typer.echo(f"lab removed ({len(removed)} objects)")


def status(fmt: str = typer.Option("text", "--format", "-f", help="text or json.")) -> None:
    """Say whether the lab is up, its services, and the faults injected. Exit 7 when down."""
    from ..lab import control

    check_format(fmt, ("text", "json"))
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


def break_(
    fault: Optional[str] = typer.Argument(None, help="The fault to inject (see --list)."),
    container: str = typer.Option("test", "--container", "-c",
                                  help="The lab container a per-container fault hits."),
    list_: bool = typer.Option(False, "--list", help="List the faults and exit."),
) -> None:
    """Inject a fault into the lab (undo with `netdoctor lab heal`)."""
    from ..lab import faults

    if list_ or fault is None:
        for f in faults.FAULTS.values():
            only = "" if len(f.shapes) == 3 else f" [{', '.join(f.shapes)}]"
            typer.echo(f"{f.name:<18} {f.summary}{only}")
        if fault is None and not list_:
            raise typer.Exit(ExitStatus.USAGE)
        return
    faults.inject(fault, container)
    hit = f" for container {container}" if faults.FAULTS[fault].per_container else ""
    typer.echo(f"injected {fault}{hit}: {faults.FAULTS[fault].summary}")


def heal() -> None:
    """Undo every fault: put the lab back in its healthy configuration."""
    from ..lab import control

    control.heal()
    typer.echo("lab healed")


for _name, _command in (("up", up), ("down", down), ("status", status), ("break", break_),
                        ("heal", heal)):
    app.command(_name)(_command)

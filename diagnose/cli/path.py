"""netdoctor path TARGET [DEST]"""

from __future__ import annotations

from typing import Optional

import typer

from .common import (IPV4_HELP, IPV6_HELP, PEER_HELP, REDACT_HELP, SSH_CONFIG_HELP,
                     address_family, check_format, check_peer_options, emit,
                     report_names)
from .status import ExitStatus
from ..targets.destination import check_destination


def path(
    target: str = typer.Argument(..., help="The container (see TARGET above)."),
    dest: Optional[str] = typer.Argument(
        None, help="Destination address or name (resolved from inside the container); "
                   "default: the container's default route."),
    fmt: str = typer.Option("text", "--format", "-f", help="text or json."),
    redact: bool = typer.Option(False, "--redact", help=REDACT_HELP),
    ipv4: bool = typer.Option(False, "--ipv4", "-4", help=IPV4_HELP),
    ipv6: bool = typer.Option(False, "--ipv6", "-6", help=IPV6_HELP),
    peer: Optional[str] = typer.Option(None, "--peer", help=PEER_HELP),
    ssh_config: Optional[str] = typer.Option(None, "--ssh-config", help=SSH_CONFIG_HELP),
) -> None:
    """Show the hops the container's packets take toward DEST: container eth0, host veth,
    bridge, then the uplink NIC, or (for a container on this machine) its bridge port and
    its own interface. Exit 0 when the path is complete, 1 when it is not."""
    from .. import targets
    from ..pipeline import path as discover
    from .. import report as reports

    check_format(fmt, reports.FORMATS)
    check_peer_options(peer, ssh_config)
    host = check_destination(dest, None, None) if dest else None
    family = address_family(ipv4, ipv6)
    if host:
        discover.check_family(host, family)
    t = targets.resolve(target)
    report = discover.discover(t, dest, family=family)
    if peer:
        report = discover.observe_far(report, peer, ssh_config)
    emit(reports.path(report, fmt), report_names(t, host) if redact else None)
    raise typer.Exit(ExitStatus.OK if report.complete else ExitStatus.PROBLEM)

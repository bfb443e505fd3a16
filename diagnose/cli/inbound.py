"""netdoctor inbound TARGET PORT[/tcp|/udp]"""

from __future__ import annotations

from typing import Optional

import typer

import sys

from .common import Progress, REDACT_HELP, check_format, emit, wants_progress
from .status import ExitStatus
from ..errors import UsageError


def inbound(
    target: str = typer.Argument(..., help="The container (see TARGET above)."),
    port: str = typer.Argument(..., metavar="PORT[/tcp|/udp]",
                               help="The published host port, or the container port."),
    client: Optional[str] = typer.Option(None, "--from",
                                         help="The client's address (default: one outside "
                                              "every local network, as an outside client has); "
                                              "127.0.0.1: this host itself; the container's "
                                              "own address: it, through the host's address "
                                              "(hairpin)."),
    fmt: str = typer.Option("text", "--format", "-f", help="text, json or markdown."),
    timeout: float = typer.Option(1.0, "--timeout", help="Seconds to wait for the answer "
                                                         "(0.1-10)."),
    watch: Optional[float] = typer.Option(
        None, "--watch", metavar="SECONDS",
        help="Send nothing: watch the path for SECONDS (1-3600) while you connect from the "
             "real client, and judge its first connection attempt."),
    redact: bool = typer.Option(False, "--redact", help=REDACT_HELP),
    pcap_dir: Optional[str] = typer.Option(None, "--pcap-dir",
                                           help="Write one pcap per hop into this folder."),
) -> None:
    """Why can't anyone reach this container's published port? Walks the inbound path
    (PREROUTING, the DNAT that publishes the port, FORWARD, the bridge and veth, the
    container's listening socket), then sends one SYN from the host to its own address and
    port with captures on every hop; with --watch, sends nothing and judges a real client's
    connection instead. Exit 0 when an outside client can connect, 1 when not."""
    from .. import targets
    from ..host import privileges
    from ..parse import dns_wire
    from ..pipeline import inbound as pipeline
    from ..report import inbound as render

    check_format(fmt, ("text", "json", "markdown"))
    pipeline.parse_port(port)  # bad input fails before any I/O
    if client is not None and not dns_wire.is_address(client):
        raise UsageError(f"--from '{client}' is not an IP address")
    if not 0.1 <= timeout <= 10:
        raise UsageError("--timeout must be between 0.1 and 10 seconds")
    if watch is not None and not 1 <= watch <= 3600:
        raise UsageError("--watch must be between 1 and 3600 seconds")
    if redact and pcap_dir:
        raise UsageError("--redact cannot redact packet captures: leave out --pcap-dir")
    privileges.require(privileges.CAP_SYS_ADMIN, privileges.CAP_NET_RAW,
                       privileges.CAP_NET_ADMIN, why="inbound enters namespaces and captures")
    t = targets.resolve(target)
    def announce(text: str) -> None:
        sys.stderr.write(f"netdoctor: {text}\n")
        sys.stderr.flush()

    with Progress(watch is not None and wants_progress(fmt)) as progress:
        report = pipeline.inbound(t, port, client, timeout, watch, announce,
                                  progress if watch is not None else None, pcap_dir)
    emit(render.render(report, fmt), [] if redact else None)
    v = report.verdict
    raise typer.Exit(ExitStatus.OK if v["reachable"] else ExitStatus.PROBLEM)

"""netdoctor trace TARGET DEST[:PORT]"""

from __future__ import annotations

import sys
from typing import Optional

import typer

from .common import (IPV4_HELP, IPV6_HELP, PEER_HELP, REDACT_HELP, SSH_CONFIG_HELP,
                     address_family, check_format, check_peer_options,
                     check_writable, emit, report_names)
from .status import ExitStatus
from ..errors import UsageError
from ..host import privileges
from ..targets.destination import check_destination, check_family


def trace(
    target: str = typer.Argument(..., help="The container (see TARGET above)."),
    dest: str = typer.Argument(..., help="Address, name (resolved inside the container), "
                                         "or HOST:PORT."),
    port: Optional[int] = typer.Option(None, "--port", "-p", help="Probe this port (TCP SYN)."),
    proto: Optional[str] = typer.Option(None, "--proto", help="icmp, tcp or udp."),
    fmt: str = typer.Option("text", "--format", "-f", help="text, json or markdown."),
    pcap_dir: Optional[str] = typer.Option(None, "--pcap-dir",
                                           help="Write one pcap per hop into this folder."),
    pcap: Optional[str] = typer.Option(None, "--pcap",
                                       help="Write every hop's frames into one pcapng file, "
                                            "an interface per hop."),
    timeout: float = typer.Option(1.0, "--timeout", help="Seconds to wait for replies (0.1-10)."),
    redact: bool = typer.Option(False, "--redact", help=REDACT_HELP),
    peer: Optional[str] = typer.Option(None, "--peer", help=PEER_HELP),
    ssh_config: Optional[str] = typer.Option(None, "--ssh-config", help=SSH_CONFIG_HELP),
    ipv4: bool = typer.Option(False, "--ipv4", "-4", help=IPV4_HELP),
    ipv6: bool = typer.Option(False, "--ipv6", "-6", help=IPV6_HELP),
    allow_trace_rules: bool = typer.Option(
        False, "--allow-trace-rules",
        help="Write to the host, for the probe window only: a private nft table per "
             "namespace that sets nftrace on the probe's packets, so that nftables names "
             "each rule they meet. Removed afterwards (or by `netdoctor cleanup`)."),
) -> None:
    """Probe DEST from inside the container while capturing on every hop at once, and say
    where the packets stop and why. Exit 0 when reachable, 1 when not."""
    from .. import targets
    from ..pipeline import trace as tracing
    from .. import report as reports

    check_format(fmt, reports.TRACE_FORMATS)
    if not 0.1 <= timeout <= 10:
        raise UsageError("--timeout must be between 0.1 and 10 seconds")
    host = check_destination(dest, port, proto)  # bad input fails before any I/O
    family = address_family(ipv4, ipv6)
    check_family(host, family)
    if redact and (pcap_dir or pcap):
        raise UsageError("--redact cannot redact packet captures: leave out --pcap/--pcap-dir")
    if pcap:
        check_writable(pcap)
    check_peer_options(peer, ssh_config)
    privileges.require(privileges.CAP_SYS_ADMIN, privileges.CAP_NET_RAW,
                       privileges.CAP_NET_ADMIN, why="trace enters namespaces and captures")
    t = targets.resolve(target)
    report = tracing.trace(t, dest, port=port, proto=proto, timeout=timeout, pcap_dir=pcap_dir,
                            family=family, pcap=pcap, peer=peer, ssh_config=ssh_config,
                            trace_rules=allow_trace_rules)
    emit(reports.trace(report, fmt), report_names(t, host) if redact else None)
    for why in report.evidence.get("degraded", ()):
        sys.stderr.write(f"netdoctor: warning: {why}\n")
    v = report.verdict
    raise typer.Exit(ExitStatus.OK if v.reachable and not v.cause else ExitStatus.PROBLEM)

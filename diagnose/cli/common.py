"""What every command shares: the --format check, printing (redacted on request) and the
names a report carries. Parsing and printing only."""

from __future__ import annotations

import sys
from typing import Optional

from ..errors import UsageError

REDACT_HELP = ("Replace public addresses and host names with stable placeholders, for pasting "
               "in public places.")


def check_format(fmt: str, allowed: tuple) -> str:
    if fmt not in allowed:
        raise UsageError(f"--format must be one of: {', '.join(allowed)} (got '{fmt}')")
    return fmt


def id_list(text: Optional[str]) -> Optional[set]:
    """a,b,c -> {"a", "b", "c"}; None when not given."""
    if not text:
        return None
    return {i.strip() for i in text.split(",") if i.strip()}


def report_names(target, dest_host: Optional[str]) -> list:
    """The host names a report about target names: its destination and the search domains
    of its resolv.conf (for --redact)."""
    from ..host import resolver

    return [dest_host] + list(resolver.read_resolv_conf(target.resolv_conf).search)


def emit(report: str, redact_names: Optional[list] = None) -> None:
    """Write a report to stdout; with redact_names (a list, maybe empty), redacted: public
    addresses, these names and this machine's name become placeholders (report/redact.py)."""
    if redact_names is not None:
        import socket

        from ..report.redact import Redactor

        report = Redactor(redact_names + [socket.gethostname()]).text(report)
    sys.stdout.write(report)


PEER_HELP = ("The far host of an overlay or a routed pod network, observed too: "
             "ssh://[USER@]HOST[:PORT], auto (the remote VTEP or next hop the path finds, over "
             "ssh) or netns:NAME (a lab host). It runs `netdoctor agent` there.")
SSH_CONFIG_HELP = "With --peer: passed to ssh as -F FILE."
def check_peer_options(peer: Optional[str], ssh_config: Optional[str]) -> None:
    """--peer and --ssh-config, before any I/O: a one-line error for a bad pair."""
    import os

    from ..errors import UsageError

    if peer:
        from ..host.peer import check_peer

        check_peer(peer)
    if ssh_config and not peer:
        raise UsageError("--ssh-config goes with --peer")
    if ssh_config and not os.path.isfile(ssh_config):
        raise UsageError(f"--ssh-config {ssh_config}: no such file")


IPV4_HELP = "Use IPv4 only: the name's A records (as ping -4 and curl -4)."
IPV6_HELP = "Use IPv6 only: the name's AAAA records (as ping -6 and curl -6)."


def address_family(ipv4: bool, ipv6: bool) -> Optional[str]:
    """--ipv4/--ipv6 as an address family ("inet", "inet6"), None for the container's own
    choice."""
    if ipv4 and ipv6:
        raise UsageError("--ipv4 and --ipv6 exclude each other")
    return "inet" if ipv4 else "inet6" if ipv6 else None


def check_writable(path: str) -> None:
    """An output file's folder exists and is writable, before any probe is sent (a bad path
    after the trace would lose its evidence)."""
    import os

    folder = os.path.dirname(os.path.abspath(path)) or "."
    if os.path.isdir(path):
        raise UsageError(f"{path} is a folder: give a file name (for one file per hop, "
                         f"--pcap-dir)")
    if not os.path.isdir(folder):
        raise UsageError(f"cannot write {path}: no folder {folder}")
    if not os.access(folder, os.W_OK):
        raise UsageError(f"cannot write {path}: {folder} is not writable")


class Progress:
    """How far long work is, on stderr, only when stderr is a terminal (never in a pipe or
    a log) and the report is not JSON: a line rewritten in place, removed at the end."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.bar = None

    def __enter__(self):
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn

            self.bar = Bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                           console=Console(stderr=True), transient=True)
            self.bar.start()
            self.task = self.bar.add_task("", total=None)
        return self

    def __call__(self, step: str, done: int, total: int) -> None:
        if self.bar is not None:
            self.bar.update(self.task, description=step, completed=done, total=total)

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.stop()


def wants_progress(fmt: str) -> bool:
    return fmt != "json" and sys.stderr.isatty()

"""The one parser of DEST: an address, a name, host:port or [v6]:port, with --port/--proto."""

from __future__ import annotations

from typing import Optional

from ..errors import UsageError
from ..parse import dns_wire


def parse_destination(dest: str, port: Optional[int], proto: Optional[str]) -> tuple:
    """(host, port, proto) from DEST, host:port or [v6]:port, and --port/--proto: the one
    parser of a destination, for `path` and `trace` alike. Pure, so bad input fails before
    any I/O."""
    host, dport = dest, None
    if dest.startswith("[") and "]" in dest:
        host, rest = dest[1:].split("]", 1)
        if rest.startswith(":"):
            dport = rest[1:]
    elif dest.count(":") == 1:
        host, dport = dest.split(":", 1)
    if dport is not None:
        try:
            dport = int(dport)
        except ValueError:
            raise UsageError(f"DEST '{dest}': the port must be a number") from None
    if port is not None:
        dport = port
    if dport is not None and not 0 < dport < 65536:
        raise UsageError(f"port {dport} is out of range")
    proto = (proto or ("tcp" if dport else "icmp")).lower()
    if proto not in ("icmp", "tcp", "udp"):
        raise UsageError(f"--proto must be icmp, tcp or udp (got '{proto}')")
    if proto in ("tcp", "udp") and dport is None:
        raise UsageError(f"--proto {proto} needs a port (DEST:PORT or --port)")
    if not host:
        raise UsageError("DEST is empty")
    if not (dns_wire.is_address(host) or dns_wire.is_host_name(host)):
        raise UsageError(f"DEST '{dest}' is neither an IP address nor a host name")
    return host, dport, proto

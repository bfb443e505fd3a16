"""The one parser of DEST: an address, a name, host:port or [v6]:port, with --port/--proto."""

from __future__ import annotations

from typing import Optional

from ..errors import UsageError
from ..parse import dns_wire


FAMILY_WORDS = {"inet": "IPv4", "inet6": "IPv6"}


def check_family(host: str, family: Optional[str]) -> None:
    """A literal address of the other family than --ipv4/--ipv6 asks for is a usage error."""
    if family and dns_wire.is_address(host):
        have = "inet6" if ":" in host else "inet"
        if have != family:
            raise UsageError(f"DEST {host} is an {FAMILY_WORDS[have]} address, but "
                             f"--{FAMILY_WORDS[family].lower()} asks for {FAMILY_WORDS[family]}")


TARGET_PREFIXES = ("docker", "podman", "containerd", "lab", "pid", "netns")


def container_reference(dest: str, port: Optional[int]) -> Optional[tuple]:
    """(TARGET reference, port) when DEST names a container with a target prefix
    ("docker:web", "lab:web:8080"), else None."""
    prefix, sep, rest = dest.partition(":")
    if not sep or prefix not in TARGET_PREFIXES:
        return None
    ref, dport = dest, port
    head, sep, tail = rest.rpartition(":")
    if sep and tail.isdigit():
        ref = f"{prefix}:{head}"
        dport = port if port is not None else int(tail)
    if dport is not None and not 0 < dport < 65536:
        raise UsageError(f"port {dport} is out of range")
    return ref, dport


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


def check_destination(dest: str, port: Optional[int], proto: Optional[str]) -> str:
    """DEST validated before any I/O (a container reference or an address or name, with a
    port and protocol that fit): what it names, without its port."""
    ref = container_reference(dest, port)
    if ref is not None:
        parse_destination("0.0.0.0", ref[1], proto)
        return ref[0]
    return parse_destination(dest, port, proto)[0]

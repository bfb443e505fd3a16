"""The one parser of /proc/net/{tcp,tcp6,udp,udp6}: a namespace's sockets, as the kernel
lists them (addresses in hex, in the kernel's byte order per 32-bit word)."""

from __future__ import annotations

import ipaddress
import socket
import struct
from dataclasses import dataclass

from ..errors import ParseError

TCP_LISTEN = "0A"
UDP_UNCONNECTED = "07"  # a bound UDP socket shows as TCP_CLOSE


@dataclass(frozen=True)
class Socket:
    proto: str  # tcp, udp
    address: str  # the local address, "0.0.0.0" / "::" for any
    port: int
    inode: int

    @property
    def loopback_only(self) -> bool:
        return ipaddress.ip_address(self.address).is_loopback

    @property
    def any_address(self) -> bool:
        return ipaddress.ip_address(self.address).is_unspecified


def _address(hex_addr: str) -> str:
    raw = bytes.fromhex(hex_addr)
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, struct.pack("=I", struct.unpack(">I", raw)[0]))
    if len(raw) == 16:
        words = struct.unpack(">4I", raw)
        return str(ipaddress.ip_address(b"".join(struct.pack("=I", w) for w in words)))
    raise ValueError(hex_addr)


def listening(text: str, proto: str) -> list:
    """The listening (TCP) or bound (UDP) sockets of one /proc/net table."""
    want = TCP_LISTEN if proto == "tcp" else UDP_UNCONNECTED
    out = []
    for n, line in enumerate(text.splitlines()):
        fields = line.split()
        if n == 0 or not fields:
            continue  # the header
        try:
            local, state, inode = fields[1], fields[3], int(fields[9])
            addr_hex, port_hex = local.split(":")
            if state != want:
                continue
            out.append(Socket(proto, _address(addr_hex), int(port_hex, 16), inode))
        except (IndexError, ValueError) as e:
            raise ParseError(f"/proc/net/{proto}: line {n + 1} unreadable: {e}") from None
    return out

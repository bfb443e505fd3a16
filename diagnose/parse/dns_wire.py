"""The DNS wire format (RFC 1035): one encoder of questions and one parser of answers (A and
AAAA: what netdoctor needs to find the address a container would use), and what counts as a
host name or an address."""

from __future__ import annotations

import ipaddress
import random
import re
import socket
import struct
from dataclasses import dataclass
from typing import Optional

from ..errors import ParseError, Unresolved

QTYPE_A = 1
QTYPE_NS = 2
QTYPE_AAAA = 28
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}

def encode_query(name: str, qtype: int = QTYPE_A, txid: Optional[int] = None) -> tuple:
    """(txid, packet) for a recursive query of name."""
    txid = random.randrange(0, 65536) if txid is None else txid
    labels = name.rstrip(".").split(".") if name != "." else []
    qname = b""
    for label in labels:
        raw = label.encode("idna") if label else b""
        if not raw or len(raw) > 63:
            raise Unresolved(f"'{name}' is not a valid host name")
        qname += bytes([len(raw)]) + raw
    qname += b"\x00"
    header = struct.pack("!HHHHHH", txid, 0x0100, 1, 0, 0, 0)
    return txid, header + qname + struct.pack("!HH", qtype, 1)


def _skip_name(msg: bytes, i: int) -> int:
    while True:
        if i >= len(msg):
            raise ParseError("DNS answer truncated inside a name")
        n = msg[i]
        if n == 0:
            return i + 1
        if n & 0xC0 == 0xC0:
            return i + 2
        i += 1 + n


@dataclass(frozen=True)
class DnsAnswer:
    txid: int
    rcode: str
    addresses: tuple
    truncated: bool = False  # TC: the whole answer did not fit; ask again over TCP


def parse_response(msg: bytes) -> DnsAnswer:
    """The addresses (A/AAAA) of a DNS response; ParseError when it is not one."""
    if len(msg) < 12:
        raise ParseError("DNS answer shorter than its header")
    txid, flags, qd, an, _, _ = struct.unpack("!HHHHHH", msg[:12])
    if not flags & 0x8000:
        raise ParseError("DNS message is not a response")
    i = 12
    for _ in range(qd):
        i = _skip_name(msg, i) + 4
    addrs = []
    for _ in range(an):
        i = _skip_name(msg, i)
        if i + 10 > len(msg):
            raise ParseError("DNS answer truncated in a record")
        rtype, _, _, rdlen = struct.unpack("!HHIH", msg[i:i + 10])
        i += 10
        rdata = msg[i:i + rdlen]
        if len(rdata) != rdlen:
            raise ParseError("DNS answer truncated in record data")
        if rtype == QTYPE_A and rdlen == 4:
            addrs.append(socket.inet_ntop(socket.AF_INET, rdata))
        elif rtype == QTYPE_AAAA and rdlen == 16:
            addrs.append(socket.inet_ntop(socket.AF_INET6, rdata))
        i += rdlen
    return DnsAnswer(txid, RCODES.get(flags & 0xF, str(flags & 0xF)), tuple(addrs),
                     bool(flags & 0x0200))


_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")


def is_host_name(text: str) -> bool:
    """RFC 1123 host names (underscores tolerated, as resolvers do)."""
    name = text[:-1] if text.endswith(".") else text
    if not name or len(name) > 253:
        return False
    return all(_HOST_LABEL.match(label) for label in name.split("."))


def is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False

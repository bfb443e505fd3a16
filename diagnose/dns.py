"""Name resolution as the container does it: its resolv.conf, asked from its namespace.

One parser for resolv.conf, one encoder and one parser for the DNS wire format (A and
AAAA questions only: what netdoctor needs to find the address a container would use).
"""

from __future__ import annotations

import ipaddress
import random
import re
import socket
import struct
import time
from dataclasses import dataclass, field
from typing import Optional

from netdoctor.diagnose import netns
from netdoctor.diagnose.errors import ParseError, Unresolved

QTYPE_A = 1
QTYPE_NS = 2
QTYPE_AAAA = 28
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}


@dataclass(frozen=True)
class ResolvConf:
    nameservers: tuple = ()
    search: tuple = ()
    options: tuple = ()
    ignored: tuple = field(default_factory=tuple)  # lines that made no sense, for the report


def parse_resolv_conf(text: str) -> ResolvConf:
    """resolv.conf(5): `nameserver`, `search`/`domain`, `options`; anything else is ignored."""
    servers, search, options, ignored = [], [], [], []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].split(";", 1)[0].strip()
        if not line:
            continue
        words = line.split()
        key, args = words[0], words[1:]
        if key == "nameserver" and len(args) >= 1:
            addr = args[0].split("%", 1)[0]
            try:
                servers.append(str(ipaddress.ip_address(addr)))
            except ValueError:
                ignored.append(raw.strip())
        elif key in ("search", "domain") and args:
            search = list(args)
        elif key == "options":
            options.extend(args)
        else:
            ignored.append(raw.strip())
    return ResolvConf(tuple(servers[:3]), tuple(search), tuple(options), tuple(ignored))


def read_resolv_conf(path: Optional[str]) -> ResolvConf:
    if not path:
        return ResolvConf()
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return parse_resolv_conf(f.read(65536))
    except OSError:
        return ResolvConf()


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
    return DnsAnswer(txid, RCODES.get(flags & 0xF, str(flags & 0xF)), tuple(addrs))


def ask(server: str, name: str, qtype: int, timeout: float) -> DnsAnswer:
    """One query to server from the calling thread's namespace; socket.timeout if silent."""
    family = socket.AF_INET6 if ":" in server else socket.AF_INET
    txid, packet = encode_query(name, qtype)
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.connect((server, 53))
        s.send(packet)
        deadline = time.monotonic() + timeout
        while True:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            data = s.recv(4096)
            answer = parse_response(data)
            if answer.txid == txid:
                return answer


def resolve_in(ns: netns.Netns, resolv_conf: ResolvConf, name: str, timeout: float = 1.0) -> tuple:
    """(address, nameserver) for name, asked the way the container would ask.

    Raises Unresolved saying which nameserver failed how."""
    if not resolv_conf.nameservers:
        junk = len(resolv_conf.ignored)
        raise Unresolved(f"cannot resolve '{name}': the container's resolv.conf has no usable "
                         f"nameserver line" + (f" ({junk} line(s) it cannot read)" if junk
                                               else "")
                         + "; fix its resolv.conf, or trace an IP address")
    failures = []
    for server in resolv_conf.nameservers:
        try:
            answer = netns.call_in(ns, ask, server, name, QTYPE_A, timeout)
        except socket.timeout:
            failures.append(f"{server}: no answer within {timeout:g} s")
            continue
        except OSError as e:
            failures.append(f"{server}: {e.strerror or e}")
            continue
        except ParseError as e:
            failures.append(f"{server}: {e}")
            continue
        if answer.addresses:
            return answer.addresses[0], server
        failures.append(f"{server}: {answer.rcode}, no address")
        if answer.rcode == "NXDOMAIN":
            break
    raise Unresolved(f"cannot resolve '{name}' from inside the container ({'; '.join(failures)})")


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


"""Name resolution as the container does it: its resolv.conf, asked from its namespace.

One parser for resolv.conf, one encoder and one parser for the DNS wire format (A and
AAAA questions only: what netdoctor needs to find the address a container would use).

The resolver follows glibc's rules (resolv.conf(5), res_search): a name with fewer dots
than `ndots` (default 1, at most 15) is tried with each search domain first, then as it is;
a name with at least that many is tried as it is first, then with the search domains; a
trailing dot means the name is absolute. (musl differs in one case: it does not search a
name that has `ndots` dots or more.) Each name is asked for A and AAAA at once, as
getaddrinfo does; a truncated answer is asked again over TCP. NXDOMAIN or an empty answer
moves on to the next name; a silent or refusing server, to the next server. A server that
stayed silent is not asked again for the next names: it would cost its timeout each time.
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

from netdoctor.diagnose.host import netns
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

    @property
    def ndots(self) -> int:
        value = 1
        for opt in self.options:
            key, _, arg = opt.partition(":")
            if key == "ndots" and arg.isdigit() and arg.isascii():
                value = min(int(arg), 15)  # glibc's cap
        return value


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


def candidate_names(name: str, conf: ResolvConf) -> list:
    """The names the container's resolver asks for, in its order (see the module doc)."""
    if name.endswith("."):
        return [name.rstrip(".")]
    searched = [f"{name}.{d.strip('.')}" for d in conf.search if d.strip(".")]
    if name.count(".") >= conf.ndots:
        return [name] + searched
    return searched + [name]


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


def ask_tcp(server: str, name: str, qtype: int, timeout: float, port: int = 53) -> DnsAnswer:
    """One query over TCP (RFC 7766: a two-byte length before each message)."""
    txid, packet = encode_query(name, qtype)
    with socket.create_connection((server, port), timeout=timeout) as s:
        s.sendall(struct.pack("!H", len(packet)) + packet)
        data = b""
        while len(data) < 2 or len(data) < 2 + struct.unpack("!H", data[:2])[0]:
            chunk = s.recv(65537)
            if not chunk:
                raise ParseError("DNS over TCP: the server closed before answering")
            data += chunk
        answer = parse_response(data[2:2 + struct.unpack("!H", data[:2])[0]])
        if answer.txid != txid:
            raise ParseError("DNS over TCP: the answer is for another question")
        return answer


def ask_both(server: str, name: str, timeout: float, port: int = 53) -> tuple:
    """(A answer, AAAA answer) from server, asked at once over one UDP socket (either may be
    None when only the other came back in time); socket.timeout when neither did."""
    family = socket.AF_INET6 if ":" in server else socket.AF_INET
    questions = {}
    for qtype in (QTYPE_A, QTYPE_AAAA):
        txid, packet = encode_query(name, qtype)
        questions[txid] = (qtype, packet)
    answers = {}
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.connect((server, port))
        for _, packet in questions.values():
            s.send(packet)
        deadline = time.monotonic() + timeout
        while len(answers) < len(questions):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            s.settimeout(left)
            try:
                answer = parse_response(s.recv(4096))
            except socket.timeout:
                break
            if answer.txid in questions:
                answers[questions[answer.txid][0]] = answer
    if not answers:
        raise socket.timeout(f"no answer within {timeout:g} s")
    for qtype, answer in list(answers.items()):
        if answer.truncated:
            answers[qtype] = ask_tcp(server, name, qtype, timeout, port)
    return answers.get(QTYPE_A), answers.get(QTYPE_AAAA)


@dataclass(frozen=True)
class Resolution:
    address: str  # the one netdoctor follows: the first A record, else the first AAAA
    addresses: tuple  # every address, A records first
    name: str  # the name that answered (after the search list)
    server: str


def lookup(conf: ResolvConf, name: str, timeout: float = 1.0, port: int = 53) -> Resolution:
    """Resolve name as the container's resolver does, from the calling thread's namespace.

    Raises Unresolved saying what each name got from which server."""
    if not conf.nameservers:
        junk = len(conf.ignored)
        raise Unresolved(f"cannot resolve '{name}': the container's resolv.conf has no usable "
                         f"nameserver line" + (f" ({junk} line(s) it cannot read)" if junk
                                               else "")
                         + "; fix its resolv.conf, or trace an IP address")
    failures, silent = [], set()
    for candidate in candidate_names(name, conf):
        for server in conf.nameservers:
            if server in silent:
                continue
            try:
                a, aaaa = ask_both(server, candidate, timeout, port)
            except socket.timeout:
                silent.add(server)
                failures.append(f"{candidate}: {server} did not answer within {timeout:g} s")
                continue
            except (OSError, ParseError) as e:
                failures.append(f"{candidate}: {server}: {getattr(e, 'strerror', None) or e}")
                continue
            got = [x for x in (a, aaaa) if x is not None]
            addresses = tuple(ad for x in got for ad in x.addresses)
            if addresses:
                return Resolution(addresses[0], addresses, candidate, server)
            rcode = next((x.rcode for x in got if x.rcode != "NOERROR"), "NOERROR")
            if rcode in ("NXDOMAIN", "NOERROR"):
                # The server knows: the name does not exist, or has no address. Asking the
                # next server would not change that; the next name might.
                failures.append(f"{candidate}: {rcode}" + (", no address" if rcode == "NOERROR"
                                                          else "") + f" from {server}")
                break
            failures.append(f"{candidate}: {rcode} from {server}")
    raise Unresolved(f"cannot resolve '{name}' from inside the container "
                     f"({'; '.join(failures)})")


def resolve_in(ns: netns.Netns, resolv_conf: ResolvConf, name: str,
               timeout: float = 1.0) -> Resolution:
    """lookup() inside the container's namespace."""
    return netns.call_in(ns, lookup, resolv_conf, name, timeout)


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


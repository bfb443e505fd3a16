"""The two rtnetlink requests netdoctor makes thousands of times at scale: RTM_GETROUTE, the
question `ip route get DST [from SRC] [iif DEV]` asks, and RTM_GETNSID, "under which id does
this namespace know that one?" (what IFLA_LINK_NETNSID values name). Asked on a raw NETLINK_ROUTE socket
in the calling thread's namespace, it costs a fraction of a millisecond instead of a
process (4-5 ms); the answer is the kernel's own FIB lookup either way. Nothing is sent.
Also one nfnetlink question, read for every namespace: which nf_tables tables exist (what
`nft list tables` says), so that rules are dumped only where there are some.

The only parser of these rtnetlink and nfnetlink answers.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
from typing import Optional

from netdoctor.diagnose.errors import ParseError
from netdoctor.diagnose.facts.namespace import RouteLookup

RTM_NEWROUTE, RTM_GETROUTE = 24, 26
RTM_NEWNSID, RTM_GETNSID = 88, 90
NETNSA_NSID, NETNSA_FD = 1, 3
NLMSG_ERROR = 2
NLM_F_REQUEST = 1
RTA_DST, RTA_SRC, RTA_IIF, RTA_OIF, RTA_GATEWAY, RTA_PREFSRC = 1, 2, 3, 4, 5, 7
RTN_TYPES = {6: "blackhole", 7: "unreachable", 8: "prohibit"}
_NLMSG = struct.Struct("=IHHII")
_RTMSG = struct.Struct("=BBBBBBBBI")
_RTA = struct.Struct("=HH")


def _attr(kind: int, payload: bytes) -> bytes:
    length = _RTA.size + len(payload)
    return _RTA.pack(length, kind) + payload + b"\0" * ((4 - length % 4) % 4)


def _request(kind: int, body: bytes, seq: int) -> bytes:
    return _NLMSG.pack(_NLMSG.size + len(body), kind, NLM_F_REQUEST, seq, 0) + body


def _socket() -> socket.socket:
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    s.settimeout(2.0)
    return s


def _header(data: bytes) -> tuple:
    """(length, type) of an answer whose header and length are sound; ParseError if not."""
    if len(data) < _NLMSG.size:
        raise ParseError("rtnetlink: answer shorter than its header")
    length, kind, _, _, _ = _NLMSG.unpack_from(data)
    if length > len(data) or length < _NLMSG.size:
        raise ParseError("rtnetlink: answer length does not match")
    return length, kind


def answer_to(data: bytes, seq: int, portid: int) -> Optional[bytes]:
    """The message of one read (a datagram may hold several) that answers our request: its
    sequence number and port id are the request's. Anything else (a late answer to an
    earlier question, another socket's) is not ours; None when the read holds no answer."""
    i = 0
    while i + _NLMSG.size <= len(data):
        length, _, _, mseq, mport = _NLMSG.unpack_from(data, i)
        if length < _NLMSG.size or i + length > len(data):
            raise ParseError("rtnetlink: answer length does not match")
        if mseq == seq and mport == portid:
            return data[i:i + length]
        i += (length + 3) & ~3
    return None


def _ask(s: socket.socket, request: bytes, seq: int) -> bytes:
    """Send request and read until its answer comes (the socket's timeout bounds the wait)."""
    s.send(request)
    portid = s.getsockname()[0]
    while True:
        answer = answer_to(s.recv(65536), seq, portid)
        if answer is not None:
            return answer


def _attributes(data: bytes, start: int, length: int) -> dict:
    """{type: payload} of the attributes from start to length (the first of each type)."""
    attrs, i = {}, start
    while i + _RTA.size <= length:
        alen, akind = _RTA.unpack_from(data, i)
        if alen < _RTA.size or i + alen > length:
            raise ParseError("rtnetlink: attribute runs past the answer")
        attrs.setdefault(akind, data[i + _RTA.size:i + alen])
        i += (alen + 3) & ~3
    return attrs


def route_request(dst: str, src: Optional[str], iif_index: Optional[int], seq: int) -> bytes:
    family = socket.AF_INET6 if ":" in dst else socket.AF_INET
    bits = 128 if family == socket.AF_INET6 else 32
    body = _RTMSG.pack(family, bits, bits if src else 0, 0, 0, 0, 0, 0, 0)
    body += _attr(RTA_DST, ipaddress.ip_address(dst).packed)
    if src:
        body += _attr(RTA_SRC, ipaddress.ip_address(src).packed)
    if iif_index is not None:
        body += _attr(RTA_IIF, struct.pack("=I", iif_index))
    return _request(RTM_GETROUTE, body, seq)


def parse_route_answer(data: bytes, dst: str, query: str, name_of=socket.if_indextoname
                       ) -> RouteLookup:
    """The kernel's answer to route_request: its chosen route, or its refusal."""
    length, kind = _header(data)
    if kind == NLMSG_ERROR:
        if length < _NLMSG.size + 4:
            raise ParseError("rtnetlink: error answer without its code")
        code = -struct.unpack_from("=i", data, _NLMSG.size)[0]
        if code == 0:  # an acknowledgement: the kernel said nothing about the route
            raise ParseError("rtnetlink: acknowledged without a route")
        return RouteLookup(dst=dst, dev=None, error=os.strerror(abs(code)), query=query)
    if kind != RTM_NEWROUTE or length < _NLMSG.size + _RTMSG.size:
        raise ParseError(f"rtnetlink: unexpected answer type {kind}")
    family, _, _, _, _, _, _, rtype, _ = _RTMSG.unpack_from(data, _NLMSG.size)
    if rtype in RTN_TYPES:
        return RouteLookup(dst=dst, dev=None, error=f"{RTN_TYPES[rtype]} route", query=query)
    attrs = _attributes(data, _NLMSG.size + _RTMSG.size, length)

    def address(key: int) -> Optional[str]:
        raw = attrs.get(key)
        if raw is None or len(raw) not in (4, 16):
            return None
        return str(ipaddress.ip_address(raw))

    dev = None
    if RTA_OIF in attrs and len(attrs[RTA_OIF]) == 4:
        try:
            dev = name_of(struct.unpack("=I", attrs[RTA_OIF])[0])
        except OSError:
            dev = None
    return RouteLookup(dst=dst, dev=dev, gateway=address(RTA_GATEWAY),
                       prefsrc=address(RTA_PREFSRC), query=query)


def route_get(dst: str, src: Optional[str] = None, iif: Optional[str] = None) -> RouteLookup:
    """The kernel's route toward dst in the calling thread's namespace (see module doc)."""
    query = "ip route get " + dst + (f" from {src}" if src else "") + (f" iif {iif}" if iif
                                                                        else "")
    iif_index = None
    if iif:
        try:
            iif_index = socket.if_nametoindex(iif)
        except OSError:
            return RouteLookup(dst=dst, dev=None, error=f'Cannot find device "{iif}"',
                               query=query)
    with _socket() as s:
        return parse_route_answer(_ask(s, route_request(dst, src, iif_index, 1), 1), dst, query)


def nsid_request(fd: int, seq: int) -> bytes:
    body = struct.pack("=B3x", socket.AF_UNSPEC) + _attr(NETNSA_FD, struct.pack("=I", fd))
    return _request(RTM_GETNSID, body, seq)


def parse_nsid_answer(data: bytes) -> Optional[int]:
    """The id in an RTM_NEWNSID answer; None when none is assigned or the kernel refused."""
    length, kind = _header(data)
    if kind == NLMSG_ERROR:
        return None
    if kind != RTM_NEWNSID:
        raise ParseError(f"rtnetlink: unexpected answer type {kind}")
    raw = _attributes(data, _NLMSG.size + 4, length).get(NETNSA_NSID, b"")
    if len(raw) < 4:
        return None
    nsid = struct.unpack_from("=i", raw)[0]
    return nsid if nsid >= 0 else None


def nsids(paths: list) -> list:
    """For each namespace path, the id the calling thread's namespace knows it by (None when
    it has assigned none, or the path cannot be opened). One socket serves them all."""
    out = []
    with _socket() as s:
        for seq, path in enumerate(paths, 1):
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                out.append(None)  # gone, or not ours to open
                continue
            try:
                out.append(parse_nsid_answer(_ask(s, nsid_request(fd, seq), seq)))
            finally:
                os.close(fd)
    return out


# ------------------------------------------------------------------ nf_tables: which tables

NETLINK_NETFILTER = 12
NFT_GETTABLE = (10 << 8) | 1  # NFNL_SUBSYS_NFTABLES, NFT_MSG_GETTABLE
NFT_NEWTABLE = (10 << 8) | 0
NLMSG_DONE = 3
NLM_F_DUMP = 0x300
NFTA_TABLE_NAME = 1
NFT_FAMILIES = {1: "inet", 2: "ip", 3: "arp", 5: "netdev", 7: "bridge", 10: "ip6"}


def parse_nft_table_answers(data: bytes) -> tuple:
    """((family, name), ...) of the NFT_MSG_NEWTABLE messages in one read of a dump, and
    whether the dump ended in it. ParseError for a message that is not sound."""
    tables, i = [], 0
    while i < len(data):
        length, kind = _header(data[i:])
        if kind == NLMSG_DONE:
            return tuple(tables), True
        if kind == NLMSG_ERROR:
            if length >= _NLMSG.size + 4 and struct.unpack_from("=i", data, i + _NLMSG.size)[0]:
                raise ParseError("nfnetlink: the kernel refused the table dump")
            return tuple(tables), True
        if kind == NFT_NEWTABLE and length >= _NLMSG.size + 4:
            family = NFT_FAMILIES.get(data[i + _NLMSG.size], str(data[i + _NLMSG.size]))
            name = _attributes(data[i:i + length], _NLMSG.size + 4, length).get(
                NFTA_TABLE_NAME, b"")
            tables.append((family, name.split(b"\0", 1)[0].decode(errors="replace")))
        i += (length + 3) & ~3
    return tuple(tables), False


def nft_tables() -> tuple:
    """The nf_tables tables of the calling thread's namespace, iptables-nft's among them:
    what `nft list tables` says, without a process. (Like nft and iptables-nft-save, which
    netdoctor runs on every host, the question makes the kernel load nf_tables if it is a
    module not loaded yet.)"""
    request = _NLMSG.pack(_NLMSG.size + 4, NFT_GETTABLE, NLM_F_REQUEST | NLM_F_DUMP, 1, 0)
    request += struct.pack("=BBH", socket.AF_UNSPEC, 0, 0)
    found = []
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER) as s:
        s.settimeout(2.0)
        s.send(request)
        while True:
            tables, done = parse_nft_table_answers(s.recv(65536))
            found.extend(tables)
            if done:
                return tuple(found)

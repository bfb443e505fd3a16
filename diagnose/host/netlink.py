"""Netlink messages, the part every family shares: the header (struct nlmsghdr), attributes,
requests, and reading the one answer to a request (its sequence number and port id).
rtnetlink.py and nfnetlink.py ask their own questions with it, as pyroute2 splits them."""

from __future__ import annotations

import socket
import struct
from typing import Optional

from ..errors import ParseError

NLMSG_ERROR = 2
NLM_F_REQUEST = 1
NLMSG = struct.Struct("=IHHII")
RTA = struct.Struct("=HH")


def attribute(kind: int, payload: bytes) -> bytes:
    length = RTA.size + len(payload)
    return RTA.pack(length, kind) + payload + b"\0" * ((4 - length % 4) % 4)


def request(kind: int, body: bytes, seq: int) -> bytes:
    return NLMSG.pack(NLMSG.size + len(body), kind, NLM_F_REQUEST, seq, 0) + body


def open_socket(family: int) -> socket.socket:
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, family)
    s.settimeout(2.0)
    return s


def header(data: bytes) -> tuple:
    """(length, type) of an answer whose header and length are sound; ParseError if not."""
    if len(data) < NLMSG.size:
        raise ParseError("netlink: answer shorter than its header")
    length, kind, _, _, _ = NLMSG.unpack_from(data)
    if length > len(data) or length < NLMSG.size:
        raise ParseError("netlink: answer length does not match")
    return length, kind


def answer_to(data: bytes, seq: int, portid: int) -> Optional[bytes]:
    """The message of one read (a datagram may hold several) that answers our request: its
    sequence number and port id are the request's. Anything else (a late answer to an
    earlier question, another socket's) is not ours; None when the read holds no answer."""
    i = 0
    while i + NLMSG.size <= len(data):
        length, _, _, mseq, mport = NLMSG.unpack_from(data, i)
        if length < NLMSG.size or i + length > len(data):
            raise ParseError("netlink: answer length does not match")
        if mseq == seq and mport == portid:
            return data[i:i + length]
        i += (length + 3) & ~3
    return None


def ask(s: socket.socket, request: bytes, seq: int) -> bytes:
    """Send request and read until its answer comes (the socket's timeout bounds the wait)."""
    s.send(request)
    portid = s.getsockname()[0]
    while True:
        answer = answer_to(s.recv(65536), seq, portid)
        if answer is not None:
            return answer


def attributes(data: bytes, start: int, length: int) -> dict:
    """{type: payload} of the attributes from start to length (the first of each type)."""
    attrs: dict = {}
    for akind, payload in each_attribute(data, start, length):
        attrs.setdefault(akind, payload)
    return attrs


def each_attribute(data: bytes, start: int, length: int, family: str = "rtnetlink"):
    """(type, payload) of every attribute from start to length, repeated types included;
    ParseError (naming the netlink family) for one that runs past the answer."""
    i = start
    while i + RTA.size <= length:
        alen, akind = RTA.unpack_from(data, i)
        if alen < RTA.size or i + alen > length:
            raise ParseError(f"{family}: attribute runs past the answer")
        yield akind, data[i + RTA.size:i + alen]
        i += (alen + 3) & ~3

"""The two rtnetlink requests netdoctor makes thousands of times at scale: RTM_GETROUTE, the
question `ip route get DST [from SRC] [iif DEV]` asks, and RTM_GETNSID, "under which id does
this namespace know that one?" (what IFLA_LINK_NETNSID values name). Asked on a raw
NETLINK_ROUTE socket in the calling thread's namespace, it costs a fraction of a millisecond
instead of a process (4-5 ms); the answer is the kernel's own FIB lookup either way. Nothing
is sent on any network. The only parser of these answers.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
from typing import Optional

from ..errors import ParseError
from ..facts.namespace import RouteLookup
from .netlink import (NLMSG, NLMSG_ERROR, ask, attribute, attributes,
                                             header, open_socket, request)

RTM_NEWROUTE, RTM_GETROUTE = 24, 26
RTM_NEWNSID, RTM_GETNSID = 88, 90
NETNSA_NSID, NETNSA_FD = 1, 3
RTA_DST, RTA_SRC, RTA_IIF, RTA_OIF, RTA_GATEWAY, RTA_PREFSRC = 1, 2, 3, 4, 5, 7
RTN_TYPES = {6: "blackhole", 7: "unreachable", 8: "prohibit"}
_RTMSG = struct.Struct("=BBBBBBBBI")


def route_request(dst: str, src: Optional[str], iif_index: Optional[int], seq: int) -> bytes:
    family = socket.AF_INET6 if ":" in dst else socket.AF_INET
    bits = 128 if family == socket.AF_INET6 else 32
    body = _RTMSG.pack(family, bits, bits if src else 0, 0, 0, 0, 0, 0, 0)
    body += attribute(RTA_DST, ipaddress.ip_address(dst).packed)
    if src:
        body += attribute(RTA_SRC, ipaddress.ip_address(src).packed)
    if iif_index is not None:
        body += attribute(RTA_IIF, struct.pack("=I", iif_index))
    return request(RTM_GETROUTE, body, seq)


def parse_route_answer(data: bytes, dst: str, query: str, name_of=socket.if_indextoname
                       ) -> RouteLookup:
    """The kernel's answer to route_request: its chosen route, or its refusal."""
    length, kind = header(data)
    if kind == NLMSG_ERROR:
        if length < NLMSG.size + 4:
            raise ParseError("rtnetlink: error answer without its code")
        code = -struct.unpack_from("=i", data, NLMSG.size)[0]
        if code == 0:  # an acknowledgement: the kernel said nothing about the route
            raise ParseError("rtnetlink: acknowledged without a route")
        return RouteLookup(dst=dst, dev=None, error=os.strerror(abs(code)), query=query)
    if kind != RTM_NEWROUTE or length < NLMSG.size + _RTMSG.size:
        raise ParseError(f"rtnetlink: unexpected answer type {kind}")
    family, _, _, _, _, _, _, rtype, _ = _RTMSG.unpack_from(data, NLMSG.size)
    if rtype in RTN_TYPES:
        return RouteLookup(dst=dst, dev=None, error=f"{RTN_TYPES[rtype]} route", query=query)
    attrs = attributes(data, NLMSG.size + _RTMSG.size, length)

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
    with open_socket(socket.NETLINK_ROUTE) as s:
        return parse_route_answer(ask(s, route_request(dst, src, iif_index, 1), 1), dst, query)


def nsid_request(fd: int, seq: int) -> bytes:
    body = struct.pack("=B3x", socket.AF_UNSPEC) + attribute(NETNSA_FD, struct.pack("=I", fd))
    return request(RTM_GETNSID, body, seq)


def parse_nsid_answer(data: bytes) -> Optional[int]:
    """The id in an RTM_NEWNSID answer; None when none is assigned or the kernel refused."""
    length, kind = header(data)
    if kind == NLMSG_ERROR:
        return None
    if kind != RTM_NEWNSID:
        raise ParseError(f"rtnetlink: unexpected answer type {kind}")
    raw = attributes(data, NLMSG.size + 4, length).get(NETNSA_NSID, b"")
    if len(raw) < 4:
        return None
    nsid = struct.unpack_from("=i", raw)[0]
    return nsid if nsid >= 0 else None


def nsids(paths: list) -> list:
    """For each namespace path, the id the calling thread's namespace knows it by (None when
    it has assigned none, or the path cannot be opened). One socket serves them all."""
    out = []
    with open_socket(socket.NETLINK_ROUTE) as s:
        for seq, path in enumerate(paths, 1):
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                out.append(None)  # gone, or not ours to open
                continue
            try:
                out.append(parse_nsid_answer(ask(s, nsid_request(fd, seq), seq)))
            finally:
                os.close(fd)
    return out

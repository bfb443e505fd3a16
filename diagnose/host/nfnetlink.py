"""One nfnetlink question, asked for every namespace: which nf_tables tables exist (what
`nft list tables` says), so that rules are dumped only where there are some. The only
parser of its answers."""

from __future__ import annotations

import socket
import struct

from ..errors import ParseError
from .netlink import NLM_F_REQUEST, NLMSG, NLMSG_ERROR, attributes, header


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
        length, kind = header(data[i:])
        if kind == NLMSG_DONE:
            return tuple(tables), True
        if kind == NLMSG_ERROR:
            if length >= NLMSG.size + 4 and struct.unpack_from("=i", data, i + NLMSG.size)[0]:
                raise ParseError("nfnetlink: the kernel refused the table dump")
            return tuple(tables), True
        if kind == NFT_NEWTABLE and length >= NLMSG.size + 4:
            family = NFT_FAMILIES.get(data[i + NLMSG.size], str(data[i + NLMSG.size]))
            name = attributes(data[i:i + length], NLMSG.size + 4, length).get(
                NFTA_TABLE_NAME, b"")
            tables.append((family, name.split(b"\0", 1)[0].decode(errors="replace")))
        i += (length + 3) & ~3
    return tuple(tables), False


def nft_tables() -> tuple:
    """The nf_tables tables of the calling thread's namespace, iptables-nft's among them:
    what `nft list tables` says, without a process. (Like nft and iptables-nft-save, which
    netdoctor runs on every host, the question makes the kernel load nf_tables if it is a
    module not loaded yet.)"""
    request = NLMSG.pack(NLMSG.size + 4, NFT_GETTABLE, NLM_F_REQUEST | NLM_F_DUMP, 1, 0)
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

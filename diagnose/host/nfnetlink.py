"""Two nfnetlink questions. Asked for every namespace: which nf_tables tables exist (what
`nft list tables` says), so that rules are dumped only where there are some. Asked where a
netdev or inet table exists: the devices each chain of an ingress or egress hook is bound
to, which `nft -j` (1.0.6) leaves out. The only parser of their answers."""

from __future__ import annotations

import socket
import struct

from ..errors import ParseError
from .netlink import NLM_F_REQUEST, NLMSG, NLMSG_ERROR, attributes, each_attribute, header


NETLINK_NETFILTER = 12
NFT_GETTABLE = (10 << 8) | 1  # NFNL_SUBSYS_NFTABLES, NFT_MSG_GETTABLE
NFT_NEWTABLE = (10 << 8) | 0
NLMSG_DONE = 3
NLM_F_DUMP = 0x300
NFTA_TABLE_NAME = 1
NFT_GETCHAIN = (10 << 8) | 4
NFT_NEWCHAIN = (10 << 8) | 3
NFTA_CHAIN_TABLE, NFTA_CHAIN_NAME, NFTA_CHAIN_HOOK = 1, 3, 4
NFTA_HOOK_DEV, NFTA_HOOK_DEVS = 3, 4
NFTA_DEVICE_NAME, NFTA_DEVICE_PREFIX = 1, 2
NLA_TYPE_MASK = 0x3FFF  # without NLA_F_NESTED and NLA_F_NET_BYTEORDER
NFT_FAMILIES = {1: "inet", 2: "ip", 3: "arp", 5: "netdev", 7: "bridge", 10: "ip6"}


def parse_nft_table_answers(data: bytes) -> tuple:
    """((family, name), ...) of the NFT_MSG_NEWTABLE messages in one read of a dump, and
    whether the dump ended in it. ParseError for a message that is not sound."""
    messages, done = _dump_messages(data, NFT_NEWTABLE, "table")
    tables = []
    for family, message in messages:
        name = attributes(message, NLMSG.size + 4, len(message)).get(NFTA_TABLE_NAME, b"")
        tables.append((family, name.split(b"\0", 1)[0].decode(errors="replace")))
    return tuple(tables), done


def _dump_messages(data: bytes, wanted: int, what: str) -> tuple:
    """([(family, message)] of the messages of type wanted in one read of a dump, whether
    the dump ended in it). ParseError for a message that is not sound, or a refusal."""
    out, i = [], 0
    while i < len(data):
        length, kind = header(data[i:])
        if kind == NLMSG_DONE:
            return out, True
        if kind == NLMSG_ERROR:
            if length >= NLMSG.size + 4 and struct.unpack_from("=i", data, i + NLMSG.size)[0]:
                raise ParseError(f"nfnetlink: the kernel refused the {what} dump")
            return out, True
        if kind == wanted and length >= NLMSG.size + 4:
            out.append((NFT_FAMILIES.get(data[i + NLMSG.size], str(data[i + NLMSG.size])),
                        data[i:i + length]))
        i += (length + 3) & ~3
    return out, False


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


def _each_attribute(data: bytes, start: int, end: int):
    """(type, payload) of every attribute from start to end, repeated types included, the
    type without its flags (a nest's NLA_F_NESTED)."""
    for akind, payload in each_attribute(data, start, end, "nfnetlink"):
        yield akind & NLA_TYPE_MASK, payload


def _name(payload: bytes) -> str:
    return payload.split(b"\0", 1)[0].decode(errors="replace")


def _hook_devices(hook: bytes) -> tuple:
    """The device names in a chain's NFTA_CHAIN_HOOK: one (NFTA_HOOK_DEV), or a list
    (NFTA_HOOK_DEVS); a name prefix (`devices = { "veth*" }`) is kept as "veth*"."""
    devices = []
    for kind, payload in _each_attribute(hook, 0, len(hook)):
        if kind == NFTA_HOOK_DEV:
            devices.append(_name(payload))
        elif kind == NFTA_HOOK_DEVS:
            for dkind, name in _each_attribute(payload, 0, len(payload)):
                if dkind == NFTA_DEVICE_NAME:
                    devices.append(_name(name))
                elif dkind == NFTA_DEVICE_PREFIX:
                    devices.append(_name(name) + "*")
    return tuple(dict.fromkeys(devices))


def parse_nft_chain_answers(data: bytes) -> tuple:
    """({(family, table, chain): devices} of the NFT_MSG_NEWCHAIN messages in one read of a
    dump that are bound to devices, whether the dump ended in it)."""
    messages, done = _dump_messages(data, NFT_NEWCHAIN, "chain")
    chains = {}
    for family, message in messages:
        attrs = dict(_each_attribute(message, NLMSG.size + 4, len(message)))
        devices = _hook_devices(attrs.get(NFTA_CHAIN_HOOK, b""))
        if devices:
            chains[(family, _name(attrs.get(NFTA_CHAIN_TABLE, b"")),
                    _name(attrs.get(NFTA_CHAIN_NAME, b"")))] = devices
    return chains, done


def nft_chain_devices(families=("netdev", "inet")) -> dict:
    """{(family, table, chain): device names} of the calling thread's namespace's base chains
    that are bound to devices (netdev ingress and egress, inet ingress), in the families
    asked for (only those have such chains: the others' chains are not dumped)."""
    numbers = {name: number for number, name in NFT_FAMILIES.items()}
    found: dict = {}
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER) as s:
        s.settimeout(2.0)
        for seq, family in enumerate(families, 1):
            request = NLMSG.pack(NLMSG.size + 4, NFT_GETCHAIN, NLM_F_REQUEST | NLM_F_DUMP,
                                 seq, 0)
            s.send(request + struct.pack("=BBH", numbers[family], 0, 0))
            while True:
                chains, done = parse_nft_chain_answers(s.recv(65536))
                found.update(chains)
                if done:
                    break
    return found

"""One pcapng file for every hop of a trace: an interface block per hop (its interface name,
and in the description its role and network namespace), every frame in the order of its
kernel timestamp, nanosecond resolution. Wireshark then shows on which hop each frame was
seen (frame.interface_id / frame.interface_description). The format is the IETF's pcapng
draft; written here because scapy's writer cannot give an interface a description or
nanosecond timestamps.
"""

from __future__ import annotations

import struct

LINKTYPE_ETHERNET = 1
SHB, IDB, EPB = 0x0A0D0D0A, 0x00000001, 0x00000006
BYTE_ORDER_MAGIC = 0x1A2B3C4D
OPT_END, OPT_COMMENT = 0, 1
SHB_USERAPPL = 4
IF_NAME, IF_DESCRIPTION, IF_TSRESOL = 2, 3, 9


def _option(code: int, value: bytes) -> bytes:
    pad = (-len(value)) % 4
    return struct.pack("<HH", code, len(value)) + value + b"\0" * pad


def _options(*opts: tuple) -> bytes:
    body = b"".join(_option(code, value) for code, value in opts if value is not None)
    return body + struct.pack("<HH", OPT_END, 0) if body else b""


def _block(kind: int, body: bytes) -> bytes:
    body += b"\0" * ((-len(body)) % 4)
    length = len(body) + 12
    return struct.pack("<II", kind, length) + body + struct.pack("<I", length)


def section_header(application: str, comment: str = "") -> bytes:
    body = struct.pack("<IHHq", BYTE_ORDER_MAGIC, 1, 0, -1)
    body += _options((OPT_COMMENT, comment.encode() if comment else None),
                     (SHB_USERAPPL, application.encode()))
    return _block(SHB, body)


def interface(name: str, description: str, snaplen: int = 0) -> bytes:
    body = struct.pack("<HHI", LINKTYPE_ETHERNET, 0, snaplen)
    body += _options((IF_NAME, name.encode()), (IF_DESCRIPTION, description.encode()),
                     (IF_TSRESOL, bytes([9])))  # 10^-9 s
    return _block(IDB, body)


def packet(interface_id: int, ts_ns: int, raw: bytes) -> bytes:
    body = struct.pack("<IIIII", interface_id, ts_ns >> 32, ts_ns & 0xFFFFFFFF, len(raw),
                       len(raw)) + raw
    return _block(EPB, body)


def write_pcapng(path: str, hops: list, application: str, comment: str = "") -> int:
    """hops: (interface name, description, frames) per hop, path order; frames have ts_ns
    and raw. Every frame goes out once, under its hop's interface, in timestamp order (a
    stable sort: frames of one instant keep the hops' order). Returns the frames written."""
    frames = sorted(((fr.ts_ns, i, n, fr.raw) for i, (_, _, hop_frames) in enumerate(hops)
                     for n, fr in enumerate(hop_frames)), key=lambda t: (t[0], t[1], t[2]))
    with open(path, "wb") as f:
        f.write(section_header(application, comment))
        for name, description, _ in hops:
            f.write(interface(name, description))
        for ts, i, _, raw in frames:
            f.write(packet(i, ts, raw))
    return len(frames)

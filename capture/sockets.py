"""Capture on every hop at once: an AF_PACKET socket per hop, opened inside the hop's namespace.

Sockets are armed (bound, filtered) before the probe is sent, and drained after it, with
kernel timestamps, so the order of sightings across hops is the kernel's. Frames are parsed
here (the one parser of captured frames) and can be written out as one pcap per hop.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
import threading
from dataclasses import dataclass, field
from typing import Optional

from . import bpf
from netdoctor.diagnose.host import netns

ETH_P_ALL = 0x0003
SO_TIMESTAMPNS = 35
PACKET_OUTGOING = 4
SOL_PACKET = 263
PACKET_STATISTICS = 6


@dataclass(frozen=True)
class Frame:
    """One captured frame, decoded as far as netdoctor needs."""

    ts_ns: int
    outgoing: bool
    raw: bytes
    ethertype: int = 0
    src: Optional[str] = None  # IPv4 source (or ARP sender)
    dst: Optional[str] = None
    proto: Optional[str] = None  # icmp, tcp, udp, arp
    icmp_type: Optional[int] = None
    icmp_id: Optional[int] = None
    cookie: Optional[int] = None
    sport: Optional[int] = None
    dport: Optional[int] = None
    tcp_flags: Optional[int] = None
    arp_op: Optional[int] = None  # 1 request, 2 reply
    length: int = 0  # IP total length
    inner: Optional[tuple] = None  # ICMP error: (src, dst, proto) of the packet it is about
    outer: Optional[tuple] = None  # a decapsulated VXLAN frame: (outer src, outer dst, vni)
    ttl: Optional[int] = None  # IPv4 TTL, IPv6 hop limit
    mac: Optional[str] = None  # ARP: the sender's hardware address (who answers, who asks)


def _ip(b: bytes) -> str:
    return str(ipaddress.IPv4Address(b))


def _ip6(b: bytes) -> str:
    return str(ipaddress.IPv6Address(b))


# ICMPv6 types in ICMP's words, so that one classification serves both families: echo
# request/reply, unreachable (and packet too big), time exceeded, parameter problem.
_ICMP6_AS_ICMP = {128: 8, 129: 0, 1: 3, 2: 3, 3: 11, 4: 12}


def _ports(raw: bytes, l4: int, proto: int, kw: dict) -> None:
    """TCP/UDP ports (and TCP flags) at l4, for either IP version; another protocol keeps
    its number."""
    if proto in (6, 17) and len(raw) >= l4 + 4:
        sport, dport = struct.unpack("!HH", raw[l4:l4 + 4])
        kw.update(proto="tcp" if proto == 6 else "udp", sport=sport, dport=dport)
        if proto == 6 and len(raw) >= l4 + 14:
            kw["tcp_flags"] = raw[l4 + 13]
    else:
        kw["proto"] = str(proto)


def _parse_ipv6(raw: bytes, kw: dict) -> None:
    nh = raw[20]
    l4 = 54
    kw.update(src=_ip6(raw[22:38]), dst=_ip6(raw[38:54]), ttl=raw[21],
              length=40 + struct.unpack("!H", raw[18:20])[0])
    if nh == 58 and len(raw) >= l4 + 8:
        itype = raw[l4]
        if itype in (135, 136) and len(raw) >= l4 + 24:
            # Neighbour solicitation / advertisement: IPv6's ARP (the target is the address
            # asked for, or the one answering).
            target = _ip6(raw[l4 + 8:l4 + 24])
            kw.update(proto="arp", arp_op=1 if itype == 135 else 2,
                      src=kw["src"] if itype == 135 else target, dst=target)
            return
        kw.update(proto="icmp", icmp_type=_ICMP6_AS_ICMP.get(itype, 256 + itype),
                  icmp_id=struct.unpack("!H", raw[l4 + 4:l4 + 6])[0])
        if itype in (128, 129) and len(raw) >= l4 + 12:
            kw["cookie"] = struct.unpack("!I", raw[l4 + 8:l4 + 12])[0]
        elif itype in (1, 2, 3, 4) and len(raw) >= l4 + 8 + 40:
            q = raw[l4 + 8:]
            kw["inner"] = (_ip6(q[8:24]), _ip6(q[24:40]), q[6])
    else:
        _ports(raw, l4, nh, kw)


def parse_tunnelled(raw: bytes, ts_ns: int, outgoing: bool, port: int) -> Frame:
    """A frame of a tunnel's underlay: the inner frame of a VXLAN packet to UDP port `port`
    (with the outer addresses and the VNI), else the frame itself."""
    outer = parse_frame(raw, ts_ns, outgoing)
    if outer.proto != "udp" or outer.dport != port or len(raw) < 14 + 20 + 16 + 14:
        return outer
    ihl = (raw[14] & 0x0F) * 4
    start = 14 + ihl + 8
    vni = int.from_bytes(raw[start + 4:start + 7], "big")
    inner = parse_frame(raw[start + 8:], ts_ns, outgoing)
    from dataclasses import replace

    return replace(inner, raw=raw, outer=(outer.src, outer.dst, vni))


def parse_frame(raw: bytes, ts_ns: int = 0, outgoing: bool = False) -> Frame:
    """Ethernet II / IPv4 or IPv6 / ICMP(v6), TCP, UDP, and ARP (and IPv6 neighbour
    discovery, read as ARP); anything else keeps only its ethertype."""
    if len(raw) < 14:
        return Frame(ts_ns, outgoing, raw)
    ethertype = struct.unpack("!H", raw[12:14])[0]
    kw = {"ethertype": ethertype}
    if ethertype == 0x0806 and len(raw) >= 42:
        op = struct.unpack("!H", raw[20:22])[0]
        kw.update(proto="arp", arp_op=op, src=_ip(raw[28:32]), dst=_ip(raw[38:42]),
                  mac=raw[22:28].hex(":"))
    elif ethertype == 0x86DD and len(raw) >= 54:
        _parse_ipv6(raw, kw)
    elif ethertype == 0x0800 and len(raw) >= 34:
        ihl = (raw[14] & 0x0F) * 4
        l4 = 14 + ihl
        total = struct.unpack("!H", raw[16:18])[0]
        proto = raw[23]
        kw.update(src=_ip(raw[26:30]), dst=_ip(raw[30:34]), length=total, ttl=raw[22])
        if proto == 1 and len(raw) >= l4 + 8:
            itype = raw[l4]
            kw.update(proto="icmp", icmp_type=itype,
                      icmp_id=struct.unpack("!H", raw[l4 + 4:l4 + 6])[0])
            if itype in (0, 8) and len(raw) >= l4 + 12:
                kw["cookie"] = struct.unpack("!I", raw[l4 + 8:l4 + 12])[0]
            elif itype in (3, 11, 12) and len(raw) >= l4 + 8 + 20:
                inner = raw[l4 + 8:]
                kw["inner"] = (_ip(inner[12:16]), _ip(inner[16:20]), inner[9])
        else:
            _ports(raw, l4, proto, kw)
    return Frame(ts_ns, outgoing, raw, **kw)


@dataclass
class HopCapture:
    role: str
    name: str
    netns: object  # Netns
    ifindex: int
    sock: Optional[socket.socket] = None
    frames: list = field(default_factory=list)
    error: Optional[str] = None
    kernel_drops: int = 0  # frames the filter admitted but the socket had no room for
    tunnel_port: int = 0  # an underlay: the probe arrives inside VXLAN to this UDP port

    def arm(self, program: list) -> None:
        def open_here():
            # Protocol 0: the socket receives nothing until bind() names the interface and
            # the protocol, by which time the filter is attached. (Opened with ETH_P_ALL it
            # would queue every frame of every interface until then: on a busy host, dozens.)
            s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
            try:
                # Filter before bind, so no unfiltered frame is ever queued.
                bpf.attach(s, program)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
                s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
                s.bind((self.name, ETH_P_ALL))
                s.setblocking(False)
            except BaseException:
                s.close()
                raise
            return s

        try:
            self.sock = netns.call_in(self.netns, open_here)
        except OSError as e:
            self.error = f"cannot capture on {self.name}: {e.strerror or e}"

    def drain(self) -> None:
        if self.sock is None:
            return
        while True:
            try:
                data, anc, _, addr = self.sock.recvmsg(65535, 64)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                self.error = f"capture on {self.name} failed: {e.strerror or e}"
                return
            ts = 0
            for level, kind, value in anc:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(value) >= 16:
                    sec, nsec = struct.unpack("qq", value[:16])
                    ts = sec * 1_000_000_000 + nsec
            out = addr[2] == PACKET_OUTGOING
            self.frames.append(parse_tunnelled(data, ts, out, self.tunnel_port)
                               if self.tunnel_port else parse_frame(data, ts, out))

    def close(self) -> None:
        if self.sock is not None:
            try:
                # struct tpacket_stats {tp_packets, tp_drops}: what the kernel let through the
                # filter, and what it had to drop for want of buffer.
                raw = self.sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8)
                self.kernel_drops += struct.unpack("=II", raw)[1]
            except OSError:
                pass
            self.sock.close()
            self.sock = None


class Closing:
    """Closing(captures) starts closing every capture at once; join() waits for them.

    Closing a packet socket waits out an RCU grace period (synchronize_net): 12 ms each,
    one after the other, but shared by closes that wait at the same time."""

    def __init__(self, captures: list):
        self._threads = [threading.Thread(target=c.close, daemon=True) for c in captures
                         if c.sock is not None]
        for t in self._threads:
            t.start()

    def join(self) -> None:
        for t in self._threads:
            t.join()


def write_pcap(path: str, frames: list) -> None:
    """A classic pcap (nanosecond timestamps, Ethernet) of frames, for Wireshark."""
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 65535, 1))
        for fr in frames:
            sec, nsec = divmod(fr.ts_ns, 1_000_000_000)
            f.write(struct.pack("<IIII", sec, nsec, len(fr.raw), len(fr.raw)))
            f.write(fr.raw)


def pcap_name(role: str, name: str, index: int) -> str:
    return f"{index}-{role}-{name}.pcap".replace(os.sep, "_")


def write_pcaps(folder: str, captures: list) -> None:
    """One pcap per hop into folder, named by the hop's place, role and interface."""
    os.makedirs(folder, exist_ok=True)
    for i, c in enumerate(captures, 1):
        write_pcap(os.path.join(folder, pcap_name(c.role, c.name, i)), c.frames)


def capture_around(captures: list, program_for, kernel_trace, send):
    """Arm every capture (with program_for(capture)), run send() inside kernel_trace's
    window, drain what the captures saw, and release everything whatever happens: send's
    result. The sockets close while the tracefs instance is removed: both wait for the
    kernel (RCU grace periods), and need not wait one after the other."""
    closing = None
    try:
        for c in captures:
            c.arm(program_for(c))
        with kernel_trace:
            result = send()
            for c in captures:
                c.drain()
            closing = Closing(captures)
    finally:
        if closing is not None:
            closing.join()
        for c in captures:
            c.close()
    return result

"""Classic BPF programs for the capture sockets: the kernel admits only the probe's frames.

A busy interface must not drown the probe, so every hop's socket gets a filter that
accepts: ARP; ICMP errors that quote the probe; and the probe's own flow,
recognised by its tag, which survives NAT (an ICMP payload cookie, or the probe's own
source port for TCP/UDP, matched in either direction).
"""

from __future__ import annotations

import ctypes
import socket
import struct

SO_ATTACH_FILTER = 26

# opcodes
LD_H_ABS, LD_B_ABS, LD_W_IND, LD_H_IND = 0x28, 0x30, 0x40, 0x48
LDX_B_MSH = 0xB1
JEQ_K, JGE_K = 0x15, 0x35
RET_K = 0x06

ACCEPT = 0x40000  # bytes of each frame to keep
ETH_IP, ETH_ARP, ETH_IPV6 = 0x0800, 0x0806, 0x86DD
LD_W_ABS = 0x20
IP6 = 14  # the IPv6 header, fixed at 40 bytes (probes carry no extension headers)
L4_6 = IP6 + 40


# A VXLAN packet's inner Ethernet frame starts after the outer Ethernet, IPv4 (without
# options), UDP and VXLAN headers.
VXLAN_INNER = 14 + 20 + 8 + 8
PACKET_OFFSETS = (LD_H_ABS, LD_B_ABS, LD_W_IND, LD_H_IND, LDX_B_MSH, 0x20)


class _Program:
    def __init__(self):
        self.code = []
        self.labels = {}
        self.fixups = []  # (index, true-label, false-label)
        self.base = 0  # where the frame the loads read starts (an inner frame: past a header)

    def op(self, code, k=0, jt=None, jf=None):
        self.fixups.append((len(self.code), jt, jf))
        self.code.append([code, 0, 0, k + self.base if code in PACKET_OFFSETS else k])

    def label(self, name):
        self.labels[name] = len(self.code)

    def by_ethertype(self) -> None:
        """ARP is accepted; IPv4 jumps to "ip"; IPv6 goes on here; anything else drops."""
        self.op(LD_H_ABS, 12)
        self.op(JEQ_K, ETH_ARP, jt="accept", jf="not_arp")
        self.label("not_arp")
        self.op(JEQ_K, ETH_IP, jt="ip", jf="not_ip")
        self.label("not_ip")
        self.op(JEQ_K, ETH_IPV6, jt="ip6", jf="drop")
        self.label("ip6")

    def finish(self) -> list:
        """The two ends every program jumps to (keep the frame, or not), then assemble."""
        self.label("accept")
        self.op(RET_K, ACCEPT)
        self.label("drop")
        self.op(RET_K, 0)
        return self.assemble()

    def assemble(self) -> list:
        for i, jt, jf in self.fixups:
            for slot, target in ((1, jt), (2, jf)):
                if target is None:
                    continue
                offset = self.labels[target] - i - 1
                if not 0 <= offset <= 255:
                    raise ValueError("BPF jump out of range")
                self.code[i][slot] = offset
        return [tuple(c) for c in self.code]


def probe_filter(proto: str, cookie: int = 0, port: int = 0, ident: int = -1,
                 tunnel_port: int = 0) -> list:
    """Instructions (code, jt, jf, k) admitting ARP, the tagged probe flow, and the ICMP
    errors that quote the probe (by ICMP id or cookie, or by port): a busy host's other
    errors stay in the kernel. With tunnel_port, the same inside VXLAN packets to that UDP
    port (a tunnel's underlay carries the probe encapsulated)."""
    p = _Program()
    if tunnel_port:
        p.op(LD_H_ABS, 12)
        p.op(JEQ_K, ETH_IP, jt="outer_ip", jf="drop")
        p.label("outer_ip")
        p.op(LD_B_ABS, 14)
        p.op(JEQ_K, 0x45, jt="outer_plain", jf="drop")
        p.label("outer_plain")
        p.op(LD_B_ABS, 23)
        p.op(JEQ_K, 17, jt="outer_udp", jf="drop")
        p.label("outer_udp")
        p.op(LD_H_ABS, 14 + 20 + 2)
        p.op(JEQ_K, tunnel_port, jt="inner", jf="drop")
        p.label("inner")
        p.base = VXLAN_INNER
    p.by_ethertype()
    _ipv6(p, proto, cookie, port, ident)
    p.label("ip")
    p.op(LDX_B_MSH, 14)  # X = IP header length
    p.op(LD_B_ABS, 23)  # IP protocol
    p.op(JEQ_K, 1, jt="icmp", jf="not_icmp")
    p.label("icmp")
    p.op(LD_H_IND, 14)  # ICMP type and code
    # Errors: destination unreachable (3), time exceeded (11), parameter problem (12).
    p.op(JGE_K, 0x0300, jt="ge3", jf="echo")
    p.label("ge3")
    p.op(JGE_K, 0x0400, jt="ge4", jf="error")
    p.label("ge4")
    p.op(JGE_K, 0x0B00, jt="ge11", jf="echo")
    p.label("ge11")
    p.op(JGE_K, 0x0D00, jt="echo", jf="error")
    p.label("echo")
    if proto == "icmp":
        p.op(LD_W_IND, 14 + 8)  # the first payload word: the cookie
        p.op(JEQ_K, cookie & 0xFFFFFFFF, jt="accept", jf="drop")
    else:
        p.op(JEQ_K, 0xFFFFFFFF, jt="accept", jf="drop")  # never: no echo for TCP/UDP probes
    # An ICMP error quotes the packet it is about: 8 bytes after the ICMP header comes that
    # packet's IP header, then at least 8 bytes of its L4 header. Inner offsets are read
    # relative to an outer header of 20 bytes; an outer header with options is let through.
    p.label("error")
    p.op(LD_B_ABS, 14)
    p.op(JEQ_K, 0x45, jt="plain", jf="accept")
    p.label("plain")
    p.op(LD_B_ABS, 14 + 20 + 8 + 9)  # the quoted packet's protocol
    if proto == "icmp":
        p.op(JEQ_K, 1, jt="quoted_icmp", jf="drop")
        p.label("quoted_icmp")
        p.op(LDX_B_MSH, 14 + 20 + 8)  # X = the quoted IP header's length
        p.op(LD_H_IND, 14 + 20 + 8 + 4)  # the quoted echo's id
        p.op(JEQ_K, ident & 0xFFFF if ident >= 0 else 0x10000, jt="accept", jf="quoted_cookie")
        p.label("quoted_cookie")
        p.op(LD_W_IND, 14 + 20 + 8 + 8)  # its cookie, when the router quoted that far
        p.op(JEQ_K, cookie & 0xFFFFFFFF, jt="accept", jf="drop")
    else:
        p.op(JEQ_K, 6 if proto == "tcp" else 17, jt="quoted_l4", jf="drop")
        p.label("quoted_l4")
        p.op(LDX_B_MSH, 14 + 20 + 8)
        p.op(LD_H_IND, 14 + 20 + 8)  # the quoted source port
        p.op(JEQ_K, port, jt="accept", jf="quoted_dport")
        p.label("quoted_dport")
        p.op(LD_H_IND, 14 + 20 + 8 + 2)
        p.op(JEQ_K, port, jt="accept", jf="drop")
    p.label("not_icmp")
    if proto in ("tcp", "udp"):
        p.op(LD_B_ABS, 23)
        p.op(JEQ_K, 6 if proto == "tcp" else 17, jt="l4", jf="drop")
        p.label("l4")
        p.op(LD_H_IND, 14)  # source port
        p.op(JEQ_K, port, jt="accept", jf="dport")
        p.label("dport")
        p.op(LD_H_IND, 16)  # destination port
        p.op(JEQ_K, port, jt="accept", jf="drop")
    else:
        p.op(JEQ_K, 0xFFFFFFFF, jt="accept", jf="drop")
    return p.finish()


def _ipv6(p: "_Program", proto: str, cookie: int, port: int, ident: int) -> None:
    """The IPv6 half of probe_filter: neighbour discovery (as ARP is for IPv4), the probe's
    ICMPv6 echoes by cookie or its TCP/UDP ports, and the ICMPv6 errors that quote it."""
    p.op(LD_B_ABS, IP6 + 6)  # next header
    p.op(JEQ_K, 58, jt="icmp6", jf="not_icmp6")
    p.label("icmp6")
    p.op(LD_B_ABS, L4_6)  # ICMPv6 type
    p.op(JGE_K, 133, jt="nd_low", jf="not_nd")
    p.label("nd_low")
    p.op(JGE_K, 138, jt="not_nd", jf="accept")  # router/neighbour solicitation, advertisement
    p.label("not_nd")
    p.op(JGE_K, 128, jt="echo6", jf="error6")  # 1-4 are errors
    p.label("echo6")
    if proto == "icmp":
        p.op(LD_W_ABS, L4_6 + 8)  # the cookie
        p.op(JEQ_K, cookie & 0xFFFFFFFF, jt="accept", jf="drop")
    else:
        p.op(JEQ_K, 0x1FFFF, jt="accept", jf="drop")  # never
    p.label("error6")
    quoted = L4_6 + 8  # the quoted packet's IPv6 header
    p.op(LD_B_ABS, quoted + 6)
    if proto == "icmp":
        p.op(JEQ_K, 58, jt="quoted6_icmp", jf="drop")
        p.label("quoted6_icmp")
        p.op(LD_H_ABS, quoted + 40 + 4)  # the quoted echo's id
        p.op(JEQ_K, ident & 0xFFFF if ident >= 0 else 0x10000, jt="accept", jf="drop")
    else:
        p.op(JEQ_K, 6 if proto == "tcp" else 17, jt="quoted6_l4", jf="drop")
        p.label("quoted6_l4")
        p.op(LD_H_ABS, quoted + 40)
        p.op(JEQ_K, port, jt="accept", jf="quoted6_dport")
        p.label("quoted6_dport")
        p.op(LD_H_ABS, quoted + 42)
        p.op(JEQ_K, port, jt="accept", jf="drop")
    p.label("not_icmp6")
    if proto in ("tcp", "udp"):
        p.op(JEQ_K, 6 if proto == "tcp" else 17, jt="l4_6", jf="drop")
        p.label("l4_6")
        p.op(LD_H_ABS, L4_6)
        p.op(JEQ_K, port, jt="accept", jf="dport6")
        p.label("dport6")
        p.op(LD_H_ABS, L4_6 + 2)
        p.op(JEQ_K, port, jt="accept", jf="drop")
    else:
        p.op(JEQ_K, 0x1FFFF, jt="accept", jf="drop")


def port_filter(proto: str, ports: tuple) -> list:
    """A watch's filter (`inbound --watch`): TCP or UDP segments, IPv4 or IPv6, from or to
    one of ports, whoever the client is; plus the ARP and neighbour discovery of the path.
    Nothing else of a busy interface reaches netdoctor."""
    number = 6 if proto == "tcp" else 17
    ports = tuple(dict.fromkeys(p for p in ports if p))
    p = _Program()
    p.by_ethertype()
    p.op(LD_B_ABS, IP6 + 6)
    p.op(JEQ_K, 58, jt="icmp6", jf="l4_6")
    p.label("icmp6")
    p.op(LD_B_ABS, L4_6)
    p.op(JGE_K, 133, jt="nd_low", jf="drop")
    p.label("nd_low")
    p.op(JGE_K, 137, jt="drop", jf="accept")  # neighbour solicitation and advertisement
    p.label("l4_6")
    p.op(JEQ_K, number, jt="ports6", jf="drop")
    p.label("ports6")
    _either_port(p, ports, LD_H_ABS, L4_6, "6")
    p.label("ip")
    p.op(LD_B_ABS, 23)
    p.op(JEQ_K, number, jt="l4", jf="drop")
    p.label("l4")
    p.op(LDX_B_MSH, 14)
    _either_port(p, ports, LD_H_IND, 14, "4")  # (indexed past the IPv4 header and options)
    return p.finish()


def _either_port(p: "_Program", ports: tuple, load: int, l4: int, tag: str) -> None:
    """Accept when the source port (at l4) or the destination port (l4 + 2) is one of
    ports; drop otherwise."""
    for side, offset in (("s", l4), ("d", l4 + 2)):
        p.op(load, offset)
        for i, port in enumerate(ports):
            last = i == len(ports) - 1
            nxt = (f"d{tag}" if side == "s" else "drop") if last else f"{side}{tag}_{i + 1}"
            p.op(JEQ_K, port, jt="accept", jf=nxt)
            if not last:
                p.label(nxt)
        if side == "s":
            p.label(f"d{tag}")


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8),
                ("k", ctypes.c_uint32)]


def attach(sock: socket.socket, program: list) -> None:
    """SO_ATTACH_FILTER: from here on, the kernel hands this socket matching frames only."""
    insns = (_SockFilter * len(program))(*[_SockFilter(*i) for i in program])
    # struct sock_fprog { unsigned short len; struct sock_filter *filter; }
    fprog = struct.pack("HL", len(program), ctypes.addressof(insns))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


def run(program: list, frame: bytes) -> int:
    """Interpret the program on one frame (for tests): bytes kept, 0 when dropped."""
    a = x = pc = 0

    def load(off, size):
        if off < 0 or off + size > len(frame):
            raise IndexError
        return int.from_bytes(frame[off:off + size], "big")

    while pc < len(program):
        code, jt, jf, k = program[pc]
        try:
            if code == LD_H_ABS:
                a = load(k, 2)
            elif code == LD_B_ABS:
                a = load(k, 1)
            elif code == LD_W_ABS:
                a = load(k, 4)
            elif code == LD_W_IND:
                a = load(x + k, 4)
            elif code == LD_H_IND:
                a = load(x + k, 2)
            elif code == LDX_B_MSH:
                x = (load(k, 1) & 0x0F) * 4
            elif code == JEQ_K:
                pc += jt if a == k else jf
            elif code == JGE_K:
                pc += jt if a >= k else jf
            elif code == RET_K:
                return k
        except IndexError:
            return 0  # the kernel drops a frame a load runs past
        pc += 1
    return 0

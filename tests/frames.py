"""Frames laid out by hand (Ethernet II, IPv4 per RFC 791, ICMP echo with netdoctor's cookie),
for the tests of the capture filter: the unit tests run them through netdoctor's BPF
interpreter, the live test through the kernel's."""

import struct

from netdoctor.capture.probe import echo_packet


def ipv4(src, dst, proto, payload):
    total = 20 + len(payload)
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 1, 0x4000, 64, proto, 0,
                      bytes(map(int, src.split("."))), bytes(map(int, dst.split("."))))
    return hdr + payload


def ether(payload, ethertype=0x0800):
    return b"\x02" * 6 + b"\x04" * 6 + struct.pack("!H", ethertype) + payload


def echo(src, dst, cookie, reply=False, ident=7):
    pkt = bytearray(echo_packet(ident, 1, cookie, 61))
    if reply:
        pkt[0] = 0
    return ether(ipv4(src, dst, 1, bytes(pkt)))


def icmp_error(src, dst, code_bytes, quoted):
    return ether(ipv4(src, dst, 1, code_bytes + b"\0" * 6 + quoted))


def udp(src, dst, sport, dport):
    return ether(ipv4(src, dst, 17, struct.pack("!HHHH", sport, dport, 8, 0)))


def tcp(src, dst, sport, dport):
    return ether(ipv4(src, dst, 6, struct.pack("!HH", sport, dport) + b"\x00" * 16))


ARP = ether(b"\x00\x01\x08\x00\x06\x04\x00\x01" + b"\x00" * 20, 0x0806)


def ipv6(src, dst, next_header, payload):
    import ipaddress

    return struct.pack("!IHBB16s16s", 6 << 28, len(payload), next_header, 64,
                       ipaddress.IPv6Address(src).packed, ipaddress.IPv6Address(dst).packed) \
        + payload


def echo6(src, dst, cookie, reply=False, ident=7):
    body = struct.pack("!BBHHH", 129 if reply else 128, 0, 0, ident, 1) + \
        struct.pack("!I", cookie) + b"\0" * 57
    return ether(ipv6(src, dst, 58, body), 0x86DD)


def neighbour_solicitation(src, target):
    import ipaddress

    body = struct.pack("!BBHI", 135, 0, 0, 0) + ipaddress.IPv6Address(target).packed
    return ether(ipv6(src, "ff02::1:ff00:1", 58, body), 0x86DD)


def vxlan(inner_frame, port=8472, vni=1):
    """inner_frame inside outer Ethernet/IPv4/UDP/VXLAN, as an underlay carries it."""
    vx = struct.pack("!II", 0x08000000, vni << 8) + inner_frame
    return ether(ipv4("192.168.77.1", "192.168.77.2", 17,
                      struct.pack("!HHHH", 40000, port, 8 + len(vx), 0) + vx))

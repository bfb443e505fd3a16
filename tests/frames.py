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

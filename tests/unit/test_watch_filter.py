"""The filter of `inbound --watch`: a client's connection to the published port (and its
answer), in either family, passes; the rest of a busy interface stays in the kernel."""

import pytest

pytest.importorskip("scapy")
from scapy.layers.inet import ICMP, IP, TCP, UDP  # noqa: E402
from scapy.layers.inet6 import ICMPv6EchoRequest, ICMPv6ND_NS, IPv6  # noqa: E402
from scapy.layers.l2 import ARP, Ether  # noqa: E402

from netdoctor.capture import bpf  # noqa: E402

PROGRAM = bpf.port_filter("tcp", (8080, 80))
ETH = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")


@pytest.mark.parametrize("frame, admitted", [
    (ETH / IP(src="198.51.100.1", dst="198.51.100.2") / TCP(sport=40000, dport=8080, flags="S"),
     True),
    # After the DNAT, on the bridge: the container's port.
    (ETH / IP(src="198.51.100.1", dst="172.29.0.3") / TCP(sport=40000, dport=80, flags="S"),
     True),
    (ETH / IP(src="172.29.0.3", dst="198.51.100.1") / TCP(sport=80, dport=40000, flags="SA"),
     True),
    # With IP options the ports sit further on.
    (ETH / IP(src="198.51.100.1", dst="198.51.100.2", options=b"\x01\x01\x01\x00") /
     TCP(sport=40000, dport=8080), True),
    (ETH / IP(src="198.51.100.1", dst="198.51.100.2") / TCP(sport=40000, dport=22), False),
    (ETH / IP(src="198.51.100.1", dst="198.51.100.2") / UDP(sport=40000, dport=8080), False),
    (ETH / IP(src="198.51.100.1", dst="198.51.100.2") / ICMP(), False),
    (ETH / ARP(op=1, psrc="198.51.100.1", pdst="198.51.100.2"), True),
    (ETH / IPv6(src="2001:db8:1::1", dst="2001:db8:1::2") / TCP(sport=40000, dport=8080), True),
    (ETH / IPv6(src="2001:db8:1::1", dst="2001:db8:1::2") / TCP(sport=40000, dport=443), False),
    (ETH / IPv6(src="2001:db8:1::1", dst="ff02::1:ff00:2") / ICMPv6ND_NS(tgt="2001:db8:1::2"),
     True),
    (ETH / IPv6(src="2001:db8:1::1", dst="2001:db8:1::2") / ICMPv6EchoRequest(), False),
])
def test_the_watch_filter(frame, admitted):
    assert bool(bpf.run(PROGRAM, bytes(frame))) is admitted

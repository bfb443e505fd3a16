"""The capture filter in the kernel: the same frames that the unit tests run through
netdoctor's BPF interpreter are sent over a real veth to a real packet socket carrying the
filter. What the kernel lets through must be exactly what the interpreter says."""

import socket
import time

import pytest

from netdoctor.capture import bpf
from netdoctor.diagnose.host import netns

from frames import ARP, echo, echo6, icmp_error, ipv4, neighbour_solicitation, tcp, udp, vxlan
from sandbox import sh

pytestmark = pytest.mark.live

NS = "ndt-bpf"
COOKIE, IDENT, PORT = 0xDEADBEEF, 7, 41000
PROBE_IP = ipv4("172.29.0.2", "203.0.113.80", 1,
                echo("172.29.0.2", "203.0.113.80", COOKIE)[34:])

# (name, frame); each is sent with a distinct source MAC byte so arrivals can be told apart.
FRAMES = [
    ("probe echo", echo("172.29.0.2", "203.0.113.80", COOKIE)),
    ("probe reply after NAT", echo("203.0.113.80", "198.51.100.2", COOKIE, reply=True)),
    ("someone else's echo", echo("172.29.0.2", "203.0.113.80", 0x12345678, ident=9)),
    ("arp", ARP),
    ("error quoting the probe's header", icmp_error("172.29.0.1", "172.29.0.2", b"\x03\x01",
                                                    PROBE_IP[:28])),
    ("error about another flow", icmp_error("203.0.113.80", "198.51.100.2", b"\x03\x03",
                                            ipv4("172.29.0.2", "203.0.113.80", 17,
                                                 b"\x9c\x40\x00\x09\x00\x1a\x00\x00"))),
    ("other udp", udp("1.1.1.1", "2.2.2.2", 53, 4000)),
    ("probe syn", tcp("172.29.0.2", "203.0.113.80", PORT, 80)),
    ("probe synack", tcp("203.0.113.80", "198.51.100.2", 80, PORT)),
    ("other syn", tcp("172.29.0.2", "203.0.113.80", PORT + 1, 80)),
    ("probe echo6", echo6("fd00:29::2", "2001:db8:80::80", COOKIE)),
    ("someone else's echo6", echo6("fd00:29::2", "2001:db8:80::80", 0x1234)),
    ("neighbour solicitation", neighbour_solicitation("fe80::1", "2001:db8:1::1")),
    ("probe echo in vxlan", vxlan(echo("10.244.0.2", "10.244.1.2", COOKIE))),
]


@pytest.fixture
def veth_pair():
    sh("ip", "netns", "add", NS)
    try:
        sh("ip", "-n", NS, "link", "add", "tx0", "type", "veth", "peer", "name", "rx0")
        sh("ip", "-n", NS, "link", "set", "tx0", "up")
        sh("ip", "-n", NS, "link", "set", "rx0", "up")
        yield netns.named(NS)
    finally:
        sh("ip", "netns", "del", NS)


def _kernel_admits(program, frames):
    """The frames' indexes that arrive on rx0 through a packet socket with the filter."""
    tx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    rx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    try:
        bpf.attach(rx, program)
        rx.bind(("rx0", 0x0003))
        rx.settimeout(0.3)
        tx.bind(("tx0", 0))
        for i, frame in enumerate(frames):
            tx.send(frame[:6] + bytes([0x02, 0, 0, 0, 0, i]) + frame[12:])
        got = set()
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            try:
                data = rx.recv(65536)
            except socket.timeout:
                break
            if data[6:11] == bytes([0x02, 0, 0, 0, 0]):  # one of ours (the kernel's own
                got.add(data[11])                   # neighbour discovery passes too)
        return got
    finally:
        tx.close()
        rx.close()


@pytest.mark.parametrize("proto", ["icmp", "tcp"])
def test_the_kernel_runs_the_filter_as_the_interpreter_does(veth_pair, proto):
    program = bpf.probe_filter(proto, cookie=COOKIE, port=PORT,
                               ident=IDENT if proto == "icmp" else -1)
    frames = [f for _, f in FRAMES]
    expected = {i for i, f in enumerate(frames) if bpf.run(program, f)}
    admitted = netns.call_in(veth_pair, _kernel_admits, program, frames)
    names = {i: n for i, (n, _) in enumerate(FRAMES)}
    assert {names[i] for i in admitted} == {names[i] for i in expected}
    # And the filter does its job: the probe's frames and ARP in, the others out.
    want = {"icmp": {"probe echo", "probe reply after NAT", "arp",
                     "error quoting the probe's header", "probe echo6",
                     "neighbour solicitation"},
            "tcp": {"probe syn", "probe synack", "arp", "neighbour solicitation"}}[proto]
    assert {names[i] for i in admitted} == want

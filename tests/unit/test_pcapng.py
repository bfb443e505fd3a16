"""`trace --pcap FILE`: every hop's frames in one pcapng, read back frame by frame by an
independent reader (scapy's), with an interface per hop that says which hop it is."""

import struct
from dataclasses import dataclass

import pytest

scapy = pytest.importorskip("scapy")
from scapy.layers.inet import ICMP, IP  # noqa: E402
from scapy.layers.l2 import Ether  # noqa: E402
from scapy.utils import PcapNgReader  # noqa: E402

from netdoctor.capture.pcapng import write_pcapng  # noqa: E402


@dataclass
class Frame:
    ts_ns: int
    raw: bytes


def echo(src, dst, seq):
    return bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") /
                 IP(src=src, dst=dst) / ICMP(id=7, seq=seq) / b"netdoctor-probe")


T0 = 1_795_000_000_123_456_789  # ns; an odd value: nanoseconds must survive


def hops():
    request = echo("172.29.0.2", "203.0.113.80", 1)
    natted = echo("198.51.100.2", "203.0.113.80", 1)
    reply = echo("203.0.113.80", "198.51.100.2", 1)
    return [
        ("eth0", "container eth0 (ifindex 2) in netns ndlab-test",
         [Frame(T0, request), Frame(T0 + 90_001, echo("203.0.113.80", "172.29.0.2", 1))]),
        ("ndbr0", "bridge ndbr0 (ifindex 3) in netns ndlab-host", [Frame(T0 + 5_003, request)]),
        ("eth0", "uplink eth0 (ifindex 2) in netns ndlab-host",
         [Frame(T0 + 40_007, natted), Frame(T0 + 80_011, reply)]),
    ]


def idb_descriptions(path):
    """The if_description option (3) of each interface block, read by hand: scapy's reader
    does not keep it."""
    data, out, at = open(path, "rb").read(), [], 0
    while at < len(data):
        kind, length = struct.unpack_from("<II", data, at)
        if kind == 1:
            opt = at + 8 + 8
            while True:
                code, n = struct.unpack_from("<HH", data, opt)
                if code == 0:
                    break
                if code == 3:
                    out.append(data[opt + 4:opt + 4 + n].decode())
                opt += 4 + n + (-n) % 4
        at += length
    return out


def test_one_pcapng_for_every_hop_reads_back_frame_by_frame(tmp_path):
    path = str(tmp_path / "trace.pcapng")
    assert write_pcapng(path, hops(), "netdoctor test", "trace lab:test -> 203.0.113.80") == 5
    reader = PcapNgReader(path)
    frames = list(reader)
    # An interface per hop, in path order; two of them are called eth0.
    assert [i[2]["name"] for i in reader.interfaces] == [b"eth0", b"ndbr0", b"eth0"]
    assert all(i[2]["tsresol"] == 10 ** 9 for i in reader.interfaces)
    assert idb_descriptions(path) == [h[1] for h in hops()]
    # Every frame once, in the order the kernel saw them, on its own hop's interface, with
    # its nanosecond timestamp and its bytes unchanged.
    expected = sorted(((fr.ts_ns, i, fr.raw) for i, (_, _, frs) in enumerate(hops())
                       for fr in frs), key=lambda t: t[0])
    assert len(frames) == len(expected)
    for got, (ts, hop, raw) in zip(frames, expected):
        assert bytes(got) == raw
        assert int(got.time * 10 ** 9) == ts
        assert got.sniffed_on == hops()[hop][0]
    # The uplink's frame is the NAT'd request: the hop is what tells it from the container's.
    assert frames[2][IP].src == "198.51.100.2" and frames[1][IP].src == "172.29.0.2"

"""The only code that sends packets: a few tagged probes from inside the container's namespace.

Bounded: at most `count` echoes (and one full-size don't-fragment echo), one TCP connect or
one DNS query, each with a hard timeout. Every probe carries a tag the capture filters and
the correlation look for: an ICMP payload cookie, or a source port chosen here.
"""

from __future__ import annotations

import errno
import os
import random
import select
import socket
import struct
import time
from dataclasses import dataclass, field
from typing import Optional

from netdoctor.diagnose.parse import dns_wire

IP_MTU_DISCOVER = 10
IP_PMTUDISC_DO = 2
ECHO_REQUEST, ECHO_REPLY = 8, 0
ICMP_ERRORS = {3: "destination unreachable", 11: "time exceeded", 12: "parameter problem"}
UNREACH_CODES = {0: "net unreachable", 1: "host unreachable", 2: "protocol unreachable",
                 3: "port unreachable", 4: "fragmentation needed", 9: "net prohibited",
                 10: "host prohibited", 13: "administratively prohibited"}
ICMP6_ECHO_REQUEST, ICMP6_ECHO_REPLY = 128, 129
ICMP6_ERRORS = {1: "destination unreachable", 2: "packet too big", 3: "time exceeded",
                4: "parameter problem"}
UNREACH6_CODES = {0: "no route", 1: "administratively prohibited", 3: "address unreachable",
                  4: "port unreachable", 5: "source address failed policy",
                  6: "reject route"}
IPV6_DONTFRAG = 62


@dataclass
class ProbeResult:
    kind: str  # icmp, tcp, udp (dns)
    sent: int = 0
    replies: int = 0
    rtt_ms: Optional[float] = None
    error: Optional[str] = None  # local failure: "Network is unreachable", "Message too long"
    icmp_errors: list = field(default_factory=list)  # "host unreachable from 172.29.0.1", ...
    outcome: str = "no reply"  # reply, refused, no reply, local error, icmp error
    detail: Optional[str] = None
    cut_short: bool = False  # the wait ended early: the kernel had dropped every probe


SLICE = 0.1  # seconds between looks at the kernel's evidence while waiting (each look
# re-reads the trace buffer, which a busy host fills with other packets' drops)


def _wait(socks: list, deadline: float, stop, sent: int, write: bool = False):
    """The sockets ready before deadline ([] at the deadline), or None when stop(sent) says
    the evidence is already in (every probe dropped by the kernel): no reply can come."""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return []
        step = min(remaining, SLICE) if stop else remaining
        if write:
            _, ready, _ = select.select([], socks, [], step)
        else:
            ready, _, _ = select.select(socks, [], [], step)
        if ready:
            return ready
        if stop is not None and stop(sent):
            return None


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def echo_packet(ident: int, seq: int, cookie: int, payload_len: int) -> bytes:
    payload = struct.pack("!I", cookie) + os.urandom(4)
    payload += bytes((i & 0xFF for i in range(max(0, payload_len - len(payload)))))
    payload = payload[:max(payload_len, 8)]
    header = struct.pack("!BBHHH", ECHO_REQUEST, 0, 0, ident, seq)
    csum = _checksum(header + payload)
    return struct.pack("!BBHHH", ECHO_REQUEST, 0, csum, ident, seq) + payload


def _read_echo4(data: bytes, ident: int, cookie: int) -> tuple:
    """("reply", seq) for the probe's echo reply, ("error", text) for an ICMP error about
    it, else (None, None). data: an IPv4 packet, as a raw ICMP socket returns it."""
    icmp = data[(data[0] & 0x0F) * 4:]
    if len(icmp) < 8:
        return None, None
    itype, code = icmp[0], icmp[1]
    if itype == ECHO_REPLY and len(icmp) >= 12:
        rid, rseq = struct.unpack("!HH", icmp[4:8])
        if rid == ident and struct.unpack("!I", icmp[8:12])[0] == cookie:
            return "reply", rseq
    elif itype in ICMP_ERRORS and len(icmp) >= 8 + 20 + 8:
        inner = icmp[8:]
        inner_icmp = inner[(inner[0] & 0x0F) * 4:][:8]
        if len(inner_icmp) == 8 and struct.unpack("!H", inner_icmp[4:6])[0] == ident:
            what = UNREACH_CODES.get(code, f"code {code}") if itype == 3 else ICMP_ERRORS[itype]
            if itype == 3 and code == 4:  # the router says which MTU it can forward
                what += f" (next-hop MTU {struct.unpack('!H', icmp[6:8])[0]})"
            return "error", what
    return None, None


def _read_echo6(icmp: bytes, ident: int, cookie: int) -> tuple:
    """_read_echo4 for ICMPv6 (a raw ICMPv6 socket returns no IPv6 header)."""
    if len(icmp) < 8:
        return None, None
    itype, code = icmp[0], icmp[1]
    if itype == ICMP6_ECHO_REPLY and len(icmp) >= 12:
        rid, rseq = struct.unpack("!HH", icmp[4:8])
        if rid == ident and struct.unpack("!I", icmp[8:12])[0] == cookie:
            return "reply", rseq
    elif itype in ICMP6_ERRORS and len(icmp) >= 8 + 40 + 8:
        quoted = icmp[8 + 40:8 + 40 + 8]
        if quoted[0] == ICMP6_ECHO_REQUEST and struct.unpack("!H", quoted[4:6])[0] == ident:
            what = UNREACH6_CODES.get(code, f"code {code}") if itype == 1 else ICMP6_ERRORS[itype]
            if itype == 2:
                what += f" (MTU {struct.unpack('!I', icmp[4:8])[0]})"
            return "error", what
    return None, None


def icmp_echo(dst: str, ident: int, cookie: int, payload_len: int, count: int,
              timeout: float, dont_fragment: bool = False, stop=None) -> ProbeResult:
    """Send `count` echoes, wait up to `timeout` for their replies (runs in the caller's
    netns). An IPv6 dst gets ICMPv6 echoes (the kernel fills in their checksum); with
    dont_fragment, the sender may not fragment (routers never fragment IPv6: a full-size
    echo that meets a smaller link gets "packet too big")."""
    r = ProbeResult("icmp")
    v6 = ":" in dst
    family, proto = (socket.AF_INET6, socket.IPPROTO_ICMPV6) if v6 else \
        (socket.AF_INET, socket.IPPROTO_ICMP)
    read = _read_echo6 if v6 else _read_echo4
    with socket.socket(family, socket.SOCK_RAW, proto) as s:
        if dont_fragment:
            if v6:
                s.setsockopt(socket.IPPROTO_IPV6, IPV6_DONTFRAG, 1)
            else:
                s.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO)
        sent_at = {}
        for seq in range(1, count + 1):
            packet = echo_packet(ident, seq, cookie, payload_len)
            if v6:  # type 128, checksum left to the kernel
                packet = bytes([ICMP6_ECHO_REQUEST, 0, 0, 0]) + packet[4:]
            try:
                s.sendto(packet, (dst, 0))
                sent_at[seq] = time.monotonic()
                r.sent += 1
            except OSError as e:
                r.error, r.outcome = e.strerror or str(e), "local error"
                return r
        deadline = time.monotonic() + timeout
        while r.replies + len(r.icmp_errors) < r.sent:
            ready = _wait([s], deadline, stop, r.sent)
            if ready is None:
                r.cut_short = True
            if not ready:
                break
            data, addr = s.recvfrom(65535)
            kind, what = read(data, ident, cookie)
            if kind == "reply":
                r.replies += 1
                if r.rtt_ms is None and what in sent_at:
                    r.rtt_ms = (time.monotonic() - sent_at[what]) * 1000
            elif kind == "error":
                r.icmp_errors.append(f"{what} from {addr[0]}")
    if r.replies:
        r.outcome = "reply"
    elif r.icmp_errors:
        r.outcome, r.detail = "icmp error", r.icmp_errors[0]
    return r


def tcp_connect(dst: str, port: int, sport: int, timeout: float, stop=None) -> ProbeResult:
    """One SYN from source port `sport`: connected (SYN-ACK) or refused (RST) both are replies."""
    r = ProbeResult("tcp")
    v6 = ":" in dst
    s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST on close
        s.bind(("::" if v6 else "0.0.0.0", sport))
        s.setblocking(False)
        start = time.monotonic()
        err = s.connect_ex((dst, port))
        r.sent = 1
        if err not in (0, errno.EINPROGRESS):
            r.error, r.outcome = os.strerror(err), "local error"
            return r
        writable = _wait([s], start + timeout, stop, 1, write=True)
        if not writable:
            r.cut_short = writable is None
            return r
        err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        r.rtt_ms = (time.monotonic() - start) * 1000
        if err == 0:
            r.replies, r.outcome = 1, "reply"
        elif err == errno.ECONNREFUSED:
            r.replies, r.outcome, r.detail = 1, "refused", f"port {port} closed (RST)"
        elif err in (errno.EHOSTUNREACH, errno.ENETUNREACH):
            r.outcome, r.detail = "icmp error", os.strerror(err)
            r.icmp_errors.append(os.strerror(err))
        else:
            r.error, r.outcome = os.strerror(err), "local error"
    finally:
        s.close()
    return r


def dns_query(server: str, name: str, sport: int, timeout: float, stop=None,
              port: int = 53) -> ProbeResult:
    """One A query for `name` to `server` (NS for the root), from source port `sport`. To
    another port it is the datagram `inbound` sends to a published UDP port: small,
    harmless, and answered by a DNS service (others answer nothing, or port unreachable
    when nothing listens)."""
    r = ProbeResult("udp")
    txid, packet = dns_wire.encode_query(name or ".", dns_wire.QTYPE_A if name and name != "." else
                                    dns_wire.QTYPE_NS)
    v6 = ":" in server
    with socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind(("::" if v6 else "0.0.0.0", sport))
            s.connect((server, port))
            start = time.monotonic()
            s.send(packet)
            r.sent = 1
        except OSError as e:
            r.error, r.outcome = e.strerror or str(e), "local error"
            return r
        deadline = start + timeout
        while True:
            ready = _wait([s], deadline, stop, 1)
            if not ready:
                r.cut_short = ready is None
                break
            try:
                data = s.recv(4096)
            except ConnectionRefusedError:
                r.outcome, r.detail = "icmp error", (
                    "port unreachable (no DNS server listening)" if port == 53 else
                    f"port unreachable (nothing listens on UDP port {port})")
                r.icmp_errors.append("port unreachable")
                return r
            except OSError as e:
                r.outcome, r.detail = "icmp error", e.strerror
                r.icmp_errors.append(e.strerror or str(e))
                return r
            try:
                answer = dns_wire.parse_response(data)
            except Exception:
                continue
            if answer.txid == txid:
                r.replies, r.outcome = 1, "reply"
                r.rtt_ms = (time.monotonic() - start) * 1000
                r.detail = f"{answer.rcode}" + (f" {', '.join(answer.addresses)}"
                                                 if answer.addresses else "")
                return r
    return r


def random_port() -> int:
    return random.randrange(33000, 60000)


ETH_P_ARP = 0x0806


def arp_request(src_mac: str, src_ip: str, target: str) -> bytes:
    """A broadcast ARP request for target, from src_ip at src_mac (RFC 826 over Ethernet)."""
    mac = bytes.fromhex(src_mac.replace(":", ""))
    return (b"\xff" * 6 + mac + struct.pack("!H", ETH_P_ARP)
            + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + mac + socket.inet_aton(src_ip)
            + b"\x00" * 6 + socket.inet_aton(target))


def arp_answers(frames, target: str) -> list:
    """The MACs that answered ARP for target among raw Ethernet frames, in order, once each."""
    out = []
    want = socket.inet_aton(target)
    for raw in frames:
        if len(raw) < 42 or raw[12:14] != b"\x08\x06" or raw[20:22] != b"\x00\x02" \
                or raw[28:32] != want:
            continue
        mac = raw[22:28].hex(":")
        if mac not in out:
            out.append(mac)
    return out


def neighbour_solicitation(src_mac: str, target: str) -> tuple:
    """(ICMPv6 message, the solicited-node multicast address to send it to): a Neighbor
    Solicitation for target with our link-layer address (RFC 4861 4.3); the kernel fills
    in the checksum of a raw ICMPv6 socket's messages."""
    want = socket.inet_pton(socket.AF_INET6, target)
    mac = bytes.fromhex(src_mac.replace(":", ""))
    group = socket.inet_ntop(socket.AF_INET6, bytes.fromhex("ff02" + "00" * 9 + "01ff")
                             + want[13:])
    return struct.pack("!BBHI", 135, 0, 0, 0) + want + bytes((1, 1)) + mac, group


def ndp_answers(messages, target: str) -> list:
    """The link-layer addresses that Neighbor Advertisements for target among ICMPv6
    messages name (their target link-layer address option), in order, once each."""
    out = []
    want = socket.inet_pton(socket.AF_INET6, target)
    for raw in messages:
        if len(raw) < 24 or raw[0] != 136 or raw[8:24] != want:
            continue
        i = 24
        while i + 8 <= len(raw):
            kind, units = raw[i], raw[i + 1]
            if units == 0:
                break
            if kind == 2:  # target link-layer address
                mac = raw[i + 2:i + 8].hex(":")
                if mac not in out:
                    out.append(mac)
                break
            i += units * 8
    return out


IPV6_MULTICAST_IF, IPV6_MULTICAST_HOPS = 17, 18


def ndp_question(dev: str, src_mac: str, target: str) -> socket.socket:
    """One Neighbor Solicitation for target, sent from dev of the calling thread's namespace
    to its solicited-node group as `ndisc6` sends it: the socket its advertisements arrive
    on (read them with answers_to, the parser ndp_answers)."""
    ifindex = socket.if_nametoindex(dev)
    message, group = neighbour_solicitation(src_mac, target)
    s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, dev.encode())
        s.setsockopt(socket.IPPROTO_IPV6, IPV6_MULTICAST_HOPS, 255)  # as RFC 4861 requires
        s.setsockopt(socket.IPPROTO_IPV6, IPV6_MULTICAST_IF, ifindex)
        s.setblocking(False)
        s.sendto(message, (group, 0, 0, ifindex))
    except BaseException:
        s.close()
        raise
    return s


def arp_question(dev: str, src_mac: str, src_ip: str, target: str) -> socket.socket:
    """Ask once, from dev of the calling thread's namespace, who has target: one broadcast
    request, as `arping -c 1` sends. The socket the answers arrive on (parser arp_answers).
    The kernel's table is not asked; a static entry keeps what it names, and an unresolved
    one takes the answer, as it takes any ARP reply for an address it is asking about."""
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))
    try:
        s.bind((dev, ETH_P_ARP))
        s.setblocking(False)
        s.send(arp_request(src_mac, src_ip, target))
    except BaseException:
        s.close()
        raise
    return s


def answers_to(questions: list, timeout: float) -> list:
    """[(socket, parse, target)] -> for each, what parse(messages, target) finds among what
    its socket receives within timeout, all waited for at once (sockets keep the namespace
    they were opened in). Once a question has an answer, a moment more for a second answerer
    (two holders of one address), and no longer. Every socket is closed at the end."""
    messages = [[] for _ in questions]
    deadline = time.monotonic() + timeout
    ends = [deadline] * len(questions)
    waiting = {q[0].fileno(): i for i, q in enumerate(questions)}
    poll = select.poll()  # (select() takes no descriptor past 1023)
    for fd in waiting:
        poll.register(fd, select.POLLIN)
    try:
        while waiting:
            now = time.monotonic()
            for fd, i in list(waiting.items()):
                if ends[i] <= now:
                    del waiting[fd]
                    poll.unregister(fd)
            if not waiting:
                break
            left = min(ends[i] for i in waiting.values()) - now
            for fd, _ in poll.poll(max(1, int(left * 1000))):
                i = waiting.get(fd)
                if i is None:
                    continue
                sock, parse, target = questions[i]
                try:
                    messages[i].append(sock.recv(2048))
                except BlockingIOError:
                    continue
                if parse(messages[i], target):
                    ends[i] = min(ends[i], time.monotonic() + 0.05)
    finally:
        for sock, _, _ in questions:
            sock.close()
    return [parse(messages[i], target) for i, (_, parse, target) in enumerate(questions)]

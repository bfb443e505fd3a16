"""Name resolution as the container does it: its resolv.conf, asked from its namespace.

Each name of the search order (parse.resolv_conf.candidate_names) is asked for A and AAAA at
once, as getaddrinfo does; a truncated answer is asked again over TCP. NXDOMAIN or an empty
answer moves on to the next name; a silent or refusing server, to the next server. A server
that stayed silent is not asked again for the next names: it would cost its timeout each
time. Sends DNS queries: this is the system's edge.
"""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass
from typing import Optional

from ..errors import ParseError, Unresolved
from . import netns
from ..parse.dns_wire import (QTYPE_A, QTYPE_AAAA, QTYPE_NS, DnsAnswer, encode_query,
                                               parse_response)
from ..parse.resolv_conf import ResolvConf, candidate_names, parse_resolv_conf

def read_resolv_conf(path: Optional[str]) -> ResolvConf:
    if not path:
        return ResolvConf()
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return parse_resolv_conf(f.read(65536))
    except OSError:
        return ResolvConf()


def ask_tcp(server: str, name: str, qtype: int, timeout: float, port: int = 53) -> DnsAnswer:
    """One query over TCP (RFC 7766: a two-byte length before each message)."""
    txid, packet = encode_query(name, qtype)
    with socket.create_connection((server, port), timeout=timeout) as s:
        s.sendall(struct.pack("!H", len(packet)) + packet)
        data = b""
        while len(data) < 2 or len(data) < 2 + struct.unpack("!H", data[:2])[0]:
            chunk = s.recv(65537)
            if not chunk:
                raise ParseError("DNS over TCP: the server closed before answering")
            data += chunk
        answer = parse_response(data[2:2 + struct.unpack("!H", data[:2])[0]])
        if answer.txid != txid:
            raise ParseError("DNS over TCP: the answer is for another question")
        return answer


def ask_both(server: str, name: str, timeout: float, port: int = 53) -> tuple:
    """(A answer, AAAA answer) from server, asked at once over one UDP socket (either may be
    None when only the other came back in time); socket.timeout when neither did."""
    family = socket.AF_INET6 if ":" in server else socket.AF_INET
    questions = {}
    for qtype in (QTYPE_A, QTYPE_AAAA):
        txid, packet = encode_query(name, qtype)
        questions[txid] = (qtype, packet)
    answers = {}
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.connect((server, port))
        for _, packet in questions.values():
            s.send(packet)
        deadline = time.monotonic() + timeout
        while len(answers) < len(questions):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            s.settimeout(left)
            try:
                answer = parse_response(s.recv(4096))
            except socket.timeout:
                break
            if answer.txid in questions:
                answers[questions[answer.txid][0]] = answer
    if not answers:
        raise socket.timeout(f"no answer within {timeout:g} s")
    for qtype, answer in list(answers.items()):
        if answer.truncated:
            answers[qtype] = ask_tcp(server, name, qtype, timeout, port)
    return answers.get(QTYPE_A), answers.get(QTYPE_AAAA)


@dataclass(frozen=True)
class Resolution:
    address: str  # the one netdoctor follows: the first A record, else the first AAAA
    addresses: tuple  # every address, A records first
    name: str  # the name that answered (after the search list)
    server: str


def lookup(conf: ResolvConf, name: str, timeout: float = 1.0, port: int = 53) -> Resolution:
    """Resolve name as the container's resolver does, from the calling thread's namespace.

    Raises Unresolved saying what each name got from which server."""
    if not conf.nameservers:
        junk = len(conf.ignored)
        raise Unresolved(f"cannot resolve '{name}': the container's resolv.conf has no usable "
                         f"nameserver line" + (f" ({junk} line(s) it cannot read)" if junk
                                               else "")
                         + "; fix its resolv.conf, or trace an IP address")
    failures, silent = [], set()
    for candidate in candidate_names(name, conf):
        for server in conf.nameservers:
            if server in silent:
                continue
            try:
                a, aaaa = ask_both(server, candidate, timeout, port)
            except socket.timeout:
                silent.add(server)
                failures.append(f"{candidate}: {server} did not answer within {timeout:g} s")
                continue
            except (OSError, ParseError) as e:
                failures.append(f"{candidate}: {server}: {getattr(e, 'strerror', None) or e}")
                continue
            got = [x for x in (a, aaaa) if x is not None]
            addresses = tuple(ad for x in got for ad in x.addresses)
            if addresses:
                return Resolution(addresses[0], addresses, candidate, server)
            rcode = next((x.rcode for x in got if x.rcode != "NOERROR"), "NOERROR")
            if rcode in ("NXDOMAIN", "NOERROR"):
                # The server knows: the name does not exist, or has no address. Asking the
                # next server would not change that; the next name might.
                failures.append(f"{candidate}: {rcode}" + (", no address" if rcode == "NOERROR"
                                                          else "") + f" from {server}")
                break
            failures.append(f"{candidate}: {rcode} from {server}")
    raise Unresolved(f"cannot resolve '{name}' from inside the container "
                     f"({'; '.join(failures)})")


def resolve_in(ns: netns.Netns, resolv_conf: ResolvConf, name: str,
               timeout: float = 1.0) -> Resolution:
    """lookup() inside the container's namespace."""
    return netns.call_in(ns, lookup, resolv_conf, name, timeout)


def probe_nameservers(containers: list, timeout: float = 1.0) -> list:
    """For each (namespace, resolv.conf text), one query per nameserver (for ".", type NS):
    does anything answer at all? [{"server", "answered", "rcode", "error"}] per container."""
    return NameserverProbe(containers, timeout).results()


class NameserverProbe:
    """probe_nameservers, begun: the queries are sent at once by a thread of its own, each
    from a socket opened in its container's namespace (a socket keeps the namespace it was
    made in), while the caller goes on; results() waits for what is left of one timeout,
    however many containers have a silent nameserver. Answers that come meanwhile wait in
    their sockets."""

    def __init__(self, containers: list, timeout: float = 1.0):
        import threading

        self.timeout = timeout
        self._results = [[] for _ in containers]
        self._todo = [(i, ns, parse_resolv_conf(conf_text or "").nameservers)
                      for i, (ns, conf_text) in enumerate(containers)]
        self._todo = [t for t in self._todo if t[2]]
        self._sent: list = []
        self._sent_at = time.monotonic()
        self._sender = threading.Thread(target=self._send, name="dns-probe", daemon=True)
        self._sender.start()

    def _send(self) -> None:
        try:
            # One thread enters every namespace in turn and sends from each.
            self._sent = netns.call_in_each([(ns, _send_probes, (servers,))
                                             for _, ns, servers in self._todo])
        finally:
            self._sent_at = time.monotonic()

    def results(self) -> list:
        import selectors

        self._sender.join()
        results = self._results
        waiting = {}  # socket -> (container index, result index, txid)
        opened = []
        sel = selectors.DefaultSelector()
        try:
            for (i, ns, servers), sent_each in zip(self._todo, self._sent):
                if isinstance(sent_each, BaseException):
                    sent_each = [sent_each if isinstance(sent_each, OSError)
                                 else OSError(str(sent_each))] * len(servers)
                for server, sent in zip(servers, sent_each):
                    results[i].append({"server": server, "answered": False, "rcode": None,
                                       "error": None})
                    if isinstance(sent, OSError):
                        results[i][-1]["error"] = sent.strerror or str(sent)
                        continue
                    sock, txid = sent
                    opened.append(sock)
                    waiting[sock] = (i, len(results[i]) - 1, txid)
                    sel.register(sock, selectors.EVENT_READ)
            deadline = self._sent_at + self.timeout
            while waiting:
                ready = sel.select(max(0.0, deadline - time.monotonic()))
                if not ready:
                    break
                for key, _ in ready:
                    sock = key.fileobj
                    i, j, txid = waiting[sock]
                    try:
                        answer = parse_response(sock.recv(4096))
                    except BlockingIOError:
                        continue
                    except (OSError, ParseError) as e:
                        answer, error = None, getattr(e, "strerror", None) or str(e)
                    else:
                        if answer.txid != txid:
                            continue  # not the answer to this question: keep waiting
                        error = None
                    results[i][j].update(answered=answer is not None, error=error,
                                         rcode=answer.rcode if answer else None)
                    sel.unregister(sock)
                    del waiting[sock]
            for i, j, _ in waiting.values():
                results[i][j]["error"] = f"no answer within {self.timeout:g} s"
        finally:
            sel.close()
            for sock in opened:
                sock.close()
            self._sent = []
        return results

    def close(self) -> None:
        """Give up on the answers (when the caller failed first): close every socket."""
        self._sender.join()
        for sent_each in self._sent:
            for sent in sent_each if isinstance(sent_each, list) else ():
                if isinstance(sent, tuple):
                    sent[0].close()
        self._sent = []


def _send_probes(servers: tuple) -> list:
    """In the calling thread's namespace: a connected UDP socket per server, its question
    sent: (socket, txid), or the OSError that stopped it (no route, ...)."""
    out = []
    for server in servers:
        family = socket.AF_INET6 if ":" in server else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.connect((server, 53))
            txid, packet = encode_query(".", QTYPE_NS)
            sock.send(packet)
            out.append((sock, txid))
        except OSError as e:
            sock.close()
            out.append(e)
    return out

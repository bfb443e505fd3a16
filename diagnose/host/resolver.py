"""Name resolution as the container does it: its resolv.conf, asked from its namespace.

Each name of the search order (parse.resolv_conf.candidate_names) is asked for A and AAAA at
once, as getaddrinfo does; a truncated answer is asked again over TCP. NXDOMAIN or an empty
answer moves on to the next name; a silent or refusing server, to the next server. A server
that stayed silent is not asked again for the next names: it would cost its timeout each
time. Sends DNS queries: this is the system's edge.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import struct
import time
from dataclasses import dataclass
from typing import Optional

from ..errors import ParseError, Unresolved
from . import netns
from ..parse.dns_wire import (QTYPE_A, QTYPE_AAAA, QTYPE_NS, DnsAnswer, encode_query,
                                               parse_response)
from ..parse.hosts_file import PATH as HOSTS_FILE, addresses_of, parse_hosts
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


def read_hosts(path: Optional[str]) -> list:
    """The entries of the container's hosts file (parse.hosts_file), [] when it has none."""
    if not path:
        return []
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return parse_hosts(f.read(1 << 20))
    except OSError:
        return []


def lookup(conf: ResolvConf, name: str, timeout: float = 1.0, port: int = 53,
           hosts: list = ()) -> Resolution:
    """Resolve name as the container's resolver does, from the calling thread's namespace:
    its hosts file first (glibc's `hosts: files dns`, musl always), then its nameservers.

    Raises Unresolved saying what each name got from which server."""
    pinned = addresses_of(hosts, name)
    if pinned:
        return Resolution(pinned[0], pinned, name.rstrip("."), HOSTS_FILE)
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
                     f"({'; '.join(failures)})", silent=tuple(sorted(silent)))


DOCKER_EMBEDDED = "127.0.0.11"  # Docker's embedded DNS server, on user-defined networks
DOCKER_FALLBACK = ("8.8.8.8", "8.8.4.4")  # what dockerd forwards to when the host names none
SYSTEMD_UPSTREAMS = "/run/systemd/resolve/resolv.conf"


def embedded_upstreams(target) -> tuple:
    """(servers, where from) Docker's embedded DNS server forwards a container's queries
    to, as dockerd chooses them: the container's own --dns, else the host's nameservers
    (host_upstreams), else Docker's fallback servers. dockerd sends them from the
    container's namespace. ((), "") where the container is not Docker's."""
    if getattr(target, "kind", None) != "docker":
        return (), ""
    if target.dns_servers:
        return tuple(target.dns_servers), "docker run --dns"
    servers, source = host_upstreams()
    if not servers:
        return DOCKER_FALLBACK, "Docker's fallback: the host's resolv.conf names no other"
    return servers, source


def aardvark_upstreams(server: str):
    """(servers, where from) podman's aardvark-dns forwards to when it listens on server: the
    network's own servers where its file names them, else the host's (host_upstreams);
    None when no aardvark-dns network file of this machine listens on server."""
    from ..parse.aardvark_conf import AARDVARK_DIR, parse_network_file

    try:
        names = sorted(os.listdir(AARDVARK_DIR))
    except OSError:
        return None
    for name in names:
        try:
            with open(os.path.join(AARDVARK_DIR, name), encoding="utf-8",
                      errors="replace") as f:
                listen, upstreams = parse_network_file(f.read(1 << 16))
        except OSError:
            continue
        if server in listen:
            if upstreams:
                return upstreams, f"podman network {name}'s DNS servers"
            return host_upstreams()
    return None


def host_upstreams() -> tuple:
    """(servers, where from): the nameservers of this machine's resolv.conf without its
    loopback ones; systemd-resolved's upstream file where the host's names only its stub.
    What a resolver on the host that forwards (dockerd, podman's aardvark-dns, dnsmasq)
    asks."""
    import ipaddress

    def usable(conf) -> list:
        out = []
        for s in conf.nameservers:
            try:
                if not ipaddress.ip_address(s.split("%")[0]).is_loopback:
                    out.append(s)
            except ValueError:
                continue
        return out

    host = read_resolv_conf("/etc/resolv.conf")
    servers, source = usable(host), "the host's /etc/resolv.conf"
    if not servers and host.nameservers:
        servers, source = usable(read_resolv_conf(SYSTEMD_UPSTREAMS)), SYSTEMD_UPSTREAMS
    return (tuple(servers), source) if servers else ((), "")


def resolve_in(ns: netns.Netns, resolv_conf: ResolvConf, name: str,
               timeout: float = 1.0, hosts: list = ()) -> Resolution:
    """lookup() inside the container's namespace."""
    return netns.call_in(ns, lookup, resolv_conf, name, timeout, 53, hosts)


def resolve_for(target, name: str, timeout: float = 1.0) -> Resolution:
    """name resolved for a container target as its own resolver would: its hosts file,
    then its resolv.conf's nameservers, asked from its namespace."""
    return resolve_in(target.netns, read_resolv_conf(target.resolv_conf), name, timeout,
                      read_hosts(target.hosts_file))


def probe_nameservers(containers: list, timeout: float = 1.0) -> list:
    """For each (namespace, resolv.conf text), one query per nameserver (for ".", type NS):
    does anything answer at all? [{"server", "answered", "rcode", "error"}] per container."""
    return NameserverProbe(containers, timeout).results()


class NameserverProbe:
    """probe_nameservers, begun: a process of its own (forked: its sends wait for no lock of
    this interpreter, and the kernel's work for them, an ARP flood per query on a large
    bridge, runs on another CPU) enters each container's namespace, reads its neighbour
    entries and sends its queries, each from a socket opened there. The queries make new
    entries; neighbours() gives the tables as they were before (the hosts' in first, read
    before any query). results() waits for what is left of one timeout after the last
    query, however many containers have a silent nameserver. Without fork, a thread does
    the same."""

    def __init__(self, containers: list, timeout: float = 1.0, first: tuple = (),
                 shared=None):
        self.timeout = timeout
        self._count = len(containers)
        self._todo = [(i, ns, parse_resolv_conf(conf_text or "").nameservers)
                      for i, (ns, conf_text) in enumerate(containers)]
        self._todo = [t for t in self._todo if t[2]]
        self._first = tuple(first)
        self._shared = shared  # gather.SharedReading: namespaces the sender reads too
        self._tell = self._answers = None  # our ends of the two pipes
        self._pid = self._thread = None
        self._pending = b""  # read from the sender, not taken yet
        self._neighbours = self._done = None
        if self._todo:
            self._start()

    def _start(self) -> None:
        import threading
        import warnings

        tell_r, self._tell = os.pipe2(os.O_CLOEXEC)
        self._answers, answers_w = os.pipe2(os.O_CLOEXEC)
        work = (self._todo, self._first, tell_r, answers_w, self.timeout, self._shared)
        try:
            with warnings.catch_warnings():  # 3.12+ warns about fork beside threads: the
                warnings.simplefilter("ignore", DeprecationWarning)  # child uses none
                pid = os.fork()
        except OSError:
            pid = None
        if pid == 0:
            try:
                _sender_process(os.getppid(), (tell_r, answers_w) + (
                    self._shared.fds() if self._shared is not None else ()))
                _ask(*work)
            finally:
                os._exit(0)
        if pid is None:  # no fork (no memory, no process left): the same work in a thread
            self._thread = threading.Thread(target=_ask, name="dns-probe", daemon=True,
                                            args=work[:-1] + (None,))  # no reading
            self._thread.start()
            return
        self._pid = pid
        os.close(tell_r)
        os.close(answers_w)

    def _line(self) -> Optional[bytes]:
        """The sender's next line, or None at the end of its pipe."""
        while self._answers is not None and b"\n" not in self._pending:
            chunk = os.read(self._answers, 1 << 16)
            if not chunk:
                break
            self._pending += chunk
        line, found, self._pending = self._pending.partition(b"\n")
        return line if found else None

    def neighbours(self) -> dict:
        """{namespace inode: its neighbour entries before any query (devices by ifindex:
        rtdump.name_by_index)}, for the namespaces the sender could read; waits until every
        query has been sent and the sender has read its part of the shared namespaces."""
        if self._neighbours is None:
            self._neighbours = {}
            line = self._line()
            try:
                got = json.loads(line) if line else {}
            except ValueError:
                got = {}
            from ..facts.namespace import Neighbour

            for inode, entries in got.items() if isinstance(got, dict) else ():
                self._neighbours[int(inode)] = tuple(
                    Neighbour(dst, dev, lladdr, tuple(state))
                    for dst, dev, lladdr, state in entries)
        return self._neighbours

    def results(self) -> list:
        if self._done is not None:
            return self._done
        self.neighbours()
        line = self._line()
        if self._answers is not None:
            os.close(self._answers)
            self._answers = None
        self.close()
        try:
            asked = json.loads(line) if line else None
        except ValueError:
            asked = None
        if not isinstance(asked, list) or len(asked) != len(self._todo):
            asked = [[_not_asked(server, "the process that sends the queries ended early")
                      for server in servers] for _, _, servers in self._todo]
        out = [[] for _ in range(self._count)]
        for (i, _, _), each in zip(self._todo, asked):
            out[i] = each
        self._done = out
        return out

    def close(self) -> None:
        """Give up on the answers (or collect the sender once they are read): nothing is
        left running."""
        gave_up = self._done is None and self._answers is not None
        for fd in (self._tell, self._answers):  # the sender sees the end of its pipes
            if fd is not None:
                os.close(fd)
        self._tell = self._answers = None
        if self._pid is not None:
            if gave_up:
                os.kill(self._pid, signal.SIGKILL)
            os.waitpid(self._pid, 0)
            self._pid = None
        if self._thread is not None:
            self._thread.join()
            self._thread = None


def _sender_process(parent: int, keep: tuple) -> None:
    """In the forked sender: it holds no descriptor of netdoctor's but its two pipes (a pipe
    to a program netdoctor runs would not see its end), signals end it at once (Ctrl-C
    reaches the whole process group), it dies with netdoctor, and it may open a socket per
    query."""
    import gc
    import resource

    gc.disable()  # netdoctor's objects live on here: none may close a descriptor in a collection
    quiet = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):  # a pipe netdoctor writes to ends when netdoctor does
        os.dup2(quiet, fd)
    os.close(quiet)
    low = 3
    for fd in sorted(keep):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, signal.SIG_DFL)
    netns.libc().prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # netdoctor ended before the line above
        os._exit(0)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (OSError, ValueError):
            pass


PR_SET_PDEATHSIG = 1
TWO_SENDERS = 64  # containers from which two threads of the sender share its work


def _two_at_once(work, items) -> None:
    """work(part) for every other item in a thread of its own and the rest in this one (each
    enters namespaces itself; most of the time is the kernel's), from TWO_SENDERS items on."""
    if len(items) < TWO_SENDERS:
        work(items)
        return
    import threading

    other = threading.Thread(target=work, args=(items[1::2],), name="dns-probe-2",
                             daemon=True)
    other.start()
    work(items[0::2])
    other.join()


def _first_in_line() -> Optional[int]:
    """Raise this process's priority a step above netdoctor's (as root); its nice value
    before, to go back to, or None when it could not."""
    try:
        nice = os.getpriority(os.PRIO_PROCESS, 0)
        os.setpriority(os.PRIO_PROCESS, 0, max(-20, nice - 10))
        return nice
    except OSError:
        return None


def _ask(todo: list, first: tuple, tell: int, answers: int, timeout: float,
         shared=None) -> None:
    """The sender's work: the neighbour entries of first's namespaces, then each container's
    (before its queries go) and its queries; its part of the shared reading; the entries as
    one JSON line; then the answers until one timeout after the last query as another. The
    end of the tell pipe means netdoctor gave up."""
    import selectors

    from . import rtdump

    before: dict = {}  # inode -> [[dst, ifindex, lladdr, [state]]], or None: not read
    sent: list = [None] * len(todo)
    sent_at = time.monotonic()

    def enter(ns) -> Optional[BaseException]:
        failed = netns._enter(ns)
        if failed is None and ns.inode not in before:
            try:
                before[ns.inode] = [[n.dst, n.dev, n.lladdr, list(n.state)]
                                    for n in rtdump.read_neighbours_here()]
            except (OSError, ParseError):
                before[ns.inode] = None
        return failed

    try:
        # The one-second wait starts with the last query: while they go out, the sender
        # comes before netdoctor's other work (a forked sender only: the nice value is
        # the process's).
        nice = _first_in_line() if shared is not None else None
        for ns in first:
            enter(ns)

        def send_from(positions) -> None:
            nonlocal sent_at
            for pos in positions:
                _, ns, servers = todo[pos]
                failed = enter(ns)
                sent[pos] = [failed] * len(servers) if failed is not None \
                    else _send_probes(servers)
                sent_at = max(sent_at, time.monotonic())

        # A query's cost is mostly the kernel's (the ARP flood that resolves the gateway
        # goes to every port of the bridge), during which the other thread runs.
        _two_at_once(send_from, range(len(todo)))
        if nice is not None:
            os.setpriority(os.PRIO_PROCESS, 0, nice)
        if shared is not None:
            shared.helper_reads()
        # (after the reading: a line this long fills the pipe until netdoctor reads it)
        os.write(answers, json.dumps({str(k): v for k, v in before.items()
                                      if v is not None}).encode() + b"\n")
        read_early: dict = {}  # position -> its neighbour entries, read near the deadline

        def near_the_deadline(positions) -> None:
            read_early.update(_neighbours_of(todo, positions))

        results = _answers_to(todo, sent, sent_at + timeout, timeout, tell, selectors,
                              near_the_deadline)
        if results is not None:
            _neighbours_after(todo, results, read_early)
            os.write(answers, json.dumps(results).encode() + b"\n")
    except OSError:
        pass  # netdoctor stopped reading: it has given up
    finally:
        for each in sent:
            for s in each or ():
                if isinstance(s, tuple):
                    s[0].close()
        os.close(answers)
        os.close(tell)


def _neighbours_of(todo: list, positions) -> dict:
    """{position: [[address, [state]]]}: the neighbour entries of those containers now."""
    from . import rtdump

    out: dict = {}

    def read(part) -> None:
        for pos in part:
            if netns._enter(todo[pos][1]) is not None:
                continue
            try:
                out[pos] = [[n.dst, list(n.state)] for n in rtdump.read_neighbours_here()]
            except (OSError, ParseError):
                continue

    _two_at_once(read, sorted(positions))
    return out


def _neighbours_after(todo: list, results: list, read_early: Optional[dict] = None) -> None:
    """For each container with a query that got no answer: its neighbour entries as
    [address, [state]] (did the query leave at all? a next hop never resolved means it did
    not), on each such result as "neighbours_after". They are read_early, in the last
    moments of the wait, where they were (an entry still unresolved then is one the kernel
    retries only at the deadline); the others now."""
    silent_at = {}
    for pos, each in enumerate(results):
        silent = [r for r in each if not r["answered"] and r.get("asked", True)
                  and not r.get("rcode") and (r.get("error") or "").startswith("no answer")]
        if silent:
            silent_at[pos] = silent
    found = dict(read_early or {})
    late = [pos for pos in silent_at if pos not in found]
    if late:
        found.update(_neighbours_of(todo, late))  # after the wait: on the critical path
    for pos, silent in silent_at.items():
        if pos in found:
            for r in silent:
                r["neighbours_after"] = found[pos]


def _not_asked(server: str, why: str) -> dict:
    return {"server": server, "answered": False, "rcode": None, "error": f"not asked: {why}",
            "asked": False}


# Failures of netdoctor's own, not of the path to the nameserver: the query was never sent.
_OWN_ERRNOS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


# Seconds before the deadline at which the containers still waiting have their neighbour
# entries read (a thousand take about 0.05 s), so that the reading is not after the wait.
LOOKAHEAD = 0.1


def _answers_to(todo: list, sent: list, deadline: float, timeout: float, tell: int,
                selectors, near_the_deadline=None) -> Optional[list]:
    """[[{"server", "answered", "rcode", "error"}] per container], read from the sockets
    until every one answered or the deadline passed; None when netdoctor gave up meanwhile.
    near_the_deadline(positions of the containers still waiting) is called once, LOOKAHEAD
    seconds before it (answers that come meanwhile wait in their sockets)."""
    results = []
    waiting = {}  # socket -> (container position, server position, txid)
    sel = selectors.DefaultSelector()
    try:
        sel.register(tell, selectors.EVENT_READ)
        for pos, ((_, _, servers), sent_each) in enumerate(zip(todo, sent)):
            results.append([])
            for server, one in zip(servers, sent_each):
                if isinstance(one, OSError) and one.errno in _OWN_ERRNOS:
                    results[pos].append(_not_asked(server, one.strerror or str(one)))
                    continue
                results[pos].append({"server": server, "answered": False, "rcode": None,
                                     "error": None})
                if isinstance(one, BaseException):
                    results[pos][-1]["error"] = getattr(one, "strerror", None) or str(one)
                    continue
                sock, txid = one
                waiting[sock] = (pos, len(results[pos]) - 1, txid)
                sel.register(sock, selectors.EVENT_READ)
        early = near_the_deadline
        while waiting:
            left = deadline - time.monotonic()
            if early is not None and left <= LOOKAHEAD:
                early({pos for pos, _, _ in waiting.values()})
                early = None
                continue
            ready = sel.select(max(0.0, left - (LOOKAHEAD if early is not None else 0.0)))
            if not ready:
                if early is not None:
                    continue
                break
            for key, _ in ready:
                sock = key.fileobj
                if sock == tell:
                    if not os.read(tell, 4096):
                        return None  # the end of the pipe: netdoctor gave up
                    continue
                pos, j, txid = waiting[sock]
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
                results[pos][j].update(answered=answer is not None, error=error,
                                       rcode=answer.rcode if answer else None)
                sel.unregister(sock)
                del waiting[sock]
        for pos, j, _ in waiting.values():
            results[pos][j]["error"] = f"no answer within {timeout:g} s"
    finally:
        sel.close()
    return results


def _send_probes(servers: tuple) -> list:
    """In the calling thread's namespace: a connected UDP socket per server, its question
    sent: (socket, txid), or the OSError that stopped it (no route, ...; no socket)."""
    out = []
    for server in servers:
        family = socket.AF_INET6 if ":" in server else socket.AF_INET
        try:
            sock = socket.socket(family, socket.SOCK_DGRAM)
        except OSError as e:
            out.append(e)
            continue
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

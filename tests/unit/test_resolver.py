"""Resolution as the container's libc does it: the search list and ndots (resolv.conf(5),
glibc's res_search, musl's name_from_dns_search), A and AAAA, a truncated answer asked
again over TCP. Served by a real DNS server on loopback (UDP and TCP), no root needed."""

import socket
import struct
import threading

import pytest

from netdoctor.diagnose.host import resolver
from netdoctor.diagnose.parse import resolv_conf
from netdoctor.diagnose.errors import Unresolved


def conf(text):
    return resolv_conf.parse_resolv_conf(text)


K8S = ("search default.svc.cluster.local svc.cluster.local cluster.local\n"
       "nameserver 127.0.0.1\noptions ndots:5\n")


@pytest.mark.parametrize("name, text, expected", [
    # Fewer dots than ndots: the search list first, then the name as it is (glibc; musl too).
    ("web", K8S, ["web.default.svc.cluster.local", "web.svc.cluster.local",
                  "web.cluster.local", "web"]),
    ("www.baidu.com", K8S, ["www.baidu.com.default.svc.cluster.local",
                            "www.baidu.com.svc.cluster.local", "www.baidu.com.cluster.local",
                            "www.baidu.com"]),
    # As many dots as ndots (default 1): the name first, then the search list (glibc).
    ("www.baidu.com", "search corp.example\nnameserver 127.0.0.1\n",
     ["www.baidu.com", "www.baidu.com.corp.example"]),
    ("db", "search corp.example\nnameserver 127.0.0.1\n", ["db.corp.example", "db"]),
    # A trailing dot: absolute, never searched.
    ("web.", K8S, ["web"]),
    # `domain` is a one-entry search list; the last of search/domain wins.
    ("db", "search a.example\ndomain b.example\n", ["db.b.example", "db"]),
    # ndots:0 never searches first; no search list at all: only the name.
    ("db", "search corp.example\noptions ndots:0\n", ["db", "db.corp.example"]),
    ("db", "nameserver 127.0.0.1\n", ["db"]),
    # glibc caps ndots at 15.
    ("a.b", "search x.example\noptions ndots:99\n", ["a.b.x.example", "a.b"]),
])
def test_names_tried_in_the_resolvers_order(name, text, expected):
    assert resolv_conf.candidate_names(name, conf(text)) == expected


class LoopbackDNS:
    """A DNS server on 127.0.0.1 (UDP and TCP, one port): zone maps (name, qtype) to
    addresses; names under `nxdomain_under` that are not in the zone are NXDOMAIN, other
    unknown names REFUSED; names in `truncate` get an empty TC answer over UDP."""

    def __init__(self, zone, nxdomain_under=(), truncate=()):
        self.zone, self.nxdomain_under, self.truncate = zone, nxdomain_under, truncate
        self.asked = []  # (transport, name, qtype)
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.port = self.udp.getsockname()[1]
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind(("127.0.0.1", self.port))
        self.tcp.listen(4)
        self.udp.settimeout(0.2)
        self.tcp.settimeout(0.2)
        self.running = True
        self.threads = [threading.Thread(target=f, daemon=True) for f in (self._serve_udp,
                                                                          self._serve_tcp)]
        for t in self.threads:
            t.start()

    def answer(self, query, transport):
        txid, _, _, _, _, _ = struct.unpack("!HHHHHH", query[:12])
        i, labels = 12, []
        while query[i]:
            labels.append(query[i + 1:i + 1 + query[i]].decode())
            i += 1 + query[i]
        qtype = struct.unpack("!H", query[i + 1:i + 3])[0]
        question = query[12:i + 5]
        name = ".".join(labels)
        self.asked.append((transport, name, qtype))
        addrs = self.zone.get((name, qtype))
        known = any(n == name for n, _ in self.zone)
        flags, records = 0x8180, b""
        if transport == "udp" and name in self.truncate:
            flags |= 0x0200
        elif addrs:
            family = socket.AF_INET if qtype == 1 else socket.AF_INET6
            for a in addrs:
                raw = socket.inet_pton(family, a)
                records += b"\xc0\x0c" + struct.pack("!HHIH", qtype, 1, 60, len(raw)) + raw
        elif not known:
            flags |= 3 if any(name.endswith(d) for d in self.nxdomain_under) else 5
        count = len(addrs) if addrs and not flags & 0x0200 else 0
        return struct.pack("!HHHHHH", txid, flags, 1, count, 0, 0) + question + records

    def _serve_udp(self):
        while self.running:
            try:
                data, peer = self.udp.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            self.udp.sendto(self.answer(data, "udp"), peer)

    def _serve_tcp(self):
        while self.running:
            try:
                conn, _ = self.tcp.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(1)
                while True:
                    head = conn.recv(2)
                    if len(head) < 2:
                        break
                    need, data = struct.unpack("!H", head)[0], b""
                    while len(data) < need:
                        data += conn.recv(need - len(data))
                    reply = self.answer(data, "tcp")
                    conn.sendall(struct.pack("!H", len(reply)) + reply)

    def close(self):
        self.running = False
        for t in self.threads:
            t.join()
        self.udp.close()
        self.tcp.close()


@pytest.fixture
def server(request):
    s = LoopbackDNS(**request.param)
    yield s
    s.close()


CLUSTER = {"zone": {("web.default.svc.cluster.local", 1): ["10.96.0.10"],
                    ("www.baidu.com", 1): ["203.0.113.80"],
                    ("v6only.example", 28): ["2001:db8::80"],
                    ("v6only.example", 1): [],
                    ("big.example", 1): ["203.0.113.7"]},
           "nxdomain_under": ("cluster.local", "example"), "truncate": ("big.example",)}


@pytest.mark.parametrize("server", [CLUSTER], indirect=True)
def test_a_short_name_resolves_through_the_kubernetes_search_list(server):
    found = resolver.lookup(conf(K8S), "web", timeout=1.0, port=server.port)
    assert (found.address, found.name, found.server) == \
        ("10.96.0.10", "web.default.svc.cluster.local", "127.0.0.1")


@pytest.mark.parametrize("server", [CLUSTER], indirect=True)
def test_nxdomain_under_one_search_domain_goes_on_to_the_next_name(server):
    # www.baidu.com has fewer than 5 dots: three search domains answer NXDOMAIN first.
    found = resolver.lookup(conf(K8S), "www.baidu.com", timeout=1.0, port=server.port)
    assert (found.address, found.name) == ("203.0.113.80", "www.baidu.com")
    assert [n for _, n, t in server.asked if t == 1][-1] == "www.baidu.com"


@pytest.mark.parametrize("server", [CLUSTER], indirect=True)
def test_a_name_with_only_an_aaaa_record_resolves(server):
    found = resolver.lookup(conf("nameserver 127.0.0.1\n"), "v6only.example", timeout=1.0,
                       port=server.port)
    assert found.address == "2001:db8::80" and found.addresses == ("2001:db8::80",)
    assert {t for _, _, t in server.asked} == {1, 28}  # both asked, as getaddrinfo does


@pytest.mark.parametrize("server", [CLUSTER], indirect=True)
def test_a_truncated_answer_is_asked_again_over_tcp(server):
    found = resolver.lookup(conf("nameserver 127.0.0.1\n"), "big.example", timeout=1.0,
                       port=server.port)
    assert found.address == "203.0.113.7"
    assert ("tcp", "big.example", 1) in server.asked


@pytest.mark.parametrize("server", [CLUSTER], indirect=True)
def test_a_name_nobody_has_says_what_each_name_got(server):
    with pytest.raises(Unresolved) as e:
        resolver.lookup(conf(K8S), "nothere", timeout=1.0, port=server.port)
    text = str(e.value)
    assert "nothere.default.svc.cluster.local: NXDOMAIN" in text
    assert "nothere: REFUSED" in text  # the bare name: dnsmasq-like refusal, no upstream


HOSTS = ("127.0.0.1\tlocalhost\n::1 localhost ip6-localhost\n"
         "# a comment line\n10.9.9.9 www.baidu.com baidu  # pinned by hand\n"
         "2001:db8::9 www.baidu.com\nnot-an-address broken\n")


def test_the_hosts_file_is_read_as_the_resolver_reads_it():
    from netdoctor.diagnose.parse.hosts_file import addresses_of, parse_hosts

    entries = parse_hosts(HOSTS)
    assert ("10.9.9.9", ("www.baidu.com", "baidu")) in entries
    assert all(a != "not-an-address" for a, _ in entries)  # a line no resolver reads
    # Every line that names it, in the file's order; names are not case-sensitive; the
    # name is looked up as it is (no search list: that is DNS's).
    assert addresses_of(entries, "WWW.Baidu.com") == ("10.9.9.9", "2001:db8::9")
    assert addresses_of(entries, "baidu") == ("10.9.9.9",)
    assert addresses_of(entries, "www.baidu.com.") == ("10.9.9.9", "2001:db8::9")
    assert addresses_of(entries, "example.com") == ()


def test_a_name_in_the_containers_hosts_file_is_not_asked_of_dns():
    """glibc (hosts: files dns) and musl read /etc/hosts before any nameserver: a name
    pinned there (docker run --add-host, a hand edit) goes where the file says, whatever
    DNS answers. Nothing is sent: the nameserver here does not exist."""
    from netdoctor.diagnose.parse.hosts_file import parse_hosts

    found = resolver.lookup(conf("nameserver 127.0.0.1\n"), "www.baidu.com", timeout=0.2,
                            port=9, hosts=parse_hosts(HOSTS))
    assert (found.address, found.addresses, found.server) == (
        "10.9.9.9", ("10.9.9.9", "2001:db8::9"), "/etc/hosts")


def test_a_silent_server_is_named_as_such():
    """A server that never answers is told apart from one that answered no: the trace
    follows Docker's embedded server to its upstreams only when it was silent."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as quiet:
        quiet.bind(("127.0.0.1", 0))
        port = quiet.getsockname()[1]
        with pytest.raises(Unresolved) as e:
            resolver.lookup(conf("nameserver 127.0.0.1\n"), "www.baidu.com", 0.2, port)
    assert e.value.silent == ("127.0.0.1",)


def test_dockers_embedded_server_forwards_to_the_containers_dns_or_the_hosts(monkeypatch):
    from types import SimpleNamespace

    from netdoctor.diagnose.targets import _dns_servers

    assert _dns_servers({"HostConfig": {"Dns": ["203.0.113.53", "bad", 7]}}) == ("203.0.113.53",)
    assert _dns_servers({"HostConfig": {"Dns": None}}) == ()
    given = SimpleNamespace(kind="docker", dns_servers=("203.0.113.53",))
    assert resolver.embedded_upstreams(given) == (("203.0.113.53",), "docker run --dns")
    assert resolver.embedded_upstreams(SimpleNamespace(kind="podman", dns_servers=())) == \
        ((), "")
    files = {"/etc/resolv.conf": "nameserver 127.0.0.53\n",
             resolver.SYSTEMD_UPSTREAMS: "nameserver 198.51.100.53\nnameserver ::1\n"}
    monkeypatch.setattr(resolver, "read_resolv_conf", lambda path: conf(files.get(path, "")))
    plain = SimpleNamespace(kind="docker", dns_servers=())
    assert resolver.embedded_upstreams(plain) == (("198.51.100.53",), resolver.SYSTEMD_UPSTREAMS)
    files = {"/etc/resolv.conf": "nameserver 127.0.0.1\n"}
    assert resolver.embedded_upstreams(plain)[0] == resolver.DOCKER_FALLBACK
    files = {"/etc/resolv.conf": "nameserver 192.0.2.53\n"}
    assert resolver.embedded_upstreams(plain) == (("192.0.2.53",), "the host's /etc/resolv.conf")


def test_aardvark_dns_forwards_to_its_networks_servers_or_the_hosts(monkeypatch, tmp_path):
    from netdoctor.diagnose.parse import aardvark_conf

    assert aardvark_conf.parse_network_file(
        "10.89.7.1 192.0.2.53,198.51.100.53\nbc05 10.89.7.2  p1,bc05\n") == \
        (("10.89.7.1",), ("192.0.2.53", "198.51.100.53"))
    assert aardvark_conf.parse_network_file("10.89.7.1,fd00::1\nbc05 10.89.7.2  p1\n") == \
        (("10.89.7.1", "fd00::1"), ())
    assert aardvark_conf.parse_network_file("garbage\n") == ((), ())
    (tmp_path / "pnet").write_text("10.89.7.1\nbc05 10.89.7.2  p1,bc05\n")
    (tmp_path / "qnet").write_text("10.89.8.1 192.0.2.53\n")
    monkeypatch.setattr(aardvark_conf, "AARDVARK_DIR", str(tmp_path))
    monkeypatch.setattr(resolver, "read_resolv_conf",
                        lambda path: conf("nameserver 198.51.100.53\n"
                                          if path == "/etc/resolv.conf" else ""))
    assert resolver.aardvark_upstreams("10.89.7.1") == (("198.51.100.53",),
                                                        "the host's /etc/resolv.conf")
    assert resolver.aardvark_upstreams("10.89.8.1") == (("192.0.2.53",),
                                                        "podman network qnet's DNS servers")
    assert resolver.aardvark_upstreams("10.89.9.1") is None

"""`netdoctor inbound`: a published port, reached (or not) from outside, on the lab's published
web service and on real Docker and podman with a real listener."""

import pytest

from sandbox import netdoctor, netdoctor_json, sh

pytestmark = [pytest.mark.live]


def verdict(*args, env=None):
    rc, doc = netdoctor_json("inbound", *args, env=env)
    assert doc["schema"] == "netdoctor.inbound/1"
    return rc, doc


def test_the_lab_published_port_is_reachable_by_host_or_container_port(lab):
    for port in ("8080", "80/tcp"):
        rc, doc = verdict("web", port)
        assert rc == 0 and doc["verdict"]["reachable"], doc["verdict"]
        assert (doc["port"]["host_port"], doc["port"]["container_port"]) == (8080, 80)
        assert doc["probe"]["outcome"] == "reply"
        assert [h["role"] for h in doc["hops"]] == ["bridge", "host-veth", "container"]
        assert doc["hops"][-1]["request_seen"] >= 1 and doc["hops"][-1]["reply_seen"] >= 1


def test_pcaps_of_the_hosts_probe(lab, tmp_path):
    import os

    rc, doc = verdict("web", "8080", "--pcap-dir", str(tmp_path))
    assert rc == 0 and doc["verdict"]["reachable"], doc["verdict"]
    pcaps = sorted(os.listdir(tmp_path))
    assert pcaps == ["1-bridge-ndbr0.pcap", "2-host-veth-veth-web.pcap", "3-container-eth0.pcap"]
    assert all(os.path.getsize(tmp_path / p) > 24 for p in pcaps)  # frames, not just headers
    res = netdoctor("inbound", "web", "8080", "--pcap-dir", str(tmp_path), "--redact")
    assert res.returncode == 2 and "--redact" in res.stderr


@pytest.mark.parametrize("fault, cause, from_host", [
    ("listen-loopback", "container-listens-on-loopback", False),
    ("not-listening", "container-not-listening", False),
    ("dnat-missing", "publish-dnat-missing", None),
    ("inbound-drop", "inbound-dropped", True),
    ("ip-forward-off", "ip-forward-disabled", True),
])
def test_lab_inbound_faults(lab, healed, fault, cause, from_host):
    assert netdoctor("lab", "break", fault).returncode == 0
    rc, doc = verdict("web", "8080")
    v = doc["verdict"]
    assert rc == 1 and v["cause"] == cause, v
    if from_host is not None:
        assert v["reachable_from_host"] is from_host, v
    assert any(f["id"] == cause for f in doc["findings"])


def test_a_dnat_to_another_port_than_published_is_named_and_the_hops_see_it(lab, healed):
    """A stale DNAT to port 81 for a port the runtime publishes to 80: publish-dnat-missing
    (not "unknown"), and the host's probe, translated to 81 by that rule, is seen on every
    hop (the hops are told by the port the rule writes, not the one it should)."""
    for chain in ("PREROUTING", "OUTPUT"):
        sh("ip", "netns", "exec", "ndlab-host", "iptables", "-t", "nat", "-R", chain, "1",
           "-d", "198.51.100.2/32", "-p", "tcp", "-m", "tcp", "--dport", "8080", "-j", "DNAT",
           "--to-destination", "172.29.0.3:81")
    rc, doc = verdict("web", "8080")
    v = doc["verdict"]
    assert rc == 1 and v["cause"] == "publish-dnat-missing", v
    assert "172.29.0.3:81, not to the container's 172.29.0.3:80" in v["explanation"], v
    assert [h["request_seen"] for h in doc["hops"]] == [1, 1, 1], doc["hops"]


def test_a_port_published_on_loopback_is_for_this_host_only(lab, healed):
    """`-p 127.0.0.1:8080:80` with Docker 28's raw-table guard: an outside client is stopped
    by design (the raw rule is named, and no fix removes it); the host itself connects."""
    assert netdoctor("lab", "break", "published-on-loopback").returncode == 0
    rc, doc = verdict("web", "8080")
    v = doc["verdict"]
    assert rc == 1 and v["cause"] == "port-published-on-loopback", v
    assert v["reachable_from_host"] is True and doc["probe"]["to"] == "127.0.0.1:8080"
    assert doc["walk"]["steps"][0]["hook"] == "raw/mangle PREROUTING"
    assert "-t raw PREROUTING rule 1" in v["explanation"]
    # Docker's guard is no fault: nothing proposes to delete it.
    assert "inbound-dropped" not in {f["id"] for f in doc["findings"]}
    assert not any("-D PREROUTING" in (f.get("fix") or "") for f in doc["findings"])
    rc, doc = verdict("web", "8080", "--from", "127.0.0.1")
    assert rc == 0 and doc["verdict"]["reachable"], doc["verdict"]
    assert doc["walk"]["steps"][0]["hook"] == "nat OUTPUT"


def test_route_localnet_off_stops_the_hosts_own_connection(lab, healed):
    assert netdoctor("lab", "break", "route-localnet-off").returncode == 0
    rc, doc = verdict("web", "8080", "--from", "127.0.0.1")
    v = doc["verdict"]
    assert rc == 1 and v["cause"] == "route-localnet-off", v
    assert doc["probe"]["outcome"] == "no reply"
    assert all(h["request_seen"] == 0 for h in doc["hops"])  # refused before the bridge
    fix = next(f["fix"] for f in doc["findings"] if f["id"] == "route-localnet-off")
    assert fix == "ip netns exec ndlab-host sysctl -w net.ipv4.conf.ndbr0.route_localnet=1"
    sh("ip", "netns", "exec", "ndlab-host", "sysctl", "-qw",
       "net.ipv4.conf.ndbr0.route_localnet=1")
    rc, doc = verdict("web", "8080", "--from", "127.0.0.1")
    assert rc == 0 and doc["verdict"]["reachable"], doc["verdict"]
    # From outside, the loopback publication is the cause, not the host's sysctl.
    rc, doc = verdict("web", "8080")
    assert doc["verdict"]["cause"] == "port-published-on-loopback", doc["verdict"]


@pytest.mark.parametrize("fault, why", [
    ("hairpin-off", "hairpin_mode is off on veth-web"),
    ([("iptables", "-t", "nat", "-D", "POSTROUTING", "-s", "172.29.0.3/32", "-d",
       "172.29.0.3/32", "-p", "tcp", "-m", "tcp", "--dport", "80", "-j", "MASQUERADE")],
     "no MASQUERADE for 172.29.0.3 -> 172.29.0.3"),
])
def test_hairpin_the_container_reaching_its_own_published_port(lab, healed, fault, why):
    """web connecting to 198.51.100.2:8080, its own published port (hairpin NAT): reachable
    in the healthy lab; each way of breaking it is named, and the probe sent from inside web
    agrees."""
    rc, doc = verdict("web", "8080", "--from", "172.29.0.3")
    assert rc == 0 and doc["verdict"]["reachable"], doc["verdict"]
    assert doc["walk"]["client_kind"] == "self" and doc["probe"]["outcome"] == "reply"
    if isinstance(fault, str):
        assert netdoctor("lab", "break", fault).returncode == 0
    else:
        for step in fault:
            sh("ip", "netns", "exec", "ndlab-host", *step)
    rc, doc = verdict("web", "8080", "--from", "172.29.0.3")
    v = doc["verdict"]
    assert rc == 1 and v["cause"] == "hairpin-nat-broken" and why in v["explanation"], v
    assert doc["probe"]["outcome"] == "no reply"
    # Outside clients are not affected: from outside it is still reachable.
    rc, doc = verdict("web", "8080")
    assert rc == 0 and doc["verdict"]["reachable"], doc["verdict"]
    warned = [f for f in doc["findings"] if f["id"] == "hairpin-nat-broken"]
    assert warned and warned[0]["severity"] == "warning"


def test_a_published_udp_port_is_probed_with_one_datagram(lab, healed):
    """UDP 5300 on the host published to web's port 53: nothing bound there is a refusal
    (ICMP port unreachable from the container); a bound socket that answers nothing is as
    far as a datagram can tell (delivered, no refusal)."""
    import subprocess

    host = ("ip", "netns", "exec", "ndlab-host")
    dnat = ["-d", "198.51.100.2/32", "-p", "udp", "--dport", "5300", "-j", "DNAT",
            "--to-destination", "172.29.0.3:53"]
    sh(*host, "iptables", "-t", "nat", "-A", "PREROUTING", *dnat)
    sh(*host, "iptables", "-t", "nat", "-A", "OUTPUT", *dnat)
    sh(*host, "iptables", "-I", "NDLAB-FORWARD", "-d", "172.29.0.3/32", "-p", "udp", "--dport",
       "53", "-j", "ACCEPT")
    rc, doc = verdict("web", "5300/udp")
    v = doc["verdict"]
    assert rc == 1 and v["cause"] == "container-not-listening", v
    assert doc["probe"]["kind"] == "one UDP datagram" and doc["probe"]["outcome"] == "icmp error"
    assert doc["hops"][-1]["request_seen"] >= 1
    bound = subprocess.Popen(["ip", "netns", "exec", "ndlab-web", "python3", "-c",
                              "import socket, time\ns = socket.socket(socket.AF_INET, "
                              "socket.SOCK_DGRAM)\ns.bind(('0.0.0.0', 53))\nprint('up', "
                              "flush=True)\ntime.sleep(60)\n"], stdout=subprocess.PIPE,
                             text=True)
    try:
        assert bound.stdout.readline().strip() == "up"
        rc, doc = verdict("web", "5300/udp")
    finally:
        bound.kill()
        bound.wait()
    v = doc["verdict"]
    assert rc == 0 and v["reachable"] and "reached the container's bound port" in \
        v["explanation"], v
    assert doc["probe"]["outcome"] == "no reply"


def test_the_ipv6_publication_from_an_ipv6_client(lab, healed):
    """web's port is published on the host's IPv6 address too (as Docker with ip6tables
    does): an IPv6 client's walk, the host's probe over IPv6, and an ip6tables drop."""
    rc, doc = verdict("web", "8080", "--from", "2001:2::1")
    v = doc["verdict"]
    assert rc == 0 and v["reachable"], v
    assert doc["probe"]["to"] == "[2001:db8:1::2]:8080" and doc["probe"]["outcome"] == "reply"
    assert doc["walk"]["dnat_to"] == "[fd00:29::3]:80"
    assert doc["hops"][-1]["addresses_seen"]["request"] == "2001:db8:1::2 -> fd00:29::3"
    sh("ip", "netns", "exec", "ndlab-host", "ip6tables", "-I", "FORWARD", "1", "-p", "tcp",
       "--dport", "80", "-j", "DROP")
    rc, doc = verdict("web", "8080", "--from", "2001:2::1")
    v = doc["verdict"]
    assert rc == 1 and v["cause"] == "inbound-dropped", v
    assert "ip6tables-nft -t filter FORWARD rule 1: -A FORWARD -p tcp -m tcp --dport 80 -j DROP" \
        in v["explanation"], v
    # The IPv4 publication is not affected.
    rc, doc = verdict("web", "8080")
    assert rc == 0 and doc["verdict"]["reachable"], doc["verdict"]


DOCKER29 = """table ip docker-bridges {
  chain nat-PREROUTING { type nat hook prerouting priority dstnat; policy accept;
    fib daddr type local counter jump nat-prerouting-and-output; }
  chain nat-OUTPUT { type nat hook output priority -100; policy accept;
    fib daddr type local counter jump nat-prerouting-and-output; }
  chain nat-prerouting-and-output {
    iifname != "ndbr0" ip daddr 198.51.100.2 tcp dport 8080 counter dnat to 172.29.0.3:80; }
  chain filter-FORWARD { type filter hook forward priority filter; policy accept;
    oifname "ndbr0" ip daddr 172.29.0.3 tcp dport 80 counter accept; }
}
"""


def test_a_port_published_in_native_nft_tables(lab, healed):
    """Docker 29's nftables backend keeps its rules in its own table (ip docker-bridges),
    not in iptables: the DNAT and a drop there are read and named like any other."""
    assert netdoctor("lab", "break", "dnat-missing").returncode == 0
    sh("ip", "netns", "exec", "ndlab-host", "nft", "-f", "-", input=DOCKER29)
    rc, doc = verdict("web", "8080")
    v = doc["verdict"]
    assert rc == 0 and v["reachable"], v
    assert doc["walk"]["steps"][0]["said"].startswith(
        "nft table ip docker-bridges chain nat-prerouting-and-output")
    sh("ip", "netns", "exec", "ndlab-host", "nft", "insert rule ip docker-bridges "
       "filter-FORWARD tcp dport 80 counter drop")
    rc, doc = verdict("web", "8080")
    v = doc["verdict"]
    assert rc == 1 and v["cause"] == "inbound-dropped", v
    assert "nft table ip docker-bridges chain filter-FORWARD" in v["explanation"], v
    fix = next(f["fix"] for f in doc["findings"] if f["id"] == "inbound-dropped")
    assert fix.startswith("ip netns exec ndlab-host nft delete rule ip docker-bridges "
                          "filter-FORWARD handle "), fix


def test_forward_policy_drop_names_the_policy(lab, healed):
    sh("ip", "netns", "exec", "ndlab-host", "iptables", "-D", "NDLAB-FORWARD", "-d",
       "172.29.0.3/32", "-p", "tcp", "-m", "tcp", "--dport", "80", "-j", "ACCEPT")
    rc, doc = verdict("web", "8080")
    assert rc == 1 and doc["verdict"]["cause"] == "inbound-dropped"
    assert "policy drop" in doc["verdict"]["explanation"]
    # The fix, run as printed, lets the port through (it named DOCKER-USER, which the lab's
    # host has not).
    f = next(f for f in doc["findings"] if f["id"] == "inbound-dropped")
    sh("sh", "-c", f["fix"])
    try:
        rc, doc = verdict("web", "8080")
        assert rc == 0 and doc["verdict"]["reachable"], (f["fix"], doc["verdict"])
    finally:
        sh("sh", "-c", f["fix"].replace(" -I ", " -D ", 1), check=False)


def test_the_containers_own_firewall_on_its_service_port(lab, healed):
    """The web container's own INPUT drops its service port: the SYN reaches it and dies
    there. The verdict was unknown (NETFILTER_DROP at the container); the container's rule
    is named, and its deletion, as printed, heals."""
    rule = ("INPUT", "-p", "tcp", "--dport", "80", "-j", "DROP")
    try:
        sh("ip", "netns", "exec", "ndlab-web", "iptables", "-I", *rule)
        rc, doc = verdict("web", "8080")
        v = doc["verdict"]
        assert rc == 1 and v["cause"] == "container-input-dropped", v
        f = next(f for f in doc["findings"] if f["id"] == "container-input-dropped")
        assert "tcp/80" in f["message"] and f["fix"], f
        sh("sh", "-c", f["fix"])
        rc, doc = verdict("web", "8080")
        assert rc == 0 and doc["verdict"]["reachable"], doc["verdict"]
    finally:
        sh("ip", "netns", "exec", "ndlab-web", "sh", "-c", "iptables -D " + " ".join(rule)
           + "; true")


@pytest.mark.parametrize("route", [("blackhole", "172.29.0.3/32"),
                                   ("172.29.0.3/32", "via", "198.51.100.1", "dev", "eth0")])
def test_a_route_that_takes_the_dnated_request_away_from_the_container(lab, healed, route):
    """The host's route for the container's address refuses it or sends it back out: the
    request, DNATed, never reaches the bridge (nor does the host's own probe). The verdict
    was unknown ("seen on no hop"); the route is named as what a client's request meets
    after the DNAT, and its deletion, as printed, heals."""
    sh("ip", "-n", "ndlab-host", "route", "add", *route)
    try:
        rc, doc = verdict("web", "8080")
        v = doc["verdict"]
        assert rc == 1 and v["cause"] == "reply-path-asymmetric", v
        assert "after the DNAT" in v["explanation"], v
        f = next(f for f in doc["findings"] if f["id"] == v["cause"])
        sh("sh", "-c", f["fix"])
        rc, doc = verdict("web", "8080")
        assert rc == 0 and doc["verdict"]["reachable"], (f["fix"], doc["verdict"])
    finally:
        sh("ip", "-n", "ndlab-host", "route", "del", *route, check=False)


def test_a_port_nothing_publishes(lab):
    rc, doc = verdict("web", "9999")
    assert rc == 1 and doc["verdict"]["cause"] == "port-not-published", doc["verdict"]
    assert doc["probe"]["sent"] is False


@pytest.mark.parametrize("args, why", [
    (("web", "http"), "must be a port number"),
    (("web", "80/sctp"), "tcp or udp"),
    (("web", "80", "--from", "somewhere"), "not an IP address"),
])
def test_bad_input_is_one_line_and_exit_2(args, why):
    res = netdoctor("inbound", *args)
    assert res.returncode == 2 and why in res.stderr and res.stderr.count("\n") == 1, res


@pytest.fixture(scope="module")
def served(docker_engine):
    d = docker_engine
    d.run("pub-ok", "-p", "8081:80", cmd=("busybox", "httpd", "-f", "-p", "80"))
    d.run("pub-lo", "-p", "8082:80", cmd=("busybox", "httpd", "-f", "-p", "127.0.0.1:80"))
    d.run("pub-none", "-p", "8083:80")
    d.run("pub-l1", "-p", "127.0.0.1:8084:80", cmd=("busybox", "httpd", "-f", "-p", "80"))
    yield d
    d.docker("rm", "-f", "pub-ok", "pub-lo", "pub-none", "pub-l1", check=False)


@pytest.mark.docker
def test_docker_published_ports(served):
    env = served.env
    rc, doc = verdict("pub-ok", "8081", env=env)
    assert rc == 0 and doc["verdict"]["reachable"], doc
    assert doc["port"]["source"] == "runtime"
    rc, doc = verdict("pub-lo", "8082", env=env)
    assert rc == 1 and doc["verdict"]["cause"] == "container-listens-on-loopback", doc["verdict"]
    rc, doc = verdict("pub-none", "8083", env=env)
    assert rc == 1 and doc["verdict"]["cause"] == "container-not-listening", doc["verdict"]
    _hairpin_agrees(served.docker, "docker:pub-ok", "pub-ok", 8081, env)


@pytest.mark.docker
def test_docker_port_published_on_loopback(served):
    """Debian's Docker 28.2 publishes 127.0.0.1:8084 with a DNAT and docker-proxy, and adds no
    raw-table guard: the finding says the LAN exposure too."""
    rc, doc = verdict("pub-l1", "8084", env=served.env)
    v = doc["verdict"]
    assert rc == 1 and v["cause"] == "port-published-on-loopback", v
    assert v["reachable_from_host"] is True, v
    raw = served.sealed.host and sh("ip", "netns", "exec", served.sealed.host, "iptables-save",
                                    "-t", "raw").stdout
    if "--dport 8084" not in raw:
        assert "no raw-table rule drops" in v["explanation"], v
    rc, doc = verdict("pub-l1", "8084", "--from", "127.0.0.1", env=served.env)
    assert rc == 0 and doc["verdict"]["reachable"], doc["verdict"]


@pytest.mark.docker
def test_docker_user_drop_and_a_flushed_dnat(served):
    host, env = served.sealed.host, served.env
    sh("ip", "netns", "exec", host, "iptables", "-I", "DOCKER-USER", "1", "-p", "tcp",
       "--dport", "80", "-j", "DROP")
    try:
        rc, doc = verdict("pub-ok", "8081", env=env)
        assert rc == 1 and doc["verdict"]["cause"] == "inbound-dropped", doc["verdict"]
        assert "DOCKER-USER" in doc["verdict"]["explanation"]
    finally:
        sh("ip", "netns", "exec", host, "iptables", "-D", "DOCKER-USER", "1")
    rules = sh("ip", "netns", "exec", host, "iptables-save", "-t", "nat").stdout
    dnat = next(l for l in rules.splitlines() if "--dport 8081" in l and "DNAT" in l)
    sh("ip", "netns", "exec", host, "iptables", "-t", "nat", *dnat.replace("-A ", "-D ", 1).split())
    try:
        # Docker's userland proxy listens on the port and serves an outside client all the
        # same (the verdict said it could not connect): reachable, as a real client finds,
        # and the missing DNAT a warning, fixed by the restart that writes it again.
        rc, doc = verdict("pub-ok", "8081", env=env)
        assert rc == 0 and doc["verdict"]["reachable"], doc["verdict"]
        assert "docker-proxy" in doc["verdict"]["explanation"], doc["verdict"]
        f = next(f for f in doc["findings"] if f["id"] == "publish-dnat-missing")
        assert f["severity"] == "warning" and f["fix"] == "docker restart pub-ok", f
        got = sh("ip", "netns", "exec", served.sealed.inet, "sh", "-c",
                 "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 2 198.51.100.2 8081",
                 check=False).stdout
        assert got.startswith("HTTP/1."), got
    finally:
        sh("ip", "netns", "exec", host, "iptables", "-t", "nat", *dnat.split())


@pytest.mark.docker
def test_docker_forward_policy_and_forwarding_off(served):
    """Docker's accept for the port deleted (FORWARD's policy DROP decides), and IPv4
    forwarding off, on a real Docker host."""
    host, env = served.sealed.host, served.env
    rules = sh("ip", "netns", "exec", host, "iptables-save", "-t", "filter").stdout
    accept = next(l for l in rules.splitlines() if l.startswith("-A DOCKER ") and
                  "--dport 80" in l and "ACCEPT" in l and
                  served.docker("inspect", "-f", "{{.NetworkSettings.IPAddress}}",
                                "pub-ok").stdout.strip() in l)
    sh("ip", "netns", "exec", host, "iptables", *accept.replace("-A ", "-D ", 1).split())
    try:
        rc, doc = verdict("pub-ok", "8081", env=env)
    finally:
        sh("ip", "netns", "exec", host, "iptables", *accept.split())
    v = doc["verdict"]
    assert rc == 1 and v["cause"] == "inbound-dropped" and "policy drop" in v["explanation"], v
    sh("ip", "netns", "exec", host, "sysctl", "-qw", "net.ipv4.ip_forward=0")
    try:
        rc, doc = verdict("pub-ok", "8081", env=env)
    finally:
        sh("ip", "netns", "exec", host, "sysctl", "-qw", "net.ipv4.ip_forward=1")
    v = doc["verdict"]
    assert rc == 1 and v["cause"] == "ip-forward-disabled", v
    assert v["reachable_from_host"] is True  # the host's own connection is not forwarded


@pytest.mark.podman
def test_podman_published_ports(podman_engine):
    p = podman_engine
    p.run("ppub-ok", "-p", "8091:80", cmd=("busybox", "httpd", "-f", "-p", "80"))
    p.run("ppub-lo", "-p", "8092:80", cmd=("busybox", "httpd", "-f", "-p", "127.0.0.1:80"))
    try:
        rc, doc = verdict("podman:ppub-ok", "8091", env=p.env)
        assert rc == 0 and doc["verdict"]["reachable"], doc
        assert (doc["port"]["host_port"], doc["port"]["container_port"]) == (8091, 80)
        rc, doc = verdict("podman:ppub-lo", "8092", env=p.env)
        assert rc == 1, doc["verdict"]
        assert doc["verdict"]["cause"] == "container-listens-on-loopback", doc["verdict"]
        _hairpin_agrees(p.podman, "podman:ppub-ok", "ppub-ok", 8091, p.env)
        _podman_faults(p)
    finally:
        p.podman("rm", "-f", "ppub-ok", "ppub-lo", "ppub-none", check=False)


def _podman_faults(p):
    """Not listening, the DNAT gone (netavark's chains flushed by a firewall reload), and a
    FORWARD drop of the port, on real podman."""
    host = p.sealed.host
    p.run("ppub-none", "-p", "8094:80")
    rc, doc = verdict("podman:ppub-none", "8094", env=p.env)
    assert rc == 1 and doc["verdict"]["cause"] == "container-not-listening", doc["verdict"]
    nat = sh("ip", "netns", "exec", host, "iptables-save", "-t", "nat").stdout
    dnat = next(l for l in nat.splitlines() if "--dport 8091" in l and "DNAT" in l)
    sh("ip", "netns", "exec", host, "iptables", "-t", "nat",
       *dnat.replace("-A ", "-D ", 1).split())
    try:
        rc, doc = verdict("podman:ppub-ok", "8091", env=p.env)
        assert rc == 1 and doc["verdict"]["cause"] == "publish-dnat-missing", doc["verdict"]
        fix = next(f["fix"] for f in doc["findings"] if f["id"] == "publish-dnat-missing")
        assert fix == "podman restart ppub-ok"
    finally:
        sh("ip", "netns", "exec", host, "iptables", "-t", "nat", *dnat.split())
    sh("ip", "netns", "exec", host, "iptables", "-I", "FORWARD", "1", "-p", "tcp", "--dport",
       "80", "-j", "DROP")
    try:
        rc, doc = verdict("podman:ppub-ok", "8091", env=p.env)
    finally:
        sh("ip", "netns", "exec", host, "iptables", "-D", "FORWARD", "1")
    v = doc["verdict"]
    assert rc == 1 and v["cause"] == "inbound-dropped" and "FORWARD rule 1" in v["explanation"]


def _hairpin_agrees(engine, target, name, port, env):
    """The container's own connection to the host's address and published port: netdoctor's
    hairpin finding and verdict agree with what a real connection from inside does."""
    # (busybox-static's wget crashes in these images; its nc does not)
    ok = engine("exec", name, "sh", "-c", f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 "
                f"198.51.100.2 {port} | grep -q HTTP", check=False).returncode == 0
    rc, doc = netdoctor_json("checks", target, env=env)
    found = {f["id"] for f in doc["findings"]}
    assert ("hairpin-nat-broken" in found) is not ok, (ok, found)
    address = doc["targets"][0]["hops"][0]["addresses"][0].split("/")[0]
    rc, doc = verdict(target, str(port), "--from", address, env=env)
    assert doc["walk"]["client_kind"] == "self"
    assert doc["verdict"]["reachable"] is ok, doc["verdict"]


def _watched(*args, connect=True, client_ns="ndlab-inet", address="198.51.100.2", port=8080,
             env=None):
    """`inbound --watch`, with a real client in the fake internet connecting once netdoctor
    says it is watching: (exit status, document)."""
    import json
    import subprocess

    from sandbox import netdoctor_exe

    proc = subprocess.Popen(netdoctor_exe() + ["inbound", *args, "--format", "json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        told = proc.stderr.readline()
        assert "connect now" in told, told
        if connect:
            sh("ip", "netns", "exec", client_ns, "python3", "-c",
               "import socket,sys\ns=socket.socket()\ns.settimeout(2)\ntry:\n"
               f"    s.connect(('{address}', {port}))\nexcept OSError:\n    pass\n",
               check=False)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, json.loads(out)


def test_watch_judges_a_real_clients_connection(lab):
    rc, doc = _watched("web", "8080", "--watch", "10")
    p, v = doc["probe"], doc["verdict"]
    assert rc == 0 and v["reachable"] and v["watched"], v
    assert p["client"] == "198.51.100.1" and p["outcome"] == "reply", p
    hops = {h["role"]: h for h in doc["hops"]}
    assert list(hops) == ["uplink", "bridge", "host-veth", "container"]
    # Seen translated: to the host's port on the uplink, to the container's further in.
    assert hops["uplink"]["addresses_seen"]["request"] == "198.51.100.1 -> 198.51.100.2"
    assert hops["container"]["addresses_seen"]["request"] == "198.51.100.1 -> 172.29.0.3"
    assert all(h["request_seen"] >= 1 and h["reply_seen"] >= 1 for h in hops.values())


def test_watch_names_the_rule_that_drops_the_client(lab, healed):
    assert netdoctor("lab", "break", "inbound-drop").returncode == 0
    rc, doc = _watched("web", "8080", "--watch", "10")
    v = doc["verdict"]
    # Arrived on the uplink, translated, dropped in FORWARD: never sent on to the bridge.
    assert rc == 1 and v["cause"] == "inbound-dropped" and v["stopped_at"] == "uplink", v
    assert "DROP" in (v.get("rule") or "") and v["kernel_drop_reason"] == "NETFILTER_DROP", v


def test_watch_without_a_client_says_what_it_could_not_see(lab):
    rc, doc = _watched("web", "8080", "--watch", "1", connect=False)
    v = doc["verdict"]
    assert rc == 1 and v["cause"] == "client-not-seen", v
    assert "cannot see" in v["explanation"]


def test_an_input_deny_of_a_published_port_is_a_security_note(lab, healed):
    """ufw's trap: INPUT denies 8080, the port stays reachable through DNAT and FORWARD.
    netdoctor says so (info), and the verdict stays reachable."""
    sh("ip", "netns", "exec", "ndlab-host", "iptables", "-I", "INPUT", "-p", "tcp", "--dport",
       "8080", "-j", "DROP")
    rc, doc = netdoctor_json("checks", "lab:web")
    note = next(f for f in doc["findings"] if f["id"] == "published-port-bypasses-input")
    assert note["severity"] == "info" and "--dport 8080 -j DROP" in note["message"], note
    rc, doc = verdict("web", "8080")
    assert rc == 0 and doc["verdict"]["reachable"], doc["verdict"]


@pytest.mark.docker
def test_docker_watch_judges_a_real_client(served):
    """--watch on a real Docker host: a client in the sealed internet connects to the
    published port during the window; healthy, then with a DOCKER-USER drop."""
    host, inet, env = served.sealed.host, served.sealed.inet, served.env
    rc, doc = _watched("pub-ok", "8081", "--watch", "15", client_ns=inet, port=8081, env=env)
    assert rc == 0 and doc["verdict"]["reachable"], doc["verdict"]
    assert doc["probe"]["client"] == "198.51.100.1" and doc["probe"]["outcome"] == "reply"
    sh("ip", "netns", "exec", host, "iptables", "-I", "DOCKER-USER", "1", "-p", "tcp",
       "--dport", "80", "-j", "DROP")
    try:
        rc, doc = _watched("pub-ok", "8081", "--watch", "15", client_ns=inet, port=8081,
                           env=env)
    finally:
        sh("ip", "netns", "exec", host, "iptables", "-D", "DOCKER-USER", "1")
    v = doc["verdict"]
    assert rc == 1 and v["cause"] == "inbound-dropped" and v["stopped_at"] == "uplink", v
    assert "DOCKER-USER" in (v.get("rule") or ""), v


@pytest.mark.podman
def test_podman_watch_judges_a_real_client(podman_engine):
    p = podman_engine
    host = p.sealed.host
    p.run("ppub-w", "-p", "8093:80", cmd=("busybox", "httpd", "-f", "-p", "80"))
    try:
        rc, doc = _watched("podman:ppub-w", "8093", "--watch", "15", client_ns=p.sealed.inet,
                           port=8093, env=p.env)
        assert rc == 0 and doc["verdict"]["reachable"], doc["verdict"]
        assert doc["probe"]["client"] == "198.51.100.1", doc["probe"]
        assert [h["role"] for h in doc["hops"]] == ["uplink", "bridge", "host-veth",
                                                     "container"]
        # Broken: a real client's SYN dropped in FORWARD, then forwarding switched off.
        sh("ip", "netns", "exec", host, "iptables", "-I", "FORWARD", "1", "-p", "tcp",
           "--dport", "80", "-j", "DROP")
        try:
            rc, doc = _watched("podman:ppub-w", "8093", "--watch", "15",
                               client_ns=p.sealed.inet, port=8093, env=p.env)
        finally:
            sh("ip", "netns", "exec", host, "iptables", "-D", "FORWARD", "1")
        v = doc["verdict"]
        assert rc == 1 and v["cause"] == "inbound-dropped" and v["stopped_at"] == "uplink", v
        assert "FORWARD rule 1" in (v.get("rule") or ""), v
        sh("ip", "netns", "exec", host, "sysctl", "-qw", "net.ipv4.ip_forward=0")
        try:
            rc, doc = verdict("podman:ppub-w", "8093", env=p.env)
        finally:
            sh("ip", "netns", "exec", host, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        assert rc == 1 and doc["verdict"]["cause"] == "ip-forward-disabled", doc["verdict"]
    finally:
        p.podman("rm", "-f", "ppub-w", check=False)


def test_a_port_untracked_before_its_dnat_is_not_reachable_from_outside(lab, healed):
    """raw PREROUTING `-j CT --notrack` for the port: an outside client's SYN is never
    DNATed and the host refuses it. The host's own probe never crosses PREROUTING, and the
    verdict was "REACHABLE from outside". Now the walk stops there, a real client watched
    agrees, and the fix, run as printed, lets the client in."""
    rule = ("-p", "tcp", "--dport", "8080", "-j", "CT", "--notrack")
    sh("ip", "netns", "exec", "ndlab-host", "iptables", "-t", "raw", "-I", "PREROUTING", *rule)
    try:
        rc, doc = verdict("web", "8080")
        v = doc["verdict"]
        assert rc == 1 and v["cause"] == "inbound-dropped" and "untracked" in v["explanation"], v
        rc, watched = _watched("web", "8080", "--watch", "10")
        assert rc == 1 and not watched["verdict"]["reachable"], watched["verdict"]
        f = next(f for f in doc["findings"] if f["id"] == "inbound-dropped")
        sh("sh", "-c", f["fix"])
        rc, watched = _watched("web", "8080", "--watch", "10")
        assert rc == 0 and watched["verdict"]["reachable"], (f["fix"], watched["verdict"])
    finally:
        sh("ip", "netns", "exec", "ndlab-host", "iptables", "-t", "raw", "-D", "PREROUTING",
           *rule, check=False)

"""`netdoctor checks` on the live lab and a live Docker host: every fault named, no false alarms."""

import pytest

from sandbox import netdoctor, netdoctor_json, sh, unique

pytestmark = pytest.mark.live


def in_ns(ns, *argv):
    return sh("ip", "netns", "exec", ns, *argv)


def findings(*targets):
    rc, doc = netdoctor_json("checks", *targets)
    return rc, {(f["id"], f["subject"]) for f in doc["findings"]}, doc


def test_healthy_lab_has_no_errors_or_warnings(lab):
    rc, found, doc = findings("test", "web")
    assert rc == 0 and found == set(), doc["findings"]
    assert doc["schema"] == "netdoctor.checks/1"
    assert [t["target"] for t in doc["targets"]] == ["lab:test", "lab:web"]


@pytest.mark.parametrize("fault, expected", [
    ("ip-forward-off", ("ip-forward-disabled", "host ndlab-host")),
    ("forward-drop", ("forward-dropped", "lab:test")),
    ("nat-missing", ("nat-missing", "lab:test")),
    ("veth-detached", ("veth-not-attached", "lab:test")),
    ("veth-down", ("veth-down", "lab:test")),
    ("bridge-down", ("bridge-down", "lab:test")),
    ("no-default-route", ("container-no-default-route", "lab:test")),
    ("dns-unreachable", ("dns-unreachable", "lab:test")),
])
def test_every_lab_fault_is_named(healed, fault, expected):
    assert netdoctor("lab", "break", fault).returncode == 0
    rc, found, doc = findings("test")
    assert rc == 1
    assert expected in found, doc["findings"]


# Faults `lab break` does not inject, made by hand the way an operator would.
HAND_MADE = {
    "rp-filter-drop": [("ndlab-host", "ip", "route", "add", "172.29.0.2/32", "via", "198.51.100.1"),
                       ("ndlab-host", "sysctl", "-qw", "net.ipv4.conf.ndbr0.rp_filter=1")],
    "host-no-route": [("ndlab-host", "ip", "route", "del", "default")],
    "uplink-down": [("ndlab-host", "ip", "link", "set", "eth0", "down")],
    "subnet-overlap": [("ndlab-host", "ip", "route", "add", "172.29.0.0/16", "via", "198.51.100.1")],
    "container-link-down": [("ndlab-test", "ip", "link", "set", "eth0", "down")],
    "container-no-address": [("ndlab-test", "ip", "addr", "flush", "dev", "eth0")],
    "container-wrong-gateway": [("ndlab-test", "ip", "route", "replace", "default", "via",
                                 "172.29.0.254")],
    "ip-conflict": [("ndlab-host", "ip", "addr", "add", "172.29.0.2/32", "dev", "eth0")],
    "mtu-mismatch": [("ndlab-host", "ip", "link", "set", "veth-test", "mtu", "1400")],
    "forward-dropped": [("ndlab-host", "nft", "add table inet fw; add chain inet fw f { type filter "
                         "hook forward priority -10; }; add rule inet fw f ip saddr 172.29.0.2 "
                         "counter drop")],
}


@pytest.mark.parametrize("check_id", sorted(HAND_MADE))
def test_hand_made_faults_are_named(healed, check_id):
    for ns, *argv in HAND_MADE[check_id]:
        in_ns(ns, *argv)
    rc, found, doc = findings("test")
    ids = {i for i, _ in found}
    assert check_id in ids, doc["findings"]
    assert rc == 1 if any(f["severity"] == "error" for f in doc["findings"]) else rc == 0


def test_neighbour_failed_when_the_uplink_gateway_moves(healed):
    in_ns("ndlab-inet", "ip", "addr", "flush", "dev", "wan0")
    in_ns("ndlab-inet", "ip", "addr", "add", "198.51.100.9/24", "dev", "wan0")
    # The host tries to reach its gateway (inside the lab), so its ARP entry fails.
    sh("ip", "netns", "exec", "ndlab-host", "busybox", "ping", "-c", "1", "-W", "3",
       "203.0.113.80", check=False)
    rc, found, doc = findings("test")
    assert ("neighbour-failed", "lab:test") in found, doc["findings"]


def test_backend_split_when_legacy_rules_appear(healed):
    if not sh("sh", "-c", "command -v iptables-legacy", check=False).stdout:
        pytest.skip("iptables-legacy not installed")
    in_ns("ndlab-host", "iptables-legacy", "-A", "INPUT", "-p", "tcp", "--dport", "22",
          "-j", "ACCEPT")
    rc, found, doc = findings("test")
    assert ("iptables-backend-split", "host ndlab-host") in found, doc["findings"]


def test_bridge_netfilter_drops_between_containers(healed):
    def enabled():
        return sh("ip", "netns", "exec", "ndlab-host", "sysctl", "-n",
                  "net.bridge.bridge-nf-call-iptables", check=False).stdout.strip() == "1"
    if not enabled():
        # dockerd loads this module too; the tests may run before any dockerd did.
        sh("modprobe", "br_netfilter", check=False)
    if not enabled():
        pytest.skip("br_netfilter cannot be loaded on this machine")
    in_ns("ndlab-host", "iptables", "-D", "NDLAB-FORWARD", "-i", "ndbr0", "-o", "ndbr0",
          "-j", "ACCEPT")
    rc, found, doc = findings("test", "web")
    assert ("bridge-netfilter", "lab:test") in found, doc["findings"]


def test_a_nameserver_on_the_host_behind_an_input_drop(healed):
    """The container asks the host's own bridge address for names, and the host's INPUT
    drops UDP 53 from the bridge: the finding names the rule, and its fix deletes that rule
    (run as printed), after which the query meets no rule (the server's answer, here a
    refusal: nothing listens in the lab)."""
    resolv = "/etc/netns/ndlab-test/resolv.conf"
    with open(resolv) as f:
        saved = f.read()
    rule = ["INPUT", "-i", "ndbr0", "-p", "udp", "--dport", "53", "-j", "DROP"]
    with open(resolv, "w") as f:
        f.write("nameserver 172.29.0.1\n")
    in_ns("ndlab-host", "iptables", "-I", *rule)
    try:
        rc, doc = netdoctor_json("checks", "test")
        f = next(f for f in doc["findings"] if f["id"] == "dns-unreachable")
        assert "--dport 53 -j DROP" in f["message"] and f["fix"], f
        sh("sh", "-c", f["fix"])
        assert "--dport 53" not in in_ns("ndlab-host", "iptables", "-S", "INPUT").stdout
        rc, doc = netdoctor_json("checks", "test")
        f = next((f for f in doc["findings"] if f["id"] == "dns-unreachable"), None)
        assert f is None or ("DROP" not in f["message"] and not f["fix"]), f
    finally:
        with open(resolv, "w") as f:
            f.write(saved)
        sh("ip", "netns", "exec", "ndlab-host", "iptables", "-D", *rule, check=False)


def test_container_without_interface():
    name = "ndt-chk-nonet"
    sh("ip", "netns", "add", name)
    try:
        rc, found, doc = findings(f"netns:{name}")
        assert ("container-no-interface", f"netns:{name}") in found
        assert rc == 1
    finally:
        sh("ip", "netns", "del", name)


def test_markdown_report_fills_in_real_names(healed):
    assert netdoctor("lab", "break", "veth-down").returncode == 0
    res = netdoctor("checks", "test", "--format", "markdown")
    assert res.returncode == 1
    md = res.stdout
    assert "| error | `veth-down` | lab:test |" in md
    assert "ip netns exec ndlab-host ip link set veth-test up" in md
    assert "**Confirm**" in md and "**Revert**" in md
    assert "{veth}" not in md and "{in_host}" not in md


def test_saved_snapshot_is_judged_without_privileges(healed, tmp_path):
    assert netdoctor("lab", "break", "nat-missing").returncode == 0
    snap = tmp_path / "snap.json"
    assert netdoctor("snapshot", "test", "-o", snap).returncode == 0
    exe = sh("sh", "-c", "command -v netdoctor").stdout.strip()
    res = sh("setpriv", "--bounding-set=-all", "--inh-caps=-all", exe, "checks", "--from",
             str(snap), "--format", "json", check=False)
    assert res.returncode == 1, res.stderr
    assert '"nat-missing"' in res.stdout


def test_fail_on_and_only(healed):
    assert netdoctor("lab", "break", "veth-down").returncode == 0
    assert netdoctor("checks", "test", "--only", "mtu-mismatch").returncode == 0
    assert netdoctor("checks", "test", "--only", "veth-down").returncode == 1
    res = netdoctor("checks", "test", "--only", "no-such-check")
    assert res.returncode == 2 and "unknown check id" in res.stderr


def _udp_sent(ns):
    """The UDP datagrams a namespace has sent (/proc/net/snmp's Udp OutDatagrams)."""
    lines = [l.split() for l in in_ns(ns, "cat", "/proc/net/snmp").stdout.splitlines()
             if l.startswith("Udp:")]
    return int(lines[1][lines[0].index("OutDatagrams")])


def test_the_dns_probe_is_sent_only_for_a_check_that_reads_it(lab):
    """`checks` sends its one query per nameserver when dns-unreachable is among the
    checks chosen, and no packet at all otherwise."""
    before = _udp_sent("ndlab-test")
    assert netdoctor("checks", "test", "--only", "ip-forward-disabled,veth-down")\
        .returncode == 0
    assert _udp_sent("ndlab-test") == before
    assert netdoctor("checks", "test", "--only", "dns-unreachable").returncode == 0
    assert _udp_sent("ndlab-test") == before + 1


@pytest.fixture(scope="module")
def docker_pair(docker_engine):
    docker_engine.run("chk1")
    docker_engine.run("chk2")
    yield docker_engine
    docker_engine.docker("rm", "-f", "chk1", "chk2", check=False)


def test_healthy_docker_host_has_no_findings(docker_pair):
    rc, doc = netdoctor_json("checks", "chk1", "chk2", env=docker_pair.env)
    assert rc == 0 and doc["findings"] == []


@pytest.mark.parametrize("break_it, fix_it, expected", [
    (("iptables", "-I", "DOCKER-USER", "-s", "172.17.0.0/16", "-j", "DROP"),
     ("iptables", "-D", "DOCKER-USER", "-s", "172.17.0.0/16", "-j", "DROP"), "forward-dropped"),
    (("iptables", "-t", "nat", "-D", "POSTROUTING", "-s", "172.17.0.0/16", "!", "-o", "docker0",
      "-j", "MASQUERADE"),
     ("iptables", "-t", "nat", "-A", "POSTROUTING", "-s", "172.17.0.0/16", "!", "-o", "docker0",
      "-j", "MASQUERADE"), "nat-missing"),
    (("ip", "link", "set", "docker0", "down"), ("ip", "link", "set", "docker0", "up"),
     "bridge-down"),
    (("sysctl", "-qw", "net.ipv4.ip_forward=0"), ("sysctl", "-qw", "net.ipv4.ip_forward=1"),
     "ip-forward-disabled"),
])
def test_docker_faults_are_named(docker_pair, break_it, fix_it, expected):
    host = docker_pair.sealed.host
    in_ns(host, *break_it)
    try:
        rc, doc = netdoctor_json("checks", "chk1", env=docker_pair.env)
        assert rc == 1
        assert expected in {f["id"] for f in doc["findings"]}, doc["findings"]
        if expected == "forward-dropped":
            f = next(f for f in doc["findings"] if f["id"] == expected)
            assert f["evidence"]["chain"] == "DOCKER-USER"
    finally:
        in_ns(host, *fix_it)


def test_rtnetlink_route_lookup_answers_as_ip_route_get_does(healed):
    """netdoctor asks the kernel's FIB on a netlink socket; `ip route get` is the reference,
    healthy and broken (forwarding off, no route, unknown device, IPv6 unreachable)."""
    from netdoctor.diagnose.host import gather, netns
    from netdoctor.diagnose.host import rtnetlink

    host, test = netns.named("ndlab-host"), netns.named("ndlab-test")
    questions = [(test, ("203.0.113.80", None, None)), (test, ("172.29.0.3", None, None)),
                 (host, ("203.0.113.80", "172.29.0.2", "ndbr0")),
                 (host, ("203.0.113.80", "172.29.0.2", "no-such-dev")),
                 (test, ("2001:db8::1", None, None))]

    def both():
        return [(netns.call_in(ns, rtnetlink.route_get, *q),
                 netns.call_in(ns, gather._ip_route_get_here, *q)) for ns, q in questions]

    for ours, reference in both():
        assert ours == reference
    assert netdoctor("lab", "break", "ip-forward-off").returncode == 0
    sh("ip", "-n", "ndlab-test", "route", "del", "default")
    for ours, reference in both():
        assert ours == reference


def _pyroute2_nsids_here(paths: list) -> list:
    """The nsid question asked through pyroute2: the reference for netdoctor's own."""
    import os

    from pyroute2 import IPRoute

    out = []
    with IPRoute() as ipr:
        for path in paths:
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                out.append(None)
                continue
            try:
                answer = ipr.get_netnsid(fd=fd)
            finally:
                os.close(fd)
            nsid = answer.get("nsid") if isinstance(answer, dict) else None
            out.append(nsid if nsid is not None and 0 <= nsid < 0xFFFFFFFF else None)
    return out


def test_rtnetlink_nsids_match_pyroute2(lab):
    """The namespace ids netdoctor reads on its own netlink socket are pyroute2's."""
    from netdoctor.diagnose.host import gather, netns

    every = [netns.named(n) for n in ("ndlab-host", "ndlab-test", "ndlab-web", "ndlab-inet")]
    paths = [n.path for n in every] + ["/run/netns/ndt-no-such-namespace"]
    for viewer in every:
        ours = netns.call_in(viewer, gather._nsids_here, paths)
        assert ours == netns.call_in(viewer, _pyroute2_nsids_here, paths)
        assert ours[-1] is None
    host = netns.call_in(every[0], gather._nsids_here, paths)
    assert host[1] is not None and host[2] is not None  # the containers' veths give them ids


def test_dest_by_name_is_resolved_inside_each_container(lab, healed):
    """A rule that drops one web server is found for the name that resolves to it."""
    in_ns("ndlab-host", "iptables", "-I", "FORWARD", "1", "-d", "203.0.113.80", "-j", "DROP")
    rc, doc = netdoctor_json("checks", "test", "--no-dns-probe")
    assert rc == 0, doc["findings"]  # the default destination is not dropped
    rc, doc = netdoctor_json("checks", "test", "--dest", "www.baidu.com", "--no-dns-probe")
    assert rc == 1 and doc["targets"][0]["destination"] == "203.0.113.80"
    assert {f["id"] for f in doc["findings"]} == {"forward-dropped"}, doc["findings"]
    rc, doc = netdoctor_json("checks", "test", "--dest", "nowhere.invalid", "--no-dns-probe")
    assert any("nowhere.invalid did not resolve" in p for p in doc["problems"]), doc


def test_a_tc_hook_on_the_path_is_said_to_be_unseen(lab, healed):
    in_ns("ndlab-host", "tc", "qdisc", "add", "dev", "veth-test", "clsact")
    try:
        rc, doc = netdoctor_json("checks", "test", "--no-dns-probe")
        f = next(f for f in doc["findings"] if f["id"] == "datapath-unseen")
        assert "veth-test" in f["message"] and "clsact" in f["message"], f
        assert f["severity"] == "info" and rc == 0  # a note, not a fault
        assert f["verify"].startswith("ip netns exec ndlab-host tc filter show dev veth-test")
    finally:
        in_ns("ndlab-host", "tc", "qdisc", "del", "dev", "veth-test", "clsact")


def _with_a_terminal_for_stderr(*args):
    """netdoctor with stderr on a pseudo-terminal and stdout on a pipe: (stdout, what the
    terminal got)."""
    import os
    import pty
    import subprocess

    from sandbox import netdoctor_exe

    master, slave = pty.openpty()
    try:
        res = subprocess.run(netdoctor_exe() + list(args), stdout=subprocess.PIPE,
                             stderr=slave, timeout=60)
        os.close(slave)
        seen = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the terminal's other end is closed and drained
                break
            if not chunk:
                break
            seen += chunk
    finally:
        os.close(master)
    return res.stdout.decode(), seen.decode(errors="replace")


def test_checks_shows_progress_on_a_terminal_and_never_in_json(lab):
    out, term = _with_a_terminal_for_stderr("checks", "lab:test", "lab:web")
    assert "reading" in term or "nameservers" in term, term
    assert "\x1b" not in out and "checked" in out  # the report itself stays plain
    out, term = _with_a_terminal_for_stderr("checks", "lab:test", "--format", "json")
    assert term == "" and out.lstrip().startswith("{")
    res = netdoctor("checks", "lab:test")  # stderr a pipe: nothing but the report
    assert res.stderr == ""


def test_a_sysctl_fix_for_an_interface_with_a_dot_runs_as_printed():
    """What fill() prints for a per-interface key (flannel.1, eth0.100) is what the real
    sysctl(8) sets: a sealed namespace with a veth named with a dot, each key written as a
    fix prints it and read back from /proc."""
    from netdoctor.runbooks import fill

    ns = unique("ndt-dot")
    sh("ip", "netns", "add", ns)
    try:
        sh("ip", "-n", ns, "link", "add", "nd.1", "type", "veth", "peer", "name", "nd.2")
        for leaf, value in (("proxy_arp", "1"), ("rp_filter", "2"), ("arp_ignore", "8")):
            command = fill(f"{{in_host}}sysctl -w net.ipv4.conf.{{veth}}.{leaf}={value}",
                           {"in_host": f"ip netns exec {ns} ", "veth": "nd.1"})
            assert sh(*command.split(), check=False).returncode == 0, command
            read = sh("ip", "netns", "exec", ns, "cat", f"/proc/sys/net/ipv4/conf/nd.1/{leaf}")
            assert read.stdout.strip() == value, command
    finally:
        sh("ip", "netns", "del", ns)

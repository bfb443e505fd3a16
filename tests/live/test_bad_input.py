"""The README's table of bad input and hostile hosts, one test per row: each gets a one-line
error (or a one-line warning and a still-correct verdict), its documented exit code, no
traceback, and leaves the host as it was. (Unknown and ambiguous targets, and missing
capabilities, are tested in test_targets, test_path_podman and test_privileges.)"""

import json
import os
import socket
import subprocess
import tempfile
import threading
import time

import pytest

from sandbox import host_state, netdoctor, netdoctor_exe, netdoctor_json, sh

pytestmark = pytest.mark.live

RESOLV = "/etc/netns/ndlab-test/resolv.conf"


def one_line_error(res, code, *words):
    assert res.returncode == code, (res.returncode, res.stderr, res.stdout[-500:])
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("netdoctor: error: "), res.stderr
    assert "Traceback" not in res.stderr
    for w in words:
        assert w in lines[0], lines[0]


@pytest.mark.parametrize("dest, code, words", [
    ("bad host!", 2, ("neither an IP address nor a host name",)),
    ("203.0.113.80:99999", 2, ("port",)),
    ("no-such-name.example", 4, ()),  # NXDOMAIN from the lab's nameserver: its own verdict
])
def test_bad_destinations(lab, dest, code, words):
    res = netdoctor("trace", "test", dest)
    if code == 4 and not words:
        # A name the nameserver does not know is a verdict of its own (dns-no-answer), not an
        # error: the nameserver was reached and said so.
        assert res.returncode == 1 and "Traceback" not in res.stderr
        assert "dns-no-answer" in res.stdout
        return
    one_line_error(res, code, *words)


def test_garbage_resolv_conf(healed):
    with open(RESOLV, "rb") as f:
        saved = f.read()
    try:
        with open(RESOLV, "wb") as f:
            f.write(bytes(range(256)) * 3 + b"\nnameserver\nnameserver 999.1.1.1\nsearch\n")
        one_line_error(netdoctor("trace", "test", "www.baidu.com"), 4, "no usable nameserver",
                       "cannot read")
        rc, doc = netdoctor_json("checks", "test")
        assert rc == 1
        assert [f["id"] for f in doc["findings"]] == ["dns-unreachable"]
        # An address still works: the broken resolv.conf is not needed for it.
        rc, doc = netdoctor_json("trace", "test", "203.0.113.80")
        assert rc == 0 and doc["verdict"]["reachable"]
    finally:
        with open(RESOLV, "wb") as f:
            f.write(saved)


def test_container_exits_during_the_trace(healed):
    """pid:N of a process that ends mid-trace: its namespace is gone, so no verdict."""
    assert netdoctor("lab", "break", "nat-missing").returncode == 0  # a 2 s probe window
    before = host_state()
    for delay in (0.9, 1.5):
        holder = subprocess.Popen(["ip", "netns", "exec", "ndlab-test", "sleep", "30"])
        time.sleep(0.2)
        threading.Timer(delay, holder.kill).start()
        res = netdoctor("trace", f"pid:{holder.pid}", "203.0.113.80", "--timeout", "2")
        holder.wait()
        one_line_error(res, 3, "went away during the trace", "run the trace again")
    assert host_state() == before


def test_interface_disappears_mid_run(healed):
    """The container's veth deleted at points all through a trace: never a traceback and
    never a verdict about the vanished path: a one-line error (8), or, when the link was
    gone before netdoctor looked, a verdict about the path as it then was."""
    before = host_state()
    seen = set()
    for delay in (0.35, 0.6, 0.9, 1.3, 1.7):
        assert netdoctor("lab", "break", "nat-missing").returncode == 0  # a 1.5 s wait
        deleted = []

        def delete():
            sh("ip", "-n", "ndlab-host", "link", "del", "veth-test")
            deleted.append(time.monotonic())

        killer = threading.Timer(delay, delete)
        started = time.monotonic()
        killer.start()
        res = netdoctor("trace", "test", "203.0.113.80", "--timeout", "1.5", "--format", "json")
        ended = time.monotonic()
        killer.join()
        assert "Traceback" not in res.stderr, (delay, res.stderr)
        if res.returncode == 8:
            one_line_error(res, 8, "went away during the trace", "run the trace again")
        else:
            assert res.returncode == 1, (delay, res.returncode, res.stderr)
            v = json.loads(res.stdout)["verdict"]
            if v["cause"] == "nat-missing":
                # the link went after the probe's window had closed (the verdict was being
                # written, or the run had ended): the verdict is about the path it probed
                elapsed = json.loads(res.stdout)["elapsed_ms"] / 1000
                assert deleted and deleted[0] - started > min(elapsed, ended - started) - 0.3, \
                    (delay, deleted, started, elapsed, v)
            else:
                assert v["cause"] in ("container-no-interface", "veth-not-attached"), (delay, v)
        seen.add(res.returncode)
        assert netdoctor("lab", "heal").returncode == 0
    assert 8 in seen
    assert host_state() == before


def test_tracefs_unavailable_gives_a_warning_and_a_verdict(healed):
    """No tracefs mounted and none can be mounted (a read-only /run): the verdict comes from
    the captures and the checks, and a one-line warning says what is missing."""
    assert netdoctor("lab", "break", "ip-forward-off").returncode == 0
    made = not os.path.isdir("/run/netdoctor")
    os.makedirs("/run/netdoctor", exist_ok=True)
    try:
        exe = " ".join(netdoctor_exe())
        res = sh("unshare", "-m", "--propagation", "private", "sh", "-c",
                 "for m in $(awk '$3 == \"tracefs\" {print $2}' /proc/mounts); do umount $m; "
                 "done; mount -t tmpfs -o ro tmpfs /run/netdoctor && "
                 f"exec {exe} trace test 203.0.113.80 --format json", check=False)
    finally:
        if made:
            os.rmdir("/run/netdoctor")
    assert res.returncode == 1, res.stderr
    v = json.loads(res.stdout)["verdict"]
    assert (v["cause"], v["stopped_at"]) == ("ip-forward-disabled", "bridge")
    assert "tracefs" not in v["evidence_used"] and v["kernel_drop_reason"] is None
    assert res.stderr.startswith("netdoctor: warning: kernel drop reasons not read: ")
    assert len(res.stderr.strip().splitlines()) == 1


def _path_without(*names):
    """A PATH holding every program of this machine except the named ones (and their
    variants), as on a host where they are not installed."""
    d = tempfile.mkdtemp(prefix="ndt-path-")
    for folder in ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"):
        if not os.path.isdir(folder):
            continue
        for prog in os.listdir(folder):
            if any(prog == n or prog.startswith(n + "-") for n in names):
                continue
            link = os.path.join(d, prog)
            if not os.path.lexists(link):
                os.symlink(os.path.join(folder, prog), link)
    return d


def test_iptables_and_nft_missing(lab):
    import shutil

    d = _path_without("iptables", "ip6tables", "nft", "iptables-save", "ip6tables-save",
                      "iptables-legacy", "ip6tables-legacy", "iptables-nft", "ip6tables-nft")
    try:
        env = dict(os.environ, PATH=d)
        for args in (("checks", "test"), ("trace", "test", "203.0.113.80")):
            one_line_error(netdoctor(*args, env=env), 6, "neither iptables-save nor nft",
                           "apt install")
    finally:
        shutil.rmtree(d)


def test_docker_socket_missing():
    env = dict(os.environ, DOCKER_HOST="unix:///run/ndt-no-such-docker.sock")
    for args in (("path", "docker:web"), ("trace", "docker:web", "203.0.113.80")):
        one_line_error(netdoctor(*args, env=env), 6, "no socket at /run/ndt-no-such-docker.sock",
                       "DOCKER_HOST")


def test_docker_socket_permission_denied():
    """A socket only its owner may use, and netdoctor run without the capability that lets
    root ignore file modes: the kernel refuses the connection, and netdoctor says so."""
    with tempfile.TemporaryDirectory(prefix="ndt-sock-") as d:
        os.chmod(d, 0o755)
        path = os.path.join(d, "docker.sock")
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(path)
        server.listen(1)
        os.chown(path, 65534, 65534)
        os.chmod(path, 0o600)
        try:
            res = sh("setpriv", "--bounding-set=-dac_override,-dac_read_search",
                     "--inh-caps=-dac_override,-dac_read_search", "env",
                     f"DOCKER_HOST=unix://{path}", *netdoctor_exe(), "path", "docker:web",
                     check=False)
        finally:
            server.close()
    one_line_error(res, 5, "permission denied", path)


def test_thousands_of_links():
    """A host namespace with 3,000 links (1,500 veth pairs) besides the container's veth: path and checks
    still answer, and only about the container's path."""
    from sandbox import unique

    host, ctr = unique("links"), unique("links-c")
    sh("ip", "netns", "add", host)
    sh("ip", "netns", "add", ctr)
    try:
        batch = "".join(f"link add v{i} type veth peer name p{i}\n" for i in range(1500))
        sh("ip", "-n", host, "-batch", "-", input=batch)
        for args in (("link", "add", "br0", "type", "bridge"), ("link", "set", "br0", "up"),
                     ("addr", "add", "172.30.0.1/24", "dev", "br0"),
                     ("link", "add", "vc", "type", "veth", "peer", "name", "eth0", "netns", ctr),
                     ("link", "set", "vc", "master", "br0", "up")):
            sh("ip", "-n", host, *args)
        for args in (("addr", "add", "172.30.0.2/24", "dev", "eth0"),
                     ("link", "set", "eth0", "up"), ("route", "add", "default", "via",
                                                     "172.30.0.1")):
            sh("ip", "-n", ctr, *args)
        exe = netdoctor_exe()
        res = sh("ip", "netns", "exec", host, *exe, "path", f"netns:{ctr}", "--format", "json",
                 check=False)
        assert "Traceback" not in res.stderr
        doc = json.loads(res.stdout)
        assert [h["name"] for h in doc["hops"]][:3] == ["eth0", "vc", "br0"]
        res = sh("ip", "netns", "exec", host, *exe, "checks", f"netns:{ctr}", "--no-dns-probe",
                 "--format", "json", check=False)
        assert res.returncode in (0, 1) and "Traceback" not in res.stderr, res.stderr
        found = {f["id"] for f in json.loads(res.stdout)["findings"]}
        # No uplink in this sealed host: what is reported is about that, not the 3,000 links
        # (and the container's lo, down as `ip netns add` leaves it: a note).
        assert found <= {"host-no-route", "ip-forward-disabled", "nat-missing",
                         "dns-unreachable", "container-loopback-down"}, found
    finally:
        sh("ip", "netns", "del", ctr)
        sh("ip", "netns", "del", host)


def test_a_short_name_through_a_kubernetes_style_search_list(healed):
    # ndots:5 and a search list, as every Kubernetes pod has: "www" is asked as
    # www.ns.svc.cluster.local, ... (refused by the lab's nameserver, which knows none of
    # them), then www.baidu.com, which answers. Asking only the bare name gave a false
    # dns-no-answer.
    with open(RESOLV, "rb") as f:
        saved = f.read()
    try:
        with open(RESOLV, "w") as f:
            f.write("search ns.svc.cluster.local svc.cluster.local baidu.com\n"
                    "nameserver 203.0.113.53\noptions ndots:5\n")
        rc, doc = netdoctor_json("trace", "test", "www")
        assert rc == 0, doc["verdict"]
        assert doc["verdict"]["reachable"] is True
        assert doc["destination"]["address"] == "203.0.113.80"
        assert doc["destination"]["name"] == "www.baidu.com"
    finally:
        with open(RESOLV, "wb") as f:
            f.write(saved)


def test_diagnosing_needs_no_ip_program(lab):
    """Namespaces are read over rtnetlink, in-process: without iproute2's `ip`, path, checks
    and trace give the answers they give with it. (Before, a missing `ip` was exit 6; and
    once trace turned it into a usage error.)"""
    import shutil

    d = _path_without("ip")
    try:
        env = dict(os.environ, PATH=d)
        for args in (("path", "test"), ("checks", "test"), ("trace", "test", "203.0.113.80")):
            res = netdoctor(*args, "--format", "json", env=env)
            assert res.returncode == 0, (args, res.returncode, res.stderr)
            assert "Traceback" not in res.stderr
            with_ip = netdoctor(*args, "--format", "json")
            if args[0] == "path":
                assert json.loads(res.stdout)["hops"] == json.loads(with_ip.stdout)["hops"]
    finally:
        shutil.rmtree(d)

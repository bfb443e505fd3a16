"""Target forms (netns:NAME, bare netns name, pid:N) and peer matching by namespace id."""

import json
import subprocess

import pytest

from sandbox import SealedHost, netdoctor, netdoctor_json, sh, unique

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def handmade():
    """A host with a bridge and one container, plus a decoy pair of namespaces whose veth
    has the same (ifindex, peer ifindex) as the container's real peer. Only the namespace
    id the container's kernel gives its peer tells them apart."""
    made = []
    with SealedHost("host") as sealed:
        try:
            c = unique("c")
            sh("ip", "netns", "add", c)
            made.append(c)
            h = sealed.host
            sh("ip", "-n", h, "link", "add", "br0", "type", "bridge")
            sh("ip", "-n", h, "addr", "add", "172.30.5.1/24", "dev", "br0")
            sh("ip", "-n", c, "link", "add", "eth0", "type", "veth", "peer", "name", "vc", "netns", h)
            sh("ip", "-n", h, "link", "set", "vc", "master", "br0", "up")
            sh("ip", "-n", h, "link", "set", "br0", "up")
            sh("ip", "-n", c, "addr", "add", "172.30.5.2/24", "dev", "eth0")
            sh("ip", "-n", c, "link", "set", "eth0", "up")
            sh("ip", "-n", c, "link", "set", "lo", "up")
            sh("ip", "-n", c, "route", "add", "default", "via", "172.30.5.1")
            peer_index = json.loads(sh("ip", "-n", h, "-j", "link", "show", "vc").stdout)[0]["ifindex"]
            eth0_index = json.loads(sh("ip", "-n", c, "-j", "link", "show", "eth0").stdout)[0]["ifindex"]
            # Decoys sort before the real host, so a search by ifindex alone meets them first.
            x, y = "ndt-aa-decoy-" + c[-6:], "ndt-aa-decoy2-" + c[-6:]
            for ns in (x, y):
                sh("ip", "netns", "add", ns)
                made.append(ns)
            sh("ip", "-n", x, "link", "add", "name", "vx", "index", str(peer_index), "type", "veth",
               "peer", "name", "vy", "netns", y)
            decoy = json.loads(sh("ip", "-n", x, "-j", "-d", "link", "show", "vx").stdout)[0]
            assert decoy["ifindex"] == peer_index and decoy["link_index"] == eth0_index
            sleeper = subprocess.Popen(["ip", "netns", "exec", c, "sleep", "600"])
            try:
                yield {"host": h, "container": c, "pid": sleeper.pid}
            finally:
                sleeper.kill()
                sleeper.wait()
        finally:
            for ns in made:
                sh("ip", "netns", "del", ns, check=False)


def expect_path(report, host):
    assert [h["role"] for h in report["hops"]] == ["container", "host-veth", "bridge", "uplink"]
    assert report["hops"][1]["name"] == "vc" and report["hops"][1]["netns"] == host
    assert report["hops"][2]["name"] == "br0"
    assert report["host_netns"]["name"] == host


def test_netns_target_finds_the_real_peer_not_the_decoy(handmade):
    rc, report = netdoctor_json("path", f"netns:{handmade['container']}")
    assert rc == 0
    expect_path(report, handmade["host"])


def test_bare_netns_name_works(handmade):
    rc, report = netdoctor_json("path", handmade["container"], "203.0.113.80")
    assert rc == 0
    expect_path(report, handmade["host"])
    assert report["target"]["kind"] == "netns"


def test_pid_target(handmade):
    # `ip netns exec` forks; the sleep is its child (or the same process after exec).
    rc, report = netdoctor_json("path", f"pid:{handmade['pid']}")
    assert rc == 0, report
    expect_path(report, handmade["host"])


def test_running_inside_the_host_namespace(handmade):
    exe = sh("sh", "-c", "command -v netdoctor").stdout.strip()
    res = sh("ip", "netns", "exec", handmade["host"], exe, "path", f"netns:{handmade['container']}",
             check=False)
    assert res.returncode == 0, res.stderr
    assert " vc " in res.stdout and "br0" in res.stdout


@pytest.mark.parametrize("target, code, words", [
    ("pid:999999999", 3, "no process"),
    ("pid:abc", 2, "process id"),
    ("netns:ndt-no-such-ns", 3, "ip netns list"),
    ("netns:", 2, "nothing after"),
    ("no-such-container-anywhere", 3, "no container"),
])
def test_bad_targets_get_one_line_errors(target, code, words):
    res = netdoctor("path", target)
    assert res.returncode == code, res.stderr
    assert words in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr

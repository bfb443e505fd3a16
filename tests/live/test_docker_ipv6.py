"""IPv6 on a real Docker engine: an IPv6-enabled user network (unique-local prefix, Docker's
own ip6tables NAT66), traced to the sealed internet's 2001:db8:80::80; its faults named; a
container on an IPv4-only network, where Docker switches IPv6 off inside it, told so."""

import json
import time

import pytest

from sandbox import netdoctor_json, sh

pytestmark = [pytest.mark.live]
WEB6 = "2001:db8:80::80"
SUBNET6 = "fd00:77::/64"


@pytest.fixture(scope="module")
def docker6(docker_engine):
    d = docker_engine
    host, inet = d.sealed.host, d.sealed.inet
    sh("ip", "-n", inet, "addr", "add", "2001:db8:1::1/64", "dev", "wan0", "nodad")
    sh("ip", "-n", inet, "addr", "add", f"{WEB6}/128", "dev", "lo")
    sh("ip", "-n", host, "addr", "add", "2001:db8:1::2/64", "dev", "eth0", "nodad")
    sh("ip", "-n", host, "-6", "route", "add", "default", "via", "2001:db8:1::1")
    d.docker("network", "create", "--ipv6", "--subnet", SUBNET6, "--subnet", "172.31.19.0/24",
             "ndt6")
    d.run("v6c", "--network", "ndt6")
    d.run("v4only")  # the default bridge: no IPv6, and Docker sets disable_ipv6 inside
    _wait_for_dad(host)
    yield d
    d.docker("rm", "-f", "v6c", "v4only", check=False)
    d.docker("network", "rm", "ndt6", check=False)
    sh("ip", "-n", host, "-6", "route", "del", "default", check=False)
    sh("ip", "-n", host, "addr", "del", "2001:db8:1::2/64", "dev", "eth0", check=False)
    for addr in ("2001:db8:1::1/64", f"{WEB6}/128"):
        sh("ip", "-n", inet, "addr", "del", addr, "dev", "wan0" if "/64" in addr else "lo",
           check=False)


def _wait_for_dad(ns, limit=5.0):
    """Until the host's new IPv6 addresses (the bridge's gateway) finish duplicate address
    detection: before that the kernel does not answer for them."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if "inet6" not in sh("ip", "-n", ns, "-6", "addr", "show", "tentative").stdout:
            return
        time.sleep(0.1)


def _docker_nat66(host) -> str:
    """Docker's MASQUERADE rule for the IPv6 network, as ip6tables-save prints it."""
    out = sh("ip", "netns", "exec", host, "ip6tables-save", "-t", "nat").stdout
    return next(l for l in out.splitlines()
                if "MASQUERADE" in l and SUBNET6.split("/")[0] in l)


def test_healthy_dual_stack_docker_network(docker6):
    rc, doc = netdoctor_json("trace", "docker:v6c", WEB6, env=docker6.env)
    assert rc == 0 and doc["verdict"]["reachable"], doc["verdict"]
    up = next(h for h in doc["hops"] if h["role"] == "uplink")
    assert up["addresses_seen"]["request"] == f"2001:db8:1::2 -> {WEB6}", up  # NAT66
    assert doc["hops"][0]["addresses_seen"]["request"].startswith("fd00:77::")


def test_docker_nat66_removed(docker6):
    host = docker6.sealed.host
    rule = _docker_nat66(host)
    sh("ip", "netns", "exec", host, "ip6tables", "-t", "nat",
       *rule.replace("-A ", "-D ", 1).split())
    try:
        rc, doc = netdoctor_json("trace", "docker:v6c", WEB6, env=docker6.env)
        v = doc["verdict"]
        assert rc == 1 and v["cause"] == "nat-missing" and v["stopped_at"] == "uplink", v
    finally:
        sh("ip", "netns", "exec", host, "ip6tables", "-t", "nat", *rule.split())


def test_docker_ipv6_forwarding_off(docker6):
    host = docker6.sealed.host
    sh("ip", "netns", "exec", host, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=0")
    try:
        rc, doc = netdoctor_json("trace", "docker:v6c", WEB6, env=docker6.env)
        v = doc["verdict"]
        assert rc == 1 and v["cause"] == "ip-forward-disabled" and v["stopped_at"] == "bridge", v
    finally:
        sh("ip", "netns", "exec", host, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")


def test_a_container_on_an_ipv4_only_docker_network(docker6):
    """Docker switches IPv6 off in containers of networks without it: that is the answer."""
    pid = docker6.docker("inspect", "-f", "{{.State.Pid}}", "v4only").stdout.strip()
    off = sh("nsenter", "-t", pid, "-n", "sysctl", "-n", "net.ipv6.conf.all.disable_ipv6",
             check=False).stdout.strip()
    rc, doc = netdoctor_json("trace", "docker:v4only", WEB6, env=docker6.env)
    v = doc["verdict"]
    want = "container-ipv6-disabled" if off == "1" else "container-no-address"
    assert rc == 1 and v["cause"] == want and v["stopped_at"] is None, (off, v)
    f = next(f for f in doc["findings"] if f["id"] == want)
    assert f["fix"] or f["verify"], json.dumps(f)

"""A host whose firewall is ufw (Ubuntu's), with a container runtime that writes no FORWARD
rules of its own (podman with CNI, LXD, k3s): ufw's default 'deny routed' drops what the
containers send out. The fix was an iptables rule in FORWARD: it works until the next boot,
and it is not where an Ubuntu administrator keeps rules. ufw's own route rule is."""

import shutil

import pytest

from sandbox import UfwIn, netdoctor_json, sh

pytestmark = pytest.mark.live

LAB_FORWARD = ("ip", "netns", "exec", "ndlab-host", "iptables", "-D", "FORWARD", "-j",
               "NDLAB-FORWARD")


@pytest.fixture
def ufw_host(lab, healed):
    if shutil.which("ufw") is None:
        pytest.skip("not installed here: ufw (CI installs it)")
    with UfwIn("ndlab-host") as ufw:
        sh(*LAB_FORWARD)  # (the lab's own runtime rules, as Docker's, would let them out)
        yield ufw


def test_ufw_denying_routed_traffic_is_fixed_with_a_ufw_rule(ufw_host):
    rc, doc = netdoctor_json("trace", "test", "203.0.113.80:80")
    v = doc["verdict"]
    assert rc == 1 and v["cause"] == "forward-dropped", v
    f = next(f for f in doc["findings"] if f["id"] == "forward-dropped")
    assert f["fix"] == "ip netns exec ndlab-host ufw route allow in on ndbr0 out on eth0", f
    sh("sh", "-c", f["fix"])
    rc, doc = netdoctor_json("trace", "test", "203.0.113.80:80")
    assert rc == 0 and doc["verdict"]["reachable"], doc["verdict"]
    assert "ndbr0" in ufw_host.ufw("status").stdout  # kept where ufw keeps its rules


def test_podmans_dns_behind_ufw_is_let_in_with_a_ufw_rule(podman_engine):
    """podman's containers on a network of its own ask aardvark-dns, which listens on the
    bridge's address: on the host itself, behind ufw's 'deny incoming'. The name does not
    resolve, and the query's path names the host's INPUT; the fix is ufw's own rule for the
    bridge's DNS port, after which the query reaches aardvark-dns (which answers
    netdoctor's own question; the names it forwards are then the host's DNS's business)."""
    if shutil.which("ufw") is None:
        pytest.skip("not installed here: ufw (CI installs it)")
    env = podman_engine.env
    podman_engine.podman("network", "create", "--subnet", "10.89.42.0/24", "ufwnet")
    try:
        podman_engine.run("pufw", "--network", "ufwnet")
        with UfwIn(podman_engine.sealed.host):
            rc, doc = netdoctor_json("trace", "podman:pufw", "www.baidu.com", env=env)
            v = doc["verdict"]
            assert rc == 1 and v["cause"] == "dns-unreachable", v
            assert v["mechanism"] == "host-input-dropped", v
            f = next(f for f in doc["findings"] if f["id"] == "host-input-dropped")
            assert " ufw allow in on " in f["fix"] and \
                f["fix"].endswith(" to any port 53 proto udp"), f
            sh("sh", "-c", f["fix"])
            rc, doc = netdoctor_json("trace", "podman:pufw", "www.baidu.com", env=env)
            v = doc["verdict"]
            assert v["mechanism"] != "host-input-dropped", v
            assert v["reachable"] or "answered netdoctor's own query" in v["explanation"], v
    finally:
        podman_engine.podman("rm", "-f", "-t", "0", "pufw", check=False)
        podman_engine.podman("network", "rm", "-f", "ufwnet", check=False)

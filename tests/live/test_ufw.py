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

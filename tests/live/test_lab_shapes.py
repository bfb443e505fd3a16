"""`netdoctor lab up --shape routed|macvlan`: the other shapes the lab builds, each healthy and
with the faults that belong to it, diagnosed by path, checks and trace."""

import os

import pytest

from sandbox import netdoctor, netdoctor_json, sh

pytestmark = [pytest.mark.live]


def _shaped_lab(shape):
    from netdoctor.diagnose.lab import layout

    if os.geteuid() != 0:
        pytest.skip("needs root")
    if any(os.path.exists(f"/run/netns/{ns}") for ns in layout.all_namespaces()):
        pytest.skip("a netdoctor lab is already up on this machine; the tests leave it alone")
    res = netdoctor("lab", "up", "--shape", shape)
    assert res.returncode == 0, res.stderr
    try:
        yield shape
    finally:
        assert netdoctor("lab", "down").returncode == 0


@pytest.fixture(scope="module", params=["routed", "macvlan"])
def shaped(request):
    yield from _shaped_lab(request.param)


@pytest.fixture
def healed_shape(shaped):
    yield shaped
    assert netdoctor("lab", "heal").returncode == 0


def test_each_shape_is_healthy_from_path_to_trace(shaped):
    rc, path = netdoctor_json("path", "lab:test", "www.baidu.com")
    assert rc == 0 and path["mode"] == shaped, path
    expected = {"routed": ["container", "host-veth", "uplink"],
                "macvlan": ["container", "uplink"]}[shaped]
    assert [h["role"] for h in path["hops"]] == expected
    rc, checks = netdoctor_json("checks", "lab:test", "lab:web")
    assert rc == 0 and checks["findings"] == [], checks["findings"]
    rc, trace = netdoctor_json("trace", "lab:test", "www.baidu.com")
    assert rc == 0 and trace["verdict"]["reachable"], trace["verdict"]
    status = netdoctor_json("lab", "status")[1]
    assert status["shape"] == shaped


CASES = {
    "routed": [("route-missing", "container-route-missing"),
               ("proxy-arp-off", "proxy-arp-off"),
               # the kernel answers ARP by proxy only where it forwards: nothing leaves
               ("ip-forward-off", "ip-forward-disabled"),
               ("forward-drop", "forward-dropped"),
               ("nat-missing", "nat-missing"),
               ("veth-down", "veth-down")],
    "macvlan": [("no-default-route", "container-no-default-route")],
}


def test_the_faults_of_each_shape(healed_shape):
    for fault, cause in CASES[healed_shape]:
        res = netdoctor("lab", "break", fault)
        assert res.returncode == 0, res.stderr
        rc, trace = netdoctor_json("trace", "lab:test", "203.0.113.80")
        assert rc == 1 and trace["verdict"]["cause"] == cause, (fault, trace["verdict"])
        assert netdoctor("lab", "heal").returncode == 0


# Two faults on one shape: the verdict names the one met first, the other stays a finding.
DOUBLE = {
    "routed": [(("proxy-arp-off", "forward-drop"), "proxy-arp-off", "forward-dropped"),
               # The request leaves untranslated and nothing comes back: the missing route
               # back to the container is met only by replies, after NAT is mended.
               (("route-missing", "nat-missing"), "nat-missing", "container-route-missing"),
               (("forward-drop", "nat-missing"), "forward-dropped", "nat-missing")],
    "macvlan": [(("no-default-route", "macvlan-private"), "container-no-default-route",
                 None)],
}


def test_double_faults_of_each_shape(healed_shape):
    for faults, cause, other in DOUBLE[healed_shape]:
        for fault in faults:
            res = netdoctor("lab", "break", fault)
            assert res.returncode == 0, res.stderr
        rc, trace = netdoctor_json("trace", "lab:test", "203.0.113.80")
        found = {f["id"] for f in trace["findings"]}
        assert rc == 1 and trace["verdict"]["cause"] == cause, (faults, trace["verdict"])
        assert other is None or other in found, (faults, found)
        assert netdoctor("lab", "heal").returncode == 0


def test_a_routed_containers_route_into_another_veth(healed_shape):
    """The host's /32 for the container leads into another container's veth: the fix puts
    it back on the container's own, and no finding offers to delete the only route there
    is (which would leave the container with none)."""
    if healed_shape != "routed":
        pytest.skip("routed only")
    sh("ip", "-n", "ndlab-host", "route", "replace", "172.29.0.2", "dev", "veth-web",
       "scope", "link")
    rc, trace = netdoctor_json("trace", "lab:test", "203.0.113.80")
    assert rc == 1 and trace["verdict"]["cause"] == "container-route-missing", trace["verdict"]
    assert not any("route del" in f["fix"] for f in trace["findings"]), trace["findings"]
    f = next(f for f in trace["findings"] if f["id"] == "container-route-missing")
    sh("sh", "-c", f["fix"])
    rc, trace = netdoctor_json("trace", "lab:test", "203.0.113.80")
    assert rc == 0 and trace["verdict"]["reachable"], (f["fix"], trace["verdict"])


def test_a_macvlan_childs_parent_down(healed_shape):
    """The host's uplink, the macvlan child's parent, is set down: the child has no
    carrier and nothing leaves the container. The verdict was unknown; it names the
    parent, and bringing it up, as printed, heals."""
    if healed_shape != "macvlan":
        pytest.skip("macvlan only")
    try:
        sh("ip", "-n", "ndlab-host", "link", "set", "eth0", "down")
        rc, trace = netdoctor_json("trace", "lab:test", "203.0.113.80")
        assert rc == 1 and trace["verdict"]["cause"] == "uplink-down", trace["verdict"]
        f = next(f for f in trace["findings"] if f["id"] == "uplink-down")
        assert "macvlan" in f["message"], f["message"]
        sh("sh", "-c", f["fix"])
        for _ in range(20):  # (the child's carrier comes back a moment after its parent's)
            rc, trace = netdoctor_json("trace", "lab:test", "203.0.113.80")
            if rc == 0:
                break
        assert rc == 0 and trace["verdict"]["reachable"], (f["fix"], trace["verdict"])
    finally:
        sh("ip", "-n", "ndlab-host", "link", "set", "eth0", "up")


def test_a_bridge_fault_is_refused_on_another_shape(shaped):
    res = netdoctor("lab", "break", "bridge-down")
    assert res.returncode == 2 and "needs a lab of shape bridge" in res.stderr, res.stderr
    assert res.stderr.count("\n") == 1


def test_a_macvlan_child_cannot_reach_its_own_host(shaped):
    if shaped != "macvlan":
        pytest.skip("macvlan only")
    rc, trace = netdoctor_json("trace", "lab:test", "198.51.100.2")
    assert rc == 1 and trace["verdict"]["cause"] == "macvlan-host-isolation", trace["verdict"]
    # The shim the fix makes needs no address of its own (the fix had a blank for one): run
    # as printed, it heals.
    f = next(f for f in trace["findings"] if f["id"] == "macvlan-host-isolation")
    try:
        sh("sh", "-c", f["fix"])
        rc, trace = netdoctor_json("trace", "lab:test", "198.51.100.2")
        assert rc == 0 and trace["verdict"]["reachable"], (f["fix"], trace["verdict"])
    finally:
        sh("ip", "-n", "ndlab-host", "link", "del", "macvlan-shim", check=False)


def test_macvlan_siblings_in_private_mode(healed_shape):
    """Two children of one parent reach each other in bridge mode; switched to private, the
    parent drops what passes between them, their ARP first: the mode is the cause."""
    if healed_shape != "macvlan":
        pytest.skip("macvlan only")
    rc, trace = netdoctor_json("trace", "lab:test", "lab:web")
    assert rc == 0 and trace["verdict"]["reachable"], trace["verdict"]
    assert netdoctor("lab", "break", "macvlan-private").returncode == 0
    rc, trace = netdoctor_json("trace", "lab:test", "lab:web")
    assert rc == 1 and trace["verdict"]["cause"] == "macvlan-mode-isolation", trace["verdict"]
    f = next(f for f in trace["findings"] if f["id"] == "macvlan-mode-isolation")
    assert f["fix"].endswith("ip link set eth0 type macvlan mode bridge"), f["fix"]


def test_a_routed_host_without_a_route_does_not_answer_for_the_gateway(healed_shape):
    """With routed veths the host answers ARP for 169.254.1.1 by proxy only when it has a
    route toward it: with the host's default route gone nothing leaves the container, and
    the cause is the host's missing route, not the unanswered ARP (whose fix deleted a
    neighbour entry)."""
    if healed_shape != "routed":
        pytest.skip("routed only")
    sh("ip", "-n", "ndlab-host", "route", "del", "default")
    try:
        rc, trace = netdoctor_json("trace", "lab:test", "203.0.113.80")
        assert rc == 1 and trace["verdict"]["cause"] == "host-no-route", trace["verdict"]
    finally:
        assert netdoctor("lab", "heal").returncode == 0


def test_strict_rp_filter_on_a_routed_veth_without_its_route(healed_shape):
    """The container's /32 is gone and the veth filters strictly: the kernel answers no ARP
    for the gateway (it validates the sender's route back), so nothing leaves. The missing
    route is the cause and its fix, as printed, heals; loosening rp_filter is offered by no
    finding (the replies would still go out of the uplink)."""
    if healed_shape != "routed":
        pytest.skip("routed only")
    key = "net.ipv4.conf.veth-test.rp_filter"
    old = sh("ip", "netns", "exec", "ndlab-host", "sysctl", "-n", key).stdout.strip()
    try:
        assert netdoctor("lab", "break", "route-missing").returncode == 0
        sh("ip", "netns", "exec", "ndlab-host", "sysctl", "-qw", f"{key}=1")
        sh("ip", "-n", "ndlab-test", "neigh", "flush", "dev", "eth0")
        rc, trace = netdoctor_json("trace", "lab:test", "203.0.113.80")
        assert rc == 1 and trace["verdict"]["cause"] == "container-route-missing", \
            trace["verdict"]
        assert trace["verdict"]["stopped_at"] is None, trace["verdict"]
        assert "rp-filter-drop" not in {f["id"] for f in trace["findings"]}
        f = next(f for f in trace["findings"] if f["id"] == "container-route-missing")
        sh("sh", "-c", f["fix"])
        rc, trace = netdoctor_json("trace", "lab:test", "203.0.113.80")
        assert rc == 0 and trace["verdict"]["reachable"], (f["fix"], trace["verdict"])
    finally:
        sh("ip", "netns", "exec", "ndlab-host", "sysctl", "-qw", f"{key}={old}")


def test_a_macvlan_childs_gateway_nobody_holds(healed_shape):
    """A macvlan child's default route points at an address nobody on its segment holds:
    its ARP goes unanswered and nothing leaves it. The verdict named the unanswered ARP and
    no finding fixed it; the trace's evidence (the unanswered question) and the host's own
    router on that segment give the fix, which, run as printed, heals."""
    if healed_shape != "macvlan":
        pytest.skip("macvlan only")
    sh("ip", "-n", "ndlab-test", "route", "replace", "default", "via", "198.51.100.99")
    try:
        rc, trace = netdoctor_json("trace", "lab:test", "203.0.113.80")
        v = trace["verdict"]
        assert rc == 1 and v["cause"] == "container-wrong-gateway", v
        f = next(f for f in trace["findings"] if f["id"] == v["cause"])
        assert "198.51.100.1" in f["fix"] and "198.51.100.99" in f["message"], f
        sh("sh", "-c", f["fix"])
        rc, trace = netdoctor_json("trace", "lab:test", "203.0.113.80")
        assert rc == 0 and trace["verdict"]["reachable"], (f["fix"], trace["verdict"])
    finally:
        sh("ip", "-n", "ndlab-test", "route", "replace", "default", "via", "198.51.100.1")

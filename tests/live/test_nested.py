"""A container host that is itself a container: a kind or k3d node, Docker in Docker, a node
namespace on a bridge of the machine's own container network. The pod's requests leave the
node by its eth0, a veth to a port of the outer host's bridge; whatever drops them there is
on this machine. The verdict said the loss was beyond the host, out of netdoctor's sight; it
now follows the path into the outer host and names the cause there, with a fix that heals."""

import pytest

from sandbox import netdoctor_json, sh, unique

pytestmark = pytest.mark.live

NODE_ADDRESS = "172.29.0.5"


@pytest.fixture
def nested(lab):
    """On the lab's ndbr0: a node namespace (172.29.0.5, its own bridge cbr0 10.244.0.1/24,
    forwarding on, MASQUERADE for its pods), and a pod behind cbr0 (10.244.0.2)."""
    node, pod = unique("node"), unique("pod")
    port = "vn" + node[-6:]
    for ns in (node, pod):
        sh("ip", "netns", "add", ns)
    try:
        for ns, cmds in (
                ("ndlab-host", [f"link add {port} type veth peer name eth0 netns {node}",
                                f"link set {port} master ndbr0", f"link set {port} up"]),
                (node, [f"addr add {NODE_ADDRESS}/24 dev eth0", "link set eth0 up",
                        "link set lo up", "route add default via 172.29.0.1",
                        "link add cbr0 type bridge", "addr add 10.244.0.1/24 dev cbr0",
                        "link set cbr0 up", f"link add vp0 type veth peer name eth0 netns {pod}",
                        "link set vp0 master cbr0", "link set vp0 up"]),
                (pod, ["addr add 10.244.0.2/24 dev eth0", "link set eth0 up", "link set lo up",
                       "route add default via 10.244.0.1"])):
            sh("ip", "-n", ns, "-batch", "-", input="\n".join(cmds) + "\n")
        sh("ip", "netns", "exec", node, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        sh("ip", "netns", "exec", node, "iptables", "-t", "nat", "-A", "POSTROUTING", "-s",
           "10.244.0.0/24", "!", "-o", "cbr0", "-j", "MASQUERADE")
        # (a node made again with the same address: the host's entry for the last one's
        # MAC would be a duplicate address until the new node talks)
        sh("ip", "-n", "ndlab-host", "neigh", "del", NODE_ADDRESS, "dev", "ndbr0", check=False)
        yield node, pod, port
    finally:
        for ns in (pod, node):  # (the node's eth0 takes its peer on ndbr0 with it)
            sh("ip", "netns", "del", ns, check=False)


def _trace(pod):
    rc, doc = netdoctor_json("trace", f"netns:{pod}", "203.0.113.80")
    return rc, doc, doc["verdict"]


def test_a_healthy_pod_in_a_node_is_reachable_without_following_it_out(nested):
    _, pod, _ = nested
    rc, doc, v = _trace(pod)
    assert rc == 0 and v["reachable"], v
    assert doc["findings"] == [] and "outward" not in doc["evidence"]


HOST = ("ip", "netns", "exec", "ndlab-host")
MASQ = ("POSTROUTING", "-s", "172.29.0.0/24", "!", "-o", "ndbr0", "-j", "MASQUERADE")
# The outer host's faults: (how to break it, how to undo it, cause, where it stopped there)
OUTER_FAULTS = {
    "its FORWARD drops the node": (
        [HOST + ("iptables", "-I", "FORWARD", "-s", NODE_ADDRESS, "-j", "DROP")],
        HOST + ("iptables", "-D", "FORWARD", "-s", NODE_ADDRESS, "-j", "DROP"),
        "forward-dropped", "outer-bridge"),
    "its NAT is gone": (
        [HOST + ("iptables", "-t", "nat", "-D") + MASQ],
        HOST + ("sh", "-c", "iptables -t nat -C " + " ".join(MASQ).replace("!", "'!'")
                + " 2>/dev/null || iptables -t nat -I " + " ".join(MASQ).replace("!", "'!'")),
        "nat-missing", "outer-uplink"),
    "its FORWARD drops the answers to the node": (
        [HOST + ("iptables", "-I", "FORWARD", "-d", NODE_ADDRESS, "-j", "DROP")],
        HOST + ("iptables", "-D", "FORWARD", "-d", NODE_ADDRESS, "-j", "DROP"),
        "forward-dropped", "outer-uplink"),
    "it routes the destination into a blackhole": (
        [HOST + ("ip", "route", "add", "blackhole", "203.0.113.0/24")],
        HOST + ("ip", "route", "del", "blackhole", "203.0.113.0/24"),
        "host-no-route", "outer-bridge"),
}


@pytest.mark.parametrize("fault", sorted(OUTER_FAULTS))
def test_a_fault_of_the_outer_host_is_found_there_and_its_fix_heals(nested, fault):
    _, pod, _ = nested
    steps, undo, cause, stopped = OUTER_FAULTS[fault]
    try:
        for step in steps:
            sh(*step)
        rc, doc, v = _trace(pod)
        assert rc == 1 and v["cause"] == cause and v["stopped_at"] == stopped, v
        assert "netdoctor cannot see" not in v["explanation"], v
        assert "outward" in doc["evidence"]
        f = next(f for f in doc["findings"] if f["id"] == cause)
        assert f["fix"].startswith("ip netns exec ndlab-host "), f
        sh("sh", "-c", f["fix"])
        rc, doc, v = _trace(pod)
        assert rc == 0 and v["reachable"], (f["fix"], v)
    finally:
        sh(*undo, check=False)


def test_the_nodes_own_output_is_not_blamed_for_its_forwarded_pods(nested):
    """The node's own OUTPUT drops what it sends itself, and the outer host drops the node's
    forwarded traffic. Followed out, the node's own probe stops in its OUTPUT, which the
    pod's forwarded requests never meet: that is no verdict about them, and the verdict stays
    the loss beyond the node (as evidence shows), not the node's OUTPUT."""
    node, pod, _ = nested
    own = ("ip", "netns", "exec", node, "iptables", "-I", "OUTPUT", "-p", "icmp", "-j", "DROP")
    drop = HOST + ("iptables", "-I", "FORWARD", "-s", NODE_ADDRESS, "-j", "DROP")
    try:
        sh(*own)
        sh(*drop)
        rc, doc, v = _trace(pod)
        assert rc == 1 and v["cause"] == "upstream-no-reply" and v["stopped_at"] == "uplink", v
        assert "its own probe stopped inside it" in v["explanation"], v
        assert not any(f["id"] == "container-output-dropped" for f in doc["findings"])
    finally:
        sh(*HOST, "iptables", "-D", "FORWARD", "-s", NODE_ADDRESS, "-j", "DROP", check=False)


def test_the_outer_hosts_port_for_the_node_down_is_named_with_its_fix(nested):
    """The node's eth0 has no carrier because its other end, a port of the outer host's
    bridge, is down: uplink-down, verify only, said the cable or peer was down. Followed
    out, the port is named (veth-down) with the command that brings it up, which heals."""
    _, pod, port = nested
    try:
        sh(*HOST, "ip", "link", "set", port, "down")
        rc, doc, v = _trace(pod)
        assert rc == 1 and v["cause"] == "veth-down", v
        f = next(f for f in doc["findings"] if f["id"] == "veth-down")
        assert f["fix"] == f"ip netns exec ndlab-host ip link set {port} up", f
        sh("sh", "-c", f["fix"])
        rc, doc, v = _trace(pod)
        assert rc == 0 and v["reachable"], (f["fix"], v)
    finally:
        sh(*HOST, "ip", "link", "set", port, "up", check=False)


def test_checks_judge_the_outer_host_of_a_nested_pod(nested):
    """`checks` on a pod in a node judged the node as its host and stopped there: with the
    outer host dropping the node's traffic it found nothing. The node is judged too, as a
    container of the outer host, and the outer host's fault is found with its fix."""
    node, pod, _ = nested
    rc, doc = netdoctor_json("checks", f"netns:{pod}", "--no-dns-probe")
    assert rc == 0 and doc["findings"] == [], doc["findings"]
    drop = HOST + ("iptables", "-I", "FORWARD", "-s", NODE_ADDRESS, "-j", "DROP")
    try:
        sh(*drop)
        rc, doc = netdoctor_json("checks", f"netns:{pod}", "--no-dns-probe")
        f = next(f for f in doc["findings"] if f["id"] == "forward-dropped")
        assert rc == 1 and f["subject"] == f"netns:{node}", doc["findings"]
        assert f["fix"].startswith("ip netns exec ndlab-host "), f
    finally:
        sh(*HOST, "iptables", "-D", "FORWARD", "-s", NODE_ADDRESS, "-j", "DROP", check=False)

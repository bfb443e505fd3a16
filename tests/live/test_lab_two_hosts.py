"""`netdoctor lab up --hosts 2`: two sealed hosts wired like flannel (VXLAN, then host-gw),
each with a real sshd. The trace runs on the near host and observes the far one over real
SSH; each overlay fault of the lab is localised to its host and hop."""

import json
import os
import subprocess

import pytest

from sandbox import host_state, netdoctor, netdoctor_exe

pytestmark = [pytest.mark.live]

H0, H1 = "ndlab2-h0", "ndlab2-h1"
POD0, POD1 = "netns:ndlab2-pod0", "10.244.1.2"
SSH_CONFIG = "/run/netdoctor/lab2/ssh_config"


def on_host(*args, host=H0):
    """netdoctor run on a lab host (ssh then leaves over the underlay): (rc, document)."""
    res = subprocess.run(["ip", "netns", "exec", host] + netdoctor_exe() + list(args)
                         + ["--format", "json"], capture_output=True, text=True, timeout=120)
    assert res.stdout.strip(), res.stderr
    return res.returncode, json.loads(res.stdout)


def trace(*more):
    rc, doc = on_host("trace", POD0, POD1, *more)
    return rc, doc, doc["verdict"]


def _lab(network):
    if os.geteuid() != 0:
        pytest.skip("needs root")
    if os.path.exists(f"/run/netns/{H0}"):
        pytest.skip("a two-host lab is already up on this machine; the tests leave it alone")
    before = host_state()
    res = netdoctor("lab", "up", "--hosts", "2", "--network", network)
    assert res.returncode == 0, res.stderr
    try:
        yield network
    finally:
        res = netdoctor("lab", "down")
        assert res.returncode == 0, res.stderr
        assert host_state() == before
        assert not os.path.exists("/run/netdoctor/lab2")
        assert not [l for l in subprocess.run(["pgrep", "-af", "sshd|dockerd|containerd"],
                                              capture_output=True, text=True).stdout.splitlines()
                    if "/run/netdoctor/lab2" in l]


@pytest.fixture(scope="module")
def lab2(request):
    """The two-host lab with the network a test asks for (indirect parametrization), up for
    the tests of that network and removed after them."""
    yield from _lab(request.param)


@pytest.fixture
def vxlan(lab2):
    yield lab2
    assert netdoctor("lab", "heal").returncode == 0


VXLAN = pytest.mark.parametrize("lab2", ["vxlan"], indirect=True)


@VXLAN
def test_healthy_over_real_ssh(vxlan):
    rc, doc, v = trace("--peer", "auto", "--ssh-config", SSH_CONFIG)
    assert rc == 0 and v["reachable"], v
    assert [h["role"] for h in doc["hops"]] == [
        "container", "host-veth", "bridge", "tunnel", "underlay", "far-underlay", "far-tunnel",
        "far-bridge", "far-veth", "destination"]
    assert doc["evidence"]["peer"]["where"].startswith("ssh://192.168.77.2")
    # `path --peer` shows both hosts' hops (the far ones as the far agent finds them).
    rc, doc = on_host("path", POD0, POD1, "--peer", "auto", "--ssh-config", SSH_CONFIG)
    assert rc == 0 and doc["peer"].startswith("ssh://192.168.77.2"), doc
    assert [(h["role"], h["netns"]) for h in doc["far_hops"]] == [
        ("far-underlay", H1), ("far-tunnel", H1), ("far-bridge", H1), ("far-veth", H1),
        ("destination", "ndlab2-pod1")]
    assert any("VXLAN vni 1, UDP port 8472" in n for n in doc["notes"])
    res = subprocess.run(["ip", "netns", "exec", H0] + netdoctor_exe() + [
        "path", POD0, POD1, "--ssh-config", SSH_CONFIG], capture_output=True, text=True)
    assert res.returncode == 2 and "--ssh-config goes with --peer" in res.stderr
    status = json.loads(netdoctor("lab", "status", "--format", "json").stdout)
    assert status["two_hosts"]["up"] and status["two_hosts"]["network"] == "vxlan"
    # Both hosts' checks at once over SSH, with their flannel intent: healthy.
    rc, fleet = on_host("checks", "--on", "192.168.77.1,192.168.77.2", "--ssh-config",
                        SSH_CONFIG, "--no-dns-probe")
    assert rc == 0, fleet


@VXLAN
@pytest.mark.parametrize("fault, host, cause, stopped_at", [
    ("peer-route-missing", 0, "peer-route-missing", "bridge"),
    ("fdb-missing", 0, "vxlan-fdb-missing", None),
    ("neighbour-missing", 0, "vxlan-neighbour-missing", None),
    ("vxlan-down", 0, "vxlan-device-down", None),
])
def test_a_near_host_fault_is_found_there(vxlan, fault, host, cause, stopped_at):
    assert netdoctor("lab", "break", fault, "--host", str(host)).returncode == 0
    rc, doc, v = trace()
    assert rc == 1 and v["cause"] == cause, v
    if stopped_at:
        assert v["stopped_at"] == stopped_at, v
    f = next(f for f in doc["findings"] if f["id"] == cause)
    assert f["severity"] == "error"


@VXLAN
@pytest.mark.parametrize("fault, cause, far_stop, direction", [
    # INPUT drops the overlay's UDP on the far host: lost as it arrives there, and the
    # far host's own checks (read by its agent) name the rule.
    ("vxlan-port-blocked", "vxlan-port-blocked", "far-underlay", "request"),
    # The far host has no route back to this node's pod subnet: the reply dies on its
    # bridge, and the far kernel's drop reason (no route) names the fault.
    ("peer-route-missing", "peer-route-missing", "far-bridge", "reply"),
    # The far host's own entries for this one: the reply cannot be encapsulated there
    # (NO_TX_TARGET), has no neighbour to go to, or the far VXLAN device is down.
    ("fdb-missing", "vxlan-fdb-missing", "far-tunnel", "reply"),
    ("neighbour-missing", "vxlan-neighbour-missing", "far-bridge", "reply"),
    ("vxlan-down", "vxlan-device-down", "far-underlay", "request"),
])
def test_a_far_host_fault_is_found_on_the_peer(vxlan, fault, cause, far_stop, direction):
    """The far host's fault: without --peer the verdict says the far side was not seen
    (never a near-host cause: the same kernel's tracefs sees the far host's namesake
    devices); with it, where on the far host the probe was lost, and why."""
    assert netdoctor("lab", "break", fault, "--host", "1").returncode == 0
    rc, doc, v = trace()
    assert rc == 1 and v["cause"] == "upstream-no-reply" and v["stopped_at"] == "underlay", v
    assert "the far host was not observed" in v["explanation"]
    rc, doc, v = trace("--peer", "auto", "--ssh-config", SSH_CONFIG)
    assert rc == 1 and (v["cause"], v["stopped_at"], v["direction"]) == (
        cause, far_stop, direction), v
    f = next(f for f in doc["findings"] if f["id"] == cause)
    assert "on ssh://192.168.77.2" in f["subject"] and f["side"] == "destination", f
    assert "on the far host" in v["explanation"], v
    assert (f["fix"] or f["verify"]).startswith(f"ssh -F {SSH_CONFIG} 192.168.77.2 "), f


@VXLAN
@pytest.mark.parametrize("inject, undo, cause, far_stop", [
    # The far pod's bridge is down: the far host has no route to the pod (its connected
    # route went with the bridge). The far pod was not found and its checks not run.
    (("ip", "link", "set", "cni0", "down"), ("ip", "link", "set", "cni0", "up"),
     "bridge-down", "far-tunnel"),
    # The far host's FORWARD drops the request on its way from the tunnel to the pod: its
    # checks judged only the pod's own way out (whose fix let the request still drop).
    (("iptables", "-P", "FORWARD", "DROP"), ("iptables", "-P", "FORWARD", "ACCEPT"),
     "forward-dropped", "far-tunnel"),
])
def test_a_far_hosts_fault_on_the_way_in_is_named_and_its_fix_heals(vxlan, inject, undo,
                                                                    cause, far_stop):
    subprocess.run(["ip", "netns", "exec", H1, *inject], check=True)
    try:
        rc, doc, v = trace("--peer", "auto", "--ssh-config", SSH_CONFIG)
        assert rc == 1 and (v["cause"], v["stopped_at"], v["direction"]) == (
            cause, far_stop, "request"), v
        f = next(f for f in doc["findings"] if f["id"] == cause
                 and f["side"] == "destination" and f["fix"])
        subprocess.run(["ip", "netns", "exec", H0, "sh", "-c", f["fix"]], check=True,
                       timeout=60)
        rc, doc, v = trace("--peer", "auto", "--ssh-config", SSH_CONFIG)
        assert rc == 0 and v["reachable"], (f["fix"], v)
    finally:
        subprocess.run(["ip", "netns", "exec", H1, *undo], check=False)


@VXLAN
@pytest.mark.parametrize("host, rule, stopped_at", [
    # the near host's OUTPUT drops what its tunnel sends: seen on the tunnel, not below
    (H0, ("-t", "filter", "OUTPUT", "-p", "udp", "--dport", "8472", "-j", "DROP"), "tunnel"),
    # the far host's raw PREROUTING drops it as it arrives (INPUT alone was walked)
    (H1, ("-t", "raw", "PREROUTING", "-p", "udp", "--dport", "8472", "-j", "DROP"),
     "far-underlay"),
])
def test_the_overlays_port_dropped_on_the_way_out_or_before_routing(vxlan, host, rule,
                                                                   stopped_at):
    subprocess.run(["ip", "netns", "exec", host, "iptables", *rule[:2], "-A", *rule[2:]],
                   check=True)
    try:
        rc, doc, v = trace("--peer", "auto", "--ssh-config", SSH_CONFIG)
        assert rc == 1 and (v["cause"], v["stopped_at"]) == ("vxlan-port-blocked",
                                                             stopped_at), v
        f = next(f for f in doc["findings"] if f["id"] == v["cause"])
        subprocess.run(["ip", "netns", "exec", H0, "sh", "-c", f["fix"]], check=True,
                       timeout=60)
        rc, doc, v = trace("--peer", "auto", "--ssh-config", SSH_CONFIG)
        assert rc == 0 and v["reachable"], (f["fix"], v)
    finally:
        subprocess.run(["ip", "netns", "exec", host, "iptables", *rule[:2], "-D", *rule[2:]],
                       check=False, capture_output=True)


@VXLAN
@pytest.mark.parametrize("fault, missing", [
    ("fdb-missing", "no FDB entry for"),
    ("neighbour-missing", "no usable neighbour entry for 10.244.0.0"),
    # the subnet file (as the far host's flanneld names it) says which route must exist
    ("peer-route-missing", "no route to 10.244.0.0/24 via 10.244.0.0"),
])
def test_every_peer_is_compared_on_every_host(vxlan, fault, missing):
    """`checks --on` both hosts, no container asked about: each host's overlay entries are
    compared peer by peer, and a fault that exists only on the far host is found there."""
    assert netdoctor("lab", "break", fault, "--host", "1").returncode == 0
    rc, fleet = on_host("checks", "--on", "192.168.77.1,192.168.77.2", "--ssh-config",
                        SSH_CONFIG, "--no-dns-probe")
    assert rc == 1, fleet
    found = {h["host"].split("//")[-1]: [f for f in h["report"]["findings"]
                         if f["id"] == "overlay-peer-incomplete"] for h in fleet["hosts"]}
    assert found["192.168.77.1"] == [], found
    f, = found["192.168.77.2"]
    assert missing in f["message"] and f["evidence"]["peer"] == "10.244.0.0", f
    assert f["subject"] == f"host {H1}" and f["verify"]


@pytest.mark.parametrize("lab2", ["bgp"], indirect=True)
def test_bgp_healthy_and_a_route_bird_did_not_write(lab2):
    """Calico without encapsulation: /32 pods behind cali0, the blocks a real BIRD writes.
    The intent is the BIRD configuration the host's bird process names (-c)."""
    status = json.loads(netdoctor("lab", "status", "--format", "json").stdout)
    assert all(h["bird"] for h in status["two_hosts"]["hosts"].values()), status
    rc, doc, v = trace()
    assert rc == 0 and v["reachable"], v
    assert [h["role"] for h in doc["hops"]] == ["container", "host-veth", "uplink"]
    rc, doc = on_host("checks", POD0, "--dest", POD1, "--no-dns-probe")
    assert rc == 0 and doc["findings"] == [], doc["findings"]  # no overlap with its block
    try:
        assert netdoctor("lab", "break", "peer-route-missing", "--host", "0").returncode == 0
        rc, doc, v = trace()
        assert rc == 1 and (v["cause"], v["stopped_at"]) == ("peer-route-missing",
                                                             "host-veth"), v
        f = next(f for f in doc["findings"] if f["id"] == "peer-route-missing")
        assert (f["evidence"]["ip_pool"], f["evidence"]["node_blocks"],
                f["evidence"]["bgp_peers"]) == ("10.244.0.0/16", ["10.244.0.0/26"],
                                                ["192.168.77.2"]), f
        # BIRD's session is up (asked on its control socket): the route was not taken in.
        assert f["evidence"]["bgp_sessions"] == [{"name": "Mesh_192_168_77_2",
                                                  "neighbor": "192.168.77.2",
                                                  "bgp_state": "Established"}], f
        assert "birdcl -s /run/netdoctor/lab2/bird-0.ctl show route for 10.244.1.2 all" in \
            f["verify"]
        # The far host's missing route, found there by its own checks.
        assert netdoctor("lab", "heal").returncode == 0
        assert netdoctor("lab", "break", "peer-route-missing", "--host", "1").returncode == 0
        rc, doc = on_host("checks", "netns:ndlab2-pod1", "--dest", "10.244.0.2",
                          "--no-dns-probe", host=H1)
        assert rc == 1 and "peer-route-missing" in {f["id"] for f in doc["findings"]}
    finally:
        assert netdoctor("lab", "heal").returncode == 0


@pytest.mark.parametrize("lab2", ["host-gw"], indirect=True)
def test_host_gw_healthy_and_a_missing_peer_route(lab2):
    rc, doc, v = trace("--peer", "auto", "--ssh-config", SSH_CONFIG)
    assert rc == 0 and v["reachable"], v
    assert "far-uplink" in [h["role"] for h in doc["hops"]]
    assert netdoctor("lab", "break", "vxlan-down").returncode == 2  # not a host-gw fault
    assert netdoctor("lab", "break", "peer-route-missing").returncode == 0
    try:
        rc, doc, v = trace()
        assert rc == 1 and v["cause"] == "peer-route-missing", v
    finally:
        assert netdoctor("lab", "heal").returncode == 0
    rc, doc, v = trace()
    assert rc == 0 and v["reachable"], v
    # The far host routes the answers to this node's pods via an address nobody holds: the
    # reply waits on the far uplink for an ARP answer (the verdict said unknown).
    route = ("10.244.0.0/24", "dev", "ens4")
    subprocess.run(["ip", "-n", H1, "route", "replace", *route[:1], "via", "192.168.77.99",
                    *route[1:]], check=True)
    try:
        rc, doc, v = trace("--peer", "auto", "--ssh-config", SSH_CONFIG)
        assert rc == 1 and (v["cause"], v["stopped_at"], v["direction"]) == (
            "neighbour-failed", "far-bridge", "reply"), v
        assert "ARP asked for 192.168.77.99" in v["explanation"], v
    finally:
        subprocess.run(["ip", "-n", H1, "route", "replace", *route[:1], "via", "192.168.77.1",
                        *route[1:]], check=False)


@VXLAN
def test_udp_checksum_errors_with_offload_on_are_the_known_trap(vxlan):
    """flannel.1 offloads its checksums (the kernel's default); only once the host counts
    UDP checksum errors is it a finding. One datagram with a wrong checksum from the far
    host makes the counter move (the near NIC's receive offload off, so that the kernel
    verifies it)."""
    def offload_findings():
        rc, doc = on_host("checks", POD0, "--no-dns-probe")
        return [f for f in doc["findings"] if f["id"] == "vxlan-checksum-offload"]

    assert offload_findings() == []
    subprocess.run(["ip", "netns", "exec", H0, "ethtool", "-K", "eth0", "rx", "off"],
                   check=True, capture_output=True)
    try:
        subprocess.run(["ip", "netns", "exec", H1, "python3", "-c",
                        "import socket, struct\n"
                        "s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)\n"
                        "s.sendto(struct.pack('!HHHH', 40000, 9, 12, 0x1234) + b'bad!', "
                        "('192.168.77.1', 0))\n"], check=True)
    finally:
        subprocess.run(["ip", "netns", "exec", H0, "ethtool", "-K", "eth0", "rx", "on"],
                       check=True, capture_output=True)
    found = offload_findings()
    assert len(found) == 1 and found[0]["subject"] == f"host {H0}", found
    assert found[0]["evidence"]["udp_in_csum_errors"] >= 1
    assert found[0]["fix"] == "ethtool -K flannel.1 tx-checksum-ip-generic off"


@pytest.mark.parametrize("lab2", ["bgp"], indirect=True)
def test_bgp_far_host_without_the_route_back(lab2):
    """The far host lost its route to this node's block: its reply takes the far host's
    default route and waits for a gateway that is not the node. The far host's own checks
    (its BIRD intent), read by the agent, name the fault; the reply stopped at the far
    host's routed veth."""
    rc, doc, v = trace("--peer", "auto", "--ssh-config", SSH_CONFIG)
    assert rc == 0 and v["reachable"], v
    assert [h["role"] for h in doc["hops"]] == [
        "container", "host-veth", "uplink", "far-uplink", "far-veth", "destination"]
    assert netdoctor("lab", "break", "peer-route-missing", "--host", "1").returncode == 0
    try:
        rc, doc, v = trace("--peer", "auto", "--ssh-config", SSH_CONFIG)
        assert rc == 1 and (v["cause"], v["stopped_at"], v["direction"]) == (
            "peer-route-missing", "far-veth", "reply"), v
        f = next(f for f in doc["findings"] if f["id"] == "peer-route-missing")
        assert f["side"] == "destination" and "192.168.77.2" in f["subject"], f
        assert f["evidence"]["node_blocks"] == ["10.244.1.0/26"], f
        # Without --peer the far side is unobserved: no cause is invented for it.
        rc, doc, v = trace()
        assert rc == 1 and v["cause"] == "upstream-no-reply", v
    finally:
        assert netdoctor("lab", "heal").returncode == 0


@pytest.mark.parametrize("lab2", ["bgp"], indirect=True)
def test_a_bgp_session_switched_off_on_the_far_host(lab2):
    """The far host's BIRD switches its session off: both hosts lose the other's block.
    The near host's trace names the missing route and, from BIRD's own control socket, the
    session that is not Established and why; the far host's checks give the fix, which,
    run there as printed, brings the routes back."""
    assert netdoctor("lab", "break", "bgp-session-down", "--host", "1").returncode == 0
    try:
        rc, doc, v = trace()
        assert rc == 1 and (v["cause"], v["stopped_at"]) == ("peer-route-missing",
                                                             "host-veth"), v
        f = next(f for f in doc["findings"] if f["id"] == "peer-route-missing")
        assert "Mesh_192_168_77_2 with 192.168.77.2 is Active (bgp-session-down)" in \
            f["message"], f
        near = next(f for f in doc["findings"] if f["id"] == "bgp-session-down")
        assert near["evidence"]["last_error"] == "Received: Administrative shutdown", near
        rc, fleet = on_host("checks", "--on", "192.168.77.1,192.168.77.2", "--ssh-config",
                            SSH_CONFIG, "--no-dns-probe")
        assert rc == 1, fleet
        found = {h["host"].split("//")[-1]: [f for f in h["report"]["findings"]
                                             if f["id"] == "bgp-session-down"]
                 for h in fleet["hosts"]}
        far, = found["192.168.77.2"]
        assert far["evidence"]["bgp_state"] == "Down" and far["subject"] == f"host {H1}"
        assert far["fix"] == "birdcl -s /run/netdoctor/lab2/bird-1.ctl enable Mesh_192_168_77_1"
        res = subprocess.run(["ip", "netns", "exec", H1, "sh", "-c", far["fix"]],
                             capture_output=True, text=True, timeout=30)
        assert res.returncode == 0, res.stderr
        import time

        deadline = time.monotonic() + 20
        while True:
            rc, doc, v = trace()
            if rc == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert rc == 0 and v["reachable"], v
    finally:
        assert netdoctor("lab", "heal").returncode == 0


SWARM_DOCKER = "unix:///run/netdoctor/lab2/docker-{}/docker.sock"


def swarm_trace(*more, host=0):
    """netdoctor trace ndlab2-c0 -> ndlab2-c1 run on a swarm lab host, with its engine."""
    status = json.loads(netdoctor("lab", "status", "--format", "json").stdout)
    far = status["two_hosts"]["hosts"][H1]["container_address"]
    res = subprocess.run(["ip", "netns", "exec", H0, "env",
                          f"DOCKER_HOST={SWARM_DOCKER.format(host)}"] + netdoctor_exe()
                         + ["trace", "ndlab2-c0", far, *more, "--format", "json"],
                         capture_output=True, text=True, timeout=120)
    assert res.stdout.strip(), res.stderr
    doc = json.loads(res.stdout)
    return res.returncode, doc, doc["verdict"]


@pytest.mark.parametrize("lab2", ["swarm"], indirect=True)
def test_a_swarm_overlay_between_two_real_engines(lab2):
    """`lab up --hosts 2 --network swarm`: a real dockerd on each host, one swarm, an
    overlay with a container on each. Traced over real SSH (the far agent asks its own
    engine); faults on either host named where they are, `lab heal` rewires them."""
    peer = ("--peer", "auto", "--ssh-config", SSH_CONFIG)
    rc, doc, v = swarm_trace(*peer)
    assert rc == 0 and v["reachable"], v
    assert [h["role"] for h in doc["hops"]] == [
        "container", "host-veth", "bridge", "tunnel", "underlay", "far-underlay", "far-tunnel",
        "far-bridge", "far-veth", "destination"]
    try:
        # This host has no FDB entry for the far container: the request is dropped in the
        # sandbox (NO_TX_TARGET); the far host is not reached, and says so.
        assert netdoctor("lab", "break", "fdb-missing", "--host", "0").returncode == 0
        rc, doc, v = swarm_trace(*peer)
        assert rc == 1 and (v["cause"], v["stopped_at"]) == ("vxlan-fdb-missing", "tunnel"), v
        assert any("the far host was not asked" in d for d in doc["evidence"]["degraded"])
        f = next(f for f in doc["findings"] if f["id"] == "vxlan-fdb-missing")
        assert f["fix"].endswith("dst 192.168.77.2 self permanent"), f
        assert netdoctor("lab", "heal").returncode == 0
        # The far host drops the overlay's port: named by the far host's own checks.
        assert netdoctor("lab", "break", "vxlan-port-blocked", "--host", "1").returncode == 0
        rc, doc, v = swarm_trace(*peer)
        assert rc == 1 and (v["cause"], v["stopped_at"]) == ("vxlan-port-blocked",
                                                             "far-underlay"), v
        assert netdoctor("lab", "heal").returncode == 0
        rc, doc, v = swarm_trace(*peer)
        assert rc == 0 and v["reachable"], v
    finally:
        assert netdoctor("lab", "heal").returncode == 0

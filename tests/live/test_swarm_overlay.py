"""A Docker Swarm overlay between two real dockerd in two sealed hosts: the path through
Docker's sandbox namespace (its bridge and VXLAN port) to the underlay in the engine's own
namespace, the far host over --peer, and the engine's own view of the network (`network
inspect --verbose`) against the kernel's entries."""

import json
import subprocess

import pytest

from sandbox import SwarmPair, netdoctor_exe, sh

pytestmark = [pytest.mark.live]


@pytest.fixture(scope="module")
def swarm():
    import os
    import shutil

    if os.geteuid() != 0:
        pytest.skip("needs root")
    missing = [p for p in ("dockerd", "docker", "nsenter", "busybox") if not shutil.which(p)]
    if missing:
        pytest.skip(f"not installed here: {', '.join(missing)} (CI installs them)")
    with SwarmPair() as pair:
        yield pair


def on_host(pair, i, *args):
    """netdoctor run in host i's namespace, with its engine's DOCKER_HOST: (rc, document)."""
    res = subprocess.run(["nsenter", f"--net=/run/netns/{pair.hosts[i]}"] + netdoctor_exe()
                         + list(args) + ["--format", "json"], capture_output=True, text=True,
                         env=pair.env(i), timeout=120)
    assert res.stdout.strip(), res.stderr
    return res.returncode, json.loads(res.stdout)


def in_sandbox(pair, i, *argv):
    return sh("nsenter", f"--net={pair.sandbox(i)}", *argv)


def c1_mac(pair):
    ns = json.loads(in_sandbox(pair, 0, "ip", "-j", "neigh", "show", "dev", "vxlan0").stdout)
    return next(n["lladdr"] for n in ns if n["dst"] == pair.ips["c1"])


def test_healthy_through_the_sandbox_and_the_far_host(swarm):
    rc, doc = on_host(swarm, 0, "trace", "c0", swarm.ips["c1"])
    assert rc == 0 and doc["verdict"]["reachable"], doc["verdict"]
    assert [h["role"] for h in doc["hops"]] == ["container", "host-veth", "bridge", "tunnel",
                                                "underlay"]
    under = doc["hops"][-1]
    assert (under["name"], under["netns"]) == ("eth0", swarm.hosts[0])
    assert f"in VXLAN {swarm.underlay_ip(0)} -> {swarm.underlay_ip(1)}" in \
        under["addresses_seen"]["request"]
    rc, doc = on_host(swarm, 0, "trace", "c0", swarm.ips["c1"], "--peer",
                      f"netns:{swarm.hosts[1]}")
    assert rc == 0 and [h["role"] for h in doc["hops"]][5:] == [
        "far-underlay", "far-tunnel", "far-bridge", "far-veth", "destination"], doc["hops"]
    assert all(h["request_seen"] and h["reply_seen"] for h in doc["hops"]
               if h["role"] != "far-bridge" and h["role"] != "bridge"), doc["hops"]
    # No false alarms: the default route by docker_gwbridge is not the overlay's gateway,
    # the underlay's MTU is the engine's, every endpoint is wired as the engine says.
    rc, doc = on_host(swarm, 0, "checks", "c0", "--dest", swarm.ips["c1"], "--no-dns-probe")
    assert not [f for f in doc["findings"] if f["id"] in (
        "container-wrong-gateway", "overlay-mtu", "overlay-endpoint-missing",
        "vxlan-fdb-missing")], doc["findings"]


@pytest.mark.parametrize("stale", [False, True])
def test_the_fdb_entry_for_the_far_container(swarm, stale):
    """Its FDB entry deleted (the kernel drops: NO_TX_TARGET), or sending it to a node it
    is not on: the engine says where it lives, and the printed fix, run as printed, heals."""
    mac = c1_mac(swarm)
    if stale:
        in_sandbox(swarm, 0, "bridge", "fdb", "replace", mac, "dev", "vxlan0", "dst",
                   "192.168.78.9", "self", "permanent")
    else:
        in_sandbox(swarm, 0, "bridge", "fdb", "del", mac, "dev", "vxlan0", "dst",
                   swarm.underlay_ip(1))
    try:
        rc, doc = on_host(swarm, 0, "trace", "c0", swarm.ips["c1"])
        v = doc["verdict"]
        assert rc == 1 and (v["cause"], v["stopped_at"]) == ("vxlan-fdb-missing", "tunnel"), v
        if not stale:
            assert v["kernel_drop_reason"] == "NO_TX_TARGET", v
        f = next(f for f in doc["findings"] if f["id"] == "vxlan-fdb-missing")
        assert f["evidence"]["node"] == swarm.underlay_ip(1), f
        endpoint = next(f for f in doc["findings"] if f["id"] == "overlay-endpoint-missing")
        assert endpoint["evidence"]["endpoint"]["name"] == "c1", endpoint
        assert sh("sh", "-c", f["fix"], check=False).returncode == 0, f["fix"]
        rc, doc = on_host(swarm, 0, "trace", "c0", swarm.ips["c1"])
        assert rc == 0 and doc["verdict"]["reachable"], doc["verdict"]
    finally:
        in_sandbox(swarm, 0, "bridge", "fdb", "replace", mac, "dev", "vxlan0", "dst",
                   swarm.underlay_ip(1), "self", "permanent")


def test_the_far_host_drops_the_overlays_port(swarm):
    """The far host's INPUT drops UDP 4789: unobserved, the far side is where to look;
    observed, the probe is lost on its underlay, with its kernel's reason, and the far
    host's own checks name the rule (in the engine's namespace, not the sandbox's)."""
    rule = ["INPUT", "-p", "udp", "--dport", "4789", "-j", "DROP"]
    sh("ip", "netns", "exec", swarm.hosts[1], "iptables", "-I", *rule)
    try:
        rc, doc = on_host(swarm, 0, "trace", "c0", swarm.ips["c1"])
        v = doc["verdict"]
        assert rc == 1 and (v["cause"], v["stopped_at"]) == ("upstream-no-reply",
                                                             "underlay"), v
        rc, doc = on_host(swarm, 0, "trace", "c0", swarm.ips["c1"], "--peer",
                          f"netns:{swarm.hosts[1]}")
        v = doc["verdict"]
        assert rc == 1 and v["stopped_at"] == "far-underlay", v
        assert v["kernel_drop_reason"] == "NETFILTER_DROP", v
        assert v["cause"] == "vxlan-port-blocked", v
    finally:
        sh("ip", "netns", "exec", swarm.hosts[1], "iptables", "-D", *rule)


def test_this_host_drops_the_overlays_port(swarm):
    """This host's INPUT drops UDP 4789: the far container's answers die on arrival, in the
    engine's namespace (where the VXLAN socket is), not in the sandbox: vxlan-port-blocked
    names the rule there, and its fix runs there."""
    rule = ["INPUT", "-p", "udp", "--dport", "4789", "-j", "DROP"]
    sh("ip", "netns", "exec", swarm.hosts[0], "iptables", "-I", *rule)
    try:
        rc, doc = on_host(swarm, 0, "trace", "c0", swarm.ips["c1"])
        v = doc["verdict"]
        assert rc == 1 and (v["cause"], v["stopped_at"], v["direction"]) == (
            "vxlan-port-blocked", "underlay", "reply"), v
        f = next(f for f in doc["findings"] if f["id"] == "vxlan-port-blocked")
        assert f["message"].startswith(f"{swarm.hosts[0]}'s firewall"), f
        # Printed for where netdoctor ran (the engine's namespace), it removes the rule.
        assert sh("nsenter", f"--net=/run/netns/{swarm.hosts[0]}", "sh", "-c", f["fix"],
                  check=False).returncode == 0, f["fix"]
        rc, doc = on_host(swarm, 0, "trace", "c0", swarm.ips["c1"])
        assert rc == 0 and doc["verdict"]["reachable"], doc["verdict"]
    finally:
        sh("ip", "netns", "exec", swarm.hosts[0], "iptables", "-D", *rule, check=False)

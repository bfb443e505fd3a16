"""Across hosts on a flannel-style VXLAN overlay (two sealed hosts, no SSH peer): the path
goes into flannel.1 and out of the underlay NIC to the remote VTEP, the probe is captured
inside the encapsulation, and the overlay's faults are named, never nat-missing or
ip-conflict."""

import pytest

from sandbox import FlannelPair, netdoctor, netdoctor_json, sh

pytestmark = [pytest.mark.live]


@pytest.fixture(scope="module")
def flannel():
    import os

    if os.geteuid() != 0:
        pytest.skip("needs root")
    with FlannelPair() as pair:
        yield pair


def test_healthy_pod_to_pod_across_hosts(flannel):
    pod = f"netns:{flannel.pods[0]}"
    rc, path = netdoctor_json("path", pod, flannel.pod_ip(1))
    assert rc == 0, path
    assert [h["role"] for h in path["hops"]] == ["container", "host-veth", "bridge", "tunnel",
                                                "underlay"]
    assert path["hops"][3]["name"] == "flannel.1" and path["hops"][4]["name"] == "eth0"
    assert path["hops"][4]["via"] == flannel.underlay_ip(1)
    assert any("vni 1" in n and "8472" in n for n in path["notes"])
    rc, checks = netdoctor_json("checks", pod, "--dest", flannel.pod_ip(1), "--no-dns-probe")
    assert not [f for f in checks["findings"] if f["severity"] == "error"], checks["findings"]
    rc, trace = netdoctor_json("trace", pod, flannel.pod_ip(1))
    assert rc == 0 and trace["verdict"]["reachable"], trace["verdict"]
    under = trace["hops"][-1]
    assert under["request_seen"] >= 1 and "in VXLAN 192.168.77.1 -> 192.168.77.2 vni 1" in \
        under["addresses_seen"]["request"], under


def test_a_deleted_fdb_entry_is_named_from_the_kernels_reason(flannel):
    h0 = flannel.hosts[0]
    mac = flannel.macs[1]
    sh("bridge", "-n", h0, "fdb", "del", mac, "dev", "flannel.1", "dst", flannel.underlay_ip(1))
    try:
        rc, trace = netdoctor_json("trace", f"netns:{flannel.pods[0]}", flannel.pod_ip(1))
        v = trace["verdict"]
        assert rc == 1 and v["cause"] == "vxlan-fdb-missing", v
        assert v["kernel_drop_reason"] == "NO_TX_TARGET"
        assert not [f for f in trace["findings"] if f["id"] in ("nat-missing", "ip-conflict")]
    finally:
        flannel.wire_peer(0)


def test_a_blackhole_route_to_the_remote_vtep_is_named_and_its_fix_heals(flannel):
    """The packets entered flannel.1 and nothing left by the underlay: the kernel said
    IP_OUTNOROUTES, and the verdict said unknown. The route to the far VTEP is named, and
    its deletion, run as printed (in the host), heals."""
    h0, pod, far = flannel.hosts[0], f"netns:{flannel.pods[0]}", flannel.underlay_ip(1)
    sh("ip", "-n", h0, "route", "add", "blackhole", f"{far}/32")
    try:
        rc, trace = netdoctor_json("trace", pod, flannel.pod_ip(1))
        v = trace["verdict"]
        assert rc == 1 and (v["cause"], v["stopped_at"]) == ("vtep-no-route", "tunnel"), v
        f = next(f for f in trace["findings"] if f["id"] == "vtep-no-route")
        assert f["fix"].endswith(f"ip route del blackhole {far}/32"), f
        sh("sh", "-c", f["fix"])
        rc, trace = netdoctor_json("trace", pod, flannel.pod_ip(1))
        assert rc == 0 and trace["verdict"]["reachable"], trace["verdict"]
    finally:
        sh("ip", "-n", h0, "route", "del", "blackhole", f"{far}/32", check=False)


def test_a_missing_neighbour_and_a_down_tunnel(flannel):
    h0, pod = flannel.hosts[0], f"netns:{flannel.pods[0]}"
    sh("ip", "-n", h0, "neigh", "del", "10.244.1.0", "dev", "flannel.1")
    try:
        rc, trace = netdoctor_json("trace", pod, flannel.pod_ip(1))
        assert rc == 1 and trace["verdict"]["cause"] == "vxlan-neighbour-missing", \
            trace["verdict"]
    finally:
        flannel.wire_peer(0)
    sh("ip", "-n", h0, "link", "set", "flannel.1", "down")
    try:
        rc, checks = netdoctor_json("checks", pod, "--dest", flannel.pod_ip(1),
                                    "--no-dns-probe")
        assert "vxlan-device-down" in {f["id"] for f in checks["findings"]}, checks["findings"]
    finally:
        flannel.wire_peer(0)


def test_the_far_side_is_said_to_be_unobserved(flannel):
    """The peer drops what arrives: the probe left encapsulated, nothing came back, and
    without a peer to observe, the verdict says where to look instead of guessing."""
    h1 = flannel.hosts[1]
    sh("ip", "netns", "exec", h1, "iptables", "-I", "INPUT", "-p", "udp", "--dport", "8472",
       "-j", "DROP")
    try:
        rc, trace = netdoctor_json("trace", f"netns:{flannel.pods[0]}", flannel.pod_ip(1))
        v = trace["verdict"]
        assert rc == 1 and v["stopped_at"] == "underlay" and v["cause"] == "upstream-no-reply", v
    finally:
        sh("ip", "netns", "exec", h1, "iptables", "-D", "INPUT", "-p", "udp", "--dport", "8472",
           "-j", "DROP")


FAR_ROLES = ["far-underlay", "far-tunnel", "far-bridge", "far-veth", "destination"]


def test_the_far_host_is_observed_through_its_agent(flannel):
    """--peer netns:HOST (a lab host): the far half of the path, captured by the far host's
    own agent in the same probe window, inside the encapsulation on its underlay."""
    pod = f"netns:{flannel.pods[0]}"
    rc, doc = netdoctor_json("trace", pod, flannel.pod_ip(1), "--peer",
                             f"netns:{flannel.hosts[1]}")
    assert rc == 0 and doc["verdict"]["reachable"], doc["verdict"]
    roles = [h["role"] for h in doc["hops"]]
    assert roles[5:] == FAR_ROLES, roles
    far = {h["role"]: h for h in doc["hops"][5:]}
    assert far["far-underlay"]["name"] == flannel.nic(1)
    assert "in VXLAN 192.168.77.1 -> 192.168.77.2 vni 1" in \
        far["far-underlay"]["addresses_seen"]["request"]
    assert far["destination"]["netns"].startswith(flannel.pods[1])
    assert all(h["request_seen"] >= 1 and h["reply_seen"] >= 1 for h in far.values()), far
    # Another host's clock: no time is given for its hops.
    assert all(h["first_seen_us"] is None for h in far.values())


@pytest.mark.parametrize("table, chain, more, cause", [
    # Rules the far host's own checks judge (FORWARD, and raw PREROUTING before routing):
    # they name it, from the agent.
    ("filter", "FORWARD", [], "forward-dropped"),
    ("raw", "PREROUTING", [], "forward-dropped"),
    # One with a match no check evaluates (-m length): the hop and the far kernel's reason
    # say where to look, and no cause is made up for it.
    ("raw", "PREROUTING", ["-m", "length", "--length", "1:65535"], "lost-on-peer"),
])
def test_a_fault_on_the_far_host_is_localised_there(flannel, table, chain, more, cause):
    """The far host drops the decapsulated probe: last seen on its VXLAN device, the far
    kernel's own drop reason with it."""
    rule = ["-t", table, "-I", chain, "-d", flannel.pod_ip(1), *more, "-j", "DROP"]
    sh("ip", "netns", "exec", flannel.hosts[1], "iptables", *rule)
    check = ["ip", "netns", "exec", flannel.hosts[1], "iptables", "-t", table, "-C", chain,
             "-d", flannel.pod_ip(1), *more, "-j", "DROP"]
    try:
        rc, doc = netdoctor_json("trace", f"netns:{flannel.pods[0]}", flannel.pod_ip(1),
                                 "--peer", f"netns:{flannel.hosts[1]}")
        v = doc["verdict"]
        assert rc == 1 and v["cause"] == cause and v["stopped_at"] == "far-tunnel", v
        assert v["kernel_drop_reason"] == "NETFILTER_DROP" and "far host" in v["explanation"]
        if cause == "forward-dropped":
            f = next(f for f in doc["findings"] if f["id"] == cause)
            assert f["subject"].endswith(f"on netns:{flannel.hosts[1]} ({flannel.hosts[1]})")
            # The far host's fix, pasted here as printed, removes the far host's rule.
            assert sh("sh", "-c", f["fix"], check=False).returncode == 0, f["fix"]
            assert sh(*check, check=False).returncode != 0, f["fix"]
    finally:
        if sh(*check, check=False).returncode == 0:
            sh(*check[:7], "-D", *check[8:])


def test_the_far_host_over_real_ssh(flannel):
    """The agent reached with OpenSSH: sshd in the far host, netdoctor run in the near host's
    namespace (so that ssh goes over the underlay, never the machine's own interface)."""
    from sandbox import Sshd, netdoctor_exe

    import json
    import subprocess

    with Sshd(flannel.hosts[1], flannel.underlay_ip(1)) as sshd:
        for peer in (f"ssh://root@{flannel.underlay_ip(1)}", "auto"):
            res = subprocess.run(["ip", "netns", "exec", flannel.hosts[0]] + netdoctor_exe() + [
                "trace", f"netns:{flannel.pods[0]}", flannel.pod_ip(1), "--peer", peer,
                "--ssh-config", sshd.config, "--format", "json"],
                capture_output=True, text=True, timeout=60)
            assert res.returncode == 0, (res.stderr, res.stdout[:3000])
            doc = json.loads(res.stdout)
            assert [h["role"] for h in doc["hops"]][5:] == FAR_ROLES
            assert doc["evidence"]["peer"]["where"].startswith(
                peer if peer != "auto" else "ssh://192.168.77.2")


def test_a_peer_that_cannot_be_used_is_one_line_and_exit_9(flannel):
    res = netdoctor("trace", f"netns:{flannel.pods[0]}", flannel.pod_ip(1), "--peer",
                    "netns:ndt-no-such-host")
    assert res.returncode == 9 and res.stderr.count("\n") == 1, res
    assert "--peer netns:ndt-no-such-host" in res.stderr


@pytest.fixture(scope="module")
def hostgw():
    import os

    if os.geteuid() != 0:
        pytest.skip("needs root")
    with FlannelPair("hg", backend="host-gw") as pair:
        yield pair


def test_host_gw_routed_pods_and_their_far_host(hostgw):
    """flannel's host-gw backend: no tunnel, each host routes the other's pod network via
    the other's underlay address. Pod addresses cross the underlay untranslated by design:
    no nat-missing, healthy or not; the far host is the next hop, observed with --peer."""
    pod, far = f"netns:{hostgw.pods[0]}", f"netns:{hostgw.hosts[1]}"
    rc, doc = netdoctor_json("trace", pod, hostgw.pod_ip(1), "--peer", far)
    assert rc == 0 and doc["verdict"]["reachable"], doc["verdict"]
    assert [h["role"] for h in doc["hops"]] == ["container", "host-veth", "bridge", "uplink",
                                                "far-uplink", "far-bridge", "far-veth",
                                                "destination"]
    assert not [f for f in doc["findings"] if f["severity"] == "error"], doc["findings"]
    rule = ["FORWARD", "-d", hostgw.pod_ip(1), "-j", "DROP"]
    sh("ip", "netns", "exec", hostgw.hosts[1], "iptables", "-I", *rule)
    try:
        rc, alone = netdoctor_json("trace", pod, hostgw.pod_ip(1))
        rc2, seen = netdoctor_json("trace", pod, hostgw.pod_ip(1), "--peer", far)
    finally:
        sh("ip", "netns", "exec", hostgw.hosts[1], "iptables", "-D", *rule)
    # Unobserved, the far side is where to look (never a NAT to add); observed, the hop.
    assert rc == 1 and alone["verdict"]["cause"] == "upstream-no-reply", alone["verdict"]
    v = seen["verdict"]
    assert rc2 == 1 and v["cause"] == "forward-dropped" and v["stopped_at"] == "far-uplink", v
    assert any(f["id"] == "forward-dropped" and f["side"] == "destination"
               for f in seen["findings"]), seen["findings"]


def test_interrupting_a_two_host_trace_leaves_neither_host_anything(flannel):
    """Ctrl-C while both hosts capture: the near side releases its captures and tracefs
    instance, says bye to the agent (or ends it), and the agent releases its own."""
    import signal
    import subprocess
    import time

    from sandbox import netdoctor_exe, stray_processes, tracefs_instances

    before = tracefs_instances()
    rule = ["FORWARD", "-d", flannel.pod_ip(1), "-j", "DROP"]
    sh("ip", "netns", "exec", flannel.hosts[1], "iptables", "-I", *rule)
    try:
        for _ in range(3):  # the moment the agent runs: while both sides capture
            proc = subprocess.Popen(netdoctor_exe() + [
                "trace", f"netns:{flannel.pods[0]}", flannel.pod_ip(1), "--timeout", "8",
                "--peer", f"netns:{flannel.hosts[1]}"], stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True)
            deadline = time.monotonic() + 20
            while proc.poll() is None and time.monotonic() < deadline and \
                    not any(" agent" in p for p in stray_processes()):
                time.sleep(0.05)
            if proc.poll() is None:
                break
            proc.communicate()  # it ended before the agent was seen: once more
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        sh("ip", "netns", "exec", flannel.hosts[1], "iptables", "-D", *rule)
    assert proc.returncode == 130, (proc.returncode, err)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (stray_processes() or tracefs_instances() != before):
        time.sleep(0.2)
    assert stray_processes() == [] and tracefs_instances() == before


@pytest.mark.parametrize("side", [0, 1])
def test_a_blocked_vxlan_port_on_either_host(flannel, side):
    """INPUT drops UDP 8472: on the near host the answers die there (vxlan-port-blocked, with
    its rule); on the far host the requests do, seen on its underlay with --peer."""
    rule = ["INPUT", "-p", "udp", "--dport", "8472", "-j", "DROP"]
    sh("ip", "netns", "exec", flannel.hosts[side], "iptables", "-I", *rule)
    try:
        rc, doc = netdoctor_json("trace", f"netns:{flannel.pods[0]}", flannel.pod_ip(1),
                                 "--peer", f"netns:{flannel.hosts[1]}")
    finally:
        sh("ip", "netns", "exec", flannel.hosts[side], "iptables", "-D", *rule)
    v = doc["verdict"]
    if side == 0:
        assert rc == 1 and v["cause"] == "vxlan-port-blocked", v
        assert (v["direction"], v["stopped_at"]) == ("reply", "underlay"), v
        assert "--dport 8472" in (v.get("rule") or next(
            f for f in doc["findings"] if f["id"] == "vxlan-port-blocked")["evidence"]["rule"])
    else:
        # The far host's own checks, read by its agent, name the rule.
        assert rc == 1 and v["cause"] == "vxlan-port-blocked", v
        assert v["stopped_at"] == "far-underlay" and "far host" in v["explanation"], v


def test_fleet_checks_on_several_hosts_over_ssh(flannel):
    """checks --on: every host at once (one over real SSH, one as a lab netns, one that does
    not exist), one merged report; the missing host is a reported problem, not a crash."""
    import json
    import subprocess

    from sandbox import Sshd, netdoctor_exe

    with Sshd(flannel.hosts[1], flannel.underlay_ip(1)) as sshd:
        hosts = f"root@{flannel.underlay_ip(1)},netns:{flannel.hosts[0]},netns:ndt-no-such"
        res = subprocess.run(["ip", "netns", "exec", flannel.hosts[0]] + netdoctor_exe() + [
            "checks", "--on", hosts, "--ssh-config", sshd.config, "--no-dns-probe",
            "--format", "json"], capture_output=True, text=True, timeout=120)
    doc = json.loads(res.stdout)
    assert doc["schema"] == "netdoctor.fleet/1"
    assert [h["ok"] for h in doc["hosts"]] == [True, True, False], doc["hosts"]
    assert all(h["report"]["schema"] == "netdoctor.checks/1" for h in doc["hosts"][:2])
    assert doc["hosts"][0]["host"] == f"ssh://root@{flannel.underlay_ip(1)}"
    assert res.returncode == 1 and "ndt-no-such" in res.stderr
    text = netdoctor("checks", "--on", f"netns:{flannel.hosts[1]}", "--no-dns-probe")
    assert text.stdout.startswith(f"== netns:{flannel.hosts[1]} ==") and \
        "1 of 1 host(s) checked" in text.stdout, text.stdout

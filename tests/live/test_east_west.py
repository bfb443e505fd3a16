"""East-west: a container traced to another container on the same machine, on real Docker
(one user-defined network, and across two networks Docker isolates) and in the lab."""

import pytest

from sandbox import netdoctor_json, sh

pytestmark = [pytest.mark.live]


def roles(doc):
    return [h["role"] for h in doc["hops"]]


@pytest.fixture(scope="module")
def two_networks(docker_engine):
    d = docker_engine
    d.docker("network", "create", "--subnet", "172.31.8.0/24", "ndt-a")
    d.docker("network", "create", "--subnet", "172.31.9.0/24", "ndt-b")
    d.run("ew1", "--network", "ndt-a")
    d.run("ew2", "--network", "ndt-a")
    d.run("ew3", "--network", "ndt-b")
    yield d
    d.docker("rm", "-f", "ew1", "ew2", "ew3", check=False)
    d.docker("network", "rm", "ndt-a", "ndt-b", check=False)


@pytest.mark.docker
def test_same_network_reaches_the_far_container_and_captures_its_side(two_networks):
    rc, doc = netdoctor_json("trace", "ew1", "docker:ew2", env=two_networks.env)
    assert rc == 0 and doc["verdict"]["reachable"] is True, doc["verdict"]
    assert roles(doc) == ["container", "host-veth", "bridge", "bridge-port", "destination"]
    far = doc["hops"][-1]
    assert far["request_seen"] >= 1 and far["reply_seen"] >= 1
    assert far["netns"] != doc["hops"][0]["netns"]
    # The bridge cannot see unicast bridged between two of its ports: it says so.
    assert doc["hops"][2]["observes"] != "all"
    assert doc["destination"]["container"] == "docker:ew2"
    assert doc["destination"]["address"].startswith("172.31.8.")


@pytest.mark.docker
def test_across_networks_docker_isolation_is_named_with_its_rule(two_networks):
    rc, doc = netdoctor_json("trace", "ew1", "docker:ew3", env=two_networks.env)
    assert rc == 1, doc["verdict"]
    v = doc["verdict"]
    assert v["cause"] == "forward-dropped" and v["stopped_at"] == "bridge", v
    assert "DOCKER-ISOLATION" in (v["rule"] or ""), v
    assert roles(doc) == ["container", "host-veth", "bridge", "out-bridge", "bridge-port",
                          "destination"]
    cause = next(f for f in doc["findings"] if f["id"] == "forward-dropped")
    assert "network isolation" in cause["message"]
    # The network to share is ew3's, by the id its bridge is named after: runnable as is.
    b = two_networks.docker("network", "inspect", "-f", "{{.Id}}", "ndt-b").stdout.strip()
    assert cause["fix"] == f"docker network connect {b[:12]} ew1", cause["fix"]
    two_networks.docker("network", "connect", b[:12], "ew1")
    try:
        rc, doc = netdoctor_json("trace", "ew1", "docker:ew3", env=two_networks.env)
        assert rc == 0 and doc["verdict"]["reachable"], doc["verdict"]
    finally:
        two_networks.docker("network", "disconnect", "ndt-b", "ew1")


@pytest.mark.docker
def test_a_container_given_by_its_address_is_named_as_its_engine_names_it(two_networks):
    """Traced to the address another container holds, the far side is that container: its
    findings name docker:ew3, and their fixes are runnable (they said `docker network
    connect bridge net:[4026532457]`)."""
    d = two_networks
    address = d.docker("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}"
                       "{{end}}", "ew3").stdout.strip()
    rc, doc = netdoctor_json("trace", "ew1", address, env=d.env)
    assert rc == 1 and doc["verdict"]["cause"] == "forward-dropped", doc["verdict"]
    assert doc["destination"]["container"] == "docker:ew3", doc["destination"]
    far = [f for f in doc["findings"] if f["side"] == "destination"]
    assert far and all(f["subject"] == "docker:ew3" for f in far), far
    assert not any("net:[" in (f["fix"] or "") for f in doc["findings"]), doc["findings"]


@pytest.mark.docker
def test_a_network_with_icc_off_is_told_as_dockers_own_isolation(two_networks):
    """docker network create -o com.docker.network.bridge.enable_icc=false: Docker drops
    what its bridge forwards back into itself. The finding deleted Docker's rule (which it
    writes again), and a second one blamed br_netfilter (which that rule needs); it is named
    as the network's setting and only shown."""
    d = two_networks
    d.docker("network", "create", "-o", "com.docker.network.bridge.enable_icc=false",
             "--subnet", "172.31.11.0/24", "ndt-icc")
    try:
        d.run("icc1", "--network", "ndt-icc")
        d.run("icc2", "--network", "ndt-icc")
        rc, doc = netdoctor_json("trace", "icc1", "docker:icc2", env=d.env)
        v = doc["verdict"]
        assert rc == 1 and v["cause"] == "forward-dropped", v
        f = next(f for f in doc["findings"] if f["id"] == "forward-dropped")
        assert "inter-container isolation" in f["message"] and not f["fix"], f
        assert f["verify"].startswith("docker network inspect"), f
        assert "bridge-netfilter" not in {f["id"] for f in doc["findings"]}, doc["findings"]
    finally:
        d.docker("rm", "-f", "icc1", "icc2", check=False)
        d.docker("network", "rm", "ndt-icc", check=False)


@pytest.mark.docker
def test_an_internal_network_is_named_and_left_through_the_default_network(two_networks):
    """docker network create --internal: Docker drops what its bridge sends outside the
    subnet. The finding says the network is internal; its fix, run as printed, reaches out."""
    d = two_networks
    d.docker("network", "create", "--internal", "--subnet", "172.31.10.0/24", "ndt-int")
    d.run("int1", "--network", "ndt-int")
    try:
        rc, doc = netdoctor_json("trace", "int1", "203.0.113.80", env=d.env)
        v = doc["verdict"]
        assert rc == 1 and v["cause"] == "forward-dropped", v
        cause = next(f for f in doc["findings"] if f["id"] == "forward-dropped")
        assert "internal" in cause["message"], cause["message"]
        assert cause["fix"] == "docker network connect bridge int1", cause["fix"]
        # No NAT is the internal network's design, not a second fault to fix.
        assert "nat-missing" not in {f["id"] for f in doc["findings"]}, doc["findings"]
        d.docker(*cause["fix"].split()[1:])
        rc, doc = netdoctor_json("trace", "int1", "203.0.113.80", env=d.env)
        assert rc == 0 and doc["verdict"]["reachable"], doc["verdict"]
    finally:
        d.docker("rm", "-f", "int1", check=False)
        d.docker("network", "rm", "ndt-int", check=False)


@pytest.mark.docker
def test_path_to_a_container_given_by_address(two_networks):
    rc, first = netdoctor_json("path", "ew1", "docker:ew2", env=two_networks.env)
    assert rc == 0
    address = first["destination"]["address"]
    rc, doc = netdoctor_json("path", "ew1", address, env=two_networks.env)
    assert rc == 0 and doc["schema"] == "netdoctor.path/2" and doc["direction"] == "outbound"
    assert roles(doc)[-2:] == ["bridge-port", "destination"]
    assert doc["far_netns"]["inode"] == doc["hops"][-1]["netns_inode"]


def test_lab_far_side_fault_is_the_cause(lab, healed):
    from sandbox import netdoctor

    assert netdoctor("lab", "break", "veth-down", "-c", "web").returncode == 0
    rc, doc = netdoctor_json("trace", "lab:test", "lab:web")
    assert rc == 1
    assert doc["verdict"]["cause"] == "veth-down", doc["verdict"]
    cause = next(f for f in doc["findings"] if f["id"] == "veth-down")
    assert cause["side"] == "destination" and "veth-web" in cause["fix"]


@pytest.mark.parametrize("dest, rule", [
    ("lab:web", ["INPUT", "-s", "172.29.0.2", "-j", "DROP"]),
    ("lab:web:80", ["INPUT", "-p", "tcp", "--dport", "80", "-j", "DROP"]),
    # Drops the request and also the answers to the destination's own pings: the trace's
    # finding is about the request it traced.
    ("lab:web", ["INPUT", "-p", "icmp", "-j", "DROP"]),
    # DEST given as the address a container here holds: its side is judged all the same
    # (was forward-dropped, with no finding).
    ("172.29.0.3", ["INPUT", "-s", "172.29.0.2", "-j", "DROP"]),
])
def test_the_destinations_own_input_rule_is_named(lab, healed, dest, rule):
    """The request reaches the destination container and its own firewall drops it (was
    destination-no-reply, with no rule): the cause is its INPUT rule, from its side."""
    from sandbox import sh

    sh("ip", "netns", "exec", "ndlab-web", "iptables", "-A", *rule)
    try:
        rc, doc = netdoctor_json("trace", "lab:test", dest)
    finally:
        sh("ip", "netns", "exec", "ndlab-web", "iptables", "-F", "INPUT")
    v = doc["verdict"]
    assert rc == 1 and v["cause"] == "container-input-dropped", v
    f = next(f for f in doc["findings"] if f["id"] == "container-input-dropped")
    assert f["side"] == "destination" and "ndlab-web" in f["fix"] and "INPUT" in f["fix"], f
    assert "the request from 172.29.0.2" in f["message"], f["message"]


@pytest.mark.parametrize("side, peer", [("ndlab-test", "172.29.0.3"),
                                        ("ndlab-web", "172.29.0.2")])
def test_an_entry_for_the_other_container_naming_a_wrong_mac(lab, healed, side, peer):
    """A permanent neighbour entry for the other container with a MAC it does not have, on
    either side: the frames are flooded and dropped as not the receiver's (OTHERHOST). The
    verdict said the destination did not answer, or unknown; the entry is named, and its
    deletion, run as printed, heals."""
    sh("ip", "netns", "exec", side, "ip", "neigh", "replace", peer, "lladdr",
       "02:00:00:00:00:77", "nud", "permanent", "dev", "eth0")
    try:
        rc, doc = netdoctor_json("trace", "lab:test", "lab:web")
        v = doc["verdict"]
        assert rc == 1 and v["cause"] == "neighbour-failed", v
        f = next(f for f in doc["findings"] if f["id"] == "neighbour-failed")
        assert side in f["fix"] and peer in f["fix"], f
        sh("sh", "-c", f["fix"])
        rc, doc = netdoctor_json("trace", "lab:test", "lab:web")
        assert rc == 0 and doc["verdict"]["reachable"], doc["verdict"]
    finally:
        sh("ip", "netns", "exec", side, "ip", "neigh", "del", peer, "dev", "eth0", check=False)


def test_lab_healthy_east_west_by_bare_name(lab):
    rc, doc = netdoctor_json("trace", "lab:test", "web")
    assert rc == 0 and doc["verdict"]["reachable"], doc["verdict"]
    assert doc["destination"]["container"] == "lab:web"
    assert doc["hops"][-1]["reply_seen"] >= 1


@pytest.mark.docker
def test_the_map_draws_both_networks_and_docker_isolating_them(two_networks):
    rc, doc = netdoctor_json("map", "ew1", "ew2", "ew3", env=two_networks.env)
    assert rc == 0, doc
    nets = {tuple(sorted(n["containers"])): n for n in doc["networks"]}
    assert set(nets) == {("docker:ew1", "docker:ew2"), ("docker:ew3",)}, nets
    assert all(n["device"].startswith("br-") for n in nets.values())
    # Docker's isolation chains drop new connections between the two networks, both ways:
    # two isolation groups, each rule named.
    assert len(doc["reach"]) == 2 and all(r["verdict"] == "drop" for r in doc["reach"])
    assert all("DOCKER-ISOLATION" in r["rule"] for r in doc["reach"]), doc["reach"]
    assert len(doc["isolation_groups"]) == 2


@pytest.fixture(scope="module")
def podman_networks(podman_engine):
    p = podman_engine
    p.podman("network", "create", "--subnet", "172.31.18.0/24", "ndp-a")
    p.podman("network", "create", "--subnet", "172.31.19.0/24", "ndp-b")
    p.run("pew1", "--network", "ndp-a")
    p.run("pew2", "--network", "ndp-a")
    p.run("pew3", "--network", "ndp-b")
    yield p
    p.podman("rm", "-f", "-t", "0", "pew1", "pew2", "pew3", check=False)
    p.podman("network", "rm", "-f", "ndp-a", "ndp-b", check=False)


@pytest.mark.podman
def test_podman_same_network_reaches_the_far_container(podman_networks):
    rc, doc = netdoctor_json("trace", "pew1", "podman:pew2", env=podman_networks.env)
    assert rc == 0 and doc["verdict"]["reachable"] is True, doc["verdict"]
    assert roles(doc) == ["container", "host-veth", "bridge", "bridge-port", "destination"]
    assert doc["hops"][-1]["request_seen"] >= 1 and doc["hops"][-1]["reply_seen"] >= 1
    assert doc["hops"][2]["observes"] != "all"  # the bridge: bridged unicast passes it by
    assert doc["destination"]["container"] == "podman:pew2"
    assert doc["findings"] == []


@pytest.mark.podman
def test_podman_across_networks_shows_netavarks_masquerade(podman_networks):
    """netavark masquerades whatever leaves a network for another (1.4 isolates nothing
    by default): reachable, the far side sees the other bridge's address."""
    rc, doc = netdoctor_json("trace", "pew1", "podman:pew3", env=podman_networks.env)
    assert rc == 0 and doc["verdict"]["reachable"] is True, doc["verdict"]
    assert roles(doc) == ["container", "host-veth", "bridge", "out-bridge", "bridge-port",
                          "destination"]
    src, dst = doc["hops"][0]["addresses_seen"]["request"].split(" -> ")
    assert src.startswith("172.31.18.") and dst == doc["destination"]["address"]
    assert doc["hops"][-1]["addresses_seen"]["request"] == f"172.31.19.1 -> {dst}"


@pytest.mark.podman
def test_podman_forward_rule_between_networks_is_named(podman_networks):
    host = podman_networks.sealed.host
    rule = ["NETAVARK_FORWARD", "-s", "172.31.18.0/24", "-d", "172.31.19.0/24", "-j", "DROP"]
    sh("ip", "netns", "exec", host, "iptables", "-I", *rule)
    try:
        rc, doc = netdoctor_json("trace", "pew1", "podman:pew3", env=podman_networks.env)
    finally:
        sh("ip", "netns", "exec", host, "iptables", "-D", *rule)
    v = doc["verdict"]
    assert rc == 1 and (v["cause"], v["stopped_at"]) == ("forward-dropped", "bridge"), v
    assert v["rule"] == ("iptables-nft -t filter NETAVARK_FORWARD rule 1: -A NETAVARK_FORWARD "
                         "-s 172.31.18.0/24 -d 172.31.19.0/24 -j DROP"), v
    cause = next(f for f in doc["findings"] if f["id"] == "forward-dropped" and
                 f["side"] != "destination")
    assert cause["fix"] == f"ip netns exec {host} iptables -t filter -D NETAVARK_FORWARD 1"


@pytest.mark.podman
def test_podman_destinations_own_input_rule(podman_networks):
    p = podman_networks
    sandbox = p.podman("inspect", "-f", "{{.NetworkSettings.SandboxKey}}", "pew2").stdout.strip()
    sh("nsenter", f"--net={sandbox}", "iptables", "-A", "INPUT", "-p", "icmp", "-j", "DROP")
    try:
        rc, doc = netdoctor_json("trace", "pew1", "podman:pew2", env=p.env)
    finally:
        sh("nsenter", f"--net={sandbox}", "iptables", "-F", "INPUT")
    v = doc["verdict"]
    assert rc == 1 and (v["cause"], v["stopped_at"]) == ("container-input-dropped",
                                                         "destination"), v
    f = next(f for f in doc["findings"] if f["id"] == "container-input-dropped")
    src = doc["hops"][0]["addresses_seen"]["request"].split(" -> ")[0]
    assert f["side"] == "destination" and f"the request from {src} " in f["message"], f
    assert f["fix"].endswith("iptables -t filter -D INPUT 1"), f["fix"]


@pytest.mark.parametrize("dest", ["lab:web", "172.29.0.3"])
def test_a_destination_that_holds_the_sources_address_is_an_ip_conflict(lab, healed, dest):
    """web also holds 172.29.0.2, test's address: its answers to test stay inside it. That is
    an ip-conflict on the destination's side (was container-no-address, with a fix that
    added an address to lo)."""
    sh("ip", "-n", "ndlab-web", "addr", "add", "172.29.0.2/24", "dev", "eth0")
    try:
        rc, doc = netdoctor_json("trace", "lab:test", dest)
    finally:
        sh("ip", "-n", "ndlab-web", "addr", "del", "172.29.0.2/24", "dev", "eth0", check=False)
    v = doc["verdict"]
    assert rc == 1 and v["cause"] == "ip-conflict", v
    ids = {f["id"] for f in doc["findings"]}
    assert "container-no-address" not in ids, doc["findings"]
    f = next(f for f in doc["findings"] if f["id"] == "ip-conflict")
    assert f["side"] == "destination" and "172.29.0.2" in f["message"], f
    assert " lo" not in (f["fix"] + f["verify"]), f


@pytest.mark.podman
def test_podman_dns_forwarder_whose_upstream_is_silent(podman_networks):
    """A container on a podman network with DNS asks aardvark-dns on the network's gateway,
    which forwards names it does not know to the host's nameservers, from the host's
    namespace. In the sealed host they do not answer: the trace said "the nameserver
    answers, but ... did not answer". It now says the forwarder answers and is silent for
    the name, asks the host's nameservers from the host, and names the host's DNS."""
    from netdoctor.diagnose.host.resolver import host_upstreams

    if not host_upstreams()[0]:
        pytest.skip("this machine's resolv.conf names no nameserver for aardvark-dns to ask")
    rc, doc = netdoctor_json("trace", "pew1", "www.baidu.com", env=podman_networks.env)
    v = doc["verdict"]
    assert rc == 1 and v["cause"] == "dns-unreachable", v
    assert doc["destination"]["nameserver"] == "172.31.18.1", doc["destination"]
    assert doc["probe"]["outcome"] == "reply", doc["probe"]  # the forwarder itself answers
    assert "the host's own DNS is what fails" in v["explanation"], v["explanation"]
    assert "nameserver answers, but" not in v["explanation"]

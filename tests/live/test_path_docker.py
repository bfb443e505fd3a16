"""`netdoctor path` against a real Docker engine, in every network mode Docker offers."""

import pytest

from sandbox import netdoctor, netdoctor_json, sh

pytestmark = [pytest.mark.live, pytest.mark.docker]


@pytest.fixture(scope="module")
def docker_containers(docker_engine):
    d = docker_engine
    d.run("web1")
    d.run("hostnet", "--network", "host")
    d.run("nonet", "--network", "none")
    d.run("joined", "--network", "container:web1")
    d.docker("network", "create", "--subnet", "172.31.7.0/24", "ndtnet")
    d.run("usernet", "--network", "ndtnet")
    d.docker("create", "--name", "stopped", d.IMAGE, "sleep", "1")
    yield d
    d.docker("rm", "-f", "web1", "hostnet", "nonet", "joined", "usernet", "stopped", check=False)
    d.docker("network", "rm", "ndtnet", check=False)


def roles(report):
    return [h["role"] for h in report["hops"]]


def test_default_bridge_has_four_hops(docker_containers):
    rc, report = netdoctor_json("path", "web1", env=docker_containers.env)
    assert rc == 0
    assert roles(report) == ["container", "host-veth", "bridge", "uplink"]
    container, veth, bridge, uplink = report["hops"]
    assert container["name"] == "eth0" and container["addresses"][0].startswith("172.17.")
    assert veth["master"] == "docker0" and veth["netns"] == docker_containers.sealed.host
    assert bridge["name"] == "docker0"
    assert uplink["name"] == "eth0" and uplink["via"] == "198.51.100.1"
    assert report["target"]["kind"] == "docker" and report["complete"] is True


def test_user_defined_network_uses_its_own_bridge(docker_containers):
    rc, report = netdoctor_json("path", "docker:usernet", env=docker_containers.env)
    assert rc == 0
    assert roles(report) == ["container", "host-veth", "bridge", "uplink"]
    assert report["hops"][0]["addresses"] == ["172.31.7.2/24"]
    assert report["hops"][2]["name"].startswith("br-")


def test_host_network_starts_at_the_host_nic(docker_containers):
    rc, report = netdoctor_json("path", "hostnet", env=docker_containers.env)
    assert rc == 0
    assert report["mode"] == "host"
    assert roles(report) == ["uplink"]
    assert report["hops"][0]["netns"] == docker_containers.sealed.host


def test_none_network_says_so(docker_containers):
    res = netdoctor("path", "nonet", env=docker_containers.env)
    assert res.returncode == 1
    assert "network mode none" in res.stdout


def test_container_network_mode_resolves_through_the_other_container(docker_containers):
    rc, report = netdoctor_json("path", "joined", env=docker_containers.env)
    _, web1 = netdoctor_json("path", "web1", env=docker_containers.env)
    assert rc == 0
    assert report["target"]["shares_with"] == "web1"
    # The same hops in the same namespaces (each opened by way of its own process).
    same = lambda hops: [{k: v for k, v in h.items() if k != "netns_path"} for h in hops]  # noqa
    assert same(report["hops"]) == same(web1["hops"])


def test_destination_is_resolved_and_routed(docker_containers):
    rc, report = netdoctor_json("path", "web1", "203.0.113.80", env=docker_containers.env)
    assert rc == 0
    assert report["destination"]["address"] == "203.0.113.80"
    assert roles(report)[-1] == "uplink"


def test_id_prefix_and_running_under_ip_netns_exec(docker_containers):
    cid = docker_containers.docker("inspect", "-f", "{{.Id}}", "web1").stdout.strip()
    rc, report = netdoctor_json("path", cid[:10], env=docker_containers.env)
    assert rc == 0 and report["target"]["name"] == "web1"
    # netdoctor run inside the Docker host's namespace treats it as the host.
    exe = sh("sh", "-c", "command -v netdoctor").stdout.strip()
    res = sh("ip", "netns", "exec", docker_containers.sealed.host, exe, "path", "web1",
             env=docker_containers.env, check=False)
    assert res.returncode == 0, res.stderr
    assert "docker0" in res.stdout and "host-veth" in res.stdout


def test_stopped_and_unknown_containers_are_clear_errors(docker_containers):
    res = netdoctor("path", "stopped", env=docker_containers.env)
    assert res.returncode == 3
    assert "not running" in res.stderr and "Traceback" not in res.stderr
    res = netdoctor("path", "docker:web2", env=docker_containers.env)
    assert res.returncode == 3
    assert "did you mean" in res.stderr and "web1" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1

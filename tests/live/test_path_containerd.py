"""containerd targets through `ctr`, against the containerd a real dockerd runs (namespace moby)."""

import os

import pytest

from sandbox import netdoctor_json

pytestmark = [pytest.mark.live, pytest.mark.docker]


@pytest.fixture(scope="module")
def containerd(docker_engine):
    sock = os.path.join(docker_engine.dir, "exec", "containerd", "containerd.sock")
    if not os.path.exists(sock):
        pytest.skip("this dockerd uses a system containerd, not its own")
    docker_engine.run("ctr1")
    cid = docker_engine.docker("inspect", "-f", "{{.Id}}", "ctr1").stdout.strip()
    yield docker_engine, sock, cid
    docker_engine.docker("rm", "-f", "ctr1", check=False)


def test_containerd_task_by_id(containerd):
    engine, sock, cid = containerd
    env = dict(os.environ, CONTAINERD_ADDRESS=sock)
    env.pop("DOCKER_HOST", None)
    rc, report = netdoctor_json("path", f"containerd:{cid}", env=env)
    assert rc == 0
    assert report["target"]["kind"] == "containerd"
    assert [h["role"] for h in report["hops"]] == ["container", "host-veth", "bridge", "uplink"]
    assert report["hops"][2]["name"] == "docker0"


def test_bare_id_prefix_found_through_containerd_alone(containerd):
    engine, sock, cid = containerd
    env = dict(os.environ, CONTAINERD_ADDRESS=sock, DOCKER_HOST="unix:///nonexistent.sock")
    rc, report = netdoctor_json("path", cid[:12], env=env)
    assert rc == 0 and report["target"]["kind"] == "containerd"


def test_docker_container_seen_by_both_is_not_ambiguous(containerd):
    engine, sock, cid = containerd
    env = dict(engine.env, CONTAINERD_ADDRESS=sock)
    rc, report = netdoctor_json("path", cid[:12], env=env)
    assert rc == 0 and report["target"]["kind"] == "docker" and report["target"]["name"] == "ctr1"

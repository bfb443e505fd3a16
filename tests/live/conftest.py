"""Live tests: root, real namespaces, the built-in lab, real Docker and podman in sealed
host namespaces. Every fixture removes what it made; the session fails if anything is left."""

import os
import shutil

import pytest

from sandbox import DockerEngine, Podman, SealedHost, host_state

IS_ROOT = os.geteuid() == 0


def pytest_collection_modifyitems(config, items):
    skip_root = pytest.mark.skip(reason="live test: needs root to build network namespaces")
    here = os.path.dirname(os.path.abspath(__file__))
    for item in items:
        if str(item.fspath).startswith(here + os.sep):
            item.add_marker(pytest.mark.live)
            if not IS_ROOT:
                item.add_marker(skip_root)


@pytest.fixture(scope="session", autouse=True)
def host_left_unchanged():
    """Every test run leaves the machine as it found it: namespaces, links, mounts, tracefs."""
    if not IS_ROOT:
        yield
        return
    before = host_state()
    yield
    after = host_state()
    assert after == before, f"the tests left residue: before={before} after={after}"


LAB_NS = ("ndlab-host", "ndlab-inet", "ndlab-test", "ndlab-web")


def _without_sandboxes(state):
    """Host state minus the session's Docker/podman sandboxes (judged at session end)."""
    return {k: [v for v in vals if "ndt-" not in v] for k, vals in state.items()}


@pytest.fixture(scope="module")
def lab():
    """The built-in lab, up for one test module and removed after it, leaving no residue."""
    from sandbox import netdoctor

    if not IS_ROOT:
        pytest.skip("needs root")
    if any(os.path.exists(f"/run/netns/{ns}") for ns in LAB_NS):
        pytest.skip("a netdoctor lab is already up on this machine; the tests leave it alone")
    _need("dnsmasq", "iptables-restore")
    before = _without_sandboxes(host_state())
    had_run_dir = os.path.exists("/run/netdoctor")
    res = netdoctor("lab", "up")
    assert res.returncode == 0, res.stderr
    yield
    res = netdoctor("lab", "down")
    assert res.returncode == 0, res.stderr
    assert _without_sandboxes(host_state()) == before
    assert not os.path.exists("/run/netdoctor/lab")
    assert not any(os.path.exists(f"/etc/netns/{ns}") for ns in LAB_NS)
    if not had_run_dir:
        assert not os.path.exists("/run/netdoctor")


@pytest.fixture
def healed(lab):
    """A test that breaks the lab; it is healed afterwards."""
    from sandbox import netdoctor

    yield
    assert netdoctor("lab", "heal").returncode == 0


def _need(*programs):
    missing = [p for p in programs if shutil.which(p) is None]
    if missing:
        pytest.skip(f"not installed here: {', '.join(missing)} (CI installs them)")


def _engine_in_sealed_host(tag, engine_class, programs):
    if not IS_ROOT:
        pytest.skip("needs root")
    _need(*programs)
    with SealedHost(tag) as sealed:
        engine = engine_class(sealed).start()
        try:
            yield engine
        finally:
            engine.stop()


@pytest.fixture(scope="session")
def docker_engine():
    """A real Docker engine in a sealed host namespace (skipped where dockerd is missing)."""
    yield from _engine_in_sealed_host("dock", DockerEngine, ("dockerd", "docker", "nsenter", "busybox"))


@pytest.fixture(scope="session")
def podman_engine():
    """Real podman (runc) in a sealed host namespace (skipped where podman is missing)."""
    yield from _engine_in_sealed_host("pod", Podman, ("podman", "runc", "nsenter", "busybox"))

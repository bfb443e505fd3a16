import os
import shutil
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from sandbox import DockerEngine, Podman, SealedHost, host_state  # noqa: E402

IS_ROOT = os.geteuid() == 0


def pytest_collection_modifyitems(config, items):
    skip_root = pytest.mark.skip(reason="live test: needs root to build network namespaces")
    for item in items:
        if "live" in item.keywords and not IS_ROOT:
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

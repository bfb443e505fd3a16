"""Without the capabilities it needs, netdoctor says which, exits 5, and changes nothing."""


import pytest

from sandbox import host_state, netdoctor_exe, sh

pytestmark = pytest.mark.live


def without_caps(*args):
    exe = netdoctor_exe()[0]
    return sh("setpriv", "--bounding-set=-all", "--inh-caps=-all", exe, *args, check=False)


@pytest.fixture
def a_namespace():
    name = "ndt-priv-target"
    sh("ip", "netns", "add", name)
    yield name
    sh("ip", "netns", "del", name)


@pytest.mark.parametrize("args", [["lab", "up"], ["lab", "down"], ["lab", "heal"],
                                  ["lab", "break", "veth-down"]])
def test_lab_commands_name_the_missing_capabilities(args):
    before = host_state()
    res = without_caps(*args)
    assert res.returncode == 5, res.stderr
    assert "CAP_SYS_ADMIN" in res.stderr and "run netdoctor as root" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert host_state() == before


def test_path_cannot_enter_the_namespace(a_namespace):
    res = without_caps("path", f"netns:{a_namespace}")
    assert res.returncode == 5
    assert "CAP_SYS_ADMIN" in res.stderr and "Traceback" not in res.stderr

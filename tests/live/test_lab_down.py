"""Lab commands when no lab is up."""

import os

import pytest

from sandbox import netdoctor

pytestmark = pytest.mark.live


@pytest.fixture
def no_lab():
    if os.path.exists("/run/netns/ndlab-host"):
        pytest.skip("a netdoctor lab is up on this machine")


def test_commands_needing_the_lab_say_so(no_lab):
    for args in (["lab", "break", "veth-down"], ["lab", "heal"]):
        res = netdoctor(*args)
        assert res.returncode == 7, args
        assert "lab is not up" in res.stderr and "Traceback" not in res.stderr
    res = netdoctor("lab", "status")
    assert res.returncode == 7 and "lab: down" in res.stdout
    res = netdoctor("lab", "down")
    assert res.returncode == 0 and "no lab" in res.stdout
    res = netdoctor("path", "lab:test")
    assert res.returncode == 3 and "lab up" in res.stderr

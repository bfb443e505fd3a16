"""A container bridged onto the host's LAN (LXD, libvirt, a CNI bridge with the NIC enslaved):
the bridge holds the host's own LAN address, the containers take addresses of the LAN and use
its router as their gateway. That gateway is not the bridge's address, and nothing is wrong.
And a Docker-style bridge that lost its address (a network manager or a DHCP client on
docker0): the containers' gateway is gone from the host, and that is the finding."""

import time

import pytest

from sandbox import netdoctor_json, sh, unique

pytestmark = pytest.mark.live


@pytest.fixture
def lan():
    """ndt-lanr: the LAN's router (198.51.100.1, 203.0.113.80 behind it); ndt-lanh: the host,
    br0 = 198.51.100.10/24 with the router's link enslaved; ndt-lanc: a container on br0,
    198.51.100.50/24 via the router."""
    router, host, box = unique("ndt-lanr"), unique("ndt-lanh"), unique("ndt-lanc")
    for ns in (router, host, box):
        sh("ip", "netns", "add", ns)
    try:
        for ns, cmds in (
                (router, ["link add r0 type veth peer name up0 netns " + host,
                          "addr add 198.51.100.1/24 dev r0", "link set r0 up", "link set lo up",
                          "addr add 203.0.113.80/32 dev lo"]),
                (host, ["link add br0 type bridge", "link set up0 master br0",
                        "link set up0 up", "link set br0 up", "link set lo up",
                        "addr add 198.51.100.10/24 dev br0",
                        "route add default via 198.51.100.1",
                        "link add vc0 type veth peer name eth0 netns " + box,
                        "link set vc0 master br0", "link set vc0 up"]),
                (box, ["addr add 198.51.100.50/24 dev eth0", "link set eth0 up",
                       "link set lo up", "route add default via 198.51.100.1"])):
            sh("ip", "-n", ns, "-batch", "-", input="\n".join(cmds) + "\n")
        _wait_for_carrier(host, "up0")
        yield router, host, box
    finally:
        for ns in (box, host, router):
            sh("ip", "netns", "del", ns, check=False)


def _wait_for_carrier(ns, dev, seconds=5.0):
    """The kernel reports a veth's carrier up to a second after both ends are up (linkwatch);
    until then the bridge keeps the port disabled."""
    end = time.monotonic() + seconds
    while "NO-CARRIER" in sh("ip", "-n", ns, "link", "show", dev).stdout:
        assert time.monotonic() < end, f"{dev} in {ns} has no carrier"
        time.sleep(0.05)


def test_a_container_on_a_lan_bridge_uses_the_lan_router_without_a_finding(lan):
    router, host, box = lan
    rc, checks = netdoctor_json("checks", f"netns:{box}", "--no-dns-probe")
    assert [f["id"] for f in checks["findings"]] == [], checks["findings"]
    assert rc == 0
    rc, trace = netdoctor_json("trace", f"netns:{box}", "203.0.113.80")
    assert rc == 0 and trace["verdict"]["reachable"] is True, trace["verdict"]
    assert [f["id"] for f in trace["findings"]] == [], trace["findings"]

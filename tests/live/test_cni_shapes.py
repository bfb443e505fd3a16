"""Shapes built by Debian's real CNI plugins (ptp, bridge, macvlan) and a Calico-style routed
veth, each in a sealed host: path, checks and trace give the right answer, healthy and
broken."""

import pytest

from sandbox import CniPods, SealedHost, netdoctor_json, sh

pytestmark = [pytest.mark.live]

WEB = "203.0.113.80"


def _ipam(subnet, **more):
    return dict({"type": "host-local", "subnet": subnet, "routes": [{"dst": "0.0.0.0/0"}]},
                **more)


@pytest.fixture(scope="module")
def cni():
    import os

    if os.geteuid() != 0 or not os.path.exists(CniPods.PLUGINS + "/ptp"):
        pytest.skip("needs root and containernetworking-plugins (CI installs them)")
    with SealedHost("cni") as sealed:
        sh("ip", "netns", "exec", sealed.host, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        pods = CniPods(sealed)
        try:
            yield pods
        finally:
            pods.close()


def roles(doc):
    return [h["role"] for h in doc["hops"]]


def ids(doc):
    return {f["id"] for f in doc["findings"] if f["severity"] == "error"}


@pytest.fixture(scope="module")
def ptp_pod(cni):
    return cni.add("ptp", {"cniVersion": "1.0.0", "name": "ndptp", "type": "ptp",
                           "ipMasq": True, "ipam": _ipam("10.77.0.0/24")})


def test_ptp_routed_veth_healthy(ptp_pod):
    rc, path = netdoctor_json("path", f"netns:{ptp_pod}", WEB)
    assert rc == 0 and path["mode"] == "routed", path
    assert roles(path) == ["container", "host-veth", "uplink"]
    rc, checks = netdoctor_json("checks", f"netns:{ptp_pod}", "--no-dns-probe")
    assert rc == 0 and not ids(checks), checks["findings"]
    rc, trace = netdoctor_json("trace", f"netns:{ptp_pod}", WEB)
    assert rc == 0 and trace["verdict"]["reachable"], trace["verdict"]


def test_ptp_host_route_to_the_pod_deleted(cni, ptp_pod):
    host = cni.sealed.host
    route = sh("ip", "-n", host, "-o", "route", "show", "root", "10.77.0.0/24").stdout.split()
    assert route, "ptp added no host route"
    sh("ip", "-n", host, "route", "del", route[0], "dev", route[2])
    try:
        rc, trace = netdoctor_json("trace", f"netns:{ptp_pod}", WEB)
        assert rc == 1
        v = trace["verdict"]
        assert v["cause"] == "container-route-missing", v
        finding = next(f for f in trace["findings"] if f["id"] == v["cause"])
        assert finding["fix"].endswith(f"ip route replace {route[0]}/32 dev {route[2]} scope "
                                       f"link"), finding["fix"]
    finally:
        sh("ip", "-n", host, "route", "replace", route[0], "dev", route[2], "scope", "host")


@pytest.fixture(scope="module")
def calico_pod(cni):
    """A Calico-style routed pod, wired by hand as Calico's CNI plugin does: a /32, the
    link-local gateway 169.254.1.1 answered by proxy ARP on the host's veth."""
    host = cni.sealed.host
    ns = cni.add("calico-ptp", {"cniVersion": "1.0.0", "name": "ndcal", "type": "ptp",
                                "ipMasq": True, "ipam": _ipam("10.78.0.0/24")})
    veth = sh("ip", "-n", host, "-o", "route", "show", "root", "10.78.0.0/24").stdout.split()[2]
    addr = sh("ip", "-n", ns, "-o", "-4", "addr", "show", "dev", "eth0").stdout.split()[3]
    ip = addr.split("/")[0]
    sh("ip", "-n", ns, "addr", "flush", "dev", "eth0")
    sh("ip", "-n", ns, "addr", "add", f"{ip}/32", "dev", "eth0")
    sh("ip", "-n", ns, "route", "add", "169.254.1.1", "dev", "eth0", "scope", "link")
    sh("ip", "-n", ns, "route", "add", "default", "via", "169.254.1.1", "dev", "eth0")
    sh("ip", "-n", host, "addr", "flush", "dev", veth)  # takes the ptp host route with it
    sh("ip", "-n", host, "route", "replace", ip, "dev", veth, "scope", "link")
    sh("ip", "netns", "exec", host, "sysctl", "-qw", f"net.ipv4.conf.{veth}.proxy_arp=1")
    return ns, veth


def test_calico_style_link_local_gateway_is_healthy(calico_pod):
    ns, _ = calico_pod
    rc, checks = netdoctor_json("checks", f"netns:{ns}", "--no-dns-probe")
    assert not ids(checks), checks["findings"]
    rc, trace = netdoctor_json("trace", f"netns:{ns}", WEB)
    assert rc == 0 and trace["verdict"]["reachable"], trace["verdict"]


def test_calico_style_proxy_arp_off(cni, calico_pod):
    ns, veth = calico_pod
    key = f"net.ipv4.conf.{veth}.proxy_arp"
    sh("ip", "netns", "exec", cni.sealed.host, "sysctl", "-qw", f"{key}=0")
    sh("ip", "-n", ns, "neigh", "flush", "all")
    try:
        rc, trace = netdoctor_json("trace", f"netns:{ns}", WEB)
        assert rc == 1
        assert trace["verdict"]["cause"] == "proxy-arp-off", trace["verdict"]
        finding = next(f for f in trace["findings"] if f["id"] == "proxy-arp-off")
        assert finding["fix"].endswith(f"sysctl -w {key}=1")
    finally:
        sh("ip", "netns", "exec", cni.sealed.host, "sysctl", "-qw", f"{key}=1")


def test_cni_bridge_plugin(cni):
    ns = cni.add("cnibr", {"cniVersion": "1.0.0", "name": "ndbr", "type": "bridge",
                           "bridge": "cni-nd0", "isGateway": True, "ipMasq": True,
                           "ipam": _ipam("10.79.0.0/24")})
    rc, path = netdoctor_json("path", f"netns:{ns}", WEB)
    assert rc == 0 and roles(path) == ["container", "host-veth", "bridge", "uplink"], path
    assert path["hops"][2]["name"] == "cni-nd0"
    rc, trace = netdoctor_json("trace", f"netns:{ns}", WEB)
    assert rc == 0 and trace["verdict"]["reachable"], trace["verdict"]


def test_cni_macvlan_reaches_out_but_not_its_own_host(cni):
    ns = cni.add("cnimv", {"cniVersion": "1.0.0", "name": "ndmv", "type": "macvlan",
                           "master": "eth0", "mode": "bridge",
                           "ipam": dict(_ipam("198.51.100.0/24"), rangeStart="198.51.100.100",
                                        rangeEnd="198.51.100.120",
                                        routes=[{"dst": "0.0.0.0/0", "gw": "198.51.100.1"}])})
    rc, trace = netdoctor_json("trace", f"netns:{ns}", WEB)
    assert rc == 0 and trace["verdict"]["reachable"], trace["verdict"]
    assert "ip-conflict" not in ids(trace)
    rc, trace = netdoctor_json("trace", f"netns:{ns}", "198.51.100.2")  # the host's uplink
    assert rc == 1
    assert trace["verdict"]["cause"] == "macvlan-host-isolation", trace["verdict"]
    finding = next(f for f in trace["findings"] if f["id"] == "macvlan-host-isolation")
    assert "addr del" not in finding["fix"] and "link add macvlan-shim link eth0" in finding["fix"]


@pytest.fixture(scope="module")
def published_pod(cni):
    """A pod on a CNI bridge whose port 80 the portmap plugin publishes on the host's 8095
    (the hostPort of a Kubernetes pod), with a real HTTP server in it."""
    import subprocess
    import sys
    import time

    ns = cni.add_chain("pmap", [
        {"cniVersion": "1.0.0", "name": "ndpm", "type": "bridge", "bridge": "cni-pm0",
         "isGateway": True, "ipMasq": True, "ipam": _ipam("10.81.0.0/24")},
        {"cniVersion": "1.0.0", "name": "ndpm", "type": "portmap",
         "capabilities": {"portMappings": True}, "snat": True}],
        {"portMappings": [{"hostPort": 8095, "containerPort": 80, "protocol": "tcp"}]})
    server = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-m", "http.server",
                               "80", "--bind", "0.0.0.0"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while ":0050 " not in sh("ip", "netns", "exec", ns, "cat", "/proc/net/tcp").stdout:
        assert time.monotonic() < deadline, "the pod's HTTP server did not start"
        time.sleep(0.1)
    try:
        yield ns
    finally:
        server.kill()
        server.wait()


def test_a_cni_portmap_publication_by_host_or_container_port(cni, published_pod):
    """No runtime lists the port: the portmap plugin's DNAT rules (CNI-HOSTPORT-DNAT) say
    where it goes, asked by host port or by container port."""
    for port in ("8095", "80"):
        rc, doc = netdoctor_json("inbound", f"netns:{published_pod}", port)
        v = doc["verdict"]
        assert rc == 0 and v["reachable"], (port, v)
        assert (doc["port"]["host_port"], doc["port"]["container_port"]) == (8095, 80), port
        assert doc["walk"]["dnat_to"].startswith("10.81.0.") and \
            doc["walk"]["dnat_to"].endswith(":80")
        assert "CNI-DN-" in doc["walk"]["steps"][0]["said"], doc["walk"]["steps"]
        assert doc["probe"]["outcome"] == "reply"
    # The plugin's DNAT deleted (a firewall reload): nothing publishes 8095 any more.
    host = cni.sealed.host
    nat = sh("ip", "netns", "exec", host, "iptables-save", "-t", "nat").stdout
    dnat = next(l for l in nat.splitlines() if l.startswith("-A CNI-DN-") and "DNAT" in l
                and "--dport 8095" in l)
    sh("ip", "netns", "exec", host, "iptables", "-t", "nat",
       *dnat.replace("-A ", "-D ", 1).split())
    try:
        rc, doc = netdoctor_json("inbound", f"netns:{published_pod}", "8095")
    finally:
        sh("ip", "netns", "exec", host, "iptables", "-t", "nat", *dnat.split())
    assert rc == 1 and doc["verdict"]["cause"] == "port-not-published", doc["verdict"]

"""The built-in lab: up, path on a lab container, every fault, heal, down with no residue."""

import pytest

from sandbox import netdoctor, netdoctor_json, sh

pytestmark = pytest.mark.live

def in_container(*argv):
    return sh("ip", "netns", "exec", "ndlab-test", *argv, check=False)


def test_lab_is_sealed_and_serves_dns_and_http(lab):
    page = in_container("busybox", "wget", "-qO-", "http://www.baidu.com/")
    assert page.returncode == 0 and "reached the internet" in page.stdout
    # The lab host's only way out is its own uplink into the lab's internet namespace.
    route = sh("ip", "-n", "ndlab-host", "-j", "route", "get", "192.0.2.1").stdout
    assert '"dev":"eth0"' in route and "198.51.100.1" in route


def test_status_reports_up(lab):
    rc, st = netdoctor_json("lab", "status")
    assert rc == 0 and st["up"] is True
    assert st["services"]["dns"]["running"] and st["services"]["http"]["running"]
    assert st["faults"] == []


def test_path_test_is_four_hops_verbatim(lab):
    res = netdoctor("path", "test", "www.baidu.com")
    assert res.returncode == 0, res.stderr
    assert "203.0.113.80" in res.stdout and "resolved by 203.0.113.53" in res.stdout
    rc, report = netdoctor_json("path", "test", "www.baidu.com")
    assert [(h["role"], h["name"], h["netns"]) for h in report["hops"]] == [
        ("container", "eth0", "ndlab-test"),
        ("host-veth", "veth-test", "ndlab-host"),
        ("bridge", "ndbr0", "ndlab-host"),
        ("uplink", "eth0", "ndlab-host"),
    ]
    assert report["hops"][0]["addresses"] == ["172.29.0.2/24", "fd00:29::2/64"]  # dual stack
    assert report["hops"][0]["via"] == "172.29.0.1"
    assert report["hops"][3]["via"] == "198.51.100.1"


def test_second_container_has_its_own_veth(lab):
    rc, report = netdoctor_json("path", "lab:web")
    assert rc == 0 and report["hops"][1]["name"] == "veth-web"


def test_up_twice_is_harmless(lab):
    res = netdoctor("lab", "up")
    assert res.returncode == 0 and "already up" in res.stdout


@pytest.mark.parametrize("fault, hop_states, note, rc", [
    ("veth-down", {"host-veth": "DOWN", "container": "NO-CARRIER"}, "host-veth veth-test is DOWN", 0),
    ("bridge-down", {"bridge": "DOWN"}, "bridge ndbr0 is DOWN", 0),
    ("ip-forward-off", {}, "the host would not forward 172.29.0.2 -> 203.0.113.80", 0),
    ("no-default-route", {}, "container has no route to 203.0.113.80", 1),
])
def test_faults_show_in_the_path(healed, fault, hop_states, note, rc):
    assert netdoctor("lab", "break", fault).returncode == 0
    code, report = netdoctor_json("path", "test", "203.0.113.80")
    assert code == rc
    states = {h["role"]: h["state"] for h in report["hops"]}
    for role, state in hop_states.items():
        assert states[role] == state
    assert any(note in n for n in report["notes"]), report["notes"]
    _, st = netdoctor_json("lab", "status")
    assert [f["fault"] for f in st["faults"]] == [fault]


def test_veth_detached_drops_the_bridge_hop(healed):
    assert netdoctor("lab", "break", "veth-detached").returncode == 0
    _, report = netdoctor_json("path", "test")
    assert [h["role"] for h in report["hops"]][:2] == ["container", "host-veth"]
    assert "bridge" not in [h["role"] for h in report["hops"]]
    assert any("is no bridge port" in n for n in report["notes"])


def test_nat_missing_and_forward_drop_change_the_rules(healed):
    assert netdoctor("lab", "break", "nat-missing").returncode == 0
    masq = [l for l in sh("ip", "netns", "exec", "ndlab-host", "iptables-save").stdout.splitlines()
            if "MASQUERADE" in l]
    # Only web's hairpin MASQUERADE (to itself) is left: the containers' own NAT is gone.
    assert masq == ["-A POSTROUTING -s 172.29.0.3/32 -d 172.29.0.3/32 -p tcp -m tcp --dport 80 "
                    "-j MASQUERADE"], masq
    assert netdoctor("lab", "break", "forward-drop").returncode == 0
    rules = sh("ip", "netns", "exec", "ndlab-host", "iptables-save").stdout
    assert "-A FORWARD -s 172.29.0.2/32 -j DROP" in rules
    assert in_container("busybox", "ping", "-c", "1", "-W", "1", "203.0.113.80").returncode != 0


def test_dns_unreachable_makes_the_name_unresolvable(healed):
    assert netdoctor("lab", "break", "dns-unreachable").returncode == 0
    res = netdoctor("path", "test", "www.baidu.com")
    assert res.returncode == 4
    assert "cannot resolve 'www.baidu.com'" in res.stderr and "203.0.113.53" in res.stderr


def test_heal_restores_every_fault(lab):
    for fault in ("ip-forward-off", "forward-drop", "nat-missing", "veth-detached", "veth-down",
                  "bridge-down", "no-default-route", "dns-unreachable"):
        assert netdoctor("lab", "break", fault).returncode == 0, fault
    assert in_container("busybox", "ping", "-c", "1", "-W", "1", "203.0.113.80").returncode != 0
    assert netdoctor("lab", "heal").returncode == 0
    ping = in_container("busybox", "ping", "-c", "1", "-W", "2", "203.0.113.80")
    assert ping.returncode == 0, ping.stdout
    rc, report = netdoctor_json("path", "test", "www.baidu.com")
    assert rc == 0 and report["notes"] == []
    _, st = netdoctor_json("lab", "status")
    assert st["faults"] == []


def test_heal_turns_forwarding_back_on_for_one_interface(lab):
    # Turned off by hand on the bridge alone: ip_forward stays 1, so writing it changes nothing.
    sh("ip", "netns", "exec", "ndlab-host", "sysctl", "-qw", "net.ipv4.conf.ndbr0.forwarding=0")
    assert netdoctor("lab", "heal").returncode == 0
    out = sh("ip", "netns", "exec", "ndlab-host", "sysctl", "-n",
             "net.ipv4.conf.ndbr0.forwarding").stdout
    assert out.strip() == "1"


def test_bad_destinations(lab):
    res = netdoctor("path", "test", "bad name!")
    assert res.returncode == 2 and "neither an IP address nor a host name" in res.stderr
    res = netdoctor("path", "test", "nosuch.example")
    assert res.returncode == 4 and "cannot resolve 'nosuch.example'" in res.stderr


def test_bad_lab_input(lab):
    res = netdoctor("lab", "break", "no-such-fault")
    assert res.returncode == 2 and "unknown fault" in res.stderr
    res = netdoctor("lab", "break", "veth-down", "--container", "nobody")
    assert res.returncode == 2 and "no lab container" in res.stderr


def test_a_stopped_nameserver_is_not_one_that_answers(healed):
    """The DNS server's host answers the query with ICMP port unreachable: it was reached,
    and nothing listens there. That is dns-unreachable, not "the nameserver answers"."""
    assert netdoctor("lab", "break", "dns-unreachable").returncode == 0
    rc, doc = netdoctor_json("trace", "test", "www.baidu.com")
    v = doc["verdict"]
    assert rc == 1 and v["cause"] == "dns-unreachable", v
    assert "nothing listens on UDP port 53" in v["explanation"], v


def test_trace_writes_one_pcapng_with_an_interface_per_hop(lab, tmp_path):
    from scapy.layers.inet import IP
    from scapy.utils import PcapNgReader

    path = str(tmp_path / "t.pcapng")
    rc, doc = netdoctor_json("trace", "test", "203.0.113.80", "--pcap", path)
    assert rc == 0, doc["verdict"]
    reader = PcapNgReader(path)
    frames = list(reader)
    assert [i[2]["name"].decode() for i in reader.interfaces] == [h["name"] for h in doc["hops"]]
    # Each hop's requests and replies are in the file, the uplink's translated by NAT.
    sources = [f[IP].src for f in frames if IP in f and f[IP].dst == "203.0.113.80"]
    assert sources.count("172.29.0.2") >= 2 * doc["hops"][0]["request_seen"] - 1
    assert "198.51.100.2" in sources
    res = netdoctor("trace", "test", "203.0.113.80", "--pcap", str(tmp_path / "no" / "t.pcapng"))
    assert res.returncode == 2 and "no folder" in res.stderr and res.stdout == ""


def test_a_reply_routed_elsewhere_is_named(healed):
    """A policy rule sends the internet's replies to the containers back out of the uplink:
    the requests leave, the replies arrive and never reach the bridge. The host's own answer
    for the reply (`ip route get CONTAINER from DEST iif UPLINK`) names it."""
    assert netdoctor("lab", "break", "reply-misrouted").returncode == 0
    rc, doc = netdoctor_json("trace", "test", "203.0.113.80")
    v = doc["verdict"]
    assert rc == 1 and v["cause"] == "reply-path-asymmetric", v
    assert (v["direction"], v["stopped_at"]) == ("reply", "uplink"), v
    f = next(f for f in doc["findings"] if f["id"] == "reply-path-asymmetric")
    assert "out of eth0 via 198.51.100.1, not ndbr0" in f["message"], f["message"]
    # The route the rule sends the replies to is named, and deleting it, as printed, heals.
    assert f["fix"] == "ip netns exec ndlab-host ip route del unicast 172.29.0.0/24 table 100"
    sh("sh", "-c", f["fix"])
    rc, doc = netdoctor_json("trace", "test", "203.0.113.80")
    assert rc == 0, doc["verdict"]
    assert netdoctor("lab", "heal").returncode == 0
    rc, doc = netdoctor_json("trace", "test", "203.0.113.80")
    assert rc == 0, doc["verdict"]

"""--allow-trace-rules on the lab: nftables names the rule that dropped the probe even when
another dropping rule's counter moves for other traffic in the same window; the private
tables are gone afterwards (also after Ctrl-C, and `netdoctor cleanup` removes them after a
SIGKILL); without the flag nothing is ever written."""

import json
import signal
import subprocess
import time

import pytest

from sandbox import netdoctor, netdoctor_exe, netdoctor_json, sh

pytestmark = pytest.mark.live

SPACES = ("ndlab-host", "ndlab-test")


def in_ns(ns, *argv, check=True):
    return sh("ip", "netns", "exec", ns, *argv, check=check)


def own_tables():
    return [t for ns in SPACES for t in in_ns(ns, "nft", "list", "tables").stdout.split()
            if t.startswith("netdoctor_")]


def test_the_rule_that_dropped_the_probe_is_named_amid_other_drops(healed):
    # Two dropping rules: the first for a UDP blast the container sends all along, the
    # second for the probe. Both counters move in the window; only nftrace can tell them
    # apart.
    in_ns("ndlab-host", "iptables", "-I", "FORWARD", "1", "-p", "udp", "--dport", "9", "-j",
          "DROP")
    in_ns("ndlab-host", "iptables", "-I", "FORWARD", "2", "-s", "172.29.0.2", "-p", "icmp",
          "-j", "DROP")
    blast = subprocess.Popen(
        ["ip", "netns", "exec", "ndlab-test", "python3", "-c",
         "import socket, time\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
         "while True:\n    s.sendto(b'x', ('203.0.113.80', 9)); time.sleep(0.005)\n"])
    try:
        time.sleep(0.3)
        rc, doc = netdoctor_json("trace", "test", "203.0.113.80")
        assert rc == 1 and doc["verdict"]["cause"] == "forward-dropped"
        assert "nftrace" not in doc["verdict"]["evidence_used"]
        counted = doc["verdict"]["rule"]  # the counters' best guess: the first that moved
        rc, doc = netdoctor_json("trace", "test", "203.0.113.80", "--allow-trace-rules")
    finally:
        blast.kill()
        blast.wait()
    v = doc["verdict"]
    assert rc == 1 and v["cause"] == "forward-dropped" and v["stopped_at"] == "bridge"
    assert v["rule"] == ("iptables-nft -t filter FORWARD rule 2: "
                         "-A FORWARD -s 172.29.0.2/32 -p icmp -j DROP"), v
    assert counted != v["rule"] and "--dport 9" in counted
    assert "nftrace" in v["evidence_used"]
    drops = [m for m in doc["evidence"]["nftrace"] if m["dropped_by"]]
    assert drops and {(m["netns"], m["direction"]) for m in drops} == {("ndlab-host",
                                                                        "request")}
    assert own_tables() == []


def test_healthy_trace_lists_the_rules_both_ways_and_leaves_nothing(healed):
    before = {ns: in_ns(ns, "nft", "-s", "list", "ruleset").stdout for ns in SPACES}
    res = netdoctor("trace", "test", "www.baidu.com", "--allow-trace-rules")
    assert res.returncode == 0, res.stdout + res.stderr
    text = res.stdout
    assert "rules the probe met (nftables trace, --allow-trace-rules):" in text
    assert "ndlab-host (host) reply" in text and "ndlab-host (host) request" in text
    assert "DROPPED" not in text
    assert {ns: in_ns(ns, "nft", "-s", "list", "ruleset").stdout for ns in SPACES} == before


def test_without_the_flag_nothing_is_written(healed):
    monitor = subprocess.Popen(["ip", "netns", "exec", "ndlab-host", "nft", "monitor",
                                "tables"], stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(0.2)
        rc, doc = netdoctor_json("trace", "test", "203.0.113.80")
        assert rc == 0 and "nftrace" not in doc["evidence"]
    finally:
        monitor.terminate()
    out, _ = monitor.communicate(timeout=5)
    assert "netdoctor_" not in out


def _wait_for_tables(proc, seconds=10.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and proc.poll() is None:
        if len(own_tables()) == len(SPACES):
            return True
        time.sleep(0.02)
    return False


def test_interrupt_removes_the_tables_and_sigkill_leaves_them_to_cleanup(healed):
    # Silence upstream: the probe waits out its whole timeout with the tables in place.
    in_ns("ndlab-inet", "iptables", "-A", "INPUT", "-p", "icmp", "-j", "DROP")
    exe = netdoctor_exe()[0]
    argv = [exe, "trace", "test", "203.0.113.80", "--timeout", "5", "--allow-trace-rules"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert _wait_for_tables(proc), proc.communicate()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert own_tables() == []

    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert _wait_for_tables(proc), proc.communicate()
    proc.kill()
    proc.wait()
    assert len(own_tables()) == len(SPACES)
    res = netdoctor("cleanup", "--format", "json")
    assert res.returncode == 0, res.stdout + res.stderr
    removed = [r for r in json.loads(res.stdout)["residue"] if r["kind"] == "nft-table"]
    assert len(removed) == len(SPACES) and all(r["removed"] for r in removed), removed
    assert own_tables() == []
    assert netdoctor("cleanup").stdout.strip() == "nothing to clean up"

"""checks' DNS probe at scale: 200 containers whose nameserver never answers (an on-link
address nobody holds) each get their dns-unreachable finding, from one probe window (all
queries are in flight at once; bench/ measures how long that takes).

netdoctor runs with a soft limit of open files below the number of containers, as on a
host whose service manager gives 1,024 and which runs more containers than that: every
query's socket is open at once, and running out of descriptors is netdoctor's problem,
never a nameserver's.

The queries are sent by a process netdoctor forks: stopped by SIGTERM or killed outright
while it waits for the answers, netdoctor leaves no process of its own behind."""

import json
import os
import shutil
import signal
import subprocess
import time

import pytest

from sandbox import netdoctor_exe, sh

N = 200
HOST = "ndt-dnsscale-host"
NAMES = [f"ndt-dnsscale-{i}" for i in range(N)]
FILES = 128  # the soft limit of open files netdoctor runs with: fewer than N
SILENT = "10.88.255.254"  # on the containers' link, held by nobody: ARP goes unanswered


@pytest.fixture(scope="module")
def silent_lab():
    sh("ip", "-batch", "-", input="".join(f"netns add {n}\n" for n in [HOST] + NAMES))
    try:
        host = ["link add br0 type bridge", "link set br0 up", "addr add 10.88.0.1/16 dev br0"]
        for i, n in enumerate(NAMES):
            host += [f"link add v{i} type veth peer name eth0 netns {n}",
                     f"link set v{i} master br0", f"link set v{i} up"]
        sh("ip", "-n", HOST, "-batch", "-", input="\n".join(host) + "\n")
        for i, n in enumerate(NAMES):
            sh("ip", "-n", n, "-batch", "-", input=(
                f"addr add 10.88.{1 + i // 250}.{1 + i % 250}/16 dev eth0\n"
                "link set eth0 up\nlink set lo up\n"))
            os.makedirs(f"/etc/netns/{n}")
            with open(f"/etc/netns/{n}/resolv.conf", "w") as f:
                f.write(f"nameserver {SILENT}\n")
        yield [f"netns:{n}" for n in NAMES]
    finally:
        sh("ip", "-batch", "-", input="".join(f"netns del {n}\n" for n in [HOST] + NAMES),
           check=False)
        for n in NAMES:
            shutil.rmtree(f"/etc/netns/{n}", ignore_errors=True)


def test_every_container_with_a_silent_nameserver_gets_its_finding(silent_lab):
    res = subprocess.run(["prlimit", f"--nofile={FILES}:"] + netdoctor_exe() + [
        "checks", "--format", "json", "--only", "dns-unreachable"] + silent_lab,
        capture_output=True, text=True, timeout=300)
    assert res.returncode == 1, res.stderr
    doc = json.loads(res.stdout)
    found = {f["subject"]: f for f in doc["findings"] if f["id"] == "dns-unreachable"}
    assert set(found) == {f"netns:{n}" for n in NAMES}
    # Nobody holds the address: the queries never left, and the finding says why.
    assert {f["evidence"]["failing"][SILENT] for f in found.values()} == \
        {f"no answer within 1 s; the query never left: its next hop {SILENT} was not "
         "resolved (no ARP/neighbour answer)"}
    assert all(f["evidence"]["next_hop_unresolved"] == {SILENT: SILENT}
               for f in found.values())


def _ours(marker: str) -> list:
    """pids of processes whose command line names marker (netdoctor and what it forked)."""
    out = []
    for pid in os.listdir("/proc"):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if marker.encode() in f.read():
                    out.append(int(pid))
        except (OSError, ValueError):
            continue
    return out


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL])
def test_stopped_while_waiting_for_answers_nothing_is_left_running(silent_lab, how):
    # the last container twice: a marker no other process's command line has
    argv = netdoctor_exe() + ["checks", "--only", "dns-unreachable"] + silent_lab \
        + [silent_lab[-1]]
    marker = "\0".join(argv[-2:])
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while len(_ours(marker)) < 2:  # the sender has been forked: queries are going out
            assert p.poll() is None and time.monotonic() < deadline, p.stderr.read()
            time.sleep(0.01)
        p.send_signal(how)
        p.wait(timeout=30)
        if how == signal.SIGTERM:
            assert p.returncode == 130 and "interrupted" in p.stderr.read()
        left = time.monotonic() + 0.5  # less than the probe's own timeout
        while _ours(marker) and time.monotonic() < left:
            time.sleep(0.01)
        assert _ours(marker) == []
    finally:
        if p.poll() is None:
            p.kill()


def test_the_entries_the_probe_makes_are_not_read_as_the_containers_own(silent_lab):
    """The query for the on-link nameserver makes the container resolve its address (an
    entry it did not have before netdoctor came); the snapshot keeps the table as it was."""
    picked = silent_lab[:3]
    names = [t.split(":", 1)[1] for t in picked]
    for n in names:
        sh("ip", "-n", n, "neigh", "flush", "all")
    res = subprocess.run(netdoctor_exe() + ["snapshot", "-o", "-"] + picked,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    for c in doc["containers"]:
        assert c["dns_probe"][0]["error"] == "no answer within 1 s"
        assert SILENT not in [n["dst"] for n in c["namespace"]["neighbours"]]
    for n in names:  # the probe did ask for it
        assert SILENT in sh("ip", "-n", n, "neigh", "show").stdout


def test_namespaces_read_by_the_sender_are_read_as_netdoctor_reads_them(silent_lab):
    """With the DNS probe, the sender reads some of the namespaces and passes them back;
    without it, netdoctor reads them all itself: the two snapshots say the same."""
    def snapshot(*extra):
        res = subprocess.run(netdoctor_exe() + ["snapshot", "-o", "-", *extra] + silent_lab,
                             capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stderr
        return {c["target"]["name"] or c["target"]["id"]: c for c in
                json.loads(res.stdout)["containers"]}

    shared, alone = snapshot(), snapshot("--no-dns-probe")
    assert set(shared) == set(alone) and len(shared) == N
    for name, c in shared.items():
        for key in ("links", "routes", "sysctls", "netfilter_tables", "fdb"):
            assert c["namespace"][key] == alone[name]["namespace"][key], (name, key)
        assert c["path"] == alone[name]["path"], name


GC = "/proc/sys/net/ipv4/neigh/default/gc_thresh{}"


def _arp_entries() -> int:
    out = sh("ip", "-s", "ntable", "show", "name", "arp_cache").stdout.split()
    return int(out[out.index("entries") + 1])


def test_a_neighbour_table_too_small_for_the_containers_is_named_as_the_cause(silent_lab):
    """The machine's ARP table (one for every namespace) with room for fewer entries than
    the containers need to resolve their next hop: the kernel refuses new entries while
    checks runs, and checks says so, with the DNS failures as its consequence. The limits
    are the machine's: lowered for this test only, and put back."""
    old = [open(GC.format(i)).read().strip() for i in (1, 2, 3)]
    for n in NAMES:
        sh("ip", "-n", n, "neigh", "flush", "all")
    room = _arp_entries() + N // 2
    try:
        for i, value in zip((1, 2, 3), (min(int(old[0]), room // 4), room // 2, room)):
            with open(GC.format(i), "w") as f:
                f.write(str(value))
        res = subprocess.run(netdoctor_exe() + ["checks", "--format", "json"] + silent_lab,
                             capture_output=True, text=True, timeout=120)
    finally:
        for i in (3, 2, 1):  # largest first: each must stay at or above the one below it
            with open(GC.format(i), "w") as f:
                f.write(old[i - 1])
    assert res.returncode == 1, res.stderr
    doc = json.loads(res.stdout)
    full = [f for f in doc["findings"] if f["id"] == "neighbour-table-full"
            and f["evidence"]["table"] == "arp_cache"]
    assert len(full) == 1 and full[0]["severity"] == "error", full
    assert full[0]["evidence"]["entries"] >= full[0]["evidence"]["gc_thresh3"] - N // 10 \
        or full[0]["evidence"]["table_fulls_during_run"] > 0
    assert full[0]["fix"].startswith("sysctl -w net.ipv4.neigh.default.gc_thresh1=")
    dns = [f for f in doc["findings"] if f["id"] == "dns-unreachable"]
    assert dns and all("neighbour-table-full" in f["evidence"]["likely_consequence_of"]
                       for f in dns)
    assert [open(GC.format(i)).read().strip() for i in (1, 2, 3)] == old

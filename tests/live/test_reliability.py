"""netdoctor must never make a host in trouble worse: interrupted at any point it leaves the
host exactly as it was, a SIGKILLed run's residue is found and removed by `cleanup`, and two
traces at once do not disturb each other."""

import json
import re
import os
import random
import signal
import subprocess
import threading
import time

import pytest

from sandbox import (host_state, netdoctor, netdoctor_exe, netdoctor_json, sh,
                     startup_or_clean, tracefs_instances)

pytestmark = pytest.mark.live

LAB = ("ndlab-host", "ndlab-test", "ndlab-web", "ndlab-inet")
RUNS = "/run/netdoctor/runs"


def settled_lab_state() -> dict:
    """lab_state once the kernel's own IPv6 duplicate address detection on the lab's fresh
    links is over (it adds local routes and clears 'tentative' by itself)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if not any("tentative" in sh("ip", "-n", ns, "-o", "addr").stdout for ns in LAB):
            break
        time.sleep(0.1)
    return lab_state()


def lab_state() -> dict:
    """Everything of the lab that a trace must not change: links and their flags, addresses,
    routes, neighbours' existence, every net sysctl (but the conntrack entry count, which the
    probes' own flows move), the rules of every table and the filter table's counters."""
    state = {}
    for ns in LAB:
        links = json.loads(sh("ip", "-n", ns, "-j", "-d", "link").stdout)
        state[f"{ns} links"] = sorted((l["ifname"], l.get("operstate"), tuple(l["flags"]),
                                       l.get("master"), l.get("mtu")) for l in links)
        state[f"{ns} addrs"] = sh("ip", "-n", ns, "-o", "addr").stdout
        state[f"{ns} routes"] = sh("ip", "-n", ns, "route", "show", "table", "all").stdout
        sysctls = sh("ip", "netns", "exec", ns, "sysctl", "-a", check=False).stdout
        state[f"{ns} sysctls"] = [l for l in sysctls.splitlines()
                                  if l.startswith("net.") and "nf_conntrack_count" not in l]
    saved = sh("ip", "netns", "exec", "ndlab-host", "iptables-save", "-c").stdout
    table = None
    rules, filter_counters = [], []
    for line in saved.splitlines():
        if line.startswith("*"):
            table = line[1:]
        if line.startswith(("#",)):
            continue
        rules.append(line.split("] ", 1)[1] if line.startswith("[") else
                     line.split(" [", 1)[0])
        if table == "filter":
            filter_counters.append(line)
    state["rules"] = rules
    state["filter counters"] = filter_counters  # the probes never reach FORWARD here
    # Every table's rules as nft lists them; their counters are the IPv4 filter ones above
    # (the dual-stack lab's own IPv6 chatter, router and multicast listener messages, moves
    # the ip6 counters by itself).
    nft = sh("ip", "netns", "exec", "ndlab-host", "nft", "list", "ruleset").stdout
    state["nft"] = re.sub(r"counter packets \d+ bytes \d+", "counter", nft)
    return state


def _wait_for_record(timeout=15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name in (os.listdir(RUNS) if os.path.isdir(RUNS) else ()):
            try:
                with open(os.path.join(RUNS, name)) as f:
                    if any(o["kind"] == "tracefs-instance" for o in json.load(f)["objects"]):
                        return
            except (OSError, ValueError, KeyError):
                pass
        time.sleep(0.02)
    raise AssertionError("the trace never armed its tracefs instance")


def _start_trace(*args) -> subprocess.Popen:
    return subprocess.Popen(netdoctor_exe() + ["trace", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_random_interrupts_leave_the_host_exactly_as_it_was(healed):
    """52 traces, each hit by SIGINT or SIGTERM after a random delay that covers start-up,
    the checks, arming, the probe window and the report."""
    # Forwarding off: the probes never reach FORWARD, so rule counters must not move at all.
    assert netdoctor("lab", "break", "ip-forward-off").returncode == 0
    seed = int(os.environ.get("NETDOCTOR_TEST_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    host_before, lab_before = host_state(), settled_lab_state()
    # The delays span the run and a little after it, however fast the run has become.
    started = time.monotonic()
    _start_trace("test", "203.0.113.80", "--timeout", "1.5").communicate(timeout=60)
    span = 1.4 * (time.monotonic() - started)
    outcomes = []
    for i in range(52):
        signame = ("SIGINT", "SIGTERM")[i % 2]
        delay = rng.uniform(0.0, span)  # the probes are dropped at once: no waiting out 1.5 s
        proc = _start_trace("test", "203.0.113.80", "--timeout", "1.5")
        time.sleep(delay)
        proc.send_signal(getattr(signal, signame))
        out, err = proc.communicate(timeout=60)
        outcomes.append((signame, round(delay, 2), proc.returncode))
        # Interrupted: 130, one line. Finished before the signal: its verdict (1).
        # Killed by the signal before Python installed its handler: -2/-15 (nothing exists yet).
        assert proc.returncode in (130, 1, -2, -15), (seed, signame, delay, proc.returncode, err)
        if proc.returncode == 130:
            assert err.strip().splitlines() == ["netdoctor: interrupted"], (seed, delay, err)
        assert startup_or_clean(err), (seed, delay, err)
    assert host_state() == host_before, seed
    assert lab_state() == lab_before, seed
    # The delays really did land in every phase: some early, some mid-run, some after.
    codes = [c for _, _, c in outcomes]
    assert codes.count(130) >= 20, (span, outcomes)


def test_sigkill_leaves_residue_that_cleanup_removes(healed):
    # Without NAT the replies are lost beyond the host: the probe waits its whole timeout.
    assert netdoctor("lab", "break", "nat-missing").returncode == 0
    before = host_state()
    proc = _start_trace("test", "203.0.113.80", "--timeout", "5")
    try:
        _wait_for_record()
        time.sleep(0.2)
    finally:
        proc.kill()
        proc.communicate(timeout=30)
    left = host_state()
    assert left != before  # the tracefs instance, its record (and a private mount if any)
    assert any(n.startswith(f"netdoctor-{proc.pid}-") for n in tracefs_instances())

    res = netdoctor("cleanup", "--dry-run")
    assert res.returncode == 1 and "would remove: tracefs-instance" in res.stdout, res.stdout
    assert host_state() == left  # a dry run removes nothing

    rc, doc = netdoctor_json("cleanup")
    assert rc == 0, doc
    removed = {r["kind"] for r in doc["residue"] if r["removed"]}
    assert {"tracefs-instance", "run-record"} <= removed
    assert all(r["owner_pid"] == proc.pid for r in doc["residue"])
    assert host_state() == before

    res = netdoctor("cleanup")
    assert res.returncode == 0 and res.stdout.strip() == "nothing to clean up"


def test_cleanup_leaves_a_running_trace_alone(healed):
    assert netdoctor("lab", "break", "nat-missing").returncode == 0  # a 3 s probe window
    before = host_state()
    proc = _start_trace("test", "203.0.113.80", "--timeout", "3", "--format", "json")
    try:
        _wait_for_record()
        res = netdoctor("cleanup")
        assert res.returncode == 0, res.stderr
        assert f"left alone: run {proc.pid} is still running" in res.stdout
        assert any(n.startswith(f"netdoctor-{proc.pid}-") for n in tracefs_instances())
    finally:
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    verdict = json.loads(out)["verdict"]
    assert verdict["cause"] == "nat-missing"
    assert "tracefs" in verdict["evidence_used"]  # cleanup did not take its instance away
    assert host_state() == before


@pytest.mark.parametrize("fault,expected", [
    (None, {"test": (None, None, None), "web": (None, None, None)}),
    # One container broken and one healthy at the same time: neither run may take the
    # other's probes, counters or kernel events for its own.
    ("forward-drop", {"test": ("forward-dropped", "bridge", None),
                      "web": (None, None, None)}),
    # web traces a name: with forwarding off its query to the nameserver stops at the
    # bridge too, so the DNS failure is the cause and forwarding off its mechanism.
    ("ip-forward-off", {"test": ("ip-forward-disabled", "bridge", None),
                        "web": ("dns-unreachable", "bridge", "ip-forward-disabled")}),
])
def test_two_traces_at_once_both_get_the_right_verdict(healed, fault, expected):
    if fault:
        assert netdoctor("lab", "break", fault).returncode == 0
    before = host_state()
    results = {}

    def run(key, *args):
        results[key] = netdoctor_json("trace", *args)

    threads = [threading.Thread(target=run, args=("test", "test", "203.0.113.80")),
               threading.Thread(target=run, args=("web", "web", "www.baidu.com"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    for key, (cause, stopped_at, mechanism) in expected.items():
        rc, doc = results[key]
        v = doc["verdict"]
        assert (v["cause"], v["stopped_at"], v["mechanism"]) == (cause, stopped_at,
                                                                  mechanism), (key, v)
        assert rc == (0 if cause is None else 1), (key, v)
        assert "tracefs" in v["evidence_used"], (key, v)
    assert host_state() == before


class RecordingProxy:
    """A UNIX socket in front of the real dockerd socket that records every HTTP request
    line netdoctor sends through it (and passes everything on unchanged)."""

    def __init__(self, upstream: str, path: str):
        import socket

        self.upstream, self.path, self.requests = upstream, path, []
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(path)
        self.server.listen(16)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        import socket

        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            up = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            up.connect(self.upstream)
            threading.Thread(target=self._pump, args=(client, up, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(up, client, False), daemon=True).start()

    def _pump(self, src, dst, record):
        import re

        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if record:
                    self.requests += re.findall(rb"(?m)^([A-Z]+) (\S+) HTTP/1\.[01]\r$", data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(2)
                except OSError:
                    pass

    def close(self):
        self.server.close()


def test_docker_is_only_read(docker_engine, tmp_path):
    """Everything netdoctor asks the Docker daemon, during path, checks and trace, is a GET
    of a listing or an inspect; the containers are as they were."""
    docker_engine.run("ro1")
    proxy = RecordingProxy(docker_engine.sock, str(tmp_path / "proxy.sock"))
    env = dict(docker_engine.env, DOCKER_HOST=f"unix://{proxy.path}")
    listing = docker_engine.docker("ps", "-a", "--no-trunc", "--format",
                                   "{{.ID}} {{.Status}}").stdout
    try:
        for args in (("path", "ro1"), ("checks", "docker:ro1", "--no-dns-probe"),
                     ("trace", "ro1", "203.0.113.80"), ("checks", "--no-dns-probe")):
            res = netdoctor(*args, env=env)
            assert res.returncode in (0, 1) and "Traceback" not in res.stderr, (args, res.stderr)
    finally:
        proxy.close()
        after = docker_engine.docker("ps", "-a", "--no-trunc", "--format",
                                     "{{.ID}} {{.Status}}").stdout
        docker_engine.docker("rm", "-f", "ro1", check=False)
    assert proxy.requests, "netdoctor did not ask Docker anything"
    methods = {m.decode() for m, _ in proxy.requests}
    assert methods == {"GET"}, proxy.requests
    import re

    for _, target in proxy.requests:
        path = re.sub(r"^/v[\d.]+", "", target.decode()).split("?")[0]
        assert path in ("/_ping", "/version", "/containers/json") or \
            re.fullmatch(r"/containers/[^/]+/json", path), target
    # Same containers, still running (Status says "Up N seconds": compare IDs and state).
    assert [l.split()[:2] for l in after.splitlines()] == \
        [l.split()[:2] for l in listing.splitlines()]

"""python -m bench [--only checks|trace|load|startup] [--sizes 10,100,1000] [--rules 100,10000]
                 [--shapes full,...|all] [--repeat 3] [--json FILE]

Every figure is a ratio against a baseline measured in the same run:

checks at scale: a host namespace with N container namespaces on one bridge and R rules of
one shape (full 5-tuples, source only, ports only, interface matches, conntrack states,
kube-proxy's chain per service and endpoint, a native nft set). The floor is the fastest
raw gathering a shell script does for the same facts: one `ip -j -d -batch` per namespace
(links, addresses, routes, neighbours), both iptables backends' save, nft -j, the sysctls.
The old floor (three `ip` processes per namespace) is reported beside it. netdoctor's figure
is `netdoctor checks` on all N containers, its DNS probe included (the containers use the
machine's resolv.conf, whose nameserver they cannot reach), measured once the bridge is
quiet, twice: its first run (the containers' gateway entries not made yet, for the first
shape) and again.

trace: time-to-verdict on the lab (healthy, request dropped, reply dropped, DNS failure)
against the manual method scripted as a person runs it to reach a verdict: tcpdump on the
four hops, one ping of the same destination from the container (by name where netdoctor is
given a name), captures stopped, and the reads the runbook asks for (iptables-save, nft
list ruleset, ip_forward, rp_filter, routes and neighbours of both namespaces). The old
comparison (captures and ping only) is the second figure.

load: traces while UDP blasters in the lab push background traffic through the same veth,
bridge and uplink; each must localise its fault. Reports the background rate, the frames the
capture sockets copied to user space per probe, and netdoctor's CPU time.

startup: `netdoctor --help` and `netdoctor checks` in an empty namespace against
`python -c pass`, the interpreter's own floor.

Builds its own sealed namespaces (ndb-*) and the lab, and removes them. netdoctor's modules are
byte-compiled first, as `pip install` leaves them: an editable checkout run with
PYTHONDONTWRITEBYTECODE would otherwise compile every module on every run.
"""

import argparse
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import sysconfig
import time
import uuid

PREFIX = "ndb-"
PAUSE = 2.0  # seconds between timed trace runs, for the ICMP rate limit to refill


def netdoctor_exe() -> str:
    """The console script next to this interpreter: a version manager's shim on PATH (pyenv)
    would add its own start-up to every figure."""
    script = os.path.join(sysconfig.get_path("scripts"), "netdoctor")
    return script if os.access(script, os.X_OK) else shutil.which("netdoctor")


def compile_netdoctor() -> None:
    """Byte-compile netdoctor's modules where they are imported from, as pip does on install."""
    import compileall
    import importlib

    for pkg in ("diagnose", "checks", "capture"):
        for folder in importlib.import_module(f"netdoctor.{pkg}").__path__:
            compileall.compile_dir(folder, quiet=1)


def sh(argv, input=None, check=True):
    r = subprocess.run(argv, input=input, capture_output=True, text=True)
    if check and r.returncode:
        raise RuntimeError(f"{' '.join(argv)}: {r.stderr.strip()}")
    return r


def _quad(i):
    return (i >> 16) & 0xFF, (i >> 8) & 0xFF, i & 0xFF


def _bench_chain(count, rule):
    """count rules, rule(i) each, in a chain BENCH that FORWARD jumps to."""
    return [":BENCH - [0:0]", "-A FORWARD -j BENCH"] + [f"-A BENCH {rule(i)}"
                                                        for i in range(count)]


def _source(i):
    a, b, c = _quad(i)
    return f"10.{a}.{b}.{c}/32"


def _full(count):
    """A source, a destination and a port on every rule: the walk prunes on the address."""
    return _bench_chain(count, lambda i: f"-s {_source(i)} -d 192.0.2.{i & 0xFF}/32 -p tcp "
                                         f"--dport {1024 + i % 50000} "
                                         f"-j {'DROP' if i % 3 else 'ACCEPT'}")


def _source_only(count):
    return _bench_chain(count, lambda i: f"-s {_source(i)} -j DROP")


def _ports_only(count):
    """Only a port (no address): every rule is a candidate for every container."""
    return _bench_chain(count, lambda i: f"-p {'tcp' if i % 2 else 'udp'} "
                                         f"--dport {20000 + i % 40000} -j DROP")


def _interfaces(count):
    """Interface matches of devices the containers' traffic never uses."""
    return _bench_chain(count, lambda i: f"-i tap{i} -o tun{i % 97} -j DROP")


def _conntrack(count):
    """State matches with a source, firewalld's and Docker's habit."""
    states = ("NEW", "INVALID", "RELATED,ESTABLISHED")
    return _bench_chain(count, lambda i: f"-m conntrack --ctstate {states[i % 3]} "
                                         f"-s {_source(i)} -j DROP")


def _kube_proxy(count):
    """kube-proxy's iptables mode: a services chain with one rule per service, each jumping
    to its own chain, which jumps to one chain per endpoint."""
    out = [":KUBE-SERVICES - [0:0]", "-A FORWARD -j KUBE-SERVICES"]
    services = max(1, count // 3)
    for i in range(services):
        a, b, c = _quad(i)
        svc, ep = f"KUBE-SVC-{i:08X}", f"KUBE-SEP-{i:08X}"
        out += [f":{svc} - [0:0]", f":{ep} - [0:0]",
                f"-A KUBE-SERVICES -d 10.96.{b}.{c}/32 -p tcp --dport {80 + a} -j {svc}",
                f"-A {svc} -j {ep}",
                f"-A {ep} -s 10.244.{b}.{c}/32 -j DROP"]
    return out


# The rule shapes the benchmark puts on the host (R rules each); "nft-set" is a native nft
# table whose forward chain drops what is in a set of R addresses (firewalld and ipset style).
RULE_SHAPES = {"full": _full, "source-only": _source_only, "ports-only": _ports_only,
               "interfaces": _interfaces, "conntrack": _conntrack, "kube-proxy": _kube_proxy,
               "nft-set": None}


class Topology:
    """ndb-<id>-host with bridge br0 (10.x.y.1/16) and N container namespaces on it."""

    def __init__(self, n):
        self.n = n
        self.tag = uuid.uuid4().hex[:4]
        self.host = f"{PREFIX}{self.tag}-host"
        self.containers = [f"{PREFIX}{self.tag}-c{i}" for i in range(n)]
        self.rules = 0
        self.shape = None
        self.probed = False  # netdoctor's DNS probe has made the containers' gateway entries

    def __enter__(self):
        sh(["ip", "netns", "add", self.host])
        try:
            batch = [f"netns add {c}" for c in self.containers]
            sh(["ip", "-batch", "-"], input="\n".join(batch) + "\n")
            cmds = ["link add br0 type bridge", "addr add 172.20.0.1/16 dev br0",
                    "link set br0 up", "link set lo up"]
            for i, c in enumerate(self.containers):
                cmds.append(f"link add v{i} type veth peer name eth0 netns {c}")
                cmds.append(f"link set v{i} master br0 up")
            sh(["ip", "-n", self.host, "-batch", "-"], input="\n".join(cmds) + "\n")
            for i, c in enumerate(self.containers):
                a, b = divmod(i + 2, 256)
                sh(["ip", "-n", c, "-batch", "-"], input=(
                    f"addr add 172.20.{a}.{b}/16 dev eth0\nlink set eth0 up\nlink set lo up\n"
                    f"route add default via 172.20.0.1\n"))
            self.settle()
        except BaseException:
            self.close()
            raise
        return self

    def settle(self, quiet_s=5.0, limit_s=90.0):
        """Wait until br0 is quiet: a thousand links just brought up flood it with their
        IPv6 start-up (duplicate address detection, MLD reports, router solicitations 4 s
        apart, each to every port) for about twenty seconds, which would load the floor
        and netdoctor alike with work a host that has been up does not have."""
        def received():
            r = sh(["ip", "-n", self.host, "-s", "-j", "link", "show", "br0"])
            return json.loads(r.stdout)[0]["stats64"]["rx"]["packets"]
        deadline = time.monotonic() + limit_s
        last, since = received(), time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.25)
            now = received()
            if now != last:
                last, since = now, time.monotonic()
            elif time.monotonic() - since >= quiet_s:
                return

    def set_rules(self, count, shape="full"):
        """count rules of one shape a busy host has, in chains FORWARD jumps to, none
        matching the containers' traffic (see RULE_SHAPES)."""
        self.clear_rules()
        if shape == "nft-set":
            elements = ", ".join(f"10.{(i >> 16) & 0xFF}.{(i >> 8) & 0xFF}.{i & 0xFF}"
                                 for i in range(count))
            sh(["ip", "netns", "exec", self.host, "nft", "-f", "-"], input=(
                "table inet benchfw {\n set blocked {\n type ipv4_addr\n elements = { "
                + elements + " }\n }\n chain bench_forward {\n type filter hook forward "
                "priority -10;\n policy accept;\n ip saddr @blocked counter drop\n"
                " ip daddr @blocked counter drop\n }\n}\n"))
        else:
            lines = ["*filter"] + RULE_SHAPES[shape](count) + ["COMMIT"]
            sh(["ip", "netns", "exec", self.host, "iptables-restore", "--noflush"],
               input="\n".join(lines) + "\n")
        self.rules, self.shape = count, shape

    def clear_rules(self):
        """The host's filter table and native tables as they were: empty."""
        sh(["ip", "netns", "exec", self.host, "iptables-restore"],
           input="*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
                 "COMMIT\n")
        sh(["ip", "netns", "exec", self.host, "nft", "delete", "table", "inet", "benchfw"],
           check=False)
        self.rules = 0

    def close(self):
        names = [self.host] + self.containers
        sh(["ip", "-batch", "-"], input="".join(f"netns del {n}\n" for n in names), check=False)

    def __exit__(self, *exc):
        self.close()


def timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def floor(topo):
    """The old floor: three `ip` processes per namespace, iptables-save, nft, the sysctls."""
    def run():
        for ns in [topo.host] + topo.containers:
            for args in (["-j", "-d", "addr"], ["-j", "route", "show", "table", "all"],
                         ["-j", "neigh"]):
                sh(["ip", "-n", ns] + args)
        sh(["ip", "netns", "exec", topo.host, "iptables-save", "-c"])
        sh(["ip", "netns", "exec", topo.host, "nft", "-j", "list", "ruleset"], check=False)
        sh(["ip", "netns", "exec", topo.host, "sysctl", "net.ipv4.ip_forward",
            "net.ipv4.conf.all.rp_filter"])
    return timed(run)


BATCH = "link show\naddr show\nroute show table all\nneigh show\n"


def batched_floor(topo):
    """The fastest way a shell script gathers the same facts: one `ip -j -d -batch` per
    namespace (links, addresses, routes, neighbours in one process), both iptables backends'
    save, nft's JSON ruleset and the host's sysctls."""
    def run():
        for ns in [topo.host] + topo.containers:
            sh(["ip", "-j", "-d", "-n", ns, "-batch", "-"], input=BATCH)
        for save in ("iptables-nft-save", "iptables-legacy-save"):
            sh(["ip", "netns", "exec", topo.host, save, "-c"], check=False)
        sh(["ip", "netns", "exec", topo.host, "nft", "-j", "list", "ruleset"], check=False)
        sh(["ip", "netns", "exec", topo.host, "sysctl", "net.ipv4.ip_forward",
            "net.ipv4.conf.all.rp_filter", "net.ipv6.conf.all.forwarding"])
    return timed(run)


def netdoctor_checks(topo, dns_probe=True):
    exe = netdoctor_exe()
    argv = ["ip", "netns", "exec", topo.host, exe, "checks", "--format", "json"]
    if not dns_probe:
        argv.insert(5, "--no-dns-probe")
    argv += [f"netns:{c}" for c in topo.containers]

    def run():
        r = sh(argv, check=False)
        if r.returncode not in (0, 1):
            raise RuntimeError(f"netdoctor checks failed: {r.stderr.strip()}")
        doc = json.loads(r.stdout)
        assert len(doc["targets"]) == topo.n, "not every container was checked"
    return timed(run)


# ------------------------------------------------------------------ trace time-to-verdict

HOPS = (("ndlab-test", "eth0"), ("ndlab-host", "veth-test"), ("ndlab-host", "ndbr0"),
        ("ndlab-host", "eth0"))
TRACE_SCENARIOS = {
    # name: (how to break the lab, destination)
    "healthy": ([], "203.0.113.80"),
    "request dropped": ([["netdoctor", "lab", "break", "forward-drop"]], "203.0.113.80"),
    "reply dropped": ([["ip", "netns", "exec", "ndlab-host", "iptables", "-D", "NDLAB-FORWARD",
                        "-o", "ndbr0", "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED",
                        "-j", "ACCEPT"]], "203.0.113.80"),
    "DNS failure": ([["netdoctor", "lab", "break", "dns-unreachable"]], "www.baidu.com"),
}


# The reads the runbook asks for besides the captures, as a person types them.
MANUAL_READS = (
    ["ip", "netns", "exec", "ndlab-host", "iptables-save", "-c"],
    ["ip", "netns", "exec", "ndlab-host", "nft", "list", "ruleset"],
    ["ip", "netns", "exec", "ndlab-host", "sysctl", "net.ipv4.ip_forward",
     "net.ipv4.conf.all.rp_filter", "net.ipv4.conf.ndbr0.rp_filter"],
    ["ip", "-n", "ndlab-host", "route"], ["ip", "-n", "ndlab-host", "neigh"],
    ["ip", "-n", "ndlab-test", "route"], ["ip", "-n", "ndlab-test", "neigh"],
)


def manual_method(dest, reads=True):
    """What a person runs to reach a verdict: tcpdump on the four hops, one ping, the
    captures stopped, and the reads the runbook asks for (rules, forwarding, rp_filter,
    routes and neighbours of both namespaces). reads=False: the captures and ping only."""
    if reads:
        for argv in MANUAL_READS:
            sh(argv, check=False)
    dumps = []
    try:
        for ns, dev in HOPS:
            p = subprocess.Popen(["ip", "netns", "exec", ns, "tcpdump", "-ni", dev, "-w",
                                  "/dev/null", "icmp or udp port 53"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            dumps.append(p)
        for p in dumps:
            p.stderr.readline()  # "listening on ...": armed
        sh(["ip", "netns", "exec", "ndlab-test", "busybox", "ping", "-c", "1", "-W", "1",
            dest], check=False)
    finally:
        for p in dumps:
            p.terminate()
        for p in dumps:
            p.wait()


def trace_bench(repeat):
    rows = []
    brought_up = not os.path.exists("/run/netns/ndlab-host")
    if brought_up:
        sh(["netdoctor", "lab", "up"])
    try:
        for name, (steps, dest) in TRACE_SCENARIOS.items():
            sh(["netdoctor", "lab", "heal"])
            for step in steps:
                sh(step)
            # Taken in turns, with a pause: a refused DNS query is answered by an ICMP error,
            # and the kernel allows a host only a few of those per second (icmp_ratelimit).
            # Whichever method ran second would otherwise meet a silent server.
            base, captures_only, nd = [], [], []
            for _ in range(repeat):
                base.append(timed(lambda: manual_method(dest)))
                time.sleep(PAUSE)
                captures_only.append(timed(lambda: manual_method(dest, reads=False)))
                time.sleep(PAUSE)
                nd.append(timed(lambda: sh([netdoctor_exe(), "trace", "test", dest],
                                           check=False)))
                time.sleep(PAUSE)
            base.sort()
            captures_only.sort()
            nd.sort()
            b, t = base[len(base) // 2], nd[len(nd) // 2]
            c = captures_only[len(captures_only) // 2]
            rows.append({"bench": "trace", "scenario": name, "manual_s": round(b, 3),
                         "netdoctor_s": round(t, 3), "ratio": round(t / b, 2),
                         "captures_only_s": round(c, 3), "ratio_captures_only": round(t / c, 2)})
            print(f"trace   {name:<16} manual {b:6.2f} s  netdoctor {t:6.2f} s  "
                  f"ratio {t / b:5.2f}  (captures and ping only {c:6.2f} s, ratio "
                  f"{t / c:5.2f})", flush=True)
    finally:
        if brought_up:
            sh(["netdoctor", "lab", "down"], check=False)
        else:
            sh(["netdoctor", "lab", "heal"], check=False)
    return rows


# ------------------------------------------------------------------ capture under load

BLASTER = """
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
dst, end, payload = (sys.argv[1], 9), time.monotonic() + float(sys.argv[2]), b"x" * 18
while time.monotonic() < end:
    for _ in range(2000):
        try:
            s.sendto(payload, dst)
        except OSError:
            time.sleep(0.001)
"""

# fault -> (cause, stopped_at) the trace must give, with the background traffic running
LOAD_SCENARIOS = (("healthy", None, None), ("forward-drop", "forward-dropped", "bridge"),
                  ("ip-forward-off", "ip-forward-disabled", "bridge"),
                  ("nat-missing", "nat-missing", "uplink"), ("veth-down", "veth-down", None))


def _link_packets(ns, dev):
    out = sh(["ip", "-n", ns, "-j", "-s", "link", "show", "dev", dev]).stdout
    stats = json.loads(out)[0]["stats64"]
    return stats["rx"]["packets"] + stats["tx"]["packets"]


def _traced(argv):
    """(stdout, cpu seconds of the process) for one run of argv."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = subprocess.run(argv, capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    user = after.ru_utime - before.ru_utime
    system = after.ru_stime - before.ru_stime
    return r, (user + system, user)


def load_bench(runs=10):
    rows = []
    brought_up = not os.path.exists("/run/netns/ndlab-host")
    if brought_up:
        sh(["netdoctor", "lab", "up"])
    blasters = []
    try:
        sh(["netdoctor", "lab", "heal"])
        # One blaster per container: the test container's own veth and the bridge and uplink
        # carry the traffic (the web blaster keeps the bridge and uplink busy when a fault
        # stops the test container's traffic).
        for ns in ("ndlab-test", "ndlab-web"):
            blasters.append(subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c",
                                              BLASTER, "203.0.113.80", "3600"]))
        time.sleep(1.0)
        correct, per_probe, cpus, users, rates, drops = 0, [], [], [], [], 0
        for i in range(runs):
            fault, cause, where = LOAD_SCENARIOS[i % len(LOAD_SCENARIOS)]
            sh(["netdoctor", "lab", "heal"])
            if fault != "healthy":
                sh(["netdoctor", "lab", "break", fault])
            p0, t0 = _link_packets("ndlab-host", "ndbr0"), time.monotonic()
            r, (cpu, user) = _traced([netdoctor_exe(), "trace", "test", "203.0.113.80",
                                      "--format", "json"])
            rate = (_link_packets("ndlab-host", "ndbr0") - p0) / (time.monotonic() - t0)
            doc = json.loads(r.stdout)
            v, ev = doc["verdict"], doc["evidence"]
            ok = (v["cause"], v["stopped_at"]) == (cause, where)
            correct += ok
            probes = max(1, doc["probe"]["count"] + (1 if doc.get("pmtu") else 0))
            per_probe.append(ev["frames_copied"] / probes)
            drops += ev.get("capture_drops", 0)
            cpus.append(cpu)
            users.append(user)
            rates.append(rate)
            print(f"load    run {i + 1:2} {fault:<15} {'ok ' if ok else 'WRONG'} "
                  f"({v['cause']} at {v['stopped_at']})  bridge {rate / 1000:6.1f} kpps  "
                  f"copied/probe {per_probe[-1]:5.1f}  cpu {cpu:5.2f} s (user {user:4.2f})",
                  flush=True)
        # The same trace on the quiet lab, for the CPU-time ratio.
        for b in blasters:
            b.terminate()
        for b in blasters:
            b.wait()
        blasters = []
        sh(["netdoctor", "lab", "heal"])
        quiet_runs = sorted(_traced([netdoctor_exe(), "trace", "test", "203.0.113.80",
                                     "--format", "json"])[1] for _ in range(3))
        quiet, quiet_user = quiet_runs[1]
        med = sorted(cpus)[len(cpus) // 2]
        med_user = sorted(users)[len(users) // 2]
        row = {"bench": "load", "runs": runs, "correct": correct,
               "background_kpps_median": round(sorted(rates)[len(rates) // 2] / 1000, 1),
               "frames_copied_per_probe_median": round(sorted(per_probe)[len(per_probe) // 2],
                                                       1),
               "capture_drops": drops, "cpu_s_median": round(med, 3),
               "cpu_s_quiet": round(quiet, 3), "cpu_ratio": round(med / quiet, 2),
               "user_cpu_s_median": round(med_user, 3), "user_cpu_s_quiet": round(quiet_user, 3),
               "user_cpu_ratio": round(med_user / quiet_user, 2)}
        rows.append(row)
        print(f"load    {correct}/{runs} correct; background {row['background_kpps_median']} "
              f"kpps on the bridge; {row['frames_copied_per_probe_median']} frames copied per "
              f"probe; cpu {med:.2f} s under load vs {quiet:.2f} s quiet "
              f"(ratio {med / quiet:.2f}); user cpu {med_user:.2f} s vs {quiet_user:.2f} s "
              f"(ratio {med_user / quiet_user:.2f})", flush=True)
    finally:
        for b in blasters:
            b.terminate()
            b.wait()
        if brought_up:
            sh(["netdoctor", "lab", "down"], check=False)
        else:
            sh(["netdoctor", "lab", "heal"], check=False)
    return rows


# ------------------------------------------------------------------ start-up

def startup_bench(repeat):
    empty = f"{PREFIX}{uuid.uuid4().hex[:4]}-empty"
    sh(["ip", "netns", "add", empty])
    rows = []
    try:
        def median(argv):
            times = sorted(timed(lambda: sh(argv, check=False)) for _ in range(repeat))
            return times[len(times) // 2]

        floor_s = median([sys.executable, "-c", "pass"])
        for label, argv in (("--help", [netdoctor_exe(), "--help"]),
                            ("checks, empty host", ["ip", "netns", "exec", empty,
                                                    netdoctor_exe(), "checks",
                                                    "--no-dns-probe"])):
            t = median(argv)
            if label.startswith("checks"):
                # `ip netns exec` itself costs: measure it around the interpreter floor too.
                base = median(["ip", "netns", "exec", empty, sys.executable, "-c", "pass"])
            else:
                base = floor_s
            rows.append({"bench": "startup", "what": label, "floor_s": round(base, 4),
                         "netdoctor_s": round(t, 4), "ratio": round(t / base, 2)})
            print(f"startup {label:<20} python -c pass {base:6.3f} s  netdoctor {t:6.3f} s  "
                  f"ratio {t / base:5.2f}", flush=True)
    finally:
        sh(["ip", "netns", "del", empty], check=False)
    return rows


# ------------------------------------------------------------------ checks at scale

def checks_bench(sizes, rule_counts, shapes=("full",)):
    """netdoctor checks (DNS probe included) on N containers against the batched floor (and
    the old one beside it), for each rule shape; the growth exponent per shape and R says
    whether any shape makes the walk grow faster than the containers do."""
    rows = []
    for n in sizes:
        with Topology(n) as topo:
            for shape in shapes:
                for r in rule_counts:
                    topo.set_rules(r, shape)
                    old, base = floor(topo), batched_floor(topo)
                    # The first run after the namespaces were made meets containers that
                    # never sent a packet: each query resolves its gateway with an ARP
                    # broadcast to every port before it leaves. Run again, the entries are
                    # made, as on a host whose containers have been talking.
                    first_run = not topo.probed
                    nd = netdoctor_checks(topo)
                    again = netdoctor_checks(topo)
                    topo.probed = True
                    rows.append({"bench": "checks", "n": n, "rules": r, "shape": shape,
                                 "batched_floor_s": round(base, 3), "floor_s": round(old, 3),
                                 "netdoctor_s": round(nd, 3), "ratio": round(nd / base, 2),
                                 "neighbours_new": first_run,
                                 "netdoctor_again_s": round(again, 3),
                                 "ratio_again": round(again / base, 2),
                                 "ratio_old_floor": round(nd / old, 2)})
                    print(f"checks  N={n:<5} R={r:<6} {shape:<12} batched floor {base:7.2f} s  "
                          f"netdoctor {nd:7.2f} s  ratio {nd / base:5.2f}"
                          f"{' (new neighbours)' if first_run else ''}  again {again:5.2f} s "
                          f"ratio {again / base:5.2f}  (old floor {old:7.2f} s, ratio "
                          f"{nd / old:5.2f})", flush=True)
    for shape in shapes:
        for r in rule_counts:
            scale = [x for x in rows if x["rules"] == r and x["shape"] == shape]
            if len(scale) >= 2:
                a, b = scale[0], scale[-1]
                exp = math.log(b["netdoctor_s"] / a["netdoctor_s"]) / math.log(b["n"] / a["n"])
                fexp = math.log(b["batched_floor_s"] / a["batched_floor_s"]) / math.log(
                    b["n"] / a["n"])
                print(f"growth exponent at R={r} {shape} (N={a['n']}..{b['n']}): netdoctor "
                      f"{exp:.2f}, batched floor {fexp:.2f}")
                rows.append({"bench": "checks-growth-exponent", "rules": r, "shape": shape,
                             "value": round(exp, 2), "floor_value": round(fexp, 2)})
    return rows


def main():
    ap = argparse.ArgumentParser(prog="python -m bench")
    ap.add_argument("--sizes", default="10,100,1000")
    ap.add_argument("--rules", default="100,10000")
    ap.add_argument("--shapes", default="full",
                    help=f"rule shapes, comma-separated: {', '.join(RULE_SHAPES)} or all")
    ap.add_argument("--only", choices=("checks", "trace", "load", "startup"), default=None)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--runs", type=int, default=10, help="traces under load")
    ap.add_argument("--json", default="bench/results.json")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench: needs root (it builds network namespaces)")
    compile_netdoctor()
    rows = []
    if args.only in (None, "startup"):
        rows += startup_bench(max(5, args.repeat))
    if args.only in (None, "trace"):
        rows += trace_bench(args.repeat)
    if args.only in (None, "load"):
        rows += load_bench(args.runs)
    if args.only in (None, "checks"):
        shapes = tuple(RULE_SHAPES) if args.shapes == "all" else tuple(args.shapes.split(","))
        unknown = set(shapes) - set(RULE_SHAPES)
        if unknown:
            sys.exit(f"bench: unknown rule shape(s): {', '.join(sorted(unknown))}")
        rows += checks_bench([int(x) for x in args.sizes.split(",")],
                             [int(x) for x in args.rules.split(",")], shapes)
    with open(args.json, "w") as f:
        json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()

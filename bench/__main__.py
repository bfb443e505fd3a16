"""python -m bench [--only checks|trace] [--sizes 10,100,1000] [--repeat 3] [--json FILE]

trace: time-to-verdict on the lab (healthy, request dropped, reply dropped, DNS failure)
against the manual method scripted: tcpdump on the four hops, one ping, captures stopped.

checks at scale: a host namespace with N container namespaces on one bridge. The floor is
the raw gathering a shell script does for the same facts (ip -j addr/route/neigh for the
host and every container, iptables-save, nft -j, the sysctls); netdoctor's figure is
`netdoctor checks` on all N containers. Builds its own sealed namespaces, removes them.
"""

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time
import uuid

PREFIX = "ndb-"


def sh(argv, input=None, check=True):
    r = subprocess.run(argv, input=input, capture_output=True, text=True)
    if check and r.returncode:
        raise RuntimeError(f"{' '.join(argv)}: {r.stderr.strip()}")
    return r


class Topology:
    """ndb-<id>-host with bridge br0 (10.x.y.1/16) and N container namespaces on it."""

    def __init__(self, n):
        self.n = n
        self.tag = uuid.uuid4().hex[:4]
        self.host = f"{PREFIX}{self.tag}-host"
        self.containers = [f"{PREFIX}{self.tag}-c{i}" for i in range(n)]

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
        except BaseException:
            self.close()
            raise
        return self

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
    """What a shell script runs to collect the same facts."""
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


def netdoctor_checks(topo):
    exe = shutil.which("netdoctor")
    argv = ["ip", "netns", "exec", topo.host, exe, "checks", "--no-dns-probe", "--format", "json"]
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


def manual_method(dest):
    """What a person scripts today: tcpdump on the four hops, one ping, stop the captures."""
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
            base = sorted(timed(lambda: manual_method("203.0.113.80")) for _ in range(repeat))
            nd = sorted(timed(lambda: sh(["netdoctor", "trace", "test", dest], check=False))
                        for _ in range(repeat))
            b, t = base[len(base) // 2], nd[len(nd) // 2]
            rows.append({"bench": "trace", "scenario": name, "manual_s": round(b, 3),
                         "netdoctor_s": round(t, 3), "ratio": round(t / b, 2)})
            print(f"trace   {name:<16} manual {b:6.2f} s  netdoctor {t:6.2f} s  "
                  f"ratio {t / b:5.2f}", flush=True)
    finally:
        if brought_up:
            sh(["netdoctor", "lab", "down"], check=False)
        else:
            sh(["netdoctor", "lab", "heal"], check=False)
    return rows


def main():
    ap = argparse.ArgumentParser(prog="python -m bench")
    ap.add_argument("--sizes", default="10,100,1000")
    ap.add_argument("--only", choices=("checks", "trace"), default=None)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", default="bench/results.json")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench: needs root (it builds network namespaces)")
    rows = []
    if args.only in (None, "trace"):
        rows += trace_bench(args.repeat)
    for n in ([] if args.only == "trace" else [int(x) for x in args.sizes.split(",")]):
        with Topology(n) as topo:
            base = floor(topo)
            nd = netdoctor_checks(topo)
        rows.append({"bench": "checks", "n": n, "floor_s": round(base, 3),
                     "netdoctor_s": round(nd, 3), "ratio": round(nd / base, 2)})
        print(f"checks  N={n:<5} floor {base:7.2f} s  netdoctor {nd:7.2f} s  "
              f"ratio {nd / base:5.2f}", flush=True)
    scale = [r for r in rows if r["bench"] == "checks"]
    if len(scale) >= 2:
        a, b = scale[0], scale[-1]
        exp = math.log(b["netdoctor_s"] / a["netdoctor_s"]) / math.log(b["n"] / a["n"])
        print(f"growth exponent (netdoctor, N={a['n']}..{b['n']}): {exp:.2f}")
        rows.append({"bench": "checks-growth-exponent", "value": round(exp, 2)})
    with open(args.json, "w") as f:
        json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()

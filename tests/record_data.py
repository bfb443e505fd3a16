"""Record tests/data again from real namespaces: `python3 tests/record_data.py [lab] [docker]`.

Run as root on a machine where netdoctor is installed (./install.sh --dev). It builds what
it records from and removes it afterwards:
  lab     the built-in lab (`netdoctor lab up`, healthy): lab-checks-snapshot.json,
          lab-snapshot.json (test, host, web), lab-trace-east-west.json,
          lab-trace-forward-drop.json, ndlab-{host,test}.batch.json, ndlab-{host,test}.route6.json,
          route-get-forward.json, route-get-noforward.{out,err} (with forwarding off),
          nft-chain-dumps.hex (the kernel's chain dumps, with device-bound chains added)
  docker  a real dockerd in a sealed host with two containers on a user-defined network:
          docker-checks-snapshot.json, docker-iptables-save-c.txt, docker-nft.json,
          docker-plus-native-nft.json (the same with a native `inet fw` table added)
  overlay two hosts wired like flannel's VXLAN backend (sandbox.FlannelPair):
          flannel-snapshot.json (a pod's facts, toward the other host's pod)
  ufw     the lab's host with ufw enabled (sandbox.UfwIn) and the lab's own FORWARD jump
          deleted: ufw-iptables-save.txt
Names and addresses are the lab's and the sealed host's, so the unit tests' expectations
(172.29.0.2, ndbr0, veth-test, ...) hold for a new recording; inode numbers and MACs change.
Review the diff before committing it.
"""

import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import recorded  # noqa: E402
from sandbox import DockerEngine, SealedHost, netdoctor, sh  # noqa: E402

IP_BATCH = "addr show\nroute show table all\nneigh show\n"


def write(name: str, content: str) -> None:
    with open(recorded.path(name), "w") as f:
        f.write(content)
    print(f"recorded {name} ({len(content)} bytes)")


def ip(ns: str, *args, input=None, check=True):
    return sh("ip", "-n", ns, *args, input=input, check=check)


def record_lab() -> None:
    from netdoctor.diagnose.host import gather, netns

    up = netdoctor("lab", "up")
    if up.returncode != 0:
        raise SystemExit(f"lab up failed: {up.stderr.strip()}")
    try:
        snap = os.path.join(recorded.DATA, "lab-checks-snapshot.json")
        res = netdoctor("snapshot", "lab:test", "lab:web", "-o", snap)
        if res.returncode != 0:
            raise SystemExit(f"snapshot failed: {res.stderr.strip()}")
        print("recorded lab-checks-snapshot.json")
        for ns in ("ndlab-host", "ndlab-test"):
            write(f"{ns}.batch.json", ip(ns, "-j", "-d", "-batch", "-", input=IP_BATCH).stdout)
            write(f"{ns}.route6.json", ip(ns, "-j", "-6", "route", "show", "table", "all").stdout)
        spaces = {name: netns.named(name)
                  for name in ("ndlab-test", "ndlab-host", "ndlab-inet", "ndlab-web")}
        recorded_spaces = ("ndlab-test", "ndlab-host", "ndlab-web")
        doc = {name: gather.read_namespace(spaces[name]).to_dict() for name in recorded_spaces}
        # Which id each namespace gives the others: what IFLA_LINK_NETNSID values name.
        doc["nsids"] = {}
        for viewer in recorded_spaces:
            others = [ns for name, ns in spaces.items() if name != viewer]
            ids = gather.nsids_of(spaces[viewer], others)
            doc["nsids"][str(spaces[viewer].inode)] = {
                str(i): ns.inode for i, ns in zip(ids, others) if i is not None}
        write("lab-snapshot.json", json.dumps(doc, indent=1) + "\n")
        # Trace documents, for the reports drawn from saved runs.
        east_west = netdoctor("trace", "lab:test", "lab:web", "--format", "json")
        write("lab-trace-east-west.json", east_west.stdout)
        netdoctor("lab", "break", "forward-drop")
        dropped = netdoctor("trace", "lab:test", "203.0.113.80", "--format", "json")
        write("lab-trace-forward-drop.json", dropped.stdout)
        netdoctor("lab", "heal")
        query = ("route", "get", "203.0.113.80", "from", "172.29.0.2", "iif", "ndbr0")
        write("route-get-forward.json", ip("ndlab-host", "-j", *query).stdout)
        netdoctor("lab", "break", "ip-forward-off")
        refused = ip("ndlab-host", "-j", *query, check=False)
        write("route-get-noforward.out", refused.stdout)
        write("route-get-noforward.err", refused.stderr)
        record_chain_dumps("ndlab-host")
    finally:
        netdoctor("lab", "down")


DEVICE_CHAINS = """table netdev f {
    chain c { type filter hook ingress devices = { veth-test, veth-web } priority 0; }
    chain d { type filter hook egress device eth0 priority 0; }
    chain plain { }
    chain w { type filter hook ingress devices = { "vx*" } priority 0; }
}
table inet g {
    chain i { type filter hook ingress device ndbr0 priority 0; }
    chain fw { type filter hook forward priority 0; }
}
"""


def record_chain_dumps(ns: str) -> None:
    """The kernel's NFT_MSG_GETCHAIN dumps of the netdev and the inet family, as hex, with
    DEVICE_CHAINS added for the time of the recording."""
    code = """
import socket, struct, sys
from netdoctor.diagnose.host import nfnetlink as n
with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, n.NETLINK_NETFILTER) as s:
    for seq, family in enumerate((5, 1), 1):
        s.send(struct.pack("=IHHIIBBH", 20, n.NFT_GETCHAIN, 1 | n.NLM_F_DUMP, seq, 0,
                           family, 0, 0))
        dump = b""
        while not n.parse_nft_chain_answers(dump)[1]:
            dump += s.recv(65536)
        print(dump.hex())
"""
    sh("ip", "netns", "exec", ns, "nft", "-f", "-", input=DEVICE_CHAINS)
    try:
        dumps = sh("ip", "netns", "exec", ns, sys.executable, "-c", code).stdout
    finally:
        sh("ip", "netns", "exec", ns, "nft", "delete", "table", "netdev", "f")
        sh("ip", "netns", "exec", ns, "nft", "delete", "table", "inet", "g")
    write("nft-chain-dumps.hex",
          "# NFT_MSG_GETCHAIN dumps of a real namespace (tests/record_data.py): netdev, then\n"
          "# inet, with these tables added:\n"
          + "".join(f"# {line}\n" for line in DEVICE_CHAINS.splitlines()) + dumps)


def record_overlay() -> None:
    from sandbox import FlannelPair

    with FlannelPair("rec") as pair:
        out = recorded.path("flannel-snapshot.json")
        res = netdoctor("snapshot", f"netns:{pair.pods[0]}", "--dest", pair.pod_ip(1),
                        "--no-dns-probe", "-o", out)
        if res.returncode != 0:
            raise SystemExit(f"snapshot failed: {res.stderr.strip()}")
        print("recorded flannel-snapshot.json")


NATIVE_TABLE = """table inet fw {
    chain forward_filter {
        type filter hook forward priority -10; policy accept;
        ip saddr 10.99.0.0/16 counter drop
    }
}
"""


def record_docker() -> None:
    with SealedHost("rec") as sealed:
        engine = DockerEngine(sealed).start()
        try:
            engine.docker("network", "create", "--subnet", "172.30.0.0/24", "appnet")
            for name in ("web1", "web2"):
                engine.run(name)
            snap = os.path.join(recorded.DATA, "docker-checks-snapshot.json")
            res = netdoctor("snapshot", "docker:web1", "docker:web2", "-o", snap,
                            env=engine.env)
            if res.returncode != 0:
                raise SystemExit(f"snapshot failed: {res.stderr.strip()}")
            print("recorded docker-checks-snapshot.json")

            def in_host(*argv, input=None):
                return sh("ip", "netns", "exec", sealed.host, *argv, input=input).stdout

            write("docker-iptables-save-c.txt", in_host("iptables-save", "-c"))
            write("docker-nft.json", in_host("nft", "-j", "list", "ruleset"))
            in_host("nft", "-f", "-", input=NATIVE_TABLE)
            write("docker-plus-native-nft.json", in_host("nft", "-j", "list", "ruleset"))
        finally:
            engine.stop()


def record_ufw() -> None:
    from sandbox import UfwIn

    up = netdoctor("lab", "up")
    if up.returncode != 0:
        raise SystemExit(f"lab up failed: {up.stderr.strip()}")
    try:
        with UfwIn("ndlab-host"):
            sh("ip", "netns", "exec", "ndlab-host", "iptables", "-D", "FORWARD", "-j",
               "NDLAB-FORWARD")
            saved = sh("ip", "netns", "exec", "ndlab-host", "iptables-save").stdout
        lines = [re.sub(r"\[\d+:\d+\]", "[0:0]", line) for line in saved.splitlines()
                 if not line.startswith(("# Generated", "# Completed"))]
        write("ufw-iptables-save.txt", UFW_HEADER + "\n".join(lines) + "\n")
    finally:
        netdoctor("lab", "down")


UFW_HEADER = """\
# ufw 0.36.2 enabled (ufw --force enable, Debian's defaults: deny incoming, deny routed) in the
# lab's host namespace, whose own NDLAB-FORWARD jump was then deleted: a host whose container
# runtime writes no FORWARD rules of its own (podman with CNI, LXD, k3s), recorded with
# iptables-save
"""


if __name__ == "__main__":
    if os.geteuid() != 0:
        raise SystemExit("record_data.py builds namespaces: run it as root")
    what = sys.argv[1:] or ["lab", "docker", "overlay", "ufw"]
    for part in what:
        {"lab": record_lab, "docker": record_docker, "overlay": record_overlay,
         "ufw": record_ufw}[part]()
    subprocess.run(["git", "-C", HERE, "diff", "--stat", "--", "data"])

"""checks' DNS probe at scale: 200 containers whose nameserver never answers (an on-link
address nobody holds) each get their dns-unreachable finding, from one probe window (all
queries are in flight at once; bench/ measures how long that takes)."""

import os
import shutil

from sandbox import netdoctor_json, sh

N = 200
HOST = "ndt-dnsscale-host"
NAMES = [f"ndt-dnsscale-{i}" for i in range(N)]
SILENT = "10.88.255.254"  # on the containers' link, held by nobody: ARP goes unanswered


def test_every_container_with_a_silent_nameserver_gets_its_finding():
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
        rc, doc = netdoctor_json("checks", *[f"netns:{n}" for n in NAMES], "--only",
                                 "dns-unreachable", timeout=300)
        assert rc == 1
        found = {f["subject"]: f for f in doc["findings"] if f["id"] == "dns-unreachable"}
        assert set(found) == {f"netns:{n}" for n in NAMES}
        assert {f["evidence"]["failing"][SILENT] for f in found.values()} == \
            {"no answer within 1 s"}
    finally:
        sh("ip", "-batch", "-", input="".join(f"netns del {n}\n" for n in [HOST] + NAMES),
           check=False)
        for n in NAMES:
            shutil.rmtree(f"/etc/netns/{n}", ignore_errors=True)

"""`netdoctor lab up --hosts 2 --network swarm`: the two lab hosts with a real dockerd each,
joined in one Docker Swarm, and an attachable overlay network with a container on each host.

    ndlab2-h0 (eth0 192.168.77.1) ==== underlay ==== ndlab2-h1 (ens4 192.168.77.2)
      dockerd (swarm manager)                          dockerd (swarm worker)
      ndlab2-c0 on ndov (10.0.9.0/24)                  ndlab2-c1 on ndov

Each engine keeps its data, exec-root and socket below the lab's state folder; Docker puts
the overlay's bridge and VXLAN device in a sandbox namespace bound under its exec-root
(`exec/netns/1-<network id>`), and the VXLAN socket in the host's namespace. The image is
Debian's busybox-static, imported (no registry). Every engine is started in its host's
network namespace only (as `nsenter --net`), so it sees the machine's cgroups.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import tarfile
import time

from ..errors import LabStateError
from ..host import command
from . import control

NETWORK, SUBNET, IMAGE = "ndov", "10.0.9.0/24", "ndlab/busybox:latest"
APPLETS = ("sh", "ping", "ip", "sleep", "cat", "nslookup", "wget")


def containers(hosts: tuple) -> tuple:
    return tuple(h.replace("-h", "-c") for h in hosts)  # ndlab2-h0 -> ndlab2-c0


def engine_dir(state_dir: str, i: int) -> str:
    return os.path.join(state_dir, f"docker-{i}")


def socket_of(state_dir: str, i: int) -> str:
    return f"unix://{engine_dir(state_dir, i)}/docker.sock"


def docker(state_dir: str, i: int, *args, check: bool = True, timeout: float = 60):
    env = dict(os.environ, DOCKER_HOST=socket_of(state_dir, i))
    return command.run(["docker", *args], check=check, env=env, timeout=timeout)


def start_engine(state_dir: str, host: str, i: int, limit: float = 60.0) -> int:
    """Host i's dockerd, answering on its socket: its pid."""
    d = engine_dir(state_dir, i)
    os.makedirs(d, exist_ok=True)
    pid = control._start_in_inet(
        [shutil.which("dockerd") or "dockerd", "--data-root", f"{d}/root", "--exec-root",
         f"{d}/exec", "-H", socket_of(state_dir, i), "--pidfile", f"{d}/dockerd.pid"],
        f"dockerd-{i}.log", host, state_dir)
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if docker(state_dir, i, "version", check=False, timeout=10).ok:
            return pid
        if not control._pid_alive(pid, "dockerd"):
            break
        time.sleep(0.2)
    raise LabStateError(f"dockerd did not start in {host}; see "
                        f"{os.path.join(state_dir, f'dockerd-{i}.log')}")


def _image_tar(state_dir: str) -> str:
    """A root filesystem of busybox-static, as a tar for `docker import`."""
    busybox = shutil.which("busybox") or "/bin/busybox"
    tar = os.path.join(state_dir, "rootfs.tar")
    with tarfile.open(tar, "w") as t:
        for d in ("bin", "etc", "proc", "sys", "dev", "tmp"):
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            t.addfile(info)
        t.add(busybox, "bin/busybox")
        for applet in APPLETS:
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type, info.linkname = tarfile.SYMTYPE, "busybox"
            t.addfile(info)
    return tar


def form(state_dir: str, hosts: tuple, underlay: tuple, limit: float = 30.0) -> dict:
    """The swarm, its overlay and a container on each host, once the overlay carries a
    ping between them: {"containers": {name: overlay address}, "network_id"}."""
    tar = _image_tar(state_dir)
    for i in (0, 1):
        docker(state_dir, i, "import", tar, IMAGE)
    docker(state_dir, 0, "swarm", "init", "--advertise-addr", underlay[0])
    token = docker(state_dir, 0, "swarm", "join-token", "-q", "worker").stdout.strip()
    docker(state_dir, 1, "swarm", "join", "--token", token, "--advertise-addr", underlay[1],
           f"{underlay[0]}:2377")
    docker(state_dir, 0, "network", "create", "-d", "overlay", "--attachable", "--subnet",
           SUBNET, NETWORK)
    names = containers(hosts)
    ips = {}
    for i, name in enumerate(names):
        docker(state_dir, i, "run", "-d", "--name", name, "--network", NETWORK, IMAGE,
               "sleep", "1000000")
        ips[name] = docker(state_dir, i, "inspect", "-f",
                           "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}",
                           name).stdout.split()[0]
    deadline = time.monotonic() + limit
    while not docker(state_dir, 0, "exec", names[0], "ping", "-c", "1", "-W", "1",
                     ips[names[1]], check=False).ok:
        if time.monotonic() > deadline:
            raise LabStateError("the swarm overlay did not carry a ping in 30 s")
    net_id = docker(state_dir, 0, "network", "inspect", "-f", "{{.Id}}", NETWORK).stdout.strip()
    return {"containers": ips, "network_id": net_id}


def sandbox(state_dir: str, i: int, network_id: str) -> str:
    """Host i's overlay sandbox namespace (Docker binds it as `1-<network id>`)."""
    return os.path.join(engine_dir(state_dir, i), "exec", "netns", f"1-{network_id[:10]}")


def in_sandbox(state_dir: str, i: int, network_id: str, *argv, check: bool = True):
    return command.run(["nsenter", f"--net={sandbox(state_dir, i, network_id)}", *argv],
                       check=check)


def endpoint_of(state_dir: str, j: int, name: str) -> tuple:
    """(overlay address, MAC) of host j's container."""
    doc = json.loads(docker(state_dir, j, "inspect", name).stdout)[0]
    net = doc["NetworkSettings"]["Networks"][NETWORK]
    return net["IPAddress"], net["MacAddress"]


def rewire(state_dir: str, hosts: tuple, underlay: tuple, swarm: dict) -> None:
    """Each sandbox's entries for the other host's container, as the engine writes them (a
    PERMANENT neighbour, an FDB entry to that host's address): what `lab heal` restores."""
    names = containers(hosts)
    for i in (0, 1):
        j = 1 - i
        ip, mac = endpoint_of(state_dir, j, names[j])
        in_sandbox(state_dir, i, swarm["network_id"], "ip", "neigh", "replace", ip, "lladdr",
                   mac, "dev", "vxlan0", "nud", "permanent")
        in_sandbox(state_dir, i, swarm["network_id"], "bridge", "fdb", "replace", mac, "dev",
                   "vxlan0", "dst", underlay[j], "self", "permanent")


def stop(state_dir: str, services: dict) -> list:
    """Remove the containers, end both engines (and what they started), unmount what they
    left below the state folder: what was removed."""
    removed = []
    for i in (0, 1):
        if not os.path.exists(engine_dir(state_dir, i)):
            continue
        ids = docker(state_dir, i, "ps", "-aq", check=False, timeout=20).stdout.split()
        if ids:
            docker(state_dir, i, "rm", "-f", *ids, check=False, timeout=60)
            removed += [f"container {c}" for c in ids]
        pid = services.get(f"dockerd-{i}")
        if control._pid_alive(pid, "dockerd"):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 20
            while control._pid_alive(pid, "dockerd") and time.monotonic() < deadline:
                time.sleep(0.1)
            if control._pid_alive(pid, "dockerd"):
                os.kill(pid, signal.SIGKILL)
            removed.append(f"process {pid} (dockerd)")
    unmount_below(state_dir)
    return removed


def unmount_below(path: str) -> None:
    """Lazily unmount everything mounted below path (an engine's overlay filesystems and
    the namespaces it bound under its exec-root)."""
    prefix = path.rstrip("/") + "/"
    with open("/proc/self/mounts", encoding="utf-8", errors="replace") as f:
        targets = [l.split()[1] for l in f if l.split()[1].startswith(prefix)]
    for t in sorted(targets, key=len, reverse=True):
        command.run(["umount", "-l", t])

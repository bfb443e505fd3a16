"""Sealed test hosts: namespaces the tests make and always remove.

A `SealedHost` is a "host" namespace with an uplink veth to its own "internet" namespace
(documentation addresses only), the place where a test starts dockerd or podman. Nothing
in it is routed to the machine's real interfaces.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid

NS_PREFIX = "ndt-"
BUSYBOX_APPLETS = ("sh", "ping", "ip", "wget", "nslookup", "sleep", "cat", "ifconfig", "route")


def sh(*argv, check=True, input=None, env=None, timeout=120):
    res = subprocess.run([str(a) for a in argv], capture_output=True, text=True, input=input,
                         env=env, timeout=timeout)
    if check and res.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, argv))} failed ({res.returncode}): "
                           f"{res.stderr.strip() or res.stdout.strip()}")
    return res


UFW_FILES = ("/etc/ufw", "/etc/default/ufw")


class UfwIn:
    """ufw enabled in namespace ns with Debian's defaults (deny incoming, deny routed), as
    on an Ubuntu host. ufw has no per-namespace configuration: its files (UFW_FILES) are
    the machine's, so they are copied first and put back as they were afterwards; its rules
    and sysctls are the namespace's own."""

    def __init__(self, ns: str):
        self.ns, self.saved = ns, None

    def __enter__(self):
        self.saved = tempfile.mkdtemp(prefix=NS_PREFIX + "ufw-")
        for i, path in enumerate(UFW_FILES):
            if os.path.isdir(path):
                shutil.copytree(path, os.path.join(self.saved, str(i)), symlinks=True)
            elif os.path.exists(path):
                shutil.copy2(path, os.path.join(self.saved, str(i)))
        try:
            self.ufw("--force", "enable")
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def ufw(self, *args, check=True):
        return sh("ip", "netns", "exec", self.ns, "ufw", *args, check=check)

    def __exit__(self, *exc):
        self.ufw("--force", "disable", check=False)
        # (disabled, ufw leaves its empty chains and the jumps to them)
        for prog in ("iptables", "ip6tables"):
            saved = sh("ip", "netns", "exec", self.ns, f"{prog}-save", "-t", "filter",
                       check=False).stdout
            if "ufw" in saved:
                kept = "".join(line + "\n" for line in saved.splitlines() if "ufw" not in line)
                sh("ip", "netns", "exec", self.ns, f"{prog}-restore", input=kept, check=False)
        for i, path in enumerate(UFW_FILES):
            kept = os.path.join(self.saved, str(i))
            if os.path.isdir(kept):
                shutil.rmtree(path, ignore_errors=True)
                shutil.copytree(kept, path, symlinks=True)
            elif os.path.exists(kept):
                shutil.copy2(kept, path)
        shutil.rmtree(self.saved, ignore_errors=True)


def netdoctor_exe() -> list:
    """argv of the installed `netdoctor` console script of this interpreter. A version
    manager's shim on PATH (pyenv) is a shell script that would take the signals meant for
    netdoctor and add its own start-up, so the script next to the interpreter comes first."""
    import sysconfig

    script = os.path.join(sysconfig.get_path("scripts"), "netdoctor")
    if os.access(script, os.X_OK):
        return [script]
    exe = shutil.which("netdoctor")
    # Not installed: the command from this checkout.
    return [exe] if exe else [sys.executable, os.path.join(os.path.dirname(
        os.path.abspath(__file__)), "uninstalled.py")]


def startup_or_clean(err: str) -> bool:
    """True when stderr holds no traceback, or only one from the interpreter's own start-up
    (a signal that landed before netdoctor's first line ran: nothing of netdoctor's exists
    yet, and Python itself reports it)."""
    if "Traceback" not in err:
        return True
    frames = [l for l in err.splitlines() if l.strip().startswith("File ")
              and "/diagnose/cli/entry.py" not in l]  # entry.py's own imports precede its handler
    return not any(part in l for l in frames for part in ("/diagnose/", "/capture/", "/checks/"))


def netdoctor(*args, env=None, timeout=60):
    """Run the real `netdoctor` command; returns the CompletedProcess."""
    argv = netdoctor_exe()
    return subprocess.run(argv + [str(a) for a in args], capture_output=True, text=True,
                          env=env, timeout=timeout)


def netdoctor_json(*args, env=None, timeout=60):
    res = netdoctor(*args, "--format", "json", env=env, timeout=timeout)
    assert res.stdout.strip(), f"no output; stderr: {res.stderr}"
    return res.returncode, json.loads(res.stdout)


def unique(tag: str) -> str:
    return f"{NS_PREFIX}{tag}-{uuid.uuid4().hex[:6]}"


def tracefs_instances() -> list:
    """Every tracefs instance on the machine, also when no tracefs is mounted (it is then
    looked at through a mount in a private mount namespace, which leaves the host as it was)."""
    res = sh("unshare", "-m", "--propagation", "private", "sh", "-c",
             "mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null; "
             "ls /sys/kernel/tracing/instances", check=False)
    return sorted(res.stdout.split())


def stray_processes() -> list:
    """netdoctor processes (other than pytest's own)."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if any(a.endswith(b"/netdoctor") or a == b"netdoctor" for a in argv[:2]):
            out.append(f"{pid} {b' '.join(argv).decode(errors='replace')}")
    return out


def host_state() -> dict:
    """What a test must leave as it found: namespaces, root-namespace links, mounts, tracefs
    instances, netdoctor's run records and processes."""
    with open("/proc/self/mounts") as f:
        mounts = sorted(l.split()[1] for l in f
                        if " nsfs " in l or "/tmp/ndt" in l or " tracefs " in l)
    return {
        "netns": sorted(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else [],
        "links": sorted(l["ifname"] for l in json.loads(sh("ip", "-j", "link").stdout)),
        "mounts": mounts,
        "tracefs_instances": tracefs_instances(),
        "run_records": sorted(os.listdir("/run/netdoctor/runs"))
        if os.path.isdir("/run/netdoctor/runs") else [],
        "processes": stray_processes(),
    }


class SealedHost:
    """host ns (uplink eth0 198.51.100.2/24, default route) <-> internet ns (wan0 .1),
    which serves DNS on 203.0.113.53 (www.baidu.com = 203.0.113.80)."""

    DNS = "203.0.113.53"

    def __init__(self, tag: str):
        self.host = unique(tag)
        self.inet = unique(tag + "-inet")
        self.made = []
        self.dns_proc = None

    def __enter__(self):
        try:
            for ns in (self.host, self.inet):
                sh("ip", "netns", "add", ns)
                self.made.append(ns)
                sh("ip", "-n", ns, "link", "set", "lo", "up")
            sh("ip", "-n", self.host, "link", "add", "eth0", "type", "veth",
               "peer", "name", "wan0", "netns", self.inet)
            sh("ip", "-n", self.host, "addr", "add", "198.51.100.2/24", "dev", "eth0")
            sh("ip", "-n", self.inet, "addr", "add", "198.51.100.1/24", "dev", "wan0")
            sh("ip", "-n", self.inet, "addr", "add", "203.0.113.80/32", "dev", "lo")
            sh("ip", "-n", self.inet, "addr", "add", f"{self.DNS}/32", "dev", "lo")
            sh("ip", "-n", self.host, "link", "set", "eth0", "up")
            sh("ip", "-n", self.inet, "link", "set", "wan0", "up")
            sh("ip", "-n", self.host, "route", "add", "default", "via", "198.51.100.1")
            if shutil.which("dnsmasq"):
                # The internet's DNS, so that containers never use the machine's resolver.
                self.dns_proc = subprocess.Popen(
                    ["ip", "netns", "exec", self.inet, "dnsmasq", "--keep-in-foreground",
                     "--conf-file=/dev/null", "--no-resolv", "--no-hosts", "--bind-interfaces",
                     f"--listen-address={self.DNS}", "--address=/www.baidu.com/203.0.113.80",
                     "--user=root", "--group=root", "--pid-file="],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except BaseException:
            self.close()
            raise
        return self

    @property
    def path(self) -> str:
        return f"/run/netns/{self.host}"

    def close(self):
        if self.dns_proc is not None:
            self.dns_proc.kill()
            self.dns_proc.wait()
            self.dns_proc = None
        for ns in reversed(self.made):
            pids = sh("ip", "netns", "pids", ns, check=False).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            sh("ip", "netns", "del", ns, check=False)
        self.made = []

    def __exit__(self, *exc):
        self.close()


def busybox_rootfs_tar(workdir: str) -> str:
    """A root filesystem of Debian's busybox-static, as a tar for `docker/podman import`."""
    busybox = shutil.which("busybox") or "/bin/busybox"
    root = os.path.join(workdir, "rootfs")
    for d in ("bin", "etc", "proc", "sys", "dev", "tmp"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    shutil.copy(busybox, os.path.join(root, "bin", "busybox"))
    for applet in BUSYBOX_APPLETS:
        link = os.path.join(root, "bin", applet)
        if not os.path.lexists(link):
            os.symlink("busybox", link)
    tar = os.path.join(workdir, "rootfs.tar")
    sh("tar", "-C", root, "-cf", tar, ".")
    return tar


def unmount_below(path: str) -> None:
    """Lazily unmount everything mounted below path (dockerd leaves nsfs mounts behind):
    as the swarm lab does it."""
    from netdoctor.diagnose.lab.swarm import unmount_below as lab_unmount

    lab_unmount(path)


class DockerEngine:
    """A real dockerd started inside a SealedHost's namespace, with its own data and socket."""

    IMAGE = "ndtest/busybox:latest"

    def __init__(self, sealed: SealedHost):
        self.sealed = sealed
        self.dir = tempfile.mkdtemp(prefix="ndt-docker-", dir="/tmp")
        self.sock = os.path.join(self.dir, "docker.sock")
        self.env = dict(os.environ, DOCKER_HOST=f"unix://{self.sock}")
        self.proc = None

    def start(self, timeout: float = 60):
        log = open(os.path.join(self.dir, "dockerd.log"), "wb")
        self.proc = subprocess.Popen(
            ["nsenter", f"--net={self.sealed.path}", "dockerd",
             "--data-root", os.path.join(self.dir, "root"),
             "--exec-root", os.path.join(self.dir, "exec"),
             "-H", f"unix://{self.sock}", "--pidfile", os.path.join(self.dir, "dockerd.pid"),
             # Upstream's default since Docker 27; Debian's 28 build keeps it off and behind
             # --experimental: NAT66 and IPv6 filtering for networks created with --ipv6.
             "--experimental", "--ip6tables"],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if os.path.exists(self.sock) and self.docker("version", check=False).returncode == 0:
                self.docker("import", busybox_rootfs_tar(self.dir), self.IMAGE)
                return self
            time.sleep(0.2)
        tail = open(os.path.join(self.dir, "dockerd.log"), errors="replace").read()[-2000:]
        self.stop()
        raise RuntimeError(f"dockerd did not start:\n{tail}")

    def docker(self, *args, check=True):
        return sh("docker", *args, env=self.env, check=check)

    def run(self, name, *opts, cmd=("sleep", "3600")):
        if not any(o.startswith("--network") for o in opts):
            opts = ("--dns", SealedHost.DNS) + tuple(opts)
        self.docker("run", "-d", "--name", name, *opts, self.IMAGE, *cmd)
        return name

    def stop(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                ids = self.docker("ps", "-aq", check=False).stdout.split()
                if ids:
                    self.docker("rm", "-f", *ids, check=False)
                os.killpg(self.proc.pid, signal.SIGTERM)
                try:
                    self.proc.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                    self.proc.wait(10)
            self.proc = None
        unmount_below(self.dir)
        shutil.rmtree(self.dir, ignore_errors=True)


class Podman:
    """Real podman (runc) with its storage in a temporary folder, run inside a SealedHost."""

    IMAGE = "localhost/ndtest/busybox:latest"

    def __init__(self, sealed: SealedHost):
        self.sealed = sealed
        self.dir = tempfile.mkdtemp(prefix="ndt-podman-", dir="/tmp")
        conf = os.path.join(self.dir, "storage.conf")
        with open(conf, "w") as f:
            f.write(f'[storage]\ndriver = "vfs"\ngraphroot = "{self.dir}/root"\n'
                    f'runroot = "{self.dir}/run"\n')
        self.env = dict(os.environ, CONTAINERS_STORAGE_CONF=conf)
        self.names = []

    def podman(self, *args, check=True):
        return sh("nsenter", f"--net={self.sealed.path}", "podman", "--runtime", "runc", *args,
                  env=self.env, check=check)

    def start(self):
        self.podman("import", busybox_rootfs_tar(self.dir), self.IMAGE)
        return self

    def run(self, name, *opts, cmd=("sleep", "3600")):
        if not any(o.startswith("--network") for o in opts):
            opts = ("--dns", SealedHost.DNS) + tuple(opts)
        self.podman("run", "-d", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1000:1000",
                    "--name", name, *opts, self.IMAGE, *cmd)
        self.names.append(name)
        return name

    def stop(self):
        for name in reversed(self.names):
            self.podman("rm", "-f", "-t", "0", name, check=False)
        self.podman("rmi", "-a", "-f", check=False)
        unmount_below(self.dir)
        shutil.rmtree(self.dir, ignore_errors=True)


class CniPods:
    """Pods wired by Debian's real CNI plugins (/usr/lib/cni), invoked as a runtime invokes
    them: CNI_COMMAND=ADD with the pod's netns path and the JSON config on stdin, run inside
    the sealed host so that the host's end lands there. close() DELs every pod and removes
    its namespace and the IPAM state."""

    PLUGINS = "/usr/lib/cni"

    def __init__(self, sealed: SealedHost):
        self.sealed = sealed
        self.state = tempfile.mkdtemp(prefix="ndt-cni-")
        self.pods = []  # (netns, config, ifname)
        self.chains = []  # (netns, [config as called], ifname) of plugin chains

    def _call(self, command: str, ns: str, config: dict, ifname: str, check=True):
        env = {"CNI_COMMAND": command, "CNI_CONTAINERID": ns, "CNI_NETNS": f"/run/netns/{ns}",
               "CNI_IFNAME": ifname, "CNI_PATH": self.PLUGINS, "PATH": os.environ["PATH"]}
        conf = dict(config)
        if "ipam" in conf:
            conf["ipam"] = dict(conf["ipam"], dataDir=os.path.join(self.state, "ipam"))
        return sh("ip", "netns", "exec", self.sealed.host,
                  os.path.join(self.PLUGINS, conf["type"]), input=json.dumps(conf), env=env,
                  check=check)

    def add(self, tag: str, config: dict, ifname: str = "eth0") -> str:
        """A pod namespace wired by config's plugin; its netns name."""
        ns = unique(tag)
        sh("ip", "netns", "add", ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        self.pods.append((ns, config, ifname))
        self._call("ADD", ns, config, ifname)
        return ns

    def add_chain(self, tag: str, configs: list, runtime: dict, ifname: str = "eth0") -> str:
        """A pod wired by a plugin chain (a conflist: bridge then portmap), each plugin given
        the previous one's result and the runtime's capabilities (portMappings), as libcni
        passes them; its netns name."""
        ns = unique(tag)
        sh("ip", "netns", "add", ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        done, prev = [], None
        self.chains.append((ns, done, ifname))
        for config in configs:
            conf = dict(config, runtimeConfig=runtime)
            if prev is not None:
                conf["prevResult"] = prev
            done.append(conf)
            prev = json.loads(self._call("ADD", ns, conf, ifname).stdout)
            conf["prevResult"] = prev  # DEL is given the result, as libcni gives it
        return ns

    def close(self):
        for ns, done, ifname in reversed(self.chains):
            for conf in reversed(done):
                self._call("DEL", ns, conf, ifname, check=False)
            sh("ip", "netns", "del", ns, check=False)
        self.chains = []
        for ns, config, ifname in reversed(self.pods):
            self._call("DEL", ns, config, ifname, check=False)
            sh("ip", "netns", "del", ns, check=False)
        self.pods = []
        shutil.rmtree(self.state, ignore_errors=True)


class FlannelPair:
    """Two sealed hosts wired exactly like flannel's VXLAN backend: an underlay segment
    (192.168.77.1/.2), on each host a cni0 bridge with one pod (10.244.N.2), flannel.1
    (vxlan id 1, dstport 8472, nolearning, 10.244.N.0/32) and, per peer, the route
    `10.244.M.0/24 via 10.244.M.0 dev flannel.1 onlink`, a PERMANENT neighbour entry for the
    peer's VTEP MAC and an FDB entry sending it to the peer's underlay address."""

    def __init__(self, tag: str = "fl", backend: str = "vxlan"):
        self.backend = backend  # "vxlan", or "host-gw": plain routes via the peer's address
        self.hosts = [unique(f"{tag}-h{i}") for i in (0, 1)]
        self.pods = [unique(f"{tag}-p{i}") for i in (0, 1)]
        self.made = []

    def pod_ip(self, i: int) -> str:
        return f"10.244.{i}.2"

    def underlay_ip(self, i: int) -> str:
        return f"192.168.77.{i + 1}"

    def nic(self, i: int) -> str:
        return ("eth0", "ens4")[i]

    def __enter__(self):
        try:
            for ns in self.hosts + self.pods:
                sh("ip", "netns", "add", ns)
                self.made.append(ns)
                sh("ip", "-n", ns, "link", "set", "lo", "up")
            h0, h1 = self.hosts
            # The two hosts' underlay NICs have different names: tracepoints carry no
            # namespace, and two hosts on one kernel would otherwise share a device name.
            sh("ip", "-n", h0, "link", "add", self.nic(0), "type", "veth", "peer", "name",
               self.nic(1), "netns", h1)
            for i, (h, pod) in enumerate(zip(self.hosts, self.pods)):
                ip = lambda *a: sh("ip", "-n", h, *a)  # noqa: E731
                ip("addr", "add", f"{self.underlay_ip(i)}/24", "dev", self.nic(i))
                ip("link", "set", self.nic(i), "up")
                ip("link", "add", "cni0", "type", "bridge")
                ip("addr", "add", f"10.244.{i}.1/24", "dev", "cni0")
                ip("link", "set", "cni0", "up", "mtu", "1450")
                ip("link", "add", "veth0", "mtu", "1450", "type", "veth", "peer", "name",
                   "eth0", "netns", pod)
                ip("link", "set", "veth0", "master", "cni0", "up")
                sh("ip", "-n", pod, "addr", "add", f"{self.pod_ip(i)}/24", "dev", "eth0")
                sh("ip", "-n", pod, "link", "set", "eth0", "up", "mtu", "1450")
                sh("ip", "-n", pod, "route", "add", "default", "via", f"10.244.{i}.1")
                sh("ip", "netns", "exec", h, "sysctl", "-qw", "net.ipv4.ip_forward=1")
                if self.backend == "host-gw":
                    ip("route", "add", f"10.244.{1 - i}.0/24", "via", self.underlay_ip(1 - i))
                    continue
                ip("link", "add", "flannel.1", "type", "vxlan", "id", "1", "local",
                   self.underlay_ip(i), "dev", self.nic(i), "dstport", "8472", "nolearning")
                ip("addr", "add", f"10.244.{i}.0/32", "dev", "flannel.1")
                ip("link", "set", "flannel.1", "up", "mtu", "1450")
            self._carrier_settled()
            if self.backend == "vxlan":
                self.macs = [json.loads(sh("ip", "-n", h, "-j", "link", "show",
                                           "flannel.1").stdout)[0]["address"]
                             for h in self.hosts]
                for i in (0, 1):
                    self.wire_peer(i)
        except BaseException:
            self.close()
            raise
        return self

    def _carrier_settled(self, limit: float = 5.0) -> None:
        """The kernel turns a new veth pair's carrier on a moment later (linkwatch): until
        then each underlay NIC is up without carrier, which the checks rightly call down."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            flags = [json.loads(sh("ip", "-n", h, "-j", "link", "show", self.nic(i)).stdout)[0]
                     ["flags"] for i, h in enumerate(self.hosts)]
            if not any("NO-CARRIER" in f for f in flags):
                return
            time.sleep(0.05)

    def wire_peer(self, i: int) -> None:
        """Host i's flannel triple for its peer: route, neighbour, FDB entry (as flannel
        writes them; also how a test puts back what it took away)."""
        h, j = self.hosts[i], 1 - i
        sh("ip", "-n", h, "link", "set", "flannel.1", "up")
        sh("ip", "-n", h, "route", "replace", f"10.244.{j}.0/24", "via", f"10.244.{j}.0",
           "dev", "flannel.1", "onlink")
        sh("ip", "-n", h, "neigh", "replace", f"10.244.{j}.0", "lladdr", self.macs[j], "dev",
           "flannel.1", "nud", "permanent")
        sh("bridge", "-n", h, "fdb", "replace", self.macs[j], "dev", "flannel.1", "dst",
           self.underlay_ip(j))

    def close(self):
        for ns in reversed(self.made):
            sh("ip", "netns", "del", ns, check=False)
        self.made = []

    def __exit__(self, *exc):
        self.close()


class _HostPath:
    """What DockerEngine needs of a host: the path of its network namespace."""

    def __init__(self, name: str):
        self.path = f"/run/netns/{name}"


class SwarmPair:
    """Two hosts on an underlay (192.168.78.1/.2), a real dockerd in each, joined in one
    Docker Swarm, and an attachable overlay network (ndov, 10.0.9.0/24) with a container on
    each host (c0, c1). Docker keeps the overlay's bridge and VXLAN device in a sandbox
    namespace of its own, bound under its exec-root; the VXLAN socket stays in the host's."""

    NETWORK, SUBNET = "ndov", "10.0.9.0/24"

    def __init__(self, tag: str = "sw"):
        self.hosts = [unique(f"{tag}-h{i}") for i in (0, 1)]
        self.engines: list = []
        self.made: list = []
        self.ips = {}  # container name -> its overlay address

    def underlay_ip(self, i: int) -> str:
        return f"192.168.78.{i + 1}"

    def env(self, i: int) -> dict:
        return self.engines[i].env

    def __enter__(self):
        try:
            for ns in self.hosts:
                sh("ip", "netns", "add", ns)
                self.made.append(ns)
                sh("ip", "-n", ns, "link", "set", "lo", "up")
            h0, h1 = self.hosts
            sh("ip", "-n", h0, "link", "add", "eth0", "type", "veth", "peer", "name", "ens4",
               "netns", h1)
            for i, (h, nic) in enumerate(zip(self.hosts, ("eth0", "ens4"))):
                sh("ip", "-n", h, "addr", "add", f"{self.underlay_ip(i)}/24", "dev", nic)
                sh("ip", "-n", h, "link", "set", nic, "up")
            for h in self.hosts:
                self.engines.append(DockerEngine(_HostPath(h)).start())
            e0, e1 = self.engines
            e0.docker("swarm", "init", "--advertise-addr", self.underlay_ip(0))
            token = e0.docker("swarm", "join-token", "-q", "worker").stdout.strip()
            e1.docker("swarm", "join", "--token", token, "--advertise-addr",
                      self.underlay_ip(1), f"{self.underlay_ip(0)}:2377")
            e0.docker("network", "create", "-d", "overlay", "--attachable", "--subnet",
                      self.SUBNET, self.NETWORK)
            for name, e in (("c0", e0), ("c1", e1)):
                e.run(name, "--network", self.NETWORK)
                self.ips[name] = e.docker(
                    "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}} "
                    "{{end}}", name).stdout.split()[0]
            # The overlay's peers learn each other's endpoints by gossip: until then the
            # VXLAN device has no entry for the far container.
            deadline = time.monotonic() + 30
            while e0.docker("exec", "c0", "ping", "-c", "1", "-W", "1", self.ips["c1"],
                            check=False).returncode != 0:
                if time.monotonic() > deadline:
                    raise RuntimeError("the swarm overlay did not come up in 30 s")
        except BaseException:
            self.close()
            raise
        return self

    def sandbox(self, i: int) -> str:
        """The path of host i's overlay sandbox namespace (Docker's `1-<network id>`)."""
        net_id = self.engines[i].docker("network", "inspect", "-f", "{{.Id}}",
                                        self.NETWORK).stdout.strip()
        return os.path.join(self.engines[i].dir, "exec", "netns", f"1-{net_id[:10]}")

    def close(self):
        for e in reversed(self.engines):
            e.stop()
        self.engines = []
        for ns in reversed(self.made):
            sh("ip", "netns", "del", ns, check=False)
        self.made = []

    def __exit__(self, *exc):
        self.close()


class Sshd:
    """A real OpenSSH server in a namespace, with keys made for it alone (LAB.md's recipe),
    and an ssh config a client uses to reach it as root: `ssh -F config` / --ssh-config."""

    def __init__(self, ns: str, address: str):
        self.ns, self.address = ns, address
        self.dir = tempfile.mkdtemp(prefix="ndt-sshd-")
        self.config = os.path.join(self.dir, "ssh_config")
        self.proc = None

    def __enter__(self):
        d = self.dir
        try:
            os.makedirs("/run/sshd", exist_ok=True)
            for key in ("hostkey", "userkey"):
                sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", os.path.join(d, key))
            shutil.copy(os.path.join(d, "userkey.pub"), os.path.join(d, "authorized_keys"))
            os.chmod(os.path.join(d, "authorized_keys"), 0o600)
            # The session finds this checkout's `netdoctor` as a login on the host would.
            path = os.pathsep.join([os.path.dirname(netdoctor_exe()[0]), "/usr/local/sbin",
                                    "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"])
            self.proc = subprocess.Popen(
                ["ip", "netns", "exec", self.ns, "/usr/sbin/sshd", "-D", "-e", "-f", "/dev/null",
                 "-o", f"HostKey={d}/hostkey", "-o", f"AuthorizedKeysFile={d}/authorized_keys",
                 "-o", f"PidFile={d}/sshd.pid", "-o", f"ListenAddress={self.address}",
                 "-o", "PermitRootLogin=prohibit-password", "-o", "StrictModes=no",
                 "-o", "UsePAM=no", "-o", f"SetEnv=PATH={path}"],
                stdout=subprocess.DEVNULL, stderr=open(os.path.join(d, "sshd.log"), "wb"))
            with open(self.config, "w") as f:
                f.write(f"Host *\n  User root\n  IdentityFile {d}/userkey\n"
                        f"  IdentitiesOnly yes\n  StrictHostKeyChecking no\n"
                        f"  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n")
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                out = sh("ip", "netns", "exec", self.ns, "ss", "-ltnH", check=False).stdout
                if f"{self.address}:22" in out:
                    return self
                time.sleep(0.1)
            raise RuntimeError("sshd did not start: " + open(os.path.join(d, "sshd.log")).read())
        except BaseException:
            self.close()
            raise

    def close(self):
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)

    def __exit__(self, *exc):
        self.close()

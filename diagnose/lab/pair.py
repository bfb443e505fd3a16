"""`netdoctor lab up --hosts 2`: two sealed hosts on an underlay, wired as flannel wires its
nodes, each with a real sshd, so that `trace --peer` and `checks --on` have a far host to
reach over real SSH.

    ndlab2-h0 (eth0 192.168.77.1) ==== underlay ==== ndlab2-h1 (ens4 192.168.77.2)
      cni0 10.244.0.1/24                               cni0 10.244.1.1/24
      ndlab2-pod0 (eth0 10.244.0.2)                    ndlab2-pod1 (eth0 10.244.1.2)

--network vxlan: flannel.1 on each host (vxlan id 1, dstport 8472, nolearning, 10.244.N.0/32)
and, per peer, the route `10.244.M.0/24 via 10.244.M.0 dev flannel.1 onlink`, a PERMANENT
neighbour for the peer's VTEP MAC and an FDB entry sending that MAC to the peer's underlay
address. --network host-gw: the route `10.244.M.0/24 via <peer's underlay address>`.
--network bgp: wired as Calico wires its nodes without encapsulation: no bridge, the pod's
/32 behind a `cali0` veth answered by proxy ARP for 169.254.1.1, and a real BIRD on each
host with a BGP session to the other: it writes this node's block as
`blackhole 10.244.N.0/26 proto bird` and the peer's, learnt over BGP, as `10.244.M.0/26 via
<peer's underlay address> proto bird`.

Each host has the intent flannel writes, /run/flannel/subnet.env as its flanneld sees it:
here a file per host, named by a stand-in `flanneld` process in the host's namespace (its
`--subnet-file`), which is how netdoctor finds a real flanneld's file. With bgp, BIRD's
configuration is laid out as Calico's confd writes it (bird.cfg including the node's block
and the IP pool's filter; a `Mesh_<peer>` session), in BIRD 2's syntax. The underlay NICs have
different names: tracepoints carry no namespace, and two hosts on one kernel would otherwise
share a device name. The underlay is a veth pair between the two namespaces: nothing of it
reaches the machine's own interfaces.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from typing import Optional

from ..errors import LabStateError, MissingDependency, UsageError
from ..host import command, netns
from . import control, swarm
from .control import _ip

PREFIX = "ndlab2-"
HOSTS = (PREFIX + "h0", PREFIX + "h1")
PODS = (PREFIX + "pod0", PREFIX + "pod1")
NICS = ("eth0", "ens4")
UNDERLAY = ("192.168.77.1", "192.168.77.2")
FLANNEL_NETWORK = "10.244.0.0/16"
VTEP, VNI, VXLAN_PORT, MTU = "flannel.1", 1, 8472, 1450
SWARM_PORT = 4789  # Docker's overlay: the IANA VXLAN port
NETWORKS = ("vxlan", "host-gw", "bgp", "swarm")
BGP_AS, CALICO_GATEWAY, CALICO_VETH = 64512, "169.254.1.1", "cali0"
UNDERLAY_ROUTER = "192.168.77.254"  # no one: the underlay has no way out
STATE_DIR = "/run/netdoctor/lab2"
SSH_CONFIG = os.path.join(STATE_DIR, "ssh_config")


def pod_ip(i: int) -> str:
    return f"10.244.{i}.2"


def subnet(i: int) -> str:
    return f"10.244.{i}.0/24"


def block(i: int) -> str:
    """Host i's Calico IPAM block (with --network bgp)."""
    return f"10.244.{i}.0/26"


def bird_config(i: int) -> str:
    return os.path.join(STATE_DIR, HOSTS[i], "bird.cfg")


def subnet_file(i: int) -> str:
    return os.path.join(STATE_DIR, HOSTS[i], "subnet.env")


def read_state() -> Optional[dict]:
    return control.read_state(STATE_DIR)


def _write_state(state: dict) -> None:
    control._write_state(state, STATE_DIR)


def present() -> list:
    return [n.name for n in netns.list_named() if n.name.startswith(PREFIX)]


def _namespaces(network: Optional[str]) -> tuple:
    """The lab's namespaces for network (a swarm's containers are Docker's, not the lab's)."""
    return HOSTS if network == "swarm" else HOSTS + PODS


def is_up() -> bool:
    state = read_state()
    return state is not None and set(_namespaces(state.get("network"))) <= set(present())


def _require_programs(network: str) -> None:
    needed = (("sshd", "openssh-server"), ("ssh-keygen", "openssh-client"),
              ("bridge", "iproute2")) + ((("bird", "bird2"), ("birdcl", "bird2"))
                                         if network == "bgp" else ()) + \
        ((("dockerd", "docker.io"), ("docker", "docker.io"), ("busybox", "busybox-static"),
          ("nsenter", "util-linux")) if network == "swarm" else ())
    missing = [f"{prog} (apt: {pkg})" for prog, pkg in needed
               if shutil.which(prog) is None and not os.path.exists(f"/usr/sbin/{prog}")]
    if missing:
        raise MissingDependency(f"the two-host lab ({network}) needs " + ", ".join(missing))


# ---------------------------------------------------------------- wiring

def _wire(network: str) -> None:
    h0, h1 = HOSTS
    _ip(h0, "link", "add", NICS[0], "type", "veth", "peer", "name", NICS[1], "netns", h1)
    if network == "bgp":
        return _wire_calico()
    if network == "swarm":  # the engines make the rest
        for i, h in enumerate(HOSTS):
            _ip(h, "link", "set", "lo", "up")
            _ip(h, "addr", "add", f"{UNDERLAY[i]}/24", "dev", NICS[i])
            _ip(h, "link", "set", NICS[i], "up")
        return None
    for i, (h, pod) in enumerate(zip(HOSTS, PODS)):
        _ip(h, "link", "set", "lo", "up")
        _ip(pod, "link", "set", "lo", "up")
        _ip(h, "addr", "add", f"{UNDERLAY[i]}/24", "dev", NICS[i])
        _ip(h, "link", "set", NICS[i], "up")
        _ip(h, "link", "add", "cni0", "type", "bridge")
        _ip(h, "addr", "add", f"10.244.{i}.1/24", "dev", "cni0")
        _ip(h, "link", "set", "cni0", "up", "mtu", str(MTU))
        _ip(h, "link", "add", "veth0", "mtu", str(MTU), "type", "veth", "peer", "name", "eth0",
            "netns", pod)
        _ip(h, "link", "set", "veth0", "master", "cni0", "up")
        _ip(pod, "addr", "add", f"{pod_ip(i)}/24", "dev", "eth0")
        _ip(pod, "link", "set", "eth0", "up", "mtu", str(MTU))
        _ip(pod, "route", "add", "default", "via", f"10.244.{i}.1")
        control._sysctl(h, "net.ipv4.ip_forward", "1")
        if network == "vxlan":
            _ip(h, "link", "add", VTEP, "type", "vxlan", "id", str(VNI), "local", UNDERLAY[i],
                "dev", NICS[i], "dstport", str(VXLAN_PORT), "nolearning")
            _ip(h, "addr", "add", f"10.244.{i}.0/32", "dev", VTEP)
    configure_peers(network)


def _wire_calico() -> None:
    for i, (h, pod) in enumerate(zip(HOSTS, PODS)):
        _ip(h, "link", "set", "lo", "up")
        _ip(pod, "link", "set", "lo", "up")
        _ip(h, "addr", "add", f"{UNDERLAY[i]}/24", "dev", NICS[i])
        _ip(h, "link", "set", NICS[i], "up")
        _ip(h, "link", "add", CALICO_VETH, "type", "veth", "peer", "name", "eth0", "netns", pod)
        _ip(h, "link", "set", CALICO_VETH, "up")
        control._sysctl(h, f"net.ipv4.conf.{CALICO_VETH}.proxy_arp", "1")
        # as Calico sets it: the kernel otherwise delays a proxied ARP answer up to 0.8 s
        control._sysctl(h, f"net.ipv4.neigh.{CALICO_VETH}.proxy_delay", "0")
        _ip(h, "route", "add", f"{pod_ip(i)}/32", "dev", CALICO_VETH, "scope", "link")
        _ip(pod, "addr", "add", f"{pod_ip(i)}/32", "dev", "eth0")
        _ip(pod, "link", "set", "eth0", "up")
        _ip(pod, "route", "add", CALICO_GATEWAY, "dev", "eth0", "scope", "link")
        _ip(pod, "route", "add", "default", "via", CALICO_GATEWAY, "dev", "eth0")
        # A node's default route (its router, absent here): proxy ARP answers for
        # 169.254.1.1 only with a route to it that leaves by another device.
        _ip(h, "route", "add", "default", "via", UNDERLAY_ROUTER, "dev", NICS[i], "onlink")
        control._sysctl(h, "net.ipv4.ip_forward", "1")
    configure_peers("bgp")


def _vtep_mac(i: int) -> str:
    out = command.run(["ip", "-n", HOSTS[i], "-j", "link", "show", VTEP], check=True).stdout
    return json.loads(out)[0]["address"]


def configure_peers(network: str) -> None:
    """Each host's entries for its peer, as flannel writes them (idempotent: heal)."""
    for i in (0, 1):
        h, j = HOSTS[i], 1 - i
        _ip(h, "link", "set", NICS[i], "up")
        control._sysctl(h, "net.ipv4.ip_forward", "1")
        command.run(["ip", "netns", "exec", h, "iptables", "-F", "INPUT"], check=False)
        if network == "host-gw":
            _ip(h, "route", "replace", subnet(j), "via", UNDERLAY[j], "dev", NICS[i])
            continue
        if network in ("bgp", "swarm"):  # BIRD, or the engine, writes the rest
            continue
        _ip(h, "link", "set", VTEP, "up", "mtu", str(MTU))
        _ip(h, "route", "replace", subnet(j), "via", f"10.244.{j}.0", "dev", VTEP, "onlink")
        _ip(h, "neigh", "replace", f"10.244.{j}.0", "lladdr", _vtep_mac(j), "dev", VTEP, "nud",
            "permanent")
        command.run(["bridge", "-n", h, "fdb", "replace", _vtep_mac(j), "dev", VTEP, "dst",
                     UNDERLAY[j]], check=True)


# ---------------------------------------------------------------- intent and services

def _write_subnet_files() -> None:
    for i in (0, 1):
        os.makedirs(os.path.dirname(subnet_file(i)), exist_ok=True)
        with open(subnet_file(i), "w", encoding="ascii") as f:
            f.write(f"FLANNEL_NETWORK={FLANNEL_NETWORK}\nFLANNEL_SUBNET=10.244.{i}.1/24\n"
                    f"FLANNEL_MTU={MTU}\nFLANNEL_IPMASQ=true\n")


def _write_intent(network: str) -> None:
    if network == "bgp":
        _write_bird_configs()
    elif network != "swarm":  # (a swarm's intent is its engines')
        _write_subnet_files()


def session(i: int) -> str:
    """The name of host i's BGP session with its peer, as Calico's confd names it."""
    return "Mesh_" + UNDERLAY[1 - i].replace(".", "_")


def bird_socket(i: int) -> str:
    return os.path.join(STATE_DIR, f"bird-{i}.ctl")


def _write_bird_configs(imports: tuple = (True, True)) -> None:
    """Each host's BIRD configuration, in the files Calico's confd writes. imports[i]
    False: host i's session takes nothing from its peer (a fault)."""
    for i in (0, 1):
        folder = os.path.dirname(bird_config(i))
        os.makedirs(folder, exist_ok=True)
        peer = UNDERLAY[1 - i]
        files = {
            "bird.cfg": f'router id {UNDERLAY[i]};\n'
                        f'include "bird_aggr.cfg";\ninclude "bird_ipam.cfg";\n'
                        f"protocol device {{ scan time 2; }}\n"
                        f"protocol kernel {{\n  scan time 2;\n  merge paths on;\n"
                        f"  ipv4 {{ import none; export all; }};\n}}\n"
                        f"protocol bgp {session(i)} {{\n"
                        f"  local as {BGP_AS};\n  neighbor {peer} as {BGP_AS};\n  direct;\n"
                        # a lab converges in a second, not in BIRD's default minutes
                        f"  connect delay time 1;\n  connect retry time 1;\n"
                        f"  error wait time 1, 5;\n"
                        f"  ipv4 {{ import {'all' if imports[i] else 'none'}; "
                        f"export filter calico_export_to_bgp_peers; next hop self; }};\n}}\n",
            "bird_aggr.cfg": f"protocol static {{\n  ipv4;\n  # IP blocks for this host.\n"
                             f"  route {block(i)} blackhole;\n}}\n",
            "bird_ipam.cfg": f"filter calico_export_to_bgp_peers {{\n"
                             f"  if ( net ~ {FLANNEL_NETWORK} ) then {{ accept; }}\n"
                             f"  reject;\n}}\n",
        }
        for name, text in files.items():
            with open(os.path.join(folder, name), "w", encoding="ascii") as f:
                f.write(text)


def _start_bird(i: int) -> int:
    """Host i's BIRD, in the foreground of its own session (its pid is BIRD's)."""
    bird = shutil.which("bird") or "/usr/sbin/bird"
    return control._start_in_inet(
        [bird, "-f", "-c", bird_config(i), "-s", bird_socket(i), "-P",
         os.path.join(STATE_DIR, f"bird-{i}.pid")], f"bird-{i}.log", HOSTS[i], STATE_DIR)


def _birdcl(i: int, *words: str) -> str:
    birdcl = shutil.which("birdcl") or "/usr/sbin/birdcl"
    return command.run([birdcl, "-s", bird_socket(i), *words], check=True).stdout


def _bgp_routes(i: int) -> set:
    out = command.run(["ip", "-n", HOSTS[i], "route", "show", "proto", "bird"],
                      check=True).stdout
    return {line.split()[1] if line.startswith("blackhole") else line.split()[0]
            for line in out.splitlines() if line.strip()}


def _wait_routes(want: dict, limit: float = 20.0) -> None:
    """Until each host i has exactly the BIRD routes want[i]: BGP converges."""
    deadline = time.monotonic() + limit
    while True:
        have = {i: _bgp_routes(i) for i in want}
        if have == want:
            return
        if time.monotonic() > deadline:
            raise LabStateError(f"BIRD's routes did not settle: {have}, expected {want}; see "
                                f"{STATE_DIR}/bird-*.log")
        time.sleep(0.1)


def _converged() -> dict:
    return {i: {block(i), block(1 - i)} for i in (0, 1)}


def _stand_in_flanneld(i: int) -> int:
    """A process whose command line reads as flanneld's (argv[0] `flanneld`, its
    --subnet-file): what netdoctor looks for to find a host's flannel intent."""
    return control._start_in_inet(
        ["flanneld", "-c", "import signal; signal.pause()", f"--subnet-file={subnet_file(i)}",
         f"--iface={NICS[i]}"], f"flanneld-{i}.log", HOSTS[i], STATE_DIR, sys.executable)


def _start_sshd(i: int, network: Optional[str] = None) -> int:
    d = STATE_DIR
    os.makedirs("/run/sshd", exist_ok=True)
    # The session finds this installation's `netdoctor` as a login on the host would.
    exe = shutil.which("netdoctor") or sys.argv[0]
    path = os.pathsep.join([os.path.dirname(os.path.abspath(exe)), "/usr/local/sbin",
                            "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"])
    sshd = shutil.which("sshd") or "/usr/sbin/sshd"
    argv = [sshd, "-D", "-e", "-f", "/dev/null", "-o", f"HostKey={d}/hostkey",
            "-o", f"AuthorizedKeysFile={d}/authorized_keys", "-o", f"PidFile={d}/sshd-{i}.pid",
            "-o", f"ListenAddress={UNDERLAY[i]}", "-o", "PermitRootLogin=prohibit-password",
            "-o", "StrictModes=no", "-o", "UsePAM=no", "-o", f"SetEnv=PATH={path}"
            + (f" DOCKER_HOST={swarm.socket_of(STATE_DIR, i)}" if network == "swarm" else "")]
    return control._start_in_inet(argv, f"sshd-{i}.log", HOSTS[i], STATE_DIR)


def _keys() -> None:
    d = STATE_DIR
    for key in ("hostkey", "userkey"):
        if not os.path.exists(os.path.join(d, key)):
            command.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                         os.path.join(d, key)], check=True)
    shutil.copy(os.path.join(d, "userkey.pub"), os.path.join(d, "authorized_keys"))
    os.chmod(os.path.join(d, "authorized_keys"), 0o600)
    with open(SSH_CONFIG, "w", encoding="ascii") as f:
        f.write(f"Host {' '.join(UNDERLAY)}\n  User root\n  IdentityFile {d}/userkey\n"
                f"  IdentitiesOnly yes\n  StrictHostKeyChecking no\n"
                f"  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n")


def ensure_services(state: dict) -> dict:
    services = dict(state.get("services") or {})
    for i in (0, 1):
        if not control._pid_alive(services.get(f"sshd-{i}"), "sshd"):
            services[f"sshd-{i}"] = _start_sshd(i, state.get("network"))
            if not control._wait_listening(22, "tcp", 10.0, HOSTS[i]):
                raise LabStateError(f"sshd did not start in {HOSTS[i]}; see "
                                    f"{os.path.join(STATE_DIR, f'sshd-{i}.log')}")
        if state.get("network") == "bgp":
            if not control._pid_alive(services.get(f"bird-{i}"), "bird.cfg"):
                services[f"bird-{i}"] = _start_bird(i)
        elif state.get("network") == "swarm":
            if not control._pid_alive(services.get(f"dockerd-{i}"), "dockerd"):
                services[f"dockerd-{i}"] = swarm.start_engine(STATE_DIR, HOSTS[i], i)
        elif not control._pid_alive(services.get(f"flanneld-{i}"), "--subnet-file"):
            services[f"flanneld-{i}"] = _stand_in_flanneld(i)
    return dict(state, services=services)


# ---------------------------------------------------------------- commands

def up(network: str = "vxlan") -> tuple:
    if network not in NETWORKS:
        raise UsageError(f"unknown network '{network}'; choose one of: {', '.join(NETWORKS)}")
    control._require_root()
    _require_programs(network)
    if is_up():
        return False, read_state()
    if present() or os.path.exists(STATE_DIR):
        down()
    try:
        os.makedirs(STATE_DIR, exist_ok=True)
        for ns in _namespaces(network):
            command.run(["ip", "netns", "add", ns], check=True)
        _wire(network)
        _keys()
        _write_intent(network)
        state = {"created": time.time(), "network": network, "faults": []}
        _write_state(state)  # (down() finds the engines by it, should the rest fail)
        state = ensure_services(state)
        _write_state(state)
        if network == "bgp":
            _wait_routes(_converged())
        if network == "swarm":
            state["swarm"] = swarm.form(STATE_DIR, HOSTS, UNDERLAY)
            _write_state(state)
    except BaseException:
        down()
        raise
    return True, state


def down() -> list:
    # The sshd and flanneld of each host run in its namespace: removing it ends them. A
    # swarm's containers run in namespaces of their own: their engines remove them first.
    state = read_state() or {}
    removed = swarm.stop(STATE_DIR, state.get("services") or {}) \
        if state.get("network") == "swarm" or os.path.isdir(swarm.engine_dir(STATE_DIR, 0)) \
        else []
    removed += control.remove_namespaces(present())
    if os.path.isdir(STATE_DIR):
        shutil.rmtree(STATE_DIR, ignore_errors=True)
        removed.append(STATE_DIR)
    try:
        os.rmdir(os.path.dirname(STATE_DIR))  # /run/netdoctor, if nothing else uses it
    except OSError:
        pass
    return removed


def heal() -> dict:
    state = read_state() or {}
    network = state.get("network") or "vxlan"
    configure_peers(network)
    _write_intent(network)
    state = ensure_services(dict(state, faults=[]))
    _write_state(state)
    if network == "bgp":  # BIRD reads its configuration again, every session switched on
        for i in (0, 1):
            _birdcl(i, "configure")
            _birdcl(i, "enable", session(i))
        _wait_routes(_converged())
    if network == "swarm" and state.get("swarm"):
        swarm.rewire(STATE_DIR, HOSTS, UNDERLAY, state["swarm"])
    return state


def status() -> dict:
    state = read_state()
    services = (state or {}).get("services") or {}
    if (state or {}).get("network") == "swarm":
        return {"up": is_up(), "network": "swarm",
                "hosts": {h: {"underlay": UNDERLAY[i],
                              "container": swarm.containers(HOSTS)[i],
                              "container_address": ((state.get("swarm") or {}).get(
                                  "containers") or {}).get(swarm.containers(HOSTS)[i]),
                              "docker_host": swarm.socket_of(STATE_DIR, i),
                              "dockerd": control._pid_alive(services.get(f"dockerd-{i}"),
                                                            "dockerd"),
                              "sshd": control._pid_alive(services.get(f"sshd-{i}"), "sshd")}
                          for i, h in enumerate(HOSTS)},
                "ssh_config": SSH_CONFIG, "faults": state.get("faults", [])}
    return {"up": is_up(), "network": (state or {}).get("network"),
            "hosts": {h: dict({"underlay": UNDERLAY[i], "pod": PODS[i], "pod_address": pod_ip(i),
                               "sshd": control._pid_alive(services.get(f"sshd-{i}"), "sshd")},
                              **({"bird": control._pid_alive(services.get(f"bird-{i}"),
                                                             "bird.cfg")}
                                 if (state or {}).get("network") == "bgp" else {}))
                      for i, h in enumerate(HOSTS)},
            "ssh_config": SSH_CONFIG if state else None,
            "faults": (state or {}).get("faults", [])}


# ---------------------------------------------------------------- faults

def _bird_imports_nothing(i: int) -> None:
    _write_bird_configs(imports=tuple(j != i for j in (0, 1)))
    _birdcl(i, "configure")
    _wait_routes({i: {block(i)}})


def _session_off(i: int) -> None:
    """The session switched off on host i: both hosts lose the other's block."""
    _birdcl(i, "disable", session(i))
    _wait_routes({0: {block(0)}, 1: {block(1)}})


def _host_only(i: int, *argv: str) -> None:
    command.run(["ip", "netns", "exec", HOSTS[i], *argv], check=True)


def _swarm_peer(i: int) -> tuple:
    """(host i's overlay sandbox, the other host's container's address and MAC)."""
    state = read_state() or {}
    j = 1 - i
    ip, mac = swarm.endpoint_of(STATE_DIR, j, swarm.containers(HOSTS)[j])
    return state["swarm"]["network_id"], ip, mac


def _fdb_missing(i: int, network: str) -> None:
    if network == "swarm":
        net, _, mac = _swarm_peer(i)
        swarm.in_sandbox(STATE_DIR, i, net, "bridge", "fdb", "del", mac, "dev", "vxlan0",
                         "dst", UNDERLAY[1 - i])
    else:
        command.run(["bridge", "-n", HOSTS[i], "fdb", "del", _vtep_mac(1 - i), "dev", VTEP],
                    check=True)


def _neighbour_missing(i: int, network: str) -> None:
    if network == "swarm":
        net, ip, _ = _swarm_peer(i)
        swarm.in_sandbox(STATE_DIR, i, net, "ip", "neigh", "del", ip, "dev", "vxlan0")
    else:
        _ip(HOSTS[i], "neigh", "del", f"10.244.{1 - i}.0", "dev", VTEP)


FAULTS = {
    # name: (what it does, networks, fn(host index, the lab's network))
    "fdb-missing": ("the FDB entry for the peer's VTEP MAC (swarm: the other host's "
                    "container's MAC) is deleted", ("vxlan", "swarm"), _fdb_missing),
    "neighbour-missing": ("the PERMANENT neighbour for the peer's VTEP (swarm: the other "
                          "host's container) is deleted", ("vxlan", "swarm"),
                          _neighbour_missing),
    "peer-route-missing": ("the route to the peer's pod subnet is missing (bgp: this host's "
                           "BIRD imports nothing from its peer)", ("vxlan", "host-gw", "bgp"),
                           lambda i, network: _bird_imports_nothing(i) if network == "bgp"
                           else _ip(HOSTS[i], "route", "del", subnet(1 - i))),
    "bgp-session-down": ("this host's BGP session with its peer is switched off", ("bgp",),
                         lambda i, _: _session_off(i)),
    "vxlan-port-blocked": (f"INPUT drops UDP {VXLAN_PORT} (swarm: {SWARM_PORT}, the "
                           f"overlay's port)", ("vxlan", "swarm"),
                           lambda i, network: _host_only(
                               i, "iptables", "-A", "INPUT", "-p", "udp", "--dport",
                               str(SWARM_PORT if network == "swarm" else VXLAN_PORT), "-j",
                               "DROP")),
    "vxlan-down": (f"{VTEP} is set down", ("vxlan",),
                   lambda i, _: _ip(HOSTS[i], "link", "set", VTEP, "down")),
}


def break_(fault: str, host: int) -> str:
    state = read_state() or {}
    network = state.get("network") or "vxlan"
    what, networks, fn = FAULTS[fault]
    if network not in networks:
        raise UsageError(f"fault {fault} needs a two-host lab with --network "
                         f"{' or '.join(networks)} (this one is {network})")
    fn(host, network)
    state["faults"] = list(state.get("faults") or []) + [{"fault": fault, "host": HOSTS[host]}]
    _write_state(state)
    return what

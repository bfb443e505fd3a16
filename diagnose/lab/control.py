"""`netdoctor lab up | down | status | heal`: build, reconcile and remove the sealed lab.

`up` creates the namespaces and links, then calls configure_healthy(); `heal` calls the same
function on an existing lab, so whatever was broken (by `lab break` or by hand) is put back.
`down` removes every object the lab made, found by name, not by memory, so it also cleans
up after a crashed `up`.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from typing import Optional

from ..host import command, netns, privileges
from ..errors import LabStateError, MissingDependency, UsageError
from . import layout as L

REQUIRED_PROGRAMS = {
    "ip": "iproute2",
    "iptables-restore": "iptables",
    "dnsmasq": "dnsmasq-base",
}


# ---------------------------------------------------------------- helpers

def _require_root() -> None:
    privileges.require(privileges.CAP_SYS_ADMIN, privileges.CAP_NET_ADMIN,
                       why="the lab creates and configures network namespaces")


def _require_programs() -> None:
    missing = [f"{prog} (apt: {pkg})" for prog, pkg in REQUIRED_PROGRAMS.items()
               if shutil.which(prog) is None]
    if missing:
        raise MissingDependency("the lab needs " + ", ".join(missing))


def _ip(ns: Optional[str], *args: str) -> None:
    argv = ["ip"] + (["-n", ns] if ns else []) + list(args)
    command.run(argv, check=True)


def _ns_exec(ns: str, *argv: str, input: Optional[str] = None, check: bool = True):
    return command.run(["ip", "netns", "exec", ns, *argv], input=input, check=check)


def _sysctl(ns: str, key: str, value: str) -> None:
    path = "/proc/sys/" + key.replace(".", "/")

    def write() -> None:
        with open(path, "w", encoding="ascii") as f:
            f.write(value)

    netns.call_in(netns.named(ns), write)


def present_namespaces() -> list:
    return [n.name for n in netns.list_named() if n.name.startswith(L.PREFIX)]


def read_state(state_dir: str = L.STATE_DIR) -> Optional[dict]:
    """A lab's state (this lab's, or the two-host lab's with its own folder)."""
    try:
        with open(os.path.join(state_dir, "state.json"), encoding="utf-8") as f:
            return json.load(f)
    except (FileNotFoundError, ValueError):
        return None


def _write_state(state: dict, state_dir: str = L.STATE_DIR) -> None:
    os.makedirs(state_dir, exist_ok=True)
    path = os.path.join(state_dir, "state.json")
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(state, f, indent=2)
    os.replace(path + ".tmp", path)


def is_up() -> bool:
    return read_state() is not None and set(L.all_namespaces()) <= set(present_namespaces())


# ---------------------------------------------------------------- services in the "internet"

def _pid_alive(pid: Optional[int], marker: str) -> bool:
    if not pid:
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return marker.encode() in f.read()
    except OSError:
        return False


def _start_in_inet(argv: list, log_name: str, ns: str = L.INET_NS,
                   log_dir: str = L.STATE_DIR, executable: Optional[str] = None) -> int:
    """A lab daemon started in ns, in a session of its own, its output in log_dir: its pid.
    executable runs argv under argv[0] as its name."""
    os.makedirs(log_dir, exist_ok=True)
    log = open(os.path.join(log_dir, log_name), "ab")

    def spawn() -> int:
        proc = subprocess.Popen(argv, executable=executable, stdin=subprocess.DEVNULL,
                                stdout=log, stderr=log, start_new_session=True,
                                close_fds=True)
        return proc.pid

    try:
        return netns.call_in(netns.named(ns), spawn)
    finally:
        log.close()


def _dnsmasq_argv() -> list:
    return [
        "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
        "--bind-interfaces", f"--listen-address={L.DNS_ADDRESS}", "--except-interface=wan0",
        f"--address=/{L.WEB_NAME}/{L.WEB_ADDRESS}", f"--address=/{L.WEB_NAME}/{L.WEB_ADDRESS6}",
        "--user=root", "--group=root",
        f"--pid-file={os.path.join(L.STATE_DIR, 'dnsmasq.pid')}", "--log-facility=-",
    ]


def _http_argv() -> list:
    root = os.path.join(L.STATE_DIR, "www")
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, "index.html"), "w", encoding="utf-8") as f:
        f.write("<html><body>netdoctor lab: you reached the internet</body></html>\n")
    return [sys.executable, "-m", "http.server", "80", "--bind", L.WEB_ADDRESS, "--directory", root]


def _web_argv(bind: str) -> list:
    root = os.path.join(L.STATE_DIR, "web")
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, "index.html"), "w", encoding="utf-8") as f:
        f.write("<html><body>netdoctor lab: the published web container</body></html>\n")
    return [sys.executable, "-m", "http.server", str(L.PUBLISHED_PORT), "--bind", bind,
            "--directory", root]


def publishes(shape: str) -> bool:
    """Whether the lab publishes web's port in this shape (a macvlan container needs no NAT)."""
    return shape in ("bridge", "routed")


WEB_BIND = "::"  # every address of both families, as a dual-stack server listens


def start_web(state: dict, bind: str = WEB_BIND) -> dict:
    """(Re)start the published web service, listening on bind."""
    state = stop_service(state, "web")
    services = dict(state.get("services") or {})
    services["web"] = _start_in_inet(_web_argv(bind), "web.log",
                                     L.container_ns(L.PUBLISHED_CONTAINER))
    if not _wait_listening(L.PUBLISHED_PORT, "tcp", ns=L.container_ns(L.PUBLISHED_CONTAINER)):
        raise LabStateError("the lab's published web service did not start; see "
                            + os.path.join(L.STATE_DIR, "web.log"))
    return dict(state, services=services, web_bind=bind)


def _wait_listening(port: int, proto: str, timeout: float = 5.0, ns: str = L.INET_NS) -> bool:
    flag = "-ltnH" if proto == "tcp" else "-lunH"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        res = _ns_exec(ns, "ss", flag, f"sport = :{port}", check=False)
        if res.ok and res.stdout.strip():
            return True
        time.sleep(0.05)
    return False


def ensure_services(state: dict) -> dict:
    """Start the DNS and HTTP servers of the fake internet if they are not running."""
    services = dict(state.get("services") or {})
    if not _pid_alive(services.get("dns"), "dnsmasq"):
        services["dns"] = _start_in_inet(_dnsmasq_argv(), "dnsmasq.log")
        if not _wait_listening(53, "udp"):
            raise LabStateError("dnsmasq did not start in the lab; see "
                                + os.path.join(L.STATE_DIR, "dnsmasq.log"))
    if not _pid_alive(services.get("http"), "http.server"):
        services["http"] = _start_in_inet(_http_argv(), "http.log")
        if not _wait_listening(80, "tcp"):
            raise LabStateError("the lab's HTTP server did not start; see "
                                + os.path.join(L.STATE_DIR, "http.log"))
    state = dict(state, services=services)
    if publishes(state.get("shape") or "bridge") and (
            not _pid_alive(services.get("web"), "http.server")
            or state.get("web_bind") != WEB_BIND):
        state = start_web(state)
    return state


def stop_service(state: dict, which: str) -> dict:
    services = dict(state.get("services") or {})
    pid = services.pop(which, None)
    marker = "dnsmasq" if which == "dns" else "http.server"  # http and web
    if _pid_alive(pid, marker):
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            if not _pid_alive(pid, marker):
                break
            time.sleep(0.02)
    return dict(state, services=services)


# ---------------------------------------------------------------- healthy configuration

def host_ruleset(shape: str = "bridge") -> str:
    """Docker-style filter and NAT for the lab host, in iptables-restore form: for the bridge,
    or (routed) for the containers' veths. A macvlan host forwards nothing of theirs."""
    if shape == "macvlan":
        return "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"
    if shape == "routed":
        inner, nat = "veth-+", f"-A POSTROUTING -s {L.SUBNET} -o {L.UPLINK} -j MASQUERADE"
    else:
        inner, nat = L.BRIDGE, f"-A POSTROUTING -s {L.SUBNET} ! -o {L.BRIDGE} -j MASQUERADE"
    # web's port, published as Docker publishes one: DNAT for outside clients (PREROUTING)
    # and for the host itself (OUTPUT), and an accept in FORWARD.
    web = L.CONTAINERS[L.PUBLISHED_CONTAINER][0]
    dnat = (f"-p tcp -m tcp --dport {L.PUBLISHED_HOST_PORT} -j DNAT --to-destination "
            f"{web}:{L.PUBLISHED_PORT}")
    publish = (f"-A PREROUTING -d {L.UPLINK_ADDRESS}/32 {dnat}\n"
               f"-A OUTPUT -d {L.UPLINK_ADDRESS}/32 {dnat}\n")
    if shape == "bridge":
        # web reaching its own published port (hairpin NAT), as Docker without the userland
        # proxy allows it: a MASQUERADE, so that web answers the host, not itself (and
        # hairpin_mode on web's bridge port, set with the links). After the containers' own
        # MASQUERADE, in Docker's order.
        nat += (f"\n-A POSTROUTING -s {web}/32 -d {web}/32 -p tcp -m tcp --dport "
                f"{L.PUBLISHED_PORT} -j MASQUERADE")
    accept = f"-A NDLAB-FORWARD -d {web}/32 -p tcp -m tcp --dport {L.PUBLISHED_PORT} -j ACCEPT\n"
    return f"""*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:NDLAB-USER - [0:0]
:NDLAB-FORWARD - [0:0]
-A FORWARD -j NDLAB-USER
-A FORWARD -j NDLAB-FORWARD
-A NDLAB-USER -j RETURN
{accept}-A NDLAB-FORWARD -o {inner} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A NDLAB-FORWARD -i {inner} ! -o {inner} -j ACCEPT
-A NDLAB-FORWARD -i {inner} -o {inner} -j ACCEPT
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
{publish}{nat}
COMMIT
"""


def _flush_netfilter(ns: str) -> None:
    if shutil.which("nft"):
        _ns_exec(ns, "nft", "flush", "ruleset")
    else:
        _ns_exec(ns, "iptables-restore", input="*filter\nCOMMIT\n*nat\nCOMMIT\n")
    # Rules someone added with iptables-legacy live in the other backend.
    if shutil.which("iptables-legacy-save"):
        legacy = _ns_exec(ns, "iptables-legacy-save", check=False).stdout
        for line in legacy.splitlines():
            if line.startswith("*"):
                table = line[1:].strip()
                _ns_exec(ns, "iptables-legacy", "-t", table, "-F", check=False)
                _ns_exec(ns, "iptables-legacy", "-t", table, "-X", check=False)


def _write_resolv_conf(name: str) -> None:
    path = L.resolv_conf_path(name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="ascii") as f:
        f.write(f"# written by netdoctor lab\nnameserver {L.DNS_ADDRESS}\n")


def _set_only_address(ns: str, dev: str, cidr: str) -> None:
    _ip(ns, "addr", "flush", "dev", dev, "scope", "global")
    _ip(ns, "addr", "add", cidr, "dev", dev)


def _has_link(ns: str, name: str) -> bool:
    return command.run(["ip", "-n", ns, "link", "show", "dev", name]).ok


def _ensure_veth(ns: str, name: str, peer_ns: str, peer: str) -> None:
    """A veth pair ns:name <-> peer_ns:peer, made again when either end is missing."""
    if _has_link(ns, name) and _has_link(peer_ns, peer):
        return
    for n, dev in ((ns, name), (peer_ns, peer)):
        if _has_link(n, dev):
            _ip(n, "link", "del", dev)
    _ip(ns, "link", "add", name, "type", "veth", "peer", "name", peer, "netns", peer_ns)


def _kind(ns: str, name: str) -> Optional[str]:
    listed = command.run(["ip", "-j", "-d", "-n", ns, "link", "show", "dev", name])
    try:
        return ((json.loads(listed.stdout or "[]") or [{}])[0].get("linkinfo") or {}).get(
            "info_kind")
    except (ValueError, IndexError):
        return None


def _ensure_macvlan(ns: str) -> None:
    """The container's eth0: a macvlan child of the host's uplink, made again when it is
    missing or not one."""
    if _has_link(ns, L.CONTAINER_IFACE):
        if _kind(ns, L.CONTAINER_IFACE) == "macvlan":
            # (a fault may have switched its mode: the lab's children switch in bridge mode)
            _ip(ns, "link", "set", L.CONTAINER_IFACE, "type", "macvlan", "mode", "bridge")
            return
        _ip(ns, "link", "del", L.CONTAINER_IFACE)
    tmp = "ndmv-" + ns[len(L.PREFIX):][:9]
    _ip(L.HOST_NS, "link", "add", tmp, "link", L.UPLINK, "type", "macvlan", "mode", "bridge")
    _ip(L.HOST_NS, "link", "set", tmp, "netns", ns)
    _ip(ns, "link", "set", tmp, "name", L.CONTAINER_IFACE)


def ensure_links(shape: str = "bridge") -> None:
    """Every lab link of the shape exists, and no other (heal brings back links deleted by
    hand, and removes links added by hand: a second bridge, a macvlan child, ...)."""
    _ensure_veth(L.HOST_NS, L.UPLINK, L.INET_NS, L.UPSTREAM_IFACE)
    host_links = {L.UPLINK}
    if shape == "bridge":
        if not _has_link(L.HOST_NS, L.BRIDGE):
            _ip(L.HOST_NS, "link", "add", L.BRIDGE, "type", "bridge")
        host_links.add(L.BRIDGE)
    for name, (_, veth) in L.CONTAINERS.items():
        if shape == "macvlan":
            _ensure_macvlan(L.container_ns(name))
        else:
            _ensure_veth(L.container_ns(name), L.CONTAINER_IFACE, L.HOST_NS, veth)
            host_links.add(veth)
    expected = {L.HOST_NS: host_links, L.INET_NS: {L.UPSTREAM_IFACE},
                **{L.container_ns(n): {L.CONTAINER_IFACE} for n in L.CONTAINERS}}
    for ns, names in expected.items():
        listed = command.run(["ip", "-j", "-n", ns, "link", "show"])
        try:
            present = [l.get("ifname") for l in json.loads(listed.stdout or "[]")]
        except ValueError:
            continue
        for name in present:
            if name and name != "lo" and name not in names and _has_link(ns, name):
                _ip(ns, "link", "del", name)


def host_ruleset6() -> str:
    """The IPv6 half of the bridge shape's rules: the same FORWARD policy and accepts, and
    NAT66 for the unique-local container network."""
    # web's port published on the host's IPv6 address too, as Docker with ip6tables does.
    web = L.CONTAINERS6[L.PUBLISHED_CONTAINER]
    dnat = (f"-p tcp -m tcp --dport {L.PUBLISHED_HOST_PORT} -j DNAT --to-destination "
            f"[{web}]:{L.PUBLISHED_PORT}")
    publish = (f"-A PREROUTING -d {L.UPLINK_ADDRESS6}/128 {dnat}\n"
               f"-A OUTPUT -d {L.UPLINK_ADDRESS6}/128 {dnat}\n")
    return f"""*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -d {web}/128 -p tcp -m tcp --dport {L.PUBLISHED_PORT} -j ACCEPT
-A FORWARD -o {L.BRIDGE} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -i {L.BRIDGE} ! -o {L.BRIDGE} -j ACCEPT
-A FORWARD -i {L.BRIDGE} -o {L.BRIDGE} -j ACCEPT
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
{publish}-A POSTROUTING -s {L.SUBNET6} ! -o {L.BRIDGE} -j MASQUERADE
COMMIT
"""


def _set_only_address6(ns: str, dev: str, cidr: str) -> None:
    _ip(ns, "-6", "addr", "flush", "dev", dev, "scope", "global")
    _ip(ns, "addr", "add", cidr, "dev", dev, "nodad")  # usable at once: no DAD wait


def _configure_ipv6() -> None:
    """Dual stack for the bridge shape: the internet, the host and the containers."""
    for ns in [L.INET_NS, L.HOST_NS] + [L.container_ns(n) for n in L.CONTAINERS]:
        _sysctl(ns, "net.ipv6.conf.all.disable_ipv6", "0")
    for name in L.CONTAINERS:
        _sysctl(L.container_ns(name), f"net.ipv6.conf.{L.CONTAINER_IFACE}.disable_ipv6", "0")
    _set_only_address6(L.INET_NS, L.UPSTREAM_IFACE, f"{L.UPSTREAM_ADDRESS6}/64")
    _ip(L.INET_NS, "-6", "route", "flush", "table", "main", "proto", "boot")  # faults' routes
    _ip(L.INET_NS, "addr", "replace", f"{L.WEB_ADDRESS6}/128", "dev", "lo")
    _set_only_address6(L.HOST_NS, L.UPLINK, f"{L.UPLINK_ADDRESS6}/64")
    _set_only_address6(L.HOST_NS, L.BRIDGE, f"{L.BRIDGE_ADDRESS6}/64")
    _ip(L.HOST_NS, "-6", "route", "replace", "default", "via", L.UPSTREAM_ADDRESS6, "dev",
        L.UPLINK)
    _ip(L.HOST_NS, "-6", "neigh", "flush", "nud", "permanent")
    # What the host learnt of the containers' addresses while a fault stood (a duplicate
    # address answers for the wrong container) goes with the fault.
    for dev in (L.BRIDGE, L.UPLINK):
        _ip(L.HOST_NS, "-6", "neigh", "flush", "dev", dev)
    _sysctl(L.HOST_NS, "net.ipv6.conf.all.forwarding", "1")
    _ns_exec(L.HOST_NS, "ip6tables-restore", input=host_ruleset6())
    for name, addr in L.CONTAINERS6.items():
        ns = L.container_ns(name)
        _set_only_address6(ns, L.CONTAINER_IFACE, f"{addr}/64")
        _ip(ns, "-6", "route", "replace", "default", "via", L.BRIDGE_ADDRESS6, "dev",
            L.CONTAINER_IFACE)
    for name in L.CONTAINERS6:  # a link-local address switched back on is tentative a while
        wait_for_dad(L.container_ns(name), L.CONTAINER_IFACE)


def _default_policy_routing(ns: str) -> None:
    """Only the kernel's own three rules (local, main, default) and no routes in other tables:
    a policy rule a fault or a hand added goes."""
    out = subprocess.run(["ip", "-n", ns, "-j", "rule", "show"], capture_output=True,
                         text=True).stdout
    try:
        rules = json.loads(out or "[]")
    except ValueError:
        rules = []
    for r in rules:
        if r.get("priority") not in (0, 32766, 32767):
            _ip(ns, "rule", "del", "pref", str(r["priority"]))
    for r in rules:
        table = str(r.get("table", ""))
        if table not in ("local", "main", "default", "") and table.isdigit():
            subprocess.run(["ip", "-n", ns, "route", "flush", "table", table],
                           capture_output=True)


def wait_for_dad(ns: str, dev: str, limit: float = 5.0) -> None:
    """Until no IPv6 address on dev is tentative (detection done, failed or not)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        out = subprocess.run(["ip", "-n", ns, "-6", "addr", "show", "dev", dev, "tentative"],
                             capture_output=True, text=True).stdout
        if "dadfailed" in out or "inet6" not in out:
            return
        time.sleep(0.1)


def configure_healthy(state: dict) -> dict:
    """Put every lab object in its healthy configuration for the lab's shape (idempotent)."""
    shape = state.get("shape") or "bridge"
    ensure_links(shape)
    # The fake internet: its uplink side, the two service addresses on lo, no filtering.
    _ip(L.INET_NS, "link", "set", "lo", "up")
    _ip(L.INET_NS, "link", "set", L.UPSTREAM_IFACE, "up", "mtu", str(L.MTU))
    _set_only_address(L.INET_NS, L.UPSTREAM_IFACE, f"{L.UPSTREAM_ADDRESS}/{L.UPLINK_PREFIXLEN}")
    for addr in (L.WEB_ADDRESS, L.DNS_ADDRESS):
        _ip(L.INET_NS, "addr", "replace", f"{addr}/32", "dev", "lo")
    _flush_netfilter(L.INET_NS)
    _ip(L.INET_NS, "neigh", "flush", "nud", "permanent")

    # The host: uplink, the containers' side of the shape, default route, forwarding, rules.
    _ip(L.HOST_NS, "link", "set", "lo", "up")
    _ip(L.HOST_NS, "link", "set", L.UPLINK, "up", "mtu", str(L.MTU))
    _set_only_address(L.HOST_NS, L.UPLINK, f"{L.UPLINK_ADDRESS}/{L.UPLINK_PREFIXLEN}")
    _ip(L.HOST_NS, "route", "flush", "table", "main", "proto", "boot")  # routes added by hand
    _default_policy_routing(L.HOST_NS)
    veths = [veth for _, veth in L.CONTAINERS.values()] if shape != "macvlan" else []
    if shape == "bridge":
        _ip(L.HOST_NS, "link", "set", L.BRIDGE, "up", "mtu", str(L.MTU))
        _set_only_address(L.HOST_NS, L.BRIDGE, f"{L.BRIDGE_ADDRESS}/{L.PREFIXLEN}")
    for name, (addr, veth) in L.CONTAINERS.items():
        if shape == "macvlan":
            continue
        if shape == "bridge":
            _ip(L.HOST_NS, "link", "set", veth, "master", L.BRIDGE, "mtu", str(L.MTU), "up")
            _ip(L.HOST_NS, "link", "set", veth, "type", "bridge_slave", "hairpin",
                "on" if name == L.PUBLISHED_CONTAINER else "off")
        else:
            _ip(L.HOST_NS, "link", "set", veth, "nomaster", "mtu", str(L.MTU), "up")
        _ip(L.HOST_NS, "addr", "flush", "dev", veth, "scope", "global")
        if shape == "routed":
            _sysctl(L.HOST_NS, f"net.ipv4.conf.{veth}.proxy_arp", "1")
            # as Calico sets it: a proxied ARP answer is otherwise delayed up to 0.8 s
            _sysctl(L.HOST_NS, f"net.ipv4.neigh.{veth}.proxy_delay", "0")
            _ip(L.HOST_NS, "route", "replace", f"{addr}/32", "dev", veth, "scope", "link")
    _ip(L.HOST_NS, "route", "replace", "default", "via", L.UPSTREAM_ADDRESS, "dev", L.UPLINK)
    _ip(L.HOST_NS, "neigh", "flush", "nud", "permanent")
    _sysctl(L.HOST_NS, "net.ipv4.ip_forward", "1")
    # Writing ip_forward sets every interface's forwarding only when its value changes: one
    # interface turned off by hand stays off unless set again.
    bridge = [L.BRIDGE] if shape == "bridge" else []
    for key in ("default", L.UPLINK, *bridge, *veths):
        _sysctl(L.HOST_NS, f"net.ipv4.conf.{key}.forwarding", "1")
    for key in ("all", "default", L.UPLINK, *bridge):
        _sysctl(L.HOST_NS, f"net.ipv4.conf.{key}.rp_filter", "0")
    _flush_netfilter(L.HOST_NS)
    _ns_exec(L.HOST_NS, "iptables-restore", input=host_ruleset(shape))

    # The containers: address, default route via the shape's gateway, resolv.conf, no firewall.
    gateway = L.container_gateway(shape)
    for name in L.CONTAINERS:
        ns = L.container_ns(name)
        _flush_netfilter(ns)
        _ip(ns, "link", "set", "lo", "up")
        _ip(ns, "link", "set", L.CONTAINER_IFACE, "mtu", str(L.MTU), "up")
        _set_only_address(ns, L.CONTAINER_IFACE, L.container_cidr(name, shape))
        _ip(ns, "route", "flush", "table", "main", "proto", "boot")
        if shape == "routed":
            _ip(ns, "route", "replace", gateway, "dev", L.CONTAINER_IFACE, "scope", "link")
        _ip(ns, "route", "replace", "default", "via", gateway, "dev", L.CONTAINER_IFACE)
        _ip(ns, "route", "flush", "cache")  # path MTUs learnt while a fault was in place
        _ip(ns, "neigh", "flush", "nud", "permanent")
        _flush_netfilter(ns)
        _write_resolv_conf(name)
    if shape == "bridge":
        _configure_ipv6()

    if shape == "bridge":
        _sysctl(L.HOST_NS, f"net.ipv4.conf.{L.BRIDGE}.route_localnet", "0")
    state = ensure_services(state)
    state = dict(state, faults=[])
    state.pop("publish_ip", None)
    _write_state(state)
    return state


# ---------------------------------------------------------------- commands

def up(shape: str = "bridge") -> tuple:
    """Create the lab in a shape (layout.SHAPES). Returns (created, state); created is False
    when it was already up (in whatever shape it has)."""
    if shape not in L.SHAPES:
        raise UsageError(f"unknown shape '{shape}'; choose one of: {', '.join(L.SHAPES)}")
    _require_root()
    _require_programs()
    if is_up():
        return False, read_state()
    if present_namespaces() or os.path.exists(L.STATE_DIR):
        down()  # residue of an earlier, interrupted lab
    try:
        for ns in L.all_namespaces():
            command.run(["ip", "netns", "add", ns], check=True)
        state = configure_healthy({"created": time.time(), "services": {}, "faults": [],
                                   "shape": shape})
    except BaseException:
        down()
        raise
    return True, state


def remove_namespaces(names: list) -> list:
    """Delete these lab namespaces, first killing what still runs in them (it would keep a
    namespace, and its veths, alive): what was removed."""
    removed = []
    for ns in names:
        for pid in command.run(["ip", "netns", "pids", ns]).stdout.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
                removed.append(f"process {pid} in {ns}")
            except (ProcessLookupError, ValueError):
                pass
        command.run(["ip", "netns", "del", ns], check=True)
        removed.append(f"netns {ns}")
    return removed


def down() -> list:
    """Remove the lab; returns what was removed (empty when there was no lab)."""
    _require_root()
    removed = []
    state = read_state() or {}
    for which in ("dns", "http", "web"):
        before = (state.get("services") or {}).get(which)
        state = stop_service(state, which)
        if before:
            removed.append(f"process {before} ({which})")
    removed += remove_namespaces(present_namespaces())
    for name in L.CONTAINERS:
        d = os.path.dirname(L.resolv_conf_path(name))
        if os.path.isdir(d):
            shutil.rmtree(d, ignore_errors=True)
            removed.append(d)
    if os.path.isdir(L.STATE_DIR):
        shutil.rmtree(L.STATE_DIR, ignore_errors=True)
        removed.append(L.STATE_DIR)
    try:
        os.rmdir(os.path.dirname(L.STATE_DIR))  # /run/netdoctor, if nothing else uses it
    except OSError:
        pass
    return removed


def heal() -> dict:
    _require_root()
    if not is_up():
        raise LabStateError("the lab is not up: run `netdoctor lab up`")
    return configure_healthy(read_state() or {})


def status() -> dict:
    """What exists of the lab and which faults are injected (no root needed to read)."""
    state = read_state()
    present = present_namespaces()
    services = (state or {}).get("services") or {}
    return {
        "up": is_up(),
        "shape": (state or {}).get("shape") or ("bridge" if state else None),
        "namespaces": {ns: ns in present for ns in L.all_namespaces()},
        "containers": {name: L.container_ns(name) for name in L.CONTAINERS},
        "services": {
            "dns": {"address": L.DNS_ADDRESS, "pid": services.get("dns"),
                    "running": _pid_alive(services.get("dns"), "dnsmasq")},
            "http": {"address": L.WEB_ADDRESS, "pid": services.get("http"),
                     "running": _pid_alive(services.get("http"), "http.server")},
        },
        "faults": (state or {}).get("faults", []),
        "residue": bool(present) and state is None,
    }

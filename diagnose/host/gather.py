"""The live reader: read-only dumps of one namespace into a NamespaceSnapshot.

Root-requiring code at the edge. It runs `ip -j` (one batch for links, addresses, routes
and neighbours, one more for IPv6 routes) and reads /proc/sys/net inside the namespace.
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Optional

from . import command, netns
from ..parse import iproute
from ..errors import CommandFailed, MissingDependency, ParseError
from ..facts.namespace import NamespaceSnapshot, RouteLookup

_BATCH = "addr show\nroute show table all\nneigh show\n"

# Namespace-wide sysctls, read when present (net.bridge.* exists only with br_netfilter).
GLOBAL_SYSCTLS = (
    "net.ipv4.ip_forward",
    "net.ipv6.conf.all.forwarding",
    "net.ipv6.conf.all.disable_ipv6",
    "net.ipv4.conf.all.rp_filter",
    "net.ipv4.conf.default.rp_filter",
    "net.ipv4.conf.all.proxy_arp",
    "net.ipv4.conf.all.route_localnet",
    "net.ipv4.ip_local_port_range",
    "net.bridge.bridge-nf-call-iptables",
    "net.bridge.bridge-nf-call-ip6tables",
    "net.netfilter.nf_conntrack_count",
    "net.netfilter.nf_conntrack_max",
)
# Per-interface sysctls, read for every non-loopback link.
INTERFACE_SYSCTLS = ("net.ipv4.conf.{}.rp_filter", "net.ipv4.conf.{}.forwarding",
                     "net.ipv4.conf.{}.proxy_arp", "net.ipv6.conf.{}.disable_ipv6",
                     "net.ipv6.conf.{}.forwarding", "net.ipv6.conf.{}.accept_ra",
                     "net.ipv4.conf.{}.route_localnet")


def read_sysctl(key: str) -> Optional[str]:
    """The value of a sysctl in the calling thread's namespace, or None if it does not exist."""
    try:
        with open("/proc/sys/" + key.replace(".", "/").replace("//", "/"), encoding="ascii") as f:
            return f.read().strip()
    except (FileNotFoundError, NotADirectoryError):
        return None


def _sysctl_path_key(key: str, ifname: str) -> str:
    # Interface names may hold dots; sysctl(8) writes them as slashes, /proc keeps the dot.
    return key.format(ifname.replace(".", "/"))


def _read_here(ns_dict: dict) -> NamespaceSnapshot:
    res = command.run(["ip", "-j", "-d", "-batch", "-"], input=_BATCH)
    if not res.ok:
        raise CommandFailed(f"ip -batch failed in {ns_dict.get('name') or ns_dict['path']}: "
                            f"{res.first_error_line()}")
    docs = iproute.split_documents(res.stdout)
    if len(docs) != 3:
        raise CommandFailed(f"ip -batch printed {len(docs)} documents, expected 3")
    links = iproute.parse_links(docs[0])
    routes = iproute.parse_routes(docs[1])  # both families: `table all` dumps them all
    neighbours = iproute.parse_neighbours(docs[2])
    sysctls = {}
    for key in GLOBAL_SYSCTLS:
        v = read_sysctl(key)
        if v is not None:
            sysctls[key] = v
    for link in links:
        if link.is_loopback:
            continue
        for pattern in INTERFACE_SYSCTLS:
            v = read_sysctl(_sysctl_path_key(pattern, link.name))
            if v is not None:
                sysctls[pattern.format(link.name)] = v
    fdb = []
    for link in links:
        if link.kind == "vxlan":  # where the tunnel sends each MAC: its FDB
            out = command.run(["bridge", "-j", "fdb", "show", "dev", link.name])
            if out.ok:
                try:
                    fdb += iproute.parse_fdb(json.loads(out.stdout or "[]"), link.name)
                except ValueError as e:
                    raise CommandFailed(f"bridge fdb show dev {link.name}: {e}") from None
    return NamespaceSnapshot(
        netns=ns_dict, links=links, routes=routes, neighbours=neighbours, sysctls=sysctls,
        netfilter_tables=_netfilter_tables_here(), fdb=tuple(fdb),
    )


def _netfilter_tables_here() -> tuple:
    """The netfilter tables of the calling thread's namespace, without starting a program."""
    from . import nfnetlink

    try:
        tables = [f"nft {family} {name}" for family, name in nfnetlink.nft_tables()]
    except (OSError, ParseError):
        tables = ["unknown"]
    for family, names in (("ip", "ip_tables_names"), ("ip6", "ip6_tables_names")):
        try:
            with open(f"/proc/thread-self/net/{names}", encoding="ascii") as f:
                tables += [f"legacy {family} {n}" for n in f.read().split()]
        except FileNotFoundError:
            pass  # no legacy iptables module loaded: no legacy tables anywhere
        except (OSError, ValueError):
            tables.append("unknown")
    return tuple(tables)


def read_namespace(ns: netns.Netns) -> NamespaceSnapshot:
    return netns.call_in(ns, _read_here, ns.to_dict())


class NamespaceReader:
    """read_namespace, once per namespace per run: gather once, judge many."""

    def __init__(self):
        self.snapshots: dict = {}  # inode -> NamespaceSnapshot

    def __call__(self, ns: netns.Netns) -> NamespaceSnapshot:
        if ns.inode not in self.snapshots:
            self.snapshots[ns.inode] = read_namespace(ns)
        return self.snapshots[ns.inode]

    def prefetch(self, namespaces: list, workers: int = 8) -> None:
        """Read many namespaces at once (each read is an `ip` process: they overlap). A
        namespace that cannot be read now is left for __call__, which says why."""
        todo = {ns.inode: ns for ns in namespaces if ns.inode not in self.snapshots}
        if len(todo) < 2:
            return
        from concurrent.futures import ThreadPoolExecutor

        def attempt(ns):
            try:
                return ns.inode, read_namespace(ns)
            except Exception:  # noqa: BLE001 - reported by the read that needs it
                return ns.inode, None

        with ThreadPoolExecutor(max_workers=min(workers, len(todo))) as pool:
            for inode, snap in pool.map(attempt, todo.values()):
                if snap is not None:
                    self.snapshots[inode] = snap


def _save_output(argv: list) -> tuple:
    """(stdout, None) or (None, why not) for a ruleset dump program."""
    if shutil.which(argv[0]) is None:
        return None, "not installed"
    res = command.run(argv, timeout=30)
    if not res.ok:
        return None, res.first_error_line()
    return res.stdout, None


_IPTABLES_SAVES = (("iptables-nft", "iptables-nft-save", "ip"),
                   ("iptables-nft", "ip6tables-nft-save", "ip6"),
                   ("iptables-legacy", "iptables-legacy-save", "ip"),
                   ("iptables-legacy", "ip6tables-legacy-save", "ip6"))


def _iptables_save(backend: str, prog: str) -> tuple:
    text, why = _save_output([prog, "-c"])
    if text is None and backend == "iptables-nft" and why == "not installed":
        # Older distributions ship only `iptables-save`, with whatever backend it has.
        text, why = _save_output([prog.replace("-nft", ""), "-c"])
    return text, why


def _nft_json(argv: list) -> tuple:
    """(document, None) or (None, why not) for an `nft -j` listing."""
    text, why = _save_output(argv)
    if not text or not text.strip():
        return None, why
    try:
        return json.loads(text), None
    except ValueError as e:
        raise ParseError(f"nft -j printed something that is not JSON: {e}") from None


def _netfilter_here():
    from concurrent.futures import ThreadPoolExecutor

    from ..facts.ruleset import Ruleset
    from ..parse import iptables_save
    from ..parse import nft_json

    # The dumps run at once (threads started here are in this thread's namespace, and so are
    # the programs they start): with 10,000 rules each takes a large part of a second.
    with ThreadPoolExecutor(max_workers=len(_IPTABLES_SAVES) + 1) as pool:
        saves = [pool.submit(_iptables_save, backend, prog)
                 for backend, prog, _ in _IPTABLES_SAVES]
        listed = pool.submit(_nft_json, ["nft", "-j", "list", "tables"])
        saves = [f.result() for f in saves]
        tables_doc, nft_why = listed.result()
        chains, sources = [], {}
        for (backend, prog, family), (text, why) in zip(_IPTABLES_SAVES, saves):
            sources[prog] = why or "ok"
            if text:
                chains.extend(iptables_save.parse_iptables_save(text, backend, family))
        if all(why == "not installed" for why in sources.values()) and nft_why == "not installed":
            raise MissingDependency("cannot read the firewall and NAT rules: neither "
                                    "iptables-save nor nft is installed "
                                    "(apt install iptables nftables)")
        # Tables iptables-nft made are in its dump already. nft lists only the others: on a
        # host whose 10,000 rules are iptables-nft's, `nft -j list ruleset` would print them
        # again as 4.6 MB of JSON.
        iptables_tables = iptables_save.tables_of(tuple(c for c in chains if c.backend == "iptables-nft"))
        native = [t for t in (nft_json.parse_nft_tables(tables_doc) if tables_doc else ())
                  if t not in iptables_tables]
        docs = list(pool.map(lambda t: _nft_json(["nft", "-j", "list", "table", *t]), native))
    for doc, why in docs:
        nft_why = nft_why or why
        if doc is not None:
            chains.extend(nft_json.parse_nft_json(doc, iptables_tables))
    sources["nft"] = nft_why or "ok"
    return Ruleset(tuple(chains), sources)


def read_netfilter(ns: netns.Netns):
    """Both iptables views (nft and legacy backends) and the native nft tables of ns."""
    return netns.call_in(ns, _netfilter_here)


def _route_get_here(dst: str, src: Optional[str], iif: Optional[str]) -> RouteLookup:
    from . import rtnetlink

    try:
        return rtnetlink.route_get(dst, src, iif)
    except (OSError, ParseError):  # no rtnetlink here: ask `ip`, which says the same
        return _ip_route_get_here(dst, src, iif)


def _ip_route_get_here(dst: str, src: Optional[str], iif: Optional[str]) -> RouteLookup:
    argv = ["ip", "-j", "route", "get", dst]
    if src:
        argv += ["from", src]
    if iif:
        argv += ["iif", iif]
    res = command.run(argv)
    return iproute.parse_route_get(res.stdout, res.stderr, dst, "ip " + " ".join(argv[2:]))


def route_get(ns: netns.Netns, dst: str, src: Optional[str] = None,
              iif: Optional[str] = None) -> RouteLookup:
    """Ask the kernel of ns which route it would use toward dst (a lookup; nothing is sent).

    With src and iif it is the forwarding decision for a packet arriving on iif from src,
    the one a container's packet meets on the host."""
    return netns.call_in(ns, _route_get_here, dst, src, iif)


def _nsids_here(paths: list) -> list:
    from . import rtnetlink

    return rtnetlink.nsids(paths)


def nsids_of(viewer: netns.Netns, others: list) -> list:
    """The ids under which `viewer` knows each of `others` (what viewer's
    IFLA_LINK_NETNSID values name); None where viewer has assigned none. One netlink
    socket serves them all."""
    return netns.call_in(viewer, _nsids_here, [o.path for o in others])


def machine_facts() -> dict:
    """Which machine a snapshot was taken on, and when, and by whom."""
    import os
    import platform
    import socket
    import time

    return {"taken_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "hostname": socket.gethostname(), "kernel": platform.release(), "uid": os.geteuid()}


def _listeners_here() -> list:
    from ..parse import proc_net

    out = []
    for table, proto in (("tcp", "tcp"), ("tcp6", "tcp"), ("udp", "udp"), ("udp6", "udp")):
        try:
            # thread-self: this thread entered the namespace, the process did not.
            with open(f"/proc/thread-self/net/{table}", encoding="ascii") as f:
                text = f.read()
        except FileNotFoundError:
            continue  # no IPv6 in this kernel
        out += [{"proto": s.proto, "address": s.address, "port": s.port}
                for s in proc_net.listening(text, proto)]
    return out


def read_listeners(ns: netns.Netns) -> list:
    """The namespace's listening TCP and bound UDP sockets, from its own /proc/net tables."""
    return netns.call_in(ns, _listeners_here)


def _tc_hooks_here() -> Optional[dict]:
    if shutil.which("tc") is None:
        return None
    res = command.run(["tc", "-j", "qdisc", "show"])
    if not res.ok:
        return None
    try:
        qdiscs = json.loads(res.stdout or "[]")
    except ValueError:
        return None
    return {str(q.get("dev")): str(q.get("kind")) for q in qdiscs
            if isinstance(q, dict) and q.get("kind") in ("clsact", "ingress")}


def read_tc_hooks(ns: netns.Netns) -> Optional[dict]:
    """The devices of ns where tc classifiers can act on packets (ingress, clsact qdiscs):
    where a tc filter or an eBPF program may decide, unseen by netfilter."""
    return netns.call_in(ns, _tc_hooks_here)


# ------------------------------------------------------------------ intent

FLANNEL_SUBNET_FILE = "/run/flannel/subnet.env"


def flanneld_processes() -> list:
    """(pid, argv) of every process whose command is flanneld: one look through /proc for
    all the hosts of a snapshot."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if argv and os.path.basename(argv[0]) == b"flanneld":
            out.append((int(entry), [a.decode(errors="replace") for a in argv if a]))
    return out


def _subnet_file(argv: list) -> str:
    for i, a in enumerate(argv):
        if a.startswith("--subnet-file="):
            return a.split("=", 1)[1]
        if a == "--subnet-file" and i + 1 < len(argv):
            return argv[i + 1]
    return FLANNEL_SUBNET_FILE


def read_intent(ns: netns.Netns, flanneld: list) -> Optional[dict]:
    """What the overlay's control plane on this host says it programmed: flannel's subnet
    file, as the flanneld of this namespace (among flanneld_processes()) sees it (through
    /proc/PID/root, so a flanneld in a pod is read in its own mount namespace), else the
    host's /run/flannel/subnet.env. None when there is neither."""
    for pid, argv in flanneld:
        try:
            if os.stat(f"/proc/{pid}/ns/net").st_ino != ns.inode:
                continue
            path = _subnet_file(argv)
            with open(f"/proc/{pid}/root{path}", encoding="ascii", errors="replace") as f:
                text = f.read()
        except OSError:
            continue
        return _flannel(text, f"{path}, as flanneld (pid {pid}) sees it")
    try:
        with open(FLANNEL_SUBNET_FILE, encoding="ascii", errors="replace") as f:
            text = f.read()
    except OSError:
        return None
    return _flannel(text, FLANNEL_SUBNET_FILE)


def _flannel(text: str, source: str) -> dict:
    from ..parse.flannel_env import parse_subnet_env

    try:
        return {"flannel": dict(parse_subnet_env(text), source=source)}
    except ParseError as e:
        return {"flannel": {"error": str(e), "source": source}}


# ------------------------------------------------------------------ the checksum-offload trap

def _offloads_here(devices: list) -> Optional[dict]:
    from ..parse.kernel_stats import parse_features, parse_snmp

    if shutil.which("ethtool") is None:
        return None
    features = {}
    for dev in devices:
        res = command.run(["ethtool", "-k", dev])
        if res.ok:
            features[dev] = {k: v for k, v in parse_features(res.stdout).items()
                             if k.startswith(("tx-checksum", "rx-checksum"))}
    try:
        with open("/proc/thread-self/net/snmp", encoding="ascii") as f:
            udp = parse_snmp(f.read()).get("Udp", {})
    except (OSError, ParseError):
        udp = {}
    return {"features": features, "udp_in_csum_errors": udp.get("InCsumErrors")}


def read_offloads(ns: netns.Netns, devices: list) -> Optional[dict]:
    """The tunnel devices' checksum offloads (`ethtool -k`) and the namespace's UDP checksum
    error counter: {"features": {dev: {feature: on|off}}, "udp_in_csum_errors": N}. None
    without ethtool."""
    return netns.call_in(ns, _offloads_here, devices) if devices else None

"""The live reader: read-only dumps of one namespace into a NamespaceSnapshot.

Root-requiring code at the edge. It dumps links, addresses, routes, neighbours and tunnel
FDB entries over rtnetlink (rtdump.py; `ip -j -d` and `bridge -j` if that fails) and reads
/proc/sys/net inside the namespace.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import struct
from dataclasses import replace
from typing import Optional

from . import command, netns
from ..parse import iproute
from ..errors import CommandFailed, MissingDependency, NetdoctorError, ParseError
from ..facts.namespace import NamespaceSnapshot, RouteLookup

_BATCH = "addr show\nroute show table all\nneigh show\n"

# Namespace-wide sysctls, read when present (net.bridge.* exists only with br_netfilter).
GLOBAL_SYSCTLS = (
    "net.ipv4.ip_forward",
    "net.ipv4.ip_default_ttl",
    "net.ipv6.conf.all.forwarding",
    "net.ipv6.conf.all.disable_ipv6",
    "net.ipv4.conf.all.rp_filter",
    "net.ipv4.conf.default.rp_filter",
    "net.ipv4.conf.all.proxy_arp",
    "net.ipv4.conf.all.arp_ignore",
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
                     "net.ipv4.conf.{}.route_localnet", "net.ipv4.conf.{}.arp_ignore",
                     "net.ipv6.conf.{}.hop_limit")


_DOT_SLASH = str.maketrans("./", "/.")


def read_sysctls(keys: list) -> dict:
    """{key: value} of the net.* sysctls among keys that exist in the calling thread's
    namespace. Each is opened below one descriptor per /proc/sys/net/<family> folder:
    finding that folder means the kernel looks through every namespace's copy of it
    (0.25 ms on a host with a thousand namespaces), and the rest of the path is this
    namespace's alone (0.01 ms)."""
    out, folders = {}, {}
    try:
        for key in keys:
            # sysctl(8)'s spelling: dots part the path, a slash stands for a dot in a name
            parts = key.translate(_DOT_SLASH).split("/", 2)
            if len(parts) != 3 or parts[0] != "net":
                continue
            if parts[1] not in folders:
                try:
                    folders[parts[1]] = os.open(f"/proc/sys/net/{parts[1]}",
                                                os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                except OSError:
                    folders[parts[1]] = None  # no such family here (no br_netfilter, ...)
            if folders[parts[1]] is None:
                continue
            try:
                fd = os.open(parts[2], os.O_RDONLY | os.O_CLOEXEC, dir_fd=folders[parts[1]])
            except (FileNotFoundError, NotADirectoryError):
                continue
            try:
                out[key] = os.read(fd, 4096).decode("ascii", "replace").strip()
            finally:
                os.close(fd)
    finally:
        for fd in folders.values():
            if fd is not None:
                os.close(fd)
    return out


def _worth_reading(key: str, links, tables: tuple, known: dict) -> bool:
    """Whether a namespace-wide sysctl can matter here (each folder of /proc/sys/net read
    costs a look through every namespace's copy of it: 0.3-0.7 ms with a thousand).
    br_netfilter's switches act on this namespace's bridges; conntrack counts, and
    route_localnet's `all` for NAT to 127.0.0.1, only where a netfilter table exists.
    The kernel decides IPv6 by each interface's own disable_ipv6 (writing `all` copies the
    value to every interface), so `all` is read only to name the switch that turned an
    interface's IPv6 off, when rtnetlink says one is (or said nothing)."""
    if key.startswith("net.bridge."):
        return any(l.kind == "bridge" for l in links)
    if key.startswith("net.netfilter.") or key == "net.ipv4.conf.all.route_localnet":
        return bool(tables)
    if key == "net.ipv6.conf.all.disable_ipv6" and known:
        return any(v == "1" for k, v in known.items()
                   if k.startswith("net.ipv6.conf.") and k.endswith(".disable_ipv6"))
    return True


def _sysctl_path_key(key: str, ifname: str) -> str:
    # Interface names may hold dots; sysctl(8) writes them as slashes, /proc keeps the dot.
    return key.format(ifname.replace(".", "/"))


def _read_here(ns_dict: dict) -> NamespaceSnapshot:
    """The calling thread's namespace, read over rtnetlink (no process: a thousand
    namespaces read in about a second); with `ip` and `bridge` if rtnetlink fails."""
    from . import rtdump

    try:
        links, routes, neighbours, fdb, known = rtdump.read_all()
    except (OSError, ParseError):
        (links, routes, neighbours, fdb), known = _read_with_ip(ns_dict), {}
    return _snapshot_here(ns_dict, links, routes, neighbours, fdb, known)


def _read_with_ip(ns_dict: dict) -> tuple:
    """(links, routes, neighbours, fdb) as `ip -j -d` and `bridge -j fdb` print them: the
    same facts rtdump reads, from iproute2's JSON."""
    from . import rtdump

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
    fdb = []
    ports = rtdump.pinned_ports(links)
    for link in links:
        if rtdump.fdb_wanted(link):  # where the tunnel sends each MAC, or what a port holds
            fdb += _fdb_of(["dev", link.name], link.name)
    if ports:  # and what someone pinned on a bridge port
        wanted = {name: mac for name, mac in ports.values()}
        fdb += [e for e in _fdb_of([], "") if e.dev in wanted and e not in fdb
                and rtdump.pinned(e, wanted[e.dev])]
    return links, routes, neighbours, tuple(fdb)


def _fdb_of(selector: list, dev: str) -> list:
    """`bridge -j fdb show [dev DEV]`'s entries (none where it fails)."""
    out = command.run(["bridge", "-j", "fdb", "show"] + selector)
    if not out.ok:
        return []
    try:
        return list(iproute.parse_fdb(json.loads(out.stdout or "[]"), dev))
    except ValueError as e:
        raise CommandFailed(f"bridge fdb show {' '.join(selector)}: {e}") from None


def _snapshot_here(ns_dict: dict, links, routes, neighbours, fdb,
                   known: Optional[dict] = None) -> NamespaceSnapshot:
    """The snapshot of the calling thread's namespace; the sysctls not in known (those
    rtnetlink reported) are read from /proc/sys."""
    tables = _netfilter_tables_here()
    known = known or {}
    wanted = {key: key for key in GLOBAL_SYSCTLS if _worth_reading(key, links, tables, known)}
    for link in links:
        if not link.is_loopback:
            wanted.update((_sysctl_path_key(p, link.name), p.format(link.name))
                          for p in INTERFACE_SYSCTLS)
    keys = set(wanted.values())
    known = {k: v for k, v in known.items() if k in keys}
    sysctls = {wanted[path]: v for path, v in read_sysctls(
        [path for path, key in wanted.items() if key not in known]).items()}
    sysctls.update(known)
    return NamespaceSnapshot(
        netns=ns_dict, links=links, routes=routes, neighbours=neighbours, sysctls=sysctls,
        netfilter_tables=tables, fdb=tuple(fdb),
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
        self.neighbours: dict = {}  # inode -> the neighbour entries read before the rest
        self.rules_soon: Optional[RulesSoon] = None  # one namespace's rules, dumped early

    def netfilter(self, ns: netns.Netns):
        """read_netfilter(ns), from the early dump when it is this namespace's."""
        soon, self.rules_soon = self.rules_soon, None
        if soon is not None:
            if soon.ns.inode == ns.inode:
                return soon.ruleset()
            soon.close()
        return read_netfilter(ns)

    def close(self) -> None:
        """Stop what was started early and not used."""
        soon, self.rules_soon = self.rules_soon, None
        if soon is not None:
            soon.close()

    def __call__(self, ns: netns.Netns) -> NamespaceSnapshot:
        if ns.inode not in self.snapshots:
            self._keep(ns.inode, read_namespace(ns))
        return self.snapshots[ns.inode]

    def _keep(self, inode: int, snap: NamespaceSnapshot) -> None:
        early = self.neighbours.get(inode)
        if early is not None:
            from . import rtdump

            snap = replace(snap, neighbours=rtdump.name_by_index(early, snap.links))
        self.snapshots[inode] = snap

    def use_neighbours(self, early: dict) -> None:
        """{inode: neighbour entries read earlier (devices by ifindex)}: each namespace's
        snapshot keeps these instead of its own reading (read later, it would show the
        entries a DNS probe made meanwhile)."""
        self.neighbours.update(early)
        for inode, snap in list(self.snapshots.items()):
            self._keep(inode, snap)

    def prefetch(self, namespaces: list, shared: Optional["SharedReading"] = None) -> None:
        """Read many namespaces at once: one thread enters each in turn (a read is a few
        netlink dumps, under a millisecond; a thread per namespace would cost more than
        the read). A namespace that cannot be read now is left for __call__, which says
        why. With shared, this process reads those it takes from shared, the helper the
        others (merge them with take_shared once the helper is done)."""
        if shared is not None:
            source = iter(shared.take, None)  # one at a time, as the helper takes its own
        else:
            todo = {ns.inode: ns for ns in namespaces if ns.inode not in self.snapshots}
            if len(todo) < 2:
                return
            source = iter(todo.values())
        taken: list = []

        def calls():
            for ns in source:
                taken.append(ns)
                yield ns, _read_here, (ns.to_dict(),)

        for ns, snap in zip(taken, netns.call_in_each(calls())):
            if isinstance(snap, NamespaceSnapshot):
                self._keep(ns.inode, snap)

    def take_shared(self, shared: "SharedReading") -> None:
        """The snapshots the helper read (call once it is done)."""
        for inode, snap in shared.helpers_snapshots().items():
            if inode not in self.snapshots:
                self._keep(inode, snap)


class SharedReading:
    """Namespaces to read, shared out between this process and a forked helper (the DNS
    probe's sender, once its queries are out: `checks` is bound by one CPU otherwise).
    Each takes the next from one pipe, four bytes at a time (the kernel hands a read of
    four bytes whole to one reader); the helper passes what it read back pickled, through a
    memory file that only this process reads once the helper is done. What the helper took
    and could not read, this process reads when it is needed, and says why not."""

    def __init__(self, namespaces: list):
        self.namespaces = list({ns.inode: ns for ns in namespaces}.values())
        self._out = os.memfd_create("netdoctor-namespaces", os.MFD_CLOEXEC)
        self._queue_r, queue_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        # What the pipe does not hold (past 16,384 namespaces, or less when the user's
        # pipes are limited), this process reads itself after the rest.
        queue = b"".join(_INDEX.pack(i) for i in range(len(self.namespaces)))
        try:
            written = os.write(queue_w, queue)  # whole pages: whole indexes
        except BlockingIOError:
            written = 0
        os.close(queue_w)
        self._rest = self.namespaces[written // _INDEX.size:]

    def fds(self) -> tuple:
        """The descriptors the helper keeps."""
        return self._queue_r, self._out

    def take(self, helper: bool = False) -> Optional[netns.Netns]:
        """The next namespace nobody has taken yet, or None when all are taken."""
        try:
            got = os.read(self._queue_r, _INDEX.size)
        except OSError:
            got = b""
        if len(got) == _INDEX.size:
            return self.namespaces[_INDEX.unpack(got)[0]]
        if self._rest and not helper:
            return self._rest.pop(0)
        return None

    def helper_reads(self) -> None:
        """In the helper: read what it takes, into the memory file."""
        import pickle

        while (ns := self.take(helper=True)) is not None:
            if netns._enter(ns) is not None:
                continue
            try:
                data = pickle.dumps((ns.inode, _read_here(ns.to_dict())), protocol=5)
            except Exception:  # whatever it is, netdoctor reads this one and says it
                continue
            os.write(self._out, _LENGTH.pack(len(data)) + data)

    def helpers_snapshots(self) -> dict:
        """{inode: NamespaceSnapshot} the helper read."""
        import pickle

        data = os.pread(self._out, os.fstat(self._out).st_size, 0)
        out, at = {}, 0
        while at + _LENGTH.size <= len(data):
            (size,) = _LENGTH.unpack_from(data, at)
            at += _LENGTH.size
            try:
                inode, snap = pickle.loads(data[at:at + size])
            except Exception:  # a helper that died mid-write: the rest is read here
                break
            at += size
            out[inode] = snap
        return out

    def close(self) -> None:
        for fd in (self._queue_r, self._out):
            try:
                os.close(fd)
            except OSError:
                pass


_IPTABLES_SAVES = (("iptables-nft", "iptables-nft-save", "ip"),
                   ("iptables-nft", "ip6tables-nft-save", "ip6"),
                   ("iptables-legacy", "iptables-legacy-save", "ip"),
                   ("iptables-legacy", "ip6tables-legacy-save", "ip6"))


def _json_of(text: Optional[str], why: Optional[str]) -> tuple:
    if not text or not text.strip():
        return None, why
    try:
        return json.loads(text), None
    except ValueError as e:
        raise ParseError(f"nft -j printed something that is not JSON: {e}") from None


_INDEX = struct.Struct("=I")
_LENGTH = struct.Struct("=Q")
_TABLE_LINE = re.compile(r"^\*(\S+)", re.MULTILINE)


def _with_native_tables(saves: list, tables_doc, nft_why) -> tuple:
    """The dumps _ruleset_of reads (each iptables save as (text, why not), why nft could not
    list, the tables iptables-nft made, each other nft table's JSON as (document, why
    not), the devices its ingress and egress chains are bound to), from the saves and
    nft's list of tables: the native tables listed, at once, by programs the calling
    thread starts in its namespace."""
    from ..parse import nft_json

    # Tables iptables-nft made are in its dump already. nft lists only the others: on a
    # host whose 10,000 rules are iptables-nft's, `nft -j list ruleset` would print them
    # again as 4.6 MB of JSON.
    iptables_tables = {(family, table)
                       for (backend, _, family), (text, _) in zip(_IPTABLES_SAVES, saves)
                       if backend == "iptables-nft" and text
                       for table in _TABLE_LINE.findall(text)}
    native = [t for t in (nft_json.parse_nft_tables(tables_doc) if tables_doc else ())
              if t not in iptables_tables]
    listing = [_start_program(["nft", "-j", "list", "table", *t]) for t in native]
    devices = _chain_devices_here({family for family, _ in native})
    docs = [_json_of(*_finish(started)) for started in listing]
    return saves, nft_why, iptables_tables, docs, devices


def _chain_devices_here(families: set) -> dict:
    """The devices the calling thread's namespace's ingress and egress chains are bound to,
    which `nft -j` does not print: only netdev and inet tables can have such chains."""
    from . import nfnetlink

    asked = tuple(f for f in ("netdev", "inet") if f in families)
    if not asked:
        return {}
    try:
        return nfnetlink.nft_chain_devices(asked)
    except (OSError, ParseError):
        return {}  # the chains stay unbound: no device's hook is judged by them


def _ruleset_of(dumps: tuple):
    """The Ruleset in the dumps _with_native_tables returns."""
    from ..facts.ruleset import Ruleset
    from ..parse import iptables_save
    from ..parse import nft_json

    saves, nft_why, iptables_tables, docs, devices = dumps
    chains, sources = [], {}
    for (backend, prog, family), (text, why) in zip(_IPTABLES_SAVES, saves):
        sources[prog] = why or "ok"
        if text:
            chains.extend(iptables_save.parse_iptables_save(text, backend, family))
    if all(why == "not installed" for why in sources.values()) and nft_why == "not installed":
        raise MissingDependency("cannot read the firewall and NAT rules: neither "
                                "iptables-save nor nft is installed "
                                "(apt install iptables nftables)")
    for doc, why in docs:
        nft_why = nft_why or why
        if doc is not None:
            chains.extend(replace(c, devices=devices.get((c.family, c.table, c.name), ()))
                          if c.hook in ("ingress", "egress") else c
                          for c in nft_json.parse_nft_json(doc, iptables_tables))
    sources["nft"] = nft_why or "ok"
    return Ruleset(tuple(chains), sources)


def _netfilter_here(ns: netns.Netns):
    return RulesSoon(ns).ruleset()


def read_netfilter(ns: netns.Netns):
    """Both iptables views (nft and legacy backends) and the native nft tables of ns: the
    programs run at once (with 10,000 rules each takes a large part of a second)."""
    return netns.call_in(ns, _netfilter_here, ns)


class RulesSoon:
    """The rule programs of the calling thread's namespace (ns), started now: they print into
    files while netdoctor goes on (started early, while the namespaces are read: on another
    CPU, and no thread of netdoctor's waits on them, which would take turns with the reading
    for the interpreter's lock); ruleset() parses what they printed."""

    def __init__(self, ns: netns.Netns):
        self.ns = ns
        self._saves = [_start_save(backend, prog) for backend, prog, _ in _IPTABLES_SAVES]
        self._tables = _start_program(["nft", "-j", "list", "tables"])

    def ruleset(self):
        saves = [_finish(started) for started in self._saves]
        text, why = _finish(self._tables)
        tables_doc, nft_why = _json_of(text, why)
        return _ruleset_of(netns.call_in(self.ns, _with_native_tables, saves, tables_doc,
                                         nft_why))

    def close(self) -> None:
        for started in self._saves + [self._tables]:
            if isinstance(started, command.Started):
                started.close()


def _start_program(argv: list):
    """A command.Started, or why it could not start."""
    if shutil.which(argv[0]) is None:
        return "not installed"
    try:
        return command.Started(argv)
    except (MissingDependency, OSError) as e:
        return str(e)


def _start_save(backend: str, prog: str):
    started = _start_program([prog, "-c"])
    if started == "not installed" and backend == "iptables-nft":
        # Older distributions ship only `iptables-save`, with whatever backend it has.
        started = _start_program([prog.replace("-nft", ""), "-c"])
    return started


def _finish(started) -> tuple:
    """(stdout, None) or (None, why not: "not installed", its first error line, or that it
    did not finish within 30 s)."""
    if not isinstance(started, command.Started):
        return None, started
    try:
        res = started.result(timeout=30)
    except NetdoctorError as e:
        return None, str(e)
    if not res.ok:
        return None, res.first_error_line()
    return res.stdout, None


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


def read_neighbour_tables(ns: netns.Netns, before: Optional[dict] = None) -> Optional[dict]:
    """The machine's neighbour tables as seen from ns (rtdump.read_neighbour_tables), each
    with table_fulls_during_run against an earlier reading; None when rtnetlink will not
    say."""
    from . import rtdump

    try:
        tables = netns.call_in(ns, rtdump.read_neighbour_tables)
    except (OSError, ParseError, NetdoctorError):
        return None
    for name, t in tables.items():
        was = (before or {}).get(name, {}).get("table_fulls")
        if was is not None and "table_fulls" in t:
            t["table_fulls_during_run"] = max(0, t["table_fulls"] - was)
    return tables


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


def docker_proxies() -> list:
    """Docker's userland proxies running on this machine, from their command lines
    (`docker-proxy -proto tcp -host-ip 0.0.0.0 -host-port 8080 -container-ip 172.17.0.3
    -container-port 80`): {proto, host_ip, host_port, container_ip, container_port, pid}.
    Each serves one published port by connecting to the container itself."""
    out = []
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return out
    for pid in pids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue  # gone, or not ours to read
        if not argv or not argv[0].endswith(b"docker-proxy"):
            continue
        words = [a.decode(errors="replace") for a in argv[1:] if a]
        opts = {words[i].lstrip("-"): words[i + 1] for i in range(len(words) - 1)
                if words[i].startswith("-")}
        try:
            out.append({"proto": opts.get("proto", "tcp"), "host_ip": opts.get("host-ip", ""),
                        "host_port": int(opts["host-port"]),
                        "container_ip": opts.get("container-ip", ""),
                        "container_port": int(opts["container-port"]), "pid": int(pid)})
        except (KeyError, ValueError):
            continue
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


def _policy_rules_here() -> Optional[tuple]:
    from . import rtdump

    try:
        return rtdump.read_policy_rules()
    except (OSError, ParseError):  # no rtnetlink here: ask `ip`, which says the same
        pass
    rules: tuple = ()
    for flag, family in (("-4", "inet"), ("-6", "inet6")):
        res = command.run(["ip", flag, "-j", "rule", "show"])
        if not res.ok:
            return None
        try:
            rules += iproute.parse_policy_rules(json.loads(res.stdout or "[]"), family)
        except (ValueError, ParseError):
            return None
    return rules


def read_policy_rules(ns: netns.Netns) -> Optional[tuple]:
    """The routing policy rules of ns (`ip rule`, both families), by priority within each;
    None when they cannot be read."""
    return netns.call_in(ns, _policy_rules_here)


def read_tc_hooks(ns: netns.Netns) -> Optional[dict]:
    """The devices of ns where tc classifiers can act on packets (ingress, clsact qdiscs):
    where a tc filter or an eBPF program may decide, unseen by netfilter."""
    return netns.call_in(ns, _tc_hooks_here)


# ------------------------------------------------------------------ intent

FLANNEL_SUBNET_FILE = "/run/flannel/subnet.env"


AGENTS = ("flanneld", "bird", "bird6")  # the overlay agents whose intent is read


def overlay_agents() -> list:
    """(pid, argv) of every process whose command is an overlay agent (flanneld, BIRD): one
    look through /proc for all the hosts of a snapshot."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if argv and os.path.basename(argv[0]).decode(errors="replace") in AGENTS:
            out.append((int(entry), [a.decode(errors="replace") for a in argv if a]))
    return out


def _option(argv: list, name: str, default: str = "") -> str:
    """The value of a command-line option, given as `NAME VALUE` (or `--NAME=VALUE`); the
    last one, as getopt and Go's flag package take it."""
    value = default
    for i, a in enumerate(argv):
        if a == name and i + 1 < len(argv):
            value = argv[i + 1]
        elif name.startswith("--") and a.startswith(name + "="):
            value = a.split("=", 1)[1]
    return value


def _subnet_file(argv: list) -> str:
    return _option(argv, "--subnet-file", FLANNEL_SUBNET_FILE)


def _in_namespace(pid: int, ns: netns.Netns) -> bool:
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino == ns.inode
    except OSError:
        return False


def read_intent(ns: netns.Netns, agents: list) -> Optional[dict]:
    """What the overlay's control plane on this host says it programmed. flannel: its subnet
    file, as the flanneld of this namespace (among overlay_agents()) sees it (through
    /proc/PID/root, so a flanneld in a pod is read in its own mount namespace), else the
    host's /run/flannel/subnet.env. BGP: the configuration of the BIRD of this namespace
    (Calico's), with the files it includes. None when there is neither."""
    out: dict = {}
    for pid, argv in agents:
        if not _in_namespace(pid, ns):
            continue
        name = os.path.basename(argv[0])
        if name == "flanneld" and "flannel" not in out:
            path = _subnet_file(argv)
            try:
                with open(f"/proc/{pid}/root{path}", encoding="ascii", errors="replace") as f:
                    out.update(_flannel(f.read(), f"{path}, as flanneld (pid {pid}) sees it"))
            except OSError:
                continue
        elif name in ("bird", "bird6") and "bgp" not in out:
            bgp = _bird(pid, _option(argv, "-c", BIRD_CONFIG), _option(argv, "-s"))
            if bgp is not None:
                out["bgp"] = bgp
    if "flannel" not in out:
        try:
            with open(FLANNEL_SUBNET_FILE, encoding="ascii", errors="replace") as f:
                out.update(_flannel(f.read(), FLANNEL_SUBNET_FILE))
        except OSError:
            pass
    overlay = _docker_overlay(ns)
    if overlay is not None:
        out["docker_overlay"] = overlay
    return out or None


def _docker_overlay(ns: netns.Netns) -> Optional[dict]:
    """The engine's view of the Docker overlay network whose sandbox ns is (Docker binds it
    as `<exec-root>/netns/1-<network id>`): its peers and its endpoints' nodes."""
    import re

    from ..errors import NetdoctorError
    from ..parse.docker_network import parse_overlay_network
    from ..targets import docker

    m = re.fullmatch(r".*/netns/1-([0-9a-z]{10,64})", ns.path or "")
    if m is None:
        return None
    source = f"docker network inspect --verbose {m.group(1)} ({docker.endpoint()})"
    try:
        doc = docker._api().get(f"/networks/{m.group(1)}?verbose=true")
        if doc is None:
            return {"error": "the engine knows no such network", "source": source}
        return dict(parse_overlay_network(doc), source=source)
    except (NetdoctorError, OSError) as e:
        return {"error": str(e), "source": source}


BIRD_CONFIG = "/etc/bird/bird.conf"


def _bird(pid: int, path: str, socket_path: str) -> Optional[dict]:
    """A BIRD's configuration (and what it includes, relative to its folder), parsed."""
    from ..parse.bird_conf import includes, parse_bird_config

    root = f"/proc/{pid}/root"
    texts, todo, seen = [], [path], set()
    while todo and len(seen) < 32:
        name = todo.pop(0)
        if name in seen:
            continue
        seen.add(name)
        try:
            with open(root + name, encoding="utf-8", errors="replace") as f:
                text = f.read(1 << 20)
        except OSError:
            if name == path:
                return None  # not readable: no intent, rather than a wrong one
            continue
        texts.append(text)
        todo += [i if i.startswith("/") else os.path.join(os.path.dirname(name), i)
                 for i in includes(text)]
    source = f"{path}, as bird (pid {pid}) sees it"
    try:
        out = dict(parse_bird_config(texts), source=source, socket=socket_path or None)
    except ParseError as e:
        return {"error": str(e), "source": source}
    try:
        out["sessions"] = [p for p in _bird_protocols(pid, socket_path or BIRD_SOCKET)
                           if p["proto"] == "BGP"]
    except (OSError, ParseError) as e:
        out["sessions_error"] = f"{socket_path or BIRD_SOCKET}: {e}"
    return out


BIRD_SOCKET = "/run/bird/bird.ctl"  # where BIRD listens without -s (Debian, upstream)
BIRD_ANSWER_TIMEOUT = 1.0


def _bird_protocols(pid: int, socket_path: str) -> list:
    """BIRD's `show protocols all`, asked on its control socket (as BIRD's mount namespace
    has it) - a read-only question, as `birdcl show protocols all` asks it."""
    import socket
    import time

    from ..parse.bird_ctl import parse_protocols, reply_complete

    deadline = time.monotonic() + BIRD_ANSWER_TIMEOUT

    def reply(sock) -> str:
        data = b""
        while not reply_complete(data.decode("utf-8", "replace")):
            left = deadline - time.monotonic()
            if left <= 0 or len(data) > (4 << 20):
                raise OSError("BIRD did not finish its answer in time")
            sock.settimeout(left)
            chunk = sock.recv(65536)
            if not chunk:
                raise OSError("BIRD closed the connection")
            data += chunk
        return data.decode("utf-8", "replace")

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(BIRD_ANSWER_TIMEOUT)
        sock.connect(f"/proc/{pid}/root{socket_path}")
        reply(sock)  # its greeting
        sock.sendall(b"show protocols all\n")
        return parse_protocols(reply(sock))


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


# ------------------------------------------------------------------ asking the next hops

STATIC_STATES = {"PERMANENT", "NOARP"}
UNRESOLVED_STATES = {"INCOMPLETE", "FAILED"}
ARP_WAIT = 0.3  # seconds for an answer on a link: a neighbour on it answers in microseconds
# Questions in flight at once, each a socket: well inside the usual limit of 1,024 files.
ASKED_AT_ONCE = 256


def neighbour_questions(facts: NamespaceSnapshot, next_hops, expected=None) -> list:
    """(address, dev, own MAC, source address or None for IPv6) for each next hop (address,
    dev) of next_hops whose entry the kernel will not ask about as things stand: a static one
    (PERMANENT, NOARP: never asked again, so a wrong MAC is found only by asking) and an
    unresolved one (INCOMPLETE, FAILED: an old failure, the fault it came from perhaps gone
    since; or a live one); and one that names another MAC than expected ({(address, dev):
    MAC}: a container's address, whose entry may be left from an earlier holder, or name a
    second one)."""
    asks = []
    expected = expected or {}
    for address, dev in sorted({(a, d) for a, d in list(next_hops) + list(expected)
                                if a and d}):
        mac = (expected.get((address, dev)) or "").lower()
        if not any((STATIC_STATES & set(n.state) and n.lladdr)
                   or UNRESOLVED_STATES & set(n.state)
                   or (mac and n.lladdr and n.lladdr.lower() != mac)
                   for n in facts.neighbours_of(address, dev)):
            continue
        link = facts.link(name=dev)
        if link is None or not link.mac:
            continue
        if ":" in address:  # the kernel sends it from the link's own link-local address
            if any(a.family == "inet6" and a.scope == "link" for a in link.addresses):
                asks.append((address, dev, link.mac, None))
            continue
        own = [a for a in link.addresses if a.family == "inet"]
        src = next((a.local for a in own
                    if ipaddress.ip_address(address) in a.interface.network),
                   own[0].local if own else None)
        if src is not None:
            asks.append((address, dev, link.mac, src))
    return asks


def ask_neighbours(asking: list) -> list:
    """[(ns, facts, next_hops[, expected])] -> each facts with the MACs that answered one
    ARP request (IPv6: one Neighbor Solicitation) for each of its neighbour_questions, from
    the next hop's dev ({"ADDRESS DEV": [MAC, ...]} in .asked), every question waited for at
    once. Where an entry that is not static was answered, the namespace's neighbours are
    read again: the kernel took the answer (the entry was history), or it did not
    (something in the namespace drops or ignores the answers)."""
    questions = [(i, q) for i, (_, facts, hops, *more) in enumerate(asking)
                 for q in neighbour_questions(facts, hops, *more)]
    if not questions:
        return [a[1] for a in asking]  # nearly always: no question to ask
    from netdoctor.capture import probe

    from . import rtdump

    sent, answers = [], []
    for at in range(0, len(questions), ASKED_AT_ONCE):
        some = questions[at:at + ASKED_AT_ONCE]
        opened = netns.call_in_each([
            (asking[i][0], probe.ndp_question, (dev, mac, address)) if src is None else
            (asking[i][0], probe.arp_question, (dev, mac, src, address))
            for i, (address, dev, mac, src) in some])
        now = [(q, s) for q, s in zip(some, opened) if not isinstance(s, BaseException)]
        sent += now
        answers += probe.answers_to(
            [(s, probe.ndp_answers if src is None else probe.arp_answers, address)
             for (_, (address, _, _, src)), s in now], ARP_WAIT)
    asked: dict = {}
    again = set()
    for ((i, (address, dev, _, _)), _), got in zip(sent, answers):
        asked.setdefault(i, {})[f"{address} {dev}"] = got
        if got and any(not STATIC_STATES & set(n.state)
                       for n in asking[i][1].neighbours_of(address, dev)):
            again.add(i)
    order = sorted(again)
    reread = dict(zip(order, netns.call_in_each(
        [(asking[i][0], rtdump.read_neighbours_here, ()) for i in order])))
    out = []
    for i, (_, facts, *_) in enumerate(asking):
        if i in asked:
            facts = replace(facts, asked=asked[i])
        neighbours = reread.get(i)
        if neighbours is not None and not isinstance(neighbours, BaseException):
            facts = replace(facts, neighbours=rtdump.name_by_index(neighbours, facts.links))
        out.append(facts)
    return out

"""A namespace's links, addresses, routes, neighbours and tunnel FDB entries, dumped over
rtnetlink in the calling thread's namespace: the facts `ip -j -d addr/route/neigh` and
`bridge -j fdb` print, read without starting a program (a process per namespace is most of
the cost of `checks` on a host with a thousand containers).

The records are the ones parse/iproute.py makes of ip's JSON, field for field, names
included (table, protocol and scope names from iproute2's own files); a live test compares
the two readings on the lab's namespaces. This is the only parser of rtnetlink dumps.
Nothing is sent on any network and nothing is changed.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
from dataclasses import replace
from typing import Iterator, Optional

from ..errors import ParseError
from ..facts.namespace import Address, FdbEntry, Link, Neighbour, PolicyRule, Route
from .netlink import NLMSG, NLMSG_ERROR, RTA, open_socket

NLM_F_REQUEST, NLM_F_DUMP_INTR, NLM_F_DUMP = 0x1, 0x10, 0x300
NLMSG_DONE = 3
RTM_GETLINK, RTM_NEWLINK = 18, 16
RTM_GETADDR, RTM_NEWADDR = 22, 20
RTM_GETROUTE, RTM_NEWROUTE = 26, 24
RTM_GETNEIGH, RTM_NEWNEIGH = 30, 28
AF_BRIDGE = 7
ARPHRD_ETHER = 1
NLA_TYPE_MASK = 0x3FFF
IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS = 29, 1 << 3

RTM_GETNETCONF, RTM_NEWNETCONF = 82, 80

# Per-interface sysctls the link dump carries (IFLA_AF_SPEC): the ipv4 devconf array is
# numbered from 1 (IPV4_DEVCONF_*), the ipv6 one from 0 (DEVCONF_*).
DEVCONF = {"ipv4": (socket.AF_INET, 1, {"forwarding": 1, "proxy_arp": 3, "rp_filter": 8,
                                        "arp_ignore": 19, "route_localnet": 26}),
           "ipv6": (socket.AF_INET6, 2, {"forwarding": 0, "hop_limit": 1, "accept_ra": 3,
                                         "disable_ipv6": 26})}
# What RTM_GETNETCONF says of `all` (-1) and `default` (-2): (family, ifindex, attribute)
# -> the sysctls it is. net.ipv4.ip_forward is all.forwarding under another name.
NETCONF = {(socket.AF_INET, -1, 2): ("net.ipv4.ip_forward", "net.ipv4.conf.all.forwarding"),
           (socket.AF_INET, -1, 3): ("net.ipv4.conf.all.rp_filter",),
           (socket.AF_INET, -1, 5): ("net.ipv4.conf.all.proxy_arp",),
           (socket.AF_INET, -2, 3): ("net.ipv4.conf.default.rp_filter",),
           (socket.AF_INET6, -1, 2): ("net.ipv6.conf.all.forwarding",)}

_IFINFO = struct.Struct("=BxHiII")
_IFADDR = struct.Struct("=BBBBI")
_RTMSG = struct.Struct("=BBBBBBBBI")
_NDMSG = struct.Struct("=BxxxiHBB")
_CACHEINFO = struct.Struct("=IIiIIIII")

# struct net_device flags, in the order `ip link` prints them
_IFF = (("LOOPBACK", 0x8), ("BROADCAST", 0x2), ("POINTOPOINT", 0x10), ("MULTICAST", 0x1000),
        ("NOARP", 0x80), ("ALLMULTI", 0x200), ("PROMISC", 0x100), ("MASTER", 0x400),
        ("SLAVE", 0x800), ("DEBUG", 0x4), ("DYNAMIC", 0x8000), ("AUTOMEDIA", 0x4000),
        ("PORTSEL", 0x2000), ("NOTRAILERS", 0x20), ("UP", 0x1), ("LOWER_UP", 0x10000),
        ("DORMANT", 0x20000), ("ECHO", 0x40000))
IFF_UP, IFF_RUNNING = 0x1, 0x40
# BR_STATE_*, as `bridge link` names them
PORT_STATES = ("disabled", "listening", "learning", "forwarding", "blocking")
_OPERSTATES = ("UNKNOWN", "NOTPRESENT", "DOWN", "LOWERLAYERDOWN", "TESTING", "DORMANT", "UP")
_RTN_TYPES = {0: "none", 1: "unicast", 2: "local", 3: "broadcast", 4: "anycast",
              5: "multicast", 6: "blackhole", 7: "unreachable", 8: "prohibit", 9: "throw",
              10: "nat", 11: "xresolve"}
_NUD = (("INCOMPLETE", 0x01), ("REACHABLE", 0x02), ("STALE", 0x04), ("DELAY", 0x08),
        ("PROBE", 0x10), ("FAILED", 0x20), ("NOARP", 0x40), ("PERMANENT", 0x80))
NUD_NOARP = 0x40
_MACVLAN_MODES = {1: "private", 2: "vepa", 4: "bridge", 8: "passthru", 16: "source"}
_IPVLAN_MODES = {0: "l2", 1: "l3", 2: "l3s"}
# ifaddrmsg flags as `ip -j addr` names them (temporary is secondary's bit on IPv6)
_IFA = (("nodad", 0x02), ("optimistic", 0x04), ("dadfailed", 0x08), ("home", 0x10),
        ("deprecated", 0x20), ("tentative", 0x40), ("mngtmpaddr", 0x100),
        ("noprefixroute", 0x200))
IFA_F_SECONDARY, IFA_F_PERMANENT = 0x01, 0x80

# iproute2's built-in names; its files in /etc/iproute2 (or /usr/share/iproute2) add more
_BUILTIN = {
    "rt_tables": {253: "default", 254: "main", 255: "local"},
    "rt_protos": {0: "unspec", 1: "redirect", 2: "kernel", 3: "boot", 4: "static", 8: "gated",
                  9: "ra", 10: "mrt", 11: "zebra", 12: "bird", 13: "dnrouted", 14: "xorp",
                  15: "ntk", 16: "dhcp", 18: "keepalived", 42: "babel", 99: "openr",
                  186: "bgp", 187: "isis", 188: "ospf", 189: "rip", 192: "eigrp"},
    "rt_scopes": {0: "global", 200: "site", 253: "link", 254: "host", 255: "nowhere"},
}
_names_cache: dict = {}


def _read_names(path: str, into: dict) -> None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return
    for line in lines:
        words = line.split("#", 1)[0].split()
        if len(words) >= 2:
            try:
                into[int(words[0], 0)] = words[1]
            except ValueError:
                continue


def names(kind: str) -> dict:
    """{number: name} for rt_tables, rt_protos or rt_scopes, as `ip` reads them: built-in
    names, then the first of /etc/iproute2/KIND and /usr/share/iproute2/KIND, then KIND.d."""
    if kind not in _names_cache:
        out = dict(_BUILTIN[kind])
        for folder in ("/etc/iproute2", "/usr/share/iproute2", "/usr/lib/iproute2"):
            if os.path.exists(f"{folder}/{kind}"):
                _read_names(f"{folder}/{kind}", out)
                break
        for folder in ("/etc/iproute2", "/usr/share/iproute2", "/usr/lib/iproute2"):
            try:
                extra = sorted(os.listdir(f"{folder}/{kind}.d"))
            except OSError:
                continue
            for entry in extra:
                if entry.endswith(".conf"):
                    _read_names(f"{folder}/{kind}.d/{entry}", out)
        _names_cache[kind] = out
    return _names_cache[kind]


def _name(kind: str, number: int) -> str:
    return names(kind).get(number, str(number))


# ------------------------------------------------------------------ the wire

def attrs(data: bytes, start: int, end: int) -> dict:
    """{type: payload} of the attributes from start to end (nested-flag bits masked off;
    the first of each type)."""
    out, i, unpack = {}, start, RTA.unpack_from
    while i + 4 <= end:
        alen, akind = unpack(data, i)
        if alen < 4 or i + alen > end:
            raise ParseError("rtnetlink: attribute runs past its message")
        akind &= NLA_TYPE_MASK
        if akind not in out:
            out[akind] = data[i + 4:i + alen]
        i += (alen + 3) & ~3
    return out


def _nested(payload: Optional[bytes]) -> dict:
    return attrs(payload, 0, len(payload)) if payload else {}


def _u8(raw: Optional[bytes]) -> Optional[int]:
    return raw[0] if raw else None


def _u16(raw: Optional[bytes]) -> Optional[int]:
    return struct.unpack_from("=H", raw)[0] if raw and len(raw) >= 2 else None


def _u32(raw: Optional[bytes]) -> Optional[int]:
    return struct.unpack_from("=I", raw)[0] if raw and len(raw) >= 4 else None


def _s32(raw: Optional[bytes]) -> Optional[int]:
    return struct.unpack_from("=i", raw)[0] if raw and len(raw) >= 4 else None


def _text(raw: Optional[bytes]) -> Optional[str]:
    return raw.split(b"\0", 1)[0].decode(errors="replace") if raw is not None else None


def _ip(raw: Optional[bytes]) -> Optional[str]:
    """An address as iproute2 prints it (inet_ntop: an IPv4-mapped IPv6 address keeps its
    dotted quad)."""
    if not raw or len(raw) not in (4, 16):
        return None
    return socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, raw)


def _mac(raw: Optional[bytes]) -> Optional[str]:
    return ":".join(f"{b:02x}" for b in raw) if raw else None


def dump(s: socket.socket, kind: int, body: bytes, seq: int) -> Iterator[tuple]:
    """(type, message bytes) of every message of one dump, until its end. Raises OSError
    with the kernel's error code when it refuses, ParseError on a malformed answer."""
    s.send(NLMSG.pack(NLMSG.size + len(body), kind, NLM_F_REQUEST | NLM_F_DUMP, seq, 0)
           + body)
    portid = s.getsockname()[0]
    while True:
        data = s.recv(65536)  # the kernel fills at most 32 KB a read
        i = 0
        while i + NLMSG.size <= len(data):
            length, mtype, flags, mseq, mport = NLMSG.unpack_from(data, i)
            if length < NLMSG.size or i + length > len(data):
                raise ParseError("rtnetlink: message length does not match")
            msg = data[i:i + length]
            i += (length + 3) & ~3
            if mseq != seq or mport != portid:
                continue
            if flags & NLM_F_DUMP_INTR:
                raise InterruptedError("the dump changed while it was read")
            if mtype == NLMSG_DONE:
                return
            if mtype == NLMSG_ERROR:
                code = struct.unpack_from("=i", msg, NLMSG.size)[0] if length >= 20 else 0
                if code == 0:
                    continue
                raise OSError(-code, os.strerror(-code))
            yield mtype, msg


def _dump_all(s: socket.socket, kind: int, body: bytes, seq: int) -> list:
    """A whole dump; read again (up to three times) when the kernel says it changed midway."""
    for attempt in range(3):
        try:
            return list(dump(s, kind, body, seq * 10 + attempt))
        except InterruptedError:
            continue
    return list(dump(s, kind, body, seq * 10 + 3))


# ------------------------------------------------------------------ links and addresses

def _tunnel(kind: Optional[str], data: dict, name_of) -> dict:
    """A vxlan device's settings as ip shows them: vni, local, remote/group, port, dev,
    learning."""
    if kind != "vxlan":
        return {}
    out = {}
    if 1 in data:
        out["vni"] = str(_u32(data[1]))
    for key in (2, 16):  # IFLA_VXLAN_GROUP, GROUP6: a multicast group, else the remote
        addr = _ip(data.get(key))
        if addr:
            out["group" if ipaddress.ip_address(addr).is_multicast else "remote"] = addr
    for key in (4, 17):  # IFLA_VXLAN_LOCAL, LOCAL6
        addr = _ip(data.get(key))
        if addr:
            out["local"] = addr
    lower = _u32(data.get(3))
    if lower:
        out["dev"] = name_of(lower)
    if 15 in data and len(data[15]) >= 2:
        out["port"] = str(struct.unpack_from("!H", data[15])[0])
    if 7 in data:
        out["learning"] = "true" if _u8(data[7]) else "false"
    return out


def _link_record(msg: bytes, a: dict, name_of, up_of) -> tuple:
    """(Link without addresses, its IFLA_MASTER, its sysctls) of one RTM_NEWLINK message
    whose attributes are a."""
    _, ltype, index, flags, _ = _IFINFO.unpack_from(msg, NLMSG.size)
    info = _nested(a.get(18))  # IFLA_LINKINFO
    kind = _text(info.get(1))
    data = _nested(info.get(2)) if kind else {}
    names_ = [n for n, bit in _IFF if flags & bit]
    if flags & IFF_UP and not flags & IFF_RUNNING:
        names_.insert(0, "NO-CARRIER")
    iflink = _u32(a.get(5))  # IFLA_LINK
    netnsid = _s32(a.get(37))  # IFLA_LINK_NETNSID
    if iflink and netnsid is None and iflink in up_of and not up_of[iflink]:
        names_.append("M-DOWN")
    mode = None
    if kind in ("macvlan", "macvtap") and 1 in data:
        mode = _MACVLAN_MODES.get(_u32(data[1]), str(_u32(data[1])))
    elif kind == "ipvlan" and 1 in data:
        mode = _IPVLAN_MODES.get(_u16(data[1]), str(_u16(data[1])))
    hairpin = port_state = stp = isolated = learning = unicast_flood = broadcast_flood = None
    if _text(info.get(4)) == "bridge":  # IFLA_INFO_SLAVE_KIND
        port = _nested(info.get(5))  # IFLA_INFO_SLAVE_DATA
        hairpin, isolated, learning, unicast_flood, broadcast_flood = (
            bool(port[k][0]) if port.get(k) else None
            # IFLA_BRPORT_MODE, _ISOLATED, _LEARNING, _UNICAST_FLOOD, _BCAST_FLOOD
            for k in (4, 33, 8, 9, 30))
        state = _u8(port.get(1))  # IFLA_BRPORT_STATE
        if state is not None:
            port_state = PORT_STATES[state] if state < len(PORT_STATES) else str(state)
    if kind == "bridge" and 5 in data:  # IFLA_BR_STP_STATE
        stp = bool(_u32(data[5]))
    xdp = None
    xattrs = _nested(a.get(43))  # IFLA_XDP
    attached = _u8(xattrs.get(2))
    if attached:
        prog = _u32(xattrs.get(4))
        xdp = f"mode {attached} prog {prog if prog is not None else '?'}"
    operstate = _u8(a.get(16))
    name = _text(a.get(3)) or f"if{index}"
    sysctls = {}
    if not flags & 0x8:  # loopback's are not read
        spec = _nested(a.get(26))  # IFLA_AF_SPEC
        for folder, (family, attr, wanted) in DEVCONF.items():
            conf = _nested(spec.get(family)).get(attr)
            if not conf:
                continue
            values = struct.unpack_from(f"={len(conf) // 4}i", conf)
            sysctls.update((f"net.{folder}.conf.{name}.{key}", str(values[i - (family == socket.AF_INET)]))
                           for key, i in wanted.items() if i - (family == socket.AF_INET) < len(values))
    link = Link(
        ifindex=index, name=name, kind=kind,
        mtu=_u32(a.get(4)) or 0,
        mac=_mac(a.get(1)) if ltype == ARPHRD_ETHER else None,
        flags=tuple(names_),
        operstate=_OPERSTATES[operstate] if operstate is not None and operstate < len(
            _OPERSTATES) else ("UNKNOWN" if operstate is None else str(operstate)),
        peer_ifindex=iflink if iflink and netnsid is not None and netnsid >= 0 else None,
        peer_netnsid=netnsid if netnsid is not None and netnsid >= 0 else None,
        tunnel=_tunnel(kind, data, name_of), xdp=xdp, mode=mode, hairpin=hairpin,
        port_state=port_state, stp=stp, isolated=isolated, learning=learning,
        unicast_flood=unicast_flood, broadcast_flood=broadcast_flood)
    return link, _u32(a.get(10)), sysctls


def _address_record(msg: bytes) -> tuple:
    """(ifindex, Address) of one RTM_NEWADDR message."""
    family, prefixlen, hflags, scope, index = _IFADDR.unpack_from(msg, NLMSG.size)
    a = attrs(msg, NLMSG.size + _IFADDR.size, len(msg))
    local = _ip(a.get(2)) or _ip(a.get(1))  # IFA_LOCAL, else IFA_ADDRESS
    flags = _u32(a.get(8))  # IFA_FLAGS holds the full set
    flags = hflags if flags is None else flags
    fam = "inet6" if family == socket.AF_INET6 else "inet"
    names_ = {n for n, bit in _IFA if flags & bit}
    if not flags & IFA_F_PERMANENT:
        names_.add("dynamic")
    if flags & IFA_F_SECONDARY and fam == "inet6":
        names_.add("temporary")
    from ..parse.iproute import ADDRESS_FLAGS

    return index, (Address(family=fam, local=local, prefixlen=prefixlen,
                           scope=_name("rt_scopes", scope),
                           flags=tuple(k for k in ADDRESS_FLAGS if k in names_))
                   if local else None)


def read_links(s: socket.socket) -> tuple:
    """(every link with its addresses, as `ip -j -d addr show` lists them; a function from
    ifindex to name; the links' own sysctls in DEVCONF, as /proc/sys/net names them)."""
    body = _IFINFO.pack(socket.AF_UNSPEC, 0, 0, 0, 0) + struct.pack(
        "=HHI", 8, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS)
    raw = []
    names_of, up_of = {}, {}
    for t, m in _dump_all(s, RTM_GETLINK, body, 1):
        if t != RTM_NEWLINK:
            continue
        if len(m) < NLMSG.size + _IFINFO.size:
            raise ParseError("rtnetlink: link message shorter than its header")
        _, _, index, flags, _ = _IFINFO.unpack_from(m, NLMSG.size)
        a = attrs(m, NLMSG.size + _IFINFO.size, len(m))
        raw.append((m, a))
        names_of[index] = _text(a.get(3))
        up_of[index] = bool(flags & IFF_UP)

    def name_of(index: int) -> str:
        return names_of.get(index) or f"if{index}"

    addresses: dict = {}
    body = _IFADDR.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
    for t, m in _dump_all(s, RTM_GETADDR, body, 2):
        if t == RTM_NEWADDR:
            index, address = _address_record(m)
            if address is not None:
                addresses.setdefault(index, []).append(address)
    links, sysctls = [], {}
    for m, a in raw:
        link, master, own = _link_record(m, a, name_of, up_of)
        links.append(replace(link, master=master if master in names_of else None,
                             addresses=tuple(addresses.get(link.ifindex, ()))))
        sysctls.update(own)
    return tuple(links), name_of, sysctls


def read_netconf(s: socket.socket) -> dict:
    """The namespace-wide switches of NETCONF (forwarding, rp_filter, proxy_arp of `all`
    and `default`), as /proc/sys/net names them."""
    out = {}
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            answers = _dump_all(s, RTM_GETNETCONF, struct.pack("=B3x", family), 6 + family)
        except OSError:
            continue  # no IPv6 in this kernel
        for t, m in answers:
            if t != RTM_NEWNETCONF or len(m) < NLMSG.size + 4:
                continue
            a = attrs(m, NLMSG.size + 4, len(m))
            index = _s32(a.get(1))
            for attr, raw in a.items():
                for key in NETCONF.get((m[NLMSG.size], index, attr), ()):
                    out[key] = str(_s32(raw))
    return out


# ------------------------------------------------------------------ routes and neighbours

RTNH_F_ONLINK = 4  # rtm_flags: the route's gateway is on the link (`ip route ... onlink`)


def _route_record(msg: bytes, name_of) -> Optional[Route]:
    family, dst_len, _, _, table, proto, scope, rtype, flags = _RTMSG.unpack_from(
        msg, NLMSG.size)
    if family not in (socket.AF_INET, socket.AF_INET6) or flags & 0x200:  # RTM_F_CLONED
        return None
    a = attrs(msg, NLMSG.size + _RTMSG.size, len(msg))
    fam = "inet6" if family == socket.AF_INET6 else "inet"
    dst = _ip(a.get(1))  # RTA_DST
    if dst is not None:
        dst = f"{dst}/{dst_len}"
    elif dst_len:
        dst = f"{'::' if fam == 'inet6' else '0.0.0.0'}/{dst_len}"
    else:
        dst = "default"
    gateway = _ip(a.get(5))  # RTA_GATEWAY
    if gateway is None and a.get(18) and len(a[18]) > 2:  # RTA_VIA: family, then address
        gateway = _ip(a[18][2:])
    oif = _u32(a.get(4))
    expires = None
    ci = a.get(12)  # RTA_CACHEINFO
    if ci and len(ci) >= _CACHEINFO.size:
        ticks = _CACHEINFO.unpack_from(ci)[2]
        if ticks:
            expires = int(ticks / os.sysconf("SC_CLK_TCK"))
    return Route(dst=dst, family=fam, gateway=gateway, dev=name_of(oif) if oif else None,
                 table=_name("rt_tables", _u32(a.get(15)) or table),
                 type=_RTN_TYPES.get(rtype, str(rtype)), protocol=_name("rt_protos", proto),
                 scope=_name("rt_scopes", scope), prefsrc=_ip(a.get(7)),
                 metric=_u32(a.get(6)) or 0, expires=expires,
                 onlink=bool(flags & RTNH_F_ONLINK))


def read_routes(s: socket.socket, name_of) -> tuple:
    """Routes of both families in every table, as `ip -j -d route show table all`."""
    body = _RTMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0, 0, 0, 0, 0)
    out = []
    for t, m in _dump_all(s, RTM_GETROUTE, body, 3):
        if t == RTM_NEWROUTE:
            r = _route_record(m, name_of)
            if r is not None:
                out.append(r)
    return tuple(out)


def read_neighbours(s: socket.socket, name_of) -> tuple:
    """ARP and NDP entries, as `ip -j neigh show` (which leaves out NOARP and empty ones)."""
    body = _NDMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
    out = []
    for t, m in _dump_all(s, RTM_GETNEIGH, body, 4):
        if t != RTM_NEWNEIGH:
            continue
        family, index, state, _, _ = _NDMSG.unpack_from(m, NLMSG.size)
        if family not in (socket.AF_INET, socket.AF_INET6) or not state & ~NUD_NOARP & 0xFF:
            continue
        a = attrs(m, NLMSG.size + _NDMSG.size, len(m))
        dst = _ip(a.get(1))
        if dst is None:
            continue
        out.append(Neighbour(dst=dst, dev=name_of(index), lladdr=_mac(a.get(2)),
                             state=tuple(n for n, bit in _NUD if state & bit)))
    return tuple(out)


def _fdb_state(state: int) -> str:
    """The state word `bridge fdb` prints."""
    if state & 0x80:
        return "permanent"
    if state & NUD_NOARP:
        return "static"
    if state & 0x04:
        return "stale"
    if state & 0x02:
        return ""
    return f"{state:#x}"


def fdb_wanted(link) -> bool:
    """Whose forwarding entries are read: a tunnel's (where each MAC is sent) and a bridge
    port's that does not learn (its entries are all the bridge knows behind it)."""
    return link.kind == "vxlan" or link.learning is False


NTF_STICKY = 0x40  # ndm_flags: the entry does not roam


def pinned_ports(links) -> dict:
    """{ifindex: (name, its own MAC)} of the bridge ports whose pinned entries are read."""
    return {l.ifindex: (l.name, (l.mac or "").lower()) for l in links if l.master is not None}


def pinned(entry, own_mac: str) -> bool:
    """An entry someone put on a bridge port: static (sticky or not: see FdbEntry), or
    permanent for a MAC that is not the port's own (the kernel's own entries are its ports'
    MACs). Multicast MACs (a port's own groups, listed as its entries) are no one's."""
    try:
        unicast = not int(entry.mac.split(":")[0], 16) & 1
    except ValueError:
        return False
    return unicast and entry.state in ("static", "permanent") and entry.mac.lower() != own_mac


def read_fdb(s: socket.socket, devices: dict, ports: Optional[dict] = None) -> tuple:
    """The FDB entries of the given devices ({ifindex: name}), as `bridge -j fdb show dev`,
    and the pinned ones of the bridge ports ({ifindex: (name, own MAC)}, see pinned)."""
    ports = ports or {}
    if not devices and not ports:
        return ()
    out = []
    body = _NDMSG.pack(AF_BRIDGE, 0, 0, 0, 0)
    for t, m in _dump_all(s, RTM_GETNEIGH, body, 5):
        if t != RTM_NEWNEIGH:
            continue
        _, index, state, flags, _ = _NDMSG.unpack_from(m, NLMSG.size)
        if index not in devices and index not in ports:
            continue
        a = attrs(m, NLMSG.size + _NDMSG.size, len(m))
        mac = _mac(a.get(2))
        if mac is None:
            continue
        entry = FdbEntry(dev=devices[index] if index in devices else ports[index][0], mac=mac,
                         dst=_ip(a.get(1)), state=_fdb_state(state),
                         sticky=bool(flags & NTF_STICKY))
        if index in devices or pinned(entry, ports[index][1]):
            out.append(entry)
    return tuple(out)


def read_neighbours_here() -> tuple:
    """The calling thread's neighbour entries alone, each dev the ifindex (name_by_index
    names them once the links are read)."""
    with open_socket(socket.NETLINK_ROUTE) as s:
        s.settimeout(5.0)
        try:
            return read_neighbours(s, int)
        except (struct.error, IndexError, ValueError, UnicodeError) as e:
            raise ParseError(f"rtnetlink: a malformed message: {e}") from None


def name_by_index(neighbours: tuple, links: tuple) -> tuple:
    """read_neighbours_here's entries with their devices named as links name them."""
    names = {l.ifindex: l.name for l in links}
    return tuple(replace(n, dev=names.get(n.dev) or f"if{n.dev}") for n in neighbours)


RTM_GETNEIGHTBL, RTM_NEWNEIGHTBL = 66, 64
_NDTMSG = struct.Struct("=Bxxx")
_NDT_CONFIG = struct.Struct("=HHIIIIIII")  # key_len, entry_size, entries, ...
_NDT_STATS = struct.Struct("=11Q")  # allocs ... forced_gc_runs, table_fulls
_NDT_STAT_NAMES = ("allocs", "destroys", "hash_grows", "res_failed", "lookups", "hits",
                   "rcv_probes_mcast", "rcv_probes_ucast", "periodic_gc_runs",
                   "forced_gc_runs", "table_fulls")


def read_neighbour_tables() -> dict:
    """The kernel's neighbour tables (`ip -s ntable`: one per family for the whole machine,
    whichever namespace asks): {"arp_cache": {"entries", "thresh1", "thresh2", "thresh3",
    "table_fulls", "forced_gc_runs", ...}, "ndisc_cache": {...}}."""
    out = {}
    with open_socket(socket.NETLINK_ROUTE) as s:
        s.settimeout(5.0)
        try:
            for t, m in _dump_all(s, RTM_GETNEIGHTBL, _NDTMSG.pack(socket.AF_UNSPEC), 6):
                if t != RTM_NEWNEIGHTBL:
                    continue
                a = attrs(m, NLMSG.size + _NDTMSG.size, len(m))
                name, thresh3 = _text(a.get(1)), _u32(a.get(4))
                if name is None or thresh3 is None:
                    continue  # a device's parameters, not the table's
                table = {"thresh1": _u32(a.get(2)), "thresh2": _u32(a.get(3)),
                         "thresh3": thresh3}
                if a.get(5) and len(a[5]) >= _NDT_CONFIG.size:
                    table["entries"] = _NDT_CONFIG.unpack_from(a[5])[2]
                if a.get(7) and len(a[7]) >= _NDT_STATS.size:
                    table.update(zip(_NDT_STAT_NAMES, _NDT_STATS.unpack_from(a[7])))
                out[name] = table
        except (struct.error, IndexError, ValueError, UnicodeError) as e:
            raise ParseError(f"rtnetlink: a malformed neighbour table message: {e}") from None
    return out


RTM_GETRULE, RTM_NEWRULE = 34, 32
_FIB_RULE_HDR = struct.Struct("=BBBBBBBBI")  # family, dst_len, src_len, tos, table, 2 x res,
# action, flags
_RULE_ACTIONS = {1: "lookup", 2: "goto", 3: "nop", 6: "blackhole", 7: "unreachable",
                 8: "prohibit"}
FIB_RULE_INVERT = 0x2


def read_policy_rules() -> tuple:
    """The calling thread's namespace's routing policy rules, both families, by priority
    (`ip rule show` and `ip -6 rule show`)."""
    out = []
    with open_socket(socket.NETLINK_ROUTE) as s:
        s.settimeout(5.0)
        try:
            for t, m in _dump_all(s, RTM_GETRULE, _FIB_RULE_HDR.pack(0, 0, 0, 0, 0, 0, 0, 0, 0),
                                  7):
                if t == RTM_NEWRULE:
                    rule = _policy_rule(m)
                    if rule is not None:
                        out.append(rule)
        except (struct.error, IndexError, ValueError, UnicodeError) as e:
            raise ParseError(f"rtnetlink: a malformed rule message: {e}") from None
    return tuple(sorted(out, key=lambda r: (r.family, r.priority)))


def _policy_rule(m: bytes) -> Optional[PolicyRule]:
    family, dst_len, src_len, tos, table, _, _, action, flags = _FIB_RULE_HDR.unpack_from(
        m, NLMSG.size)
    if family not in (socket.AF_INET, socket.AF_INET6):
        return None
    a = attrs(m, NLMSG.size + _FIB_RULE_HDR.size, len(m))

    def prefix(key: int, length: int) -> Optional[str]:
        address = _ip(a.get(key))
        return f"{address}/{length}" if address is not None else None

    mark, mask = _u32(a.get(10)), _u32(a.get(16))  # FRA_FWMARK, FRA_FWMASK
    fwmark = None
    if mark or mask:
        fwmark = f"{mark or 0:#x}" + (f"/{mask:#x}" if mask is not None and mask != 0xFFFFFFFF
                                      else "")
    other = []
    if tos:
        other.append(f"tos {tos:#x}")
    for key, word in ((22, "ipproto"), (23, "sport"), (24, "dport"), (20, "uidrange"),
                      (12, "tun_id"), (19, "l3mdev")):
        if a.get(key):
            other.append(word)
    kind = _RULE_ACTIONS.get(action, str(action))
    number = _u32(a.get(15)) or table  # FRA_TABLE, else the header's
    return PolicyRule(
        priority=_u32(a.get(6)) or 0, family="inet" if family == socket.AF_INET else "inet6",
        action=kind, table=_name("rt_tables", number) if kind == "lookup" else None,
        src=prefix(2, src_len), dst=prefix(1, dst_len), iif=_text(a.get(3)),
        oif=_text(a.get(17)), fwmark=fwmark, invert=bool(flags & FIB_RULE_INVERT),
        other=tuple(other))


def read_all() -> tuple:
    """(links, routes, neighbours, fdb, sysctls) of the calling thread's namespace, one
    socket; sysctls holds those the kernel reports over rtnetlink (DEVCONF, NETCONF)."""
    with open_socket(socket.NETLINK_ROUTE) as s:
        s.settimeout(5.0)
        return read_from(s)


def read_from(s) -> tuple:
    """read_all's dumps on socket s. A message shorter than its own header or attributes is
    a ParseError (the caller then asks `ip`), never another exception."""
    try:
        links, name_of, sysctls = read_links(s)
        routes = read_routes(s, name_of)
        neighbours = read_neighbours(s, name_of)
        fdb = read_fdb(s, {l.ifindex: l.name for l in links if fdb_wanted(l)},
                       pinned_ports(links))
        sysctls.update(read_netconf(s))
    except (struct.error, IndexError, ValueError, UnicodeError) as e:
        raise ParseError(f"rtnetlink: a malformed message: {e}") from None
    return links, routes, neighbours, fdb, sysctls

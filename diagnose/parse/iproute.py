"""The one parser of iproute2's JSON output (`ip -j -d addr|route|neigh`, `ip -j route get`).

Pure functions from text to model records; the live reader in gather.py feeds them, and
unit tests feed them recorded output of real namespaces.
"""

from __future__ import annotations

import json
from typing import Iterable, Optional

from ..errors import ParseError
from ..facts.namespace import Address, Link, Neighbour, Route, RouteLookup


def split_documents(text: str) -> list:
    """`ip -j -batch -` prints one JSON document per command, back to back."""
    decoder = json.JSONDecoder()
    docs, i, n = [], 0, len(text)
    while True:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            return docs
        try:
            doc, i = decoder.raw_decode(text, i)
        except json.JSONDecodeError as e:
            raise ParseError(f"ip printed something that is not JSON: {e}") from None
        docs.append(doc)


def _objects(doc, what: str) -> Iterable[dict]:
    if not isinstance(doc, list):
        raise ParseError(f"ip -j {what}: expected a JSON list, got {type(doc).__name__}")
    for item in doc:
        if not isinstance(item, dict):
            raise ParseError(f"ip -j {what}: expected objects in the list")
        yield item


def _int(value, what: str) -> Optional[int]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ParseError(f"ip -j: {what} is not a number: {value!r:.40}")
    try:
        return int(value)
    except ValueError:
        raise ParseError(f"ip -j: {what} is not a number: {value!r:.40}") from None


def _str(value, what: str) -> str:
    """A scalar field as text; ParseError for a list or an object where text belongs."""
    if isinstance(value, (dict, list)):
        raise ParseError(f"ip -j: {what} is not text: {value!r:.40}")
    return str(value)


def _opt_str(value, what: str) -> Optional[str]:
    return None if value is None else _str(value, what)


def _list(value, what: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ParseError(f"ip -j: {what} is not a list: {value!r:.40}")
    return value


def _tunnel(kind, data, lower) -> dict:
    """A vxlan device's settings, as text: vni, local, remote, group, port, dev, learning."""
    if kind != "vxlan" or not isinstance(data, dict):
        return {}
    out = {"vni": data.get("id"), "local": data.get("local"), "remote": data.get("remote"),
           "group": data.get("group"), "port": data.get("port"),
           "dev": lower if isinstance(lower, str) else data.get("link"),
           "learning": data.get("learning")}
    return {k: str(v).lower() if isinstance(v, bool) else str(v)
            for k, v in out.items() if v is not None and not isinstance(v, (dict, list))}


def _port_flag(linkinfo, key: str) -> Optional[bool]:
    """A bridge port's flag (hairpin, isolated, learning...), as `ip -d link` says it; None
    for a link that is no bridge port."""
    if not isinstance(linkinfo, dict) or linkinfo.get("info_slave_kind") != "bridge":
        return None
    data = linkinfo.get("info_slave_data")
    value = data.get(key) if isinstance(data, dict) else None
    return value if isinstance(value, bool) else None


def _port_state(linkinfo) -> Optional[str]:
    """A bridge port's STP state, as `ip -d link` says it ("forwarding")."""
    if not isinstance(linkinfo, dict) or linkinfo.get("info_slave_kind") != "bridge":
        return None
    data = linkinfo.get("info_slave_data")
    value = data.get("state") if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


def _stp(kind, data) -> Optional[bool]:
    """Whether a bridge runs STP, as `ip -d link` says it (stp_state 0, 1 kernel, 2 user)."""
    if kind != "bridge" or not isinstance(data, dict):
        return None
    value = data.get("stp_state")
    return bool(value) if isinstance(value, int) and not isinstance(value, bool) else None


def _child_mode(kind, data) -> Optional[str]:
    """A macvlan/macvtap/ipvlan child's mode, as `ip -d link` says it."""
    if kind not in ("macvlan", "macvtap", "ipvlan") or not isinstance(data, dict):
        return None
    mode = data.get("mode")
    return str(mode) if isinstance(mode, (str, int)) else None


def parse_policy_rules(doc, family: str = "inet") -> tuple:
    """Routing policy rules from `ip -j rule show` (family inet) or `ip -6 -j rule show`."""
    from ..facts.namespace import PolicyRule

    out = []
    for item in _objects(doc, "rule show"):
        def prefix(key: str) -> Optional[str]:
            address = _opt_str(item.get(key), key)
            if address is None or address == "all":
                return None
            length = item.get(f"{key}len")
            return f"{address}/{_int(length, key + 'len')}" if length is not None else \
                f"{address}/{128 if ':' in address else 32}"

        action = _opt_str(item.get("action"), "action") or "lookup"
        mark, mask = _opt_str(item.get("fwmark"), "fwmark"), _opt_str(item.get("fwmask"),
                                                                       "fwmask")
        other = [f"tos {_str(item['tos'], 'tos')}"] if item.get("tos") else []
        other += [k for k in ("ipproto", "sport", "dport", "uidrange", "tun_id", "l3mdev")
                  if item.get(k) is not None]
        out.append(PolicyRule(
            priority=_int(item.get("priority"), "priority") or 0, family=family,
            action="lookup" if action == "to_tbl" else action,
            table=_opt_str(item.get("table"), "table") if action in ("lookup", "to_tbl")
            else None,
            src=prefix("src"), dst=prefix("dst"), iif=_opt_str(item.get("iif"), "iif"),
            oif=_opt_str(item.get("oif"), "oif"),
            fwmark=(mark + (f"/{mask}" if mask and mask != "0xffffffff" else "")) if mark
            else None,
            invert="not" in item, other=tuple(other)))
    return tuple(sorted(out, key=lambda r: r.priority))


def parse_fdb(doc, dev: str = "") -> tuple:
    """FDB entries from `bridge -j fdb show dev DEV` (which leaves the device out)."""
    from ..facts.namespace import FdbEntry

    out = []
    for item in _list(doc, "bridge fdb"):
        if not isinstance(item, dict) or "mac" not in item:
            continue
        flags = item.get("flags")
        out.append(FdbEntry(dev=_str(item.get("ifname") or item.get("dev") or dev, "ifname"),
                            mac=_str(item["mac"], "mac"), dst=_opt_str(item.get("dst"), "dst"),
                            state=_str(item.get("state", ""), "state"),
                            sticky=isinstance(flags, list) and "sticky" in flags))
    return tuple(out)


def parse_links(doc) -> tuple:
    """Links with their addresses, from `ip -j -d addr show`."""
    raw = list(_objects(doc, "addr show"))
    by_name = {}
    for item in raw:
        if "ifname" in item and "ifindex" in item:
            by_name[_str(item["ifname"], "ifname")] = _int(item["ifindex"], "ifindex")
    links = []
    for item in raw:
        try:
            ifindex = _int(item["ifindex"], "ifindex")
            name = _str(item["ifname"], "ifname")
        except KeyError as e:
            raise ParseError(f"ip -j addr show: a link has no {e.args[0]}") from None
        linkinfo = item.get("linkinfo") or {}
        kind = linkinfo.get("info_kind") if isinstance(linkinfo, dict) else None
        master_name = _opt_str(item.get("master"), "master")
        addresses = []
        for a in _list(item.get("addr_info"), "addr_info"):
            if not isinstance(a, dict) or "local" not in a:
                continue
            addresses.append(
                Address(
                    family=_str(a.get("family", "inet"), "family"),
                    local=_str(a["local"], "local"),
                    prefixlen=_int(a.get("prefixlen", 32), "prefixlen"),
                    scope=_str(a.get("scope", "global"), "scope"),
                    flags=tuple(k for k in ADDRESS_FLAGS if a.get(k) is True),
                )
            )
        peer_netnsid = item.get("link_netnsid")
        tunnel = _tunnel(kind, linkinfo.get("info_data") if isinstance(linkinfo, dict) else None,
                         item.get("link"))
        xdp = item.get("xdp")
        xdp_text = None
        if isinstance(xdp, dict):
            prog = xdp.get("prog") if isinstance(xdp.get("prog"), dict) else {}
            xdp_text = f"mode {xdp.get('mode')} prog {prog.get('id', '?')}"
        links.append(
            Link(
                ifindex=ifindex,
                name=name,
                kind=_opt_str(kind, "info_kind"),
                mtu=_int(item.get("mtu", 0), "mtu"),
                mac=_opt_str(item.get("address"), "address")
                if item.get("link_type") == "ether" else None,
                flags=tuple(_str(f, "flag") for f in _list(item.get("flags"), "flags")),
                operstate=_str(item.get("operstate", "UNKNOWN"), "operstate"),
                master=by_name.get(master_name) if master_name else None,
                peer_ifindex=_int(item.get("link_index"), "link_index"),
                peer_netnsid=_int(peer_netnsid, "link_netnsid") if peer_netnsid is not None else None,
                addresses=tuple(addresses),
                tunnel=tunnel,
                xdp=xdp_text,
                mode=_child_mode(kind, linkinfo.get("info_data")
                                 if isinstance(linkinfo, dict) else None),
                hairpin=_port_flag(linkinfo, "hairpin"),
                port_state=_port_state(linkinfo),
                isolated=_port_flag(linkinfo, "isolated"),
                learning=_port_flag(linkinfo, "learning"),
                unicast_flood=_port_flag(linkinfo, "flood"),
                broadcast_flood=_port_flag(linkinfo, "bcast_flood"),
                stp=_stp(kind, linkinfo.get("info_data") if isinstance(linkinfo, dict) else None),
            )
        )
    return tuple(links)


# The flags `ip -j addr` gives an address as `"name": true`.
ADDRESS_FLAGS = ("dadfailed", "tentative", "optimistic", "deprecated", "dynamic", "temporary",
                 "mngtmpaddr", "noprefixroute", "home", "nodad")


def _prefix(dst: str, family: str) -> str:
    if dst == "default" or "/" in dst:
        return dst
    return f"{dst}/{32 if family == 'inet' else 128}"


def route_family(item: dict) -> str:
    """`ip -j route show table all` without -4/-6 lists both families and does not say which
    is which. IPv6 routes always carry a router preference ("pref"); their destinations and
    gateways have colons. ("default" alone would say nothing.)"""
    if "pref" in item:
        return "inet6"
    for key in ("dst", "gateway", "prefsrc"):
        if ":" in str(item.get(key, "")):
            return "inet6"
    via = item.get("via")
    if isinstance(via, dict) and via.get("family") == "inet6":
        return "inet6"
    return "inet"


def parse_routes(doc, family: Optional[str] = None) -> tuple:
    """Routes from `ip -j route show table all`, each with its family (as given, or as
    route_family tells it when the dump holds both)."""
    routes = []
    for item in _objects(doc, "route show"):
        if "dst" not in item:
            continue
        gateway = item.get("gateway")
        if gateway is None and isinstance(item.get("via"), dict):
            gateway = item["via"].get("host")
        fam = family or route_family(item)
        routes.append(
            Route(
                dst=_prefix(_str(item["dst"], "dst"), fam),
                family=fam,
                gateway=_opt_str(gateway, "gateway"),
                dev=_opt_str(item.get("dev"), "dev"),
                table=_str(item.get("table", "main"), "table"),
                type=_str(item.get("type", "unicast"), "type"),
                protocol=_opt_str(item.get("protocol"), "protocol"),
                scope=_opt_str(item.get("scope"), "scope"),
                prefsrc=_opt_str(item.get("prefsrc"), "prefsrc"),
                metric=_int(item.get("metric", 0), "metric"),
                expires=_int(item.get("expires"), "expires"),
                onlink="onlink" in _list(item.get("flags"), "flags"),
            )
        )
    return tuple(routes)


def parse_neighbours(doc) -> tuple:
    """Neighbour (ARP/NDP) entries from `ip -j neigh show`."""
    out = []
    for item in _objects(doc, "neigh show"):
        if "dst" not in item:
            continue
        out.append(
            Neighbour(
                dst=_str(item["dst"], "dst"),
                dev=_str(item.get("dev", ""), "dev"),
                lladdr=_opt_str(item.get("lladdr"), "lladdr"),
                state=tuple(_str(s, "state") for s in _list(item.get("state"), "state")),
            )
        )
    return tuple(out)


def parse_route_get(stdout: str, stderr: str, dst: str, query: str) -> RouteLookup:
    """The answer to `ip -j route get DST ...`: the kernel's chosen route, or its refusal."""
    if not stdout.strip():
        msg = stderr.strip().splitlines()[-1] if stderr.strip() else "no route"
        if msg.startswith("RTNETLINK answers: "):
            msg = msg[len("RTNETLINK answers: "):]
        return RouteLookup(dst=dst, dev=None, error=msg, query=query)
    docs = split_documents(stdout)
    items = list(_objects(docs[0], "route get")) if docs else []
    if not items:
        return RouteLookup(dst=dst, dev=None, error="no route", query=query)
    r = items[0]
    rtype = _opt_str(r.get("type"), "type")
    if rtype in ("unreachable", "blackhole", "prohibit"):
        return RouteLookup(dst=dst, dev=None, error=f"{rtype} route", query=query)
    return RouteLookup(dst=dst, dev=_opt_str(r.get("dev"), "dev"),
                       gateway=_opt_str(r.get("gateway"), "gateway"),
                       prefsrc=_opt_str(r.get("prefsrc"), "prefsrc"), query=query)

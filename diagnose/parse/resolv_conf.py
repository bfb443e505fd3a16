"""The one parser of resolv.conf(5), and the resolver's rule for which names it asks.

The order follows glibc (res_search): a name with fewer dots than `ndots` (default 1, at
most 15) is tried with each search domain first, then as it is; a name with at least that
many is tried as it is first, then with the search domains; a trailing dot makes it
absolute. (musl differs in one case: it does not search a name with `ndots` dots or more.)
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ResolvConf:
    nameservers: tuple = ()
    search: tuple = ()
    options: tuple = ()
    ignored: tuple = field(default_factory=tuple)  # lines that made no sense, for the report

    @property
    def ndots(self) -> int:
        value = 1
        for opt in self.options:
            key, _, arg = opt.partition(":")
            if key == "ndots" and arg.isdigit() and arg.isascii():
                value = min(int(arg), 15)  # glibc's cap
        return value


@functools.lru_cache(maxsize=256)
def parse_resolv_conf(text: str) -> ResolvConf:
    """resolv.conf(5): `nameserver`, `search`/`domain`, `options`; anything else is ignored.
    (Parsed once per distinct text: a thousand containers share a handful.)"""
    servers, search, options, ignored = [], [], [], []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].split(";", 1)[0].strip()
        if not line:
            continue
        words = line.split()
        key, args = words[0], words[1:]
        if key == "nameserver" and len(args) >= 1:
            addr = args[0].split("%", 1)[0]
            try:
                servers.append(str(ipaddress.ip_address(addr)))
            except ValueError:
                ignored.append(raw.strip())
        elif key in ("search", "domain") and args:
            search = list(args)
        elif key == "options":
            options.extend(args)
        else:
            ignored.append(raw.strip())
    return ResolvConf(tuple(servers[:3]), tuple(search), tuple(options), tuple(ignored))



def candidate_names(name: str, conf: ResolvConf) -> list:
    """The names the container's resolver asks for, in its order (see the module doc)."""
    if name.endswith("."):
        return [name.rstrip(".")]
    searched = [f"{name}.{d.strip('.')}" for d in conf.search if d.strip(".")]
    if name.count(".") >= conf.ndots:
        return [name] + searched
    return searched + [name]


def loopback_note(server: str) -> str:
    """Why a nameserver on the container's own loopback did not answer, where the address
    says: Docker's embedded resolver (127.0.0.11, served through DNAT rules in the
    container's namespace) or the host's systemd-resolved stub (127.0.0.53), which a
    resolv.conf copied from the host names and nothing in the container serves."""
    try:
        address = ipaddress.ip_address(server)
    except ValueError:
        return ""
    if not address.is_loopback:
        return ""
    if server == "127.0.0.11":
        return ("; Docker's embedded DNS server: dockerd answers it through DNAT rules in the "
                "container's own namespace (iptables -t nat -S in it), for containers on "
                "user-defined networks")
    if server in ("127.0.0.53", "127.0.0.54"):
        return ("; the host's systemd-resolved stub, on the container's own loopback: a "
                "resolv.conf copied from the host, which nothing serves inside the container "
                "(give the container the upstream servers of /run/systemd/resolve/resolv.conf, "
                "e.g. docker run --dns)")
    return (f"; {server} is the container's own loopback: only a resolver running inside "
            f"the container could answer there")

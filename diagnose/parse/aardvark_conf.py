"""The one parser of aardvark-dns's network files (/run/containers/networks/aardvark-dns/NET),
which podman's netavark writes for a network with DNS on:

    10.89.7.1 192.0.2.53,198.51.100.53      <- the addresses it listens on [its upstreams]
    bc0581f0... 10.89.7.2  p1,bc0581f0c56e  <- one line per container

The first line's second field (netavark 1.6+: the network's --dns) names the servers it
forwards to; without it, aardvark-dns forwards to the host's resolv.conf servers.
"""

from __future__ import annotations

import ipaddress

AARDVARK_DIR = "/run/containers/networks/aardvark-dns"


def _addresses(field: str) -> tuple:
    out = []
    for word in field.split(","):
        try:
            out.append(str(ipaddress.ip_address(word.strip())))
        except ValueError:
            continue
    return tuple(out)


def parse_network_file(text: str) -> tuple:
    """(the addresses it listens on, the servers it forwards to: () when the file names
    none) from the first line; ((), ()) for a file that does not start with addresses."""
    first = next((l for l in text.splitlines() if l.strip()), "")
    fields = first.split()
    listen = _addresses(fields[0]) if fields else ()
    if not listen:
        return (), ()
    return listen, _addresses(fields[1]) if len(fields) > 1 else ()

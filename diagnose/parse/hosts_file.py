"""The one parser of hosts(5), the file the container's resolver reads before DNS.

Each line: an address, then its names (the canonical name and aliases), a `#` starts a
comment. A line whose first field is no address is skipped, as glibc and musl skip it.
Names are matched without regard to case, as given (a search list is DNS's, not the
file's), a trailing dot ignored.
"""

from __future__ import annotations

import ipaddress

# The file, as the container sees it: what a resolution found there names as its source.
PATH = "/etc/hosts"


def parse_hosts(text: str) -> list:
    """[(address, (name, ...))] in the file's order."""
    entries = []
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) < 2:
            continue
        address = fields[0].split("%", 1)[0]  # fe80::1%eth0: the zone is not the address's
        try:
            ipaddress.ip_address(address)
        except ValueError:
            continue
        entries.append((fields[0], tuple(fields[1:])))
    return entries


def addresses_of(entries: list, name: str) -> tuple:
    """Every address the entries give name, in the file's order, each once."""
    wanted = name.rstrip(".").lower()
    out = []
    for address, names in entries:
        if any(n.rstrip(".").lower() == wanted for n in names) and address not in out:
            out.append(address)
    return tuple(out)

"""--redact: a report that can be pasted in a public place.

Public addresses and host names become stable placeholders (the same value gets the same
placeholder everywhere in the report, numbered in order of first appearance), so the report
still reads: "PUBLIC-IP-1 answered, PUBLIC-IP-2 did not". Addresses that say nothing about
who you are stay: private (RFC 1918, CGNAT, unique-local), loopback, link-local, unspecified
and multicast. The documentation ranges count as public, because they stand in for public
addresses (the lab's internet uses them).

Host names are the ones the report itself names (the destination asked for, the machine's
own name, the search domains of a resolv.conf): free text is not guessed at, since
`net.ipv4.ip_forward` and `runbooks/nat-missing.md` look like names too.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Iterable

from ..facts.namespace import is_unrouted

_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d)")
_IPV6 = re.compile(r"(?<![\w:.])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w:])")


def is_public(text: str) -> bool:
    try:
        a = ipaddress.ip_address(text)
    except ValueError:
        return False
    if a.is_loopback or a.is_link_local or a.is_unspecified or a.is_multicast:
        return False
    if a.version == 4:
        return not is_unrouted(text)
    return not a in ipaddress.ip_network("fc00::/7")


class Redactor:
    def __init__(self, names: Iterable[str] = ()):
        self.map: dict = {}
        self.counts = {"PUBLIC-IP": 0, "PUBLIC-IP6": 0, "HOST": 0}
        cleaned = set()
        for n in names:
            n = (n or "").strip().strip(".").lower()
            if n and not _is_address(n):
                cleaned.add(n)
        # Longest first, so that www.example.com is replaced before example.com.
        self.names = sorted(cleaned, key=len, reverse=True)

    def _placeholder(self, kind: str, value: str) -> str:
        key = (kind, value.lower())
        if key not in self.map:
            self.counts[kind] += 1
            self.map[key] = f"{kind}-{self.counts[kind]}"
        return self.map[key]

    def _address(self, m: re.Match, kind: str) -> str:
        text = m.group(0)
        if not is_public(text):
            return text
        return self._placeholder(kind, str(ipaddress.ip_address(text)))

    def text(self, report: str) -> str:
        out = _IPV4.sub(lambda m: self._address(m, "PUBLIC-IP"), report)
        out = _IPV6.sub(lambda m: self._address(m, "PUBLIC-IP6"), out)
        for name in self.names:
            pattern = re.compile(r"(?<![\w.-])" + re.escape(name) + r"(?![\w-]|\.\w)",
                                 re.IGNORECASE)
            out = pattern.sub(lambda m, n=name: self._placeholder("HOST", n), out)
        return out


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False

"""Which of a name's addresses a container's program connects to first: destination address
selection as glibc's getaddrinfo does it (RFC 6724 rules 1, 2, 3, 5, 6, 8 and 9, with glibc's
built-in policy table unless the container's /etc/gai.conf gives its own). Pure: the source
each destination would get is asked of the kernel by the caller.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Optional

# glibc's built-in tables (sysdeps/posix/getaddrinfo.c: RFC 3484's precedences, with the
# unique-local and Teredo labels RFC 6724 added). IPv4 addresses are looked up as
# IPv4-mapped IPv6 ones.
DEFAULT_LABELS = (("::1/128", 0), ("2002::/16", 2), ("::/96", 3), ("::ffff:0:0/96", 4),
                  ("fec0::/10", 5), ("fc00::/7", 6), ("2001::/32", 7), ("::/0", 1))
DEFAULT_PRECEDENCE = (("::1/128", 50), ("2002::/16", 30), ("::/96", 20),
                      ("::ffff:0:0/96", 10), ("::/0", 40))

# RFC 6724 section 3.1 scopes.
SCOPE_LINK, SCOPE_SITE, SCOPE_GLOBAL = 0x2, 0x5, 0xe


@dataclass(frozen=True)
class Candidate:
    address: str
    source: Optional[str]  # what the kernel's route lookup picks; None: no route or no source
    source_deprecated: bool = False


@dataclass(frozen=True)
class Policy:
    labels: tuple = DEFAULT_LABELS
    precedence: tuple = DEFAULT_PRECEDENCE
    origin: str = "glibc's default table"


def parse_gai_conf(text: str) -> Optional[Policy]:
    """The `label` and `precedence` lines of a gai.conf (each kind, when present, replaces
    glibc's table of that kind); None when it has neither."""
    labels, precedence = [], []
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) != 3 or words[0] not in ("label", "precedence"):
            continue
        try:
            net = ipaddress.IPv6Network(words[1], strict=False)
            value = int(words[2])
        except ValueError:
            continue
        (labels if words[0] == "label" else precedence).append((str(net), value))
    if not labels and not precedence:
        return None
    return Policy(tuple(labels) or DEFAULT_LABELS, tuple(precedence) or DEFAULT_PRECEDENCE,
                  "the container's /etc/gai.conf")


def _as6(address: str) -> ipaddress.IPv6Address:
    a = ipaddress.ip_address(address)
    return a if a.version == 6 else ipaddress.IPv6Address(f"::ffff:{a}")


def _lookup(table: tuple, address: str, default: int) -> int:
    a = _as6(address)
    best = None
    for prefix, value in table:
        net = ipaddress.IPv6Network(prefix)
        if a in net and (best is None or net.prefixlen > best[0]):
            best = (net.prefixlen, value)
    return best[1] if best else default


def scope(address: str) -> int:
    a = ipaddress.ip_address(address)
    if a.version == 4:
        return SCOPE_LINK if a.is_loopback or a.is_link_local else SCOPE_GLOBAL
    if a.is_multicast:
        return a.packed[1] & 0x0f
    if a.is_loopback or a.is_link_local:
        return SCOPE_LINK
    if a.is_site_local:
        return SCOPE_SITE
    return SCOPE_GLOBAL


def _common_prefix(a: str, b: str) -> int:
    x, y = int(ipaddress.ip_address(a)), int(ipaddress.ip_address(b))
    return 128 - (x ^ y).bit_length()


# Each rule: (its words, a key where smaller sorts first).
def _rules(policy: Policy):
    def usable(c):
        return 0 if c.source else 1

    def matching_scope(c):
        return 0 if c.source and scope(c.address) == scope(c.source) else 1

    def fresh_source(c):
        return 1 if c.source_deprecated else 0

    def matching_label(c):
        return 0 if c.source and _lookup(policy.labels, c.address, 1) == _lookup(
            policy.labels, c.source, 1) else 1

    def precedence(c):
        return -_lookup(policy.precedence, c.address, 40)

    def smaller_scope(c):
        return scope(c.address)

    def longest_prefix(c):
        v6 = ":" in c.address and c.source and ":" in c.source
        return -_common_prefix(c.address, c.source) if v6 else 0

    # Worded for the first candidate and the runner-up ({other}, sent from {osrc}).
    return (("rule 1: the container has no route or no source address for {other}", usable),
            ("rule 2: {other}'s source {osrc} is of another scope", matching_scope),
            ("rule 3: {other}'s source {osrc} is deprecated", fresh_source),
            ("rule 5: {fsrc} -> {first} are the same kind of address (policy label), "
             "{osrc} -> {other} are not", matching_label),
            ("rule 6: {first} has the higher precedence", precedence),
            ("rule 8: {first} has the smaller scope", smaller_scope),
            ("rule 9: {first} shares a longer prefix with its source {fsrc}", longest_prefix))


def order(candidates: list, policy: Policy = Policy()) -> tuple:
    """(candidates sorted as getaddrinfo returns them, the RFC 6724 rule that put the first
    before the runner-up, in words, or "" when the DNS answer's order did)."""
    rules = _rules(policy)
    ranked = sorted(enumerate(candidates),
                    key=lambda ic: tuple(rule(ic[1]) for _, rule in rules) + (ic[0],))
    result = [c for _, c in ranked]
    if len(result) < 2:
        return result, ""
    first, second = result[0], result[1]
    for words, rule in rules:
        if rule(first) != rule(second):
            return result, words.format(first=first.address, fsrc=first.source,
                                        other=second.address, osrc=second.source or "none")
    return result, ""

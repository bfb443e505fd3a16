"""The one parser of two small kernel tables netdoctor reads for the checksum-offload trap:
`ethtool -k DEV` (a device's offload features) and /proc/net/snmp (the protocol counters of
a namespace)."""

from __future__ import annotations

from ..errors import ParseError


def parse_features(text: str) -> dict:
    """{feature: "on"|"off"} from `ethtool -k DEV` ("tx-checksum-ip-generic: on [fixed]")."""
    out = {}
    for line in text.splitlines():
        name, sep, value = line.strip().partition(":")
        words = value.split()
        if sep and words and words[0] in ("on", "off") and " " not in name:
            out[name] = words[0]
    return out


def parse_snmp(text: str) -> dict:
    """{"Udp": {"InCsumErrors": 0, ...}, ...} from /proc/net/snmp: each protocol is a line of
    names then a line of values."""
    out: dict = {}
    lines = [l.split() for l in text.splitlines() if l.strip()]
    for names, values in zip(lines[::2], lines[1::2]):
        if not names or names[0] != values[0] or len(names) != len(values):
            raise ParseError(f"/proc/net/snmp: a {names[0] if names else '?'} line has no "
                             f"matching values")
        try:
            out[names[0].rstrip(":")] = {n: int(v) for n, v in zip(names[1:], values[1:])}
        except ValueError:
            raise ParseError(f"/proc/net/snmp: {names[0]} has a value that is no number") \
                from None
    return out

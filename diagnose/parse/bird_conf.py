"""The one parser of a BIRD configuration as Calico's confd writes it (bird.cfg and the files
it includes): the node's BGP intent.

    protocol bgp Mesh_192_168_77_2 from bgp_template {
      neighbor 192.168.77.2 as 64512;
    }
    protocol static {
      route 10.244.0.0/26 blackhole;          # this node's IPAM blocks
    }
    filter calico_kernel_programming {
      if ( net ~ 10.244.0.0/16 ) then { ... } # the IP pools
    }

Only what routing needs is read: the peers BIRD is told to talk to, this node's own blocks
(the static blackhole routes it exports) and the pools (the networks of `net ~` matches that
are not this node's blocks). Comments (`#`, `/* */`) are skipped.
"""

from __future__ import annotations

import ipaddress
import re

from ..errors import ParseError

_INCLUDE = re.compile(r'^\s*include\s+"([^"]+)"\s*;', re.M)
_NEIGHBOR = re.compile(r"\bneighbor\s+([0-9A-Fa-f:.]+)(?:\s+port\s+\d+)?\s+as\s+(\d+)\s*;")
_BLACKHOLE = re.compile(r"\broute\s+([0-9A-Fa-f:.]+/\d+)\s+blackhole\s*;")
_MATCH = re.compile(r"\bnet\s*~\s*([0-9A-Fa-f:.]+/\d+)")


def strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"#[^\n]*", "", text)


def includes(text: str) -> list:
    """The files a configuration includes, as written (relative to its own folder)."""
    return _INCLUDE.findall(strip_comments(text))


def parse_bird_config(texts: list) -> dict:
    """{peers: [{address, as}], blocks: [prefix], pools: [prefix]} of the configuration's
    texts (the main file and what it includes); ParseError when a prefix is malformed or
    the configuration names no pool."""
    text = "\n".join(strip_comments(t) for t in texts)
    peers, seen = [], set()
    for address, asn in _NEIGHBOR.findall(text):
        if address not in seen:
            seen.add(address)
            peers.append({"address": address, "as": int(asn)})
    try:
        blocks = sorted({str(ipaddress.ip_network(b, strict=False))
                         for b in _BLACKHOLE.findall(text)})
        matched = {str(ipaddress.ip_network(m, strict=False)) for m in _MATCH.findall(text)}
        for p in peers:
            ipaddress.ip_address(p["address"])
    except ValueError as e:
        raise ParseError(f"BIRD configuration: {e}") from None
    pools = sorted(matched - set(blocks))
    if not pools:
        raise ParseError("BIRD configuration: no IP pool (no `net ~ PREFIX` match outside "
                         "this node's blocks)")
    return {"peers": peers, "blocks": blocks, "pools": pools}

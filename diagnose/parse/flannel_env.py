"""The one parser of flannel's subnet file (/run/flannel/subnet.env): the node's intent.

    FLANNEL_NETWORK=10.244.0.0/16
    FLANNEL_SUBNET=10.244.0.1/24
    FLANNEL_MTU=1450
    FLANNEL_IPMASQ=true
"""

from __future__ import annotations

import ipaddress

from ..errors import ParseError

KEYS = {"FLANNEL_NETWORK": "network", "FLANNEL_SUBNET": "subnet", "FLANNEL_MTU": "mtu",
        "FLANNEL_IPMASQ": "ipmasq"}


def parse_subnet_env(text: str) -> dict:
    """{network, subnet (the node's gateway address and prefix, as flannel writes it), mtu,
    ipmasq}; ParseError when it names no network or subnet, or a malformed one."""
    out: dict = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        name = KEYS.get(key.strip())
        if name is not None:
            out[name] = value.strip().strip('"')
    if "network" not in out or "subnet" not in out:
        raise ParseError("flannel subnet file: FLANNEL_NETWORK or FLANNEL_SUBNET missing")
    try:
        ipaddress.ip_network(out["network"], strict=False)
        ipaddress.ip_interface(out["subnet"])
        if "mtu" in out:
            out["mtu"] = int(out["mtu"])
    except ValueError as e:
        raise ParseError(f"flannel subnet file: {e}") from None
    if "ipmasq" in out:
        out["ipmasq"] = out["ipmasq"].lower() == "true"
    return out

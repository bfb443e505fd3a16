"""What the inbound checks share (private: no check imports another): the names of a
published port, as a finding says them."""

import ipaddress

from netdoctor.diagnose.reason.inbound import host_port

__all__ = ["host_port", "loopback", "port_name", "port_vars"]


def loopback(address) -> bool:
    """A loopback address (127.0.0.0/8, ::1); False for none."""
    return bool(address) and ipaddress.ip_address(address).is_loopback


def port_name(w) -> str:
    host = host_port(w.host_address, w.host_port) if w.host_port else "?"
    inside = f"{w.container_port}" if w.container_port else "?"
    return f"{w.proto} {host} -> container port {inside}"


def port_vars(w) -> dict:
    return {"host_port": str(w.host_port or "?"), "container_port": str(w.container_port or "?"),
            "proto": w.proto, "host_address": w.host_address or "?"}

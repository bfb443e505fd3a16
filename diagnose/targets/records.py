"""Container runtimes netdoctor can ask "which process holds this container's network?".

Each runtime module offers `available() -> str | None` (None when usable, else why not)
and `containers() -> list[ContainerRecord]`, and `pid_of(record) -> int`. They only read:
no container is started, stopped or exec'd into.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class ContainerRecord:
    runtime: str  # "docker", "podman", "containerd"
    id: str
    name: str
    running: bool
    status: str = ""
    network_mode: Optional[str] = None  # "bridge", "host", "none", "container:<id>", a network name
    pid: Optional[int] = None  # when the listing already gives it
    namespace: Optional[str] = None  # containerd namespace
    addresses: tuple = ()  # its networks' addresses, when the listing gives them

    @property
    def ref(self) -> str:
        """How to name this container unambiguously on the command line."""
        return f"{self.runtime}:{self.name}"


@dataclass(frozen=True)
class PortBinding:
    """A published port: host_ip:host_port on the host leads to container_port inside.
    source: "runtime" (the engine's inspect says so) or "asked" (the user named the port:
    whether and where it is published is what netdoctor finds out)."""

    host_port: Optional[int]
    container_port: Optional[int]
    proto: str = "tcp"
    host_ip: str = ""
    source: str = "runtime"

    def to_dict(self) -> dict:
        return {"host_port": self.host_port, "container_port": self.container_port,
                "proto": self.proto, "host_ip": self.host_ip, "source": self.source}


def port_bindings(inspect: dict) -> tuple:
    """The published ports of an Engine API (Docker, podman) inspect document."""
    ports = ((inspect or {}).get("NetworkSettings") or {}).get("Ports")
    out, seen = [], set()
    if not isinstance(ports, dict):
        return ()
    for spec, bindings in ports.items():
        cport, _, proto = str(spec).partition("/")
        if not cport.isdigit() or not isinstance(bindings, list):
            continue
        for b in bindings:
            if not isinstance(b, dict) or not str(b.get("HostPort", "")).isdigit():
                continue
            key = (int(b["HostPort"]), int(cport), proto or "tcp")
            if key in seen:
                continue  # the same port published on 0.0.0.0 and on ::
            seen.add(key)
            out.append(PortBinding(key[0], key[1], key[2], str(b.get("HostIp") or "")))
    return tuple(out)

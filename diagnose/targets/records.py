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

    @property
    def ref(self) -> str:
        """How to name this container unambiguously on the command line."""
        return f"{self.runtime}:{self.name}"

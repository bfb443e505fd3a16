"""Podman: its Docker-compatible socket when one is served, else the podman CLI (read-only calls).

The CLI is only asked when podman has storage on this machine, so that netdoctor never
makes podman create its state on a host that does not use it.
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Optional

from ..host import command
from ..errors import MissingDependency, ParseError
from .records import ContainerRecord
from .engine_api import EngineAPI, pid_from_inspect, record_from_listing

NAME = "podman"
ROOTFUL_SOCKET = "/run/podman/podman.sock"
DEFAULT_GRAPHROOT = "/var/lib/containers/storage"


def _socket_api() -> Optional[EngineAPI]:
    host = os.environ.get("CONTAINER_HOST")
    if host and host.startswith("unix://"):
        api = EngineAPI(host, "podman")
    else:
        api = EngineAPI(f"unix://{ROOTFUL_SOCKET}", "podman")
    return api if api.unavailable() is None else None


def _has_storage() -> bool:
    return bool(os.environ.get("CONTAINERS_STORAGE_CONF")) or os.path.isdir(DEFAULT_GRAPHROOT)


def unavailable() -> Optional[str]:
    if _socket_api() is not None:
        return None
    if shutil.which("podman") is None:
        return "podman is not installed"
    if not _has_storage():
        return f"podman has no storage on this machine ({DEFAULT_GRAPHROOT})"
    return None


def _cli(*args: str):
    res = command.run(["podman", *args], timeout=20)
    if not res.ok:
        raise MissingDependency(f"podman {' '.join(args)} failed: {res.first_error_line()}")
    try:
        return json.loads(res.stdout or "null")
    except ValueError:
        raise ParseError(f"podman {' '.join(args)} printed something that is not JSON") from None


def containers() -> list:
    api = _socket_api()
    if api is not None:
        return [record_from_listing(NAME, item) for item in api.containers()]
    listing = _cli("ps", "-a", "--format", "json") or []
    if not isinstance(listing, list):
        raise ParseError("podman ps: expected a JSON list")
    return [record_from_cli(item) for item in listing]


def record_from_cli(item) -> ContainerRecord:
    """A ContainerRecord from one entry of `podman ps --format json` (which does not say the
    network mode; inspect does); ParseError when the entry is not an object."""
    return record_from_listing(NAME, item, "podman ps")


def inspect(record: ContainerRecord) -> dict:
    api = _socket_api()
    if api is not None:
        return api.inspect(record.id) or {}
    data = _cli("inspect", "--type", "container", record.id)
    if isinstance(data, list) and data:
        return data[0]
    return {}


def pid_of(record: ContainerRecord) -> Optional[int]:
    if record.pid:
        return record.pid
    return pid_from_inspect(inspect(record))

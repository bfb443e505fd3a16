"""Docker: the Engine API on DOCKER_HOST, or on /var/run/docker.sock."""

from __future__ import annotations

import os
from typing import Optional

from .records import ContainerRecord
from .engine_api import EngineAPI, pid_from_inspect, record_from_listing

NAME = "docker"
DEFAULT_ENDPOINT = "unix:///var/run/docker.sock"


def endpoint() -> str:
    return os.environ.get("DOCKER_HOST") or DEFAULT_ENDPOINT


def _api() -> EngineAPI:
    return EngineAPI(endpoint(), "Docker")


def unavailable() -> Optional[str]:
    return _api().unavailable()


def containers() -> list:
    return [record_from_listing(NAME, item) for item in _api().containers()]


def inspect(record: ContainerRecord) -> dict:
    return _api().inspect(record.id) or {}


def pid_of(record: ContainerRecord) -> Optional[int]:
    return pid_from_inspect(inspect(record))

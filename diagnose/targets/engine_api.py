"""A minimal read-only client of the Docker Engine API (Docker, and podman's compatible socket).

Only GET requests: netdoctor never creates, starts, stops or execs into a container.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
from typing import Optional
from urllib.parse import quote, urlparse

from ..errors import MissingDependency, NoPermission, ParseError

TIMEOUT = 5.0


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


class EngineAPI:
    """GET JSON from an Engine API endpoint given as unix:///path or tcp://host:port."""

    def __init__(self, endpoint: str, label: str):
        self.endpoint = endpoint
        self.label = label
        u = urlparse(endpoint)
        if u.scheme == "unix":
            self._unix_path: Optional[str] = u.path
            self._hostport = None
        elif u.scheme in ("tcp", "http"):
            self._unix_path = None
            self._hostport = (u.hostname or "localhost", u.port or 2375)
        else:
            raise MissingDependency(
                f"{label}: endpoint {endpoint!r} is not supported (use unix:// or tcp://)"
            )

    def unavailable(self) -> Optional[str]:
        """None when the endpoint can be tried, else why it cannot."""
        if self._unix_path is not None:
            if not os.path.exists(self._unix_path):
                return f"no socket at {self._unix_path}"
            if not os.access(self._unix_path, os.R_OK | os.W_OK):
                return f"permission denied on {self._unix_path}"
        return None

    def get(self, path: str):
        if self._unix_path is not None:
            conn: http.client.HTTPConnection = _UnixConnection(self._unix_path, TIMEOUT)
        else:
            conn = http.client.HTTPConnection(*self._hostport, timeout=TIMEOUT)
        try:
            conn.request("GET", path, headers={"Host": "localhost", "Accept": "application/json"})
            resp = conn.getresponse()
            body = resp.read()
        except PermissionError:
            raise NoPermission(f"{self.label}: permission denied on {self.endpoint}") from None
        except (ConnectionError, FileNotFoundError, socket.timeout, OSError) as e:
            raise MissingDependency(f"{self.label} is not answering on {self.endpoint}: {e}") from None
        finally:
            conn.close()
        if resp.status == 404:
            return None
        if resp.status >= 400:
            raise MissingDependency(
                f"{self.label} answered {resp.status} to GET {path}: {body[:200].decode(errors='replace')}"
            )
        try:
            return json.loads(body)
        except ValueError:
            raise ParseError(f"{self.label} answered GET {path} with something that is not JSON") from None

    def containers(self) -> list:
        data = self.get("/containers/json?all=1")
        if not isinstance(data, list):
            raise ParseError(f"{self.label}: /containers/json did not return a list")
        return data

    def inspect(self, ident: str) -> Optional[dict]:
        data = self.get(f"/containers/{quote(ident, safe='')}/json")
        if data is not None and not isinstance(data, dict):
            raise ParseError(f"{self.label}: /containers/{{id}}/json did not return an object")
        return data


def text_field(value) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def container_entry(item, what: str) -> dict:
    if not isinstance(item, dict):
        raise ParseError(f"{what}: expected a JSON object per container, got "
                         f"{type(item).__name__}")
    return item


def first_name(names, ident: str) -> str:
    """A container's display name: the first of its names (Docker prefixes them with /),
    else its short ID."""
    if isinstance(names, str):
        names = [names]
    if isinstance(names, list):
        for n in names:
            if isinstance(n, str) and n.strip("/"):
                return n.lstrip("/")
    return ident[:12]


def positive_pid(value) -> Optional[int]:
    """A pid from a runtime's answer, or None: 0, negative, non-numbers and booleans are
    not a process."""
    if isinstance(value, bool):
        return None
    try:
        pid = int(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return pid if 0 < pid < 1 << 22 else None


def record_from_listing(runtime: str, item, source: str = "/containers/json"):
    """A ContainerRecord from one entry of a container listing: the Engine API's
    /containers/json (Docker and podman alike) or `podman ps --format json`, which share
    their field names. The network mode and the pid are taken where the listing has them.
    ParseError when the entry is not an object."""
    from .records import ContainerRecord

    item = container_entry(item, f"{runtime}: {source}")
    ident = text_field(item.get("Id"))
    state = text_field(item.get("State"))
    host_config = item.get("HostConfig")
    mode = host_config.get("NetworkMode") if isinstance(host_config, dict) else None
    return ContainerRecord(
        runtime=runtime,
        id=ident,
        name=first_name(item.get("Names"), ident),
        running=state == "running",
        status=text_field(item.get("Status")) or state,
        network_mode=mode if isinstance(mode, str) else None,
        pid=positive_pid(item.get("Pid")),
        addresses=listed_addresses(item),
    )


def listed_addresses(item: dict) -> tuple:
    """The addresses a listing entry gives its container on each of its networks
    (NetworkSettings.Networks.*: IPAddress, GlobalIPv6Address), in the listing's order."""
    settings = item.get("NetworkSettings")
    networks = settings.get("Networks") if isinstance(settings, dict) else None
    out = []
    for net in (networks.values() if isinstance(networks, dict) else ()):
        for key in ("IPAddress", "GlobalIPv6Address"):
            value = net.get(key) if isinstance(net, dict) else None
            if isinstance(value, str) and value and value not in out:
                out.append(value)
    return tuple(out)


def pid_from_inspect(data) -> Optional[int]:
    state = data.get("State") if isinstance(data, dict) else None
    return positive_pid(state.get("Pid")) if isinstance(state, dict) else None

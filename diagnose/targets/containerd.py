"""containerd: CRI containers through `crictl`, plain containerd tasks through `ctr` (read-only)."""

from __future__ import annotations

import json
import os
import shutil
from typing import Optional

from ..host import command
from ..errors import ParseError
from .records import ContainerRecord
from .engine_api import container_entry, positive_pid, text_field

NAME = "containerd"
DEFAULT_ADDRESS = "/run/containerd/containerd.sock"


def _address() -> str:
    return os.environ.get("CONTAINERD_ADDRESS") or DEFAULT_ADDRESS


def unavailable() -> Optional[str]:
    if shutil.which("crictl") is None and shutil.which("ctr") is None:
        return "neither crictl nor ctr is installed"
    if not os.path.exists(_address()) and shutil.which("crictl") is None:
        return f"no containerd socket at {_address()}"
    return None


def parse_task_table(text: str, namespace: str) -> list:
    """`ctr task ls` prints a table: TASK PID STATUS. Lines that are not one are skipped."""
    out = []
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) < 3 or not (parts[1].isascii() and parts[1].isdigit()):
            continue
        task, status = parts[0], parts[2]
        out.append(
            ContainerRecord(
                runtime=NAME,
                id=task,
                name=task,
                running=status.upper() == "RUNNING",
                status=status,
                pid=positive_pid(parts[1]),
                namespace=namespace,
            )
        )
    return out


def records_from_crictl(doc) -> list:
    """ContainerRecords from `crictl ps -a -o json`; ParseError when it is not that shape."""
    if not isinstance(doc, dict) or not isinstance(doc.get("containers") or [], list):
        raise ParseError("crictl ps: expected an object with a 'containers' list")
    out = []
    for item in doc.get("containers") or []:
        item = container_entry(item, "crictl ps")
        meta = item.get("metadata")
        ident = text_field(item.get("id"))
        name = meta.get("name") if isinstance(meta, dict) else None
        state = text_field(item.get("state"))
        out.append(
            ContainerRecord(
                runtime=NAME,
                id=ident,
                name=(name if isinstance(name, str) and name else ident)[:128],
                running=state == "CONTAINER_RUNNING",
                status=state,
                namespace="k8s.io",
            )
        )
    return out


def pid_from_crictl_inspect(doc) -> Optional[int]:
    info = doc.get("info") if isinstance(doc, dict) else None
    return positive_pid(info.get("pid")) if isinstance(info, dict) else None


def _crictl_containers() -> list:
    res = command.run(["crictl", "ps", "-a", "-o", "json"], timeout=10)
    if not res.ok:
        return []
    try:
        return records_from_crictl(json.loads(res.stdout))
    except (ValueError, ParseError):
        return []


def _ctr_containers() -> list:
    base = ["ctr", "--address", _address()]
    res = command.run(base + ["namespaces", "list", "-q"], timeout=10)
    if not res.ok:
        return []
    out = []
    for ns in res.stdout.split():
        tasks = command.run(base + ["--namespace", ns, "tasks", "list"], timeout=10)
        if tasks.ok:
            out.extend(parse_task_table(tasks.stdout, ns))
    return out


def containers() -> list:
    if shutil.which("crictl") is not None:
        found = _crictl_containers()
        if found:
            return found
    if shutil.which("ctr") is not None and os.path.exists(_address()):
        return _ctr_containers()
    return []


def pid_of(record: ContainerRecord) -> Optional[int]:
    if record.pid:
        return record.pid
    res = command.run(["crictl", "inspect", record.id], timeout=10)
    if not res.ok:
        return None
    try:
        return pid_from_crictl_inspect(json.loads(res.stdout))
    except ValueError:
        return None


def inspect(record: ContainerRecord) -> dict:
    return {}

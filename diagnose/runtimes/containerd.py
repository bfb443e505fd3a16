"""containerd: CRI containers through `crictl`, plain containerd tasks through `ctr` (read-only)."""

from __future__ import annotations

import json
import os
import shutil
from typing import Optional

from netdoctor.diagnose import command
from netdoctor.diagnose.runtimes import ContainerRecord

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
    """`ctr task ls` prints a table: TASK PID STATUS."""
    out = []
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) < 3 or not parts[1].isdigit():
            continue
        task, pid, status = parts[0], int(parts[1]), parts[2]
        out.append(
            ContainerRecord(
                runtime=NAME,
                id=task,
                name=task,
                running=status.upper() == "RUNNING",
                status=status,
                pid=pid if pid > 0 else None,
                namespace=namespace,
            )
        )
    return out


def _crictl_containers() -> list:
    res = command.run(["crictl", "ps", "-a", "-o", "json"], timeout=10)
    if not res.ok:
        return []
    try:
        items = json.loads(res.stdout).get("containers") or []
    except (ValueError, AttributeError):
        return []
    out = []
    for item in items:
        meta = item.get("metadata") or {}
        state = str(item.get("state", ""))
        out.append(
            ContainerRecord(
                runtime=NAME,
                id=str(item.get("id", "")),
                name=str(meta.get("name") or item.get("id", ""))[:128],
                running=state == "CONTAINER_RUNNING",
                status=state,
                namespace="k8s.io",
            )
        )
    return out


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
        pid = json.loads(res.stdout).get("info", {}).get("pid")
        return int(pid) if pid else None
    except (ValueError, AttributeError, TypeError):
        return None


def inspect(record: ContainerRecord) -> dict:
    return {}

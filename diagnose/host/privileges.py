"""What this process may do: effective capabilities, read from /proc/self/status."""

from __future__ import annotations

from ..errors import NoPermission

CAP_NET_ADMIN = 12
CAP_NET_RAW = 13
CAP_SYS_ADMIN = 21
NAMES = {CAP_NET_ADMIN: "CAP_NET_ADMIN", CAP_NET_RAW: "CAP_NET_RAW", CAP_SYS_ADMIN: "CAP_SYS_ADMIN"}


def parse_capeff(status: str) -> int:
    """The effective capability mask from a /proc/<pid>/status text (0 when absent)."""
    for line in status.splitlines():
        if line.startswith("CapEff:"):
            words = line.split()
            try:
                return int(words[1], 16) if len(words) > 1 and words[1].isascii() else 0
            except ValueError:
                return 0
    return 0


def effective() -> int:
    with open("/proc/self/status", errors="replace") as f:
        return parse_capeff(f.read())


def require(*caps: int, why: str) -> None:
    """NoPermission naming the missing capabilities, unless this process has them all."""
    have = effective()
    missing = [NAMES.get(c, f"capability {c}") for c in caps if not have & (1 << c)]
    if missing:
        raise NoPermission(f"{why}: missing {', '.join(missing)} (run netdoctor as root)")

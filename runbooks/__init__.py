"""Runbook pages, one per check ID: runbooks/<id>.md, shipped as package data.

Each page has the sections of SECTIONS. `{name}` placeholders are filled with the real names
and addresses of a finding (its `vars`); unknown ones are left as they are.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Optional

SECTIONS = ("Symptom", "Why it breaks traffic", "Confirm", "Fix", "Revert")
_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
# A per-interface sysctl key; the name between conf/neigh and the leaf may hold dots.
_INTERFACE_KEY = re.compile(r"\bnet\.(ipv4|ipv6)\.(conf|neigh)\.([\w@.-]+?\.[\w@.-]+)\.(\w+)\b")


def text(check_id: str) -> Optional[str]:
    try:
        return resources.files(__name__).joinpath(f"{check_id}.md").read_text(encoding="utf-8")
    except (FileNotFoundError, OSError):
        return None


def sections(page: str) -> dict:
    """{section title: body} of a runbook page (level-2 headings)."""
    out, current, lines = {}, None, []
    for line in page.splitlines():
        if line.startswith("## "):
            if current is not None:
                out[current] = "\n".join(lines).strip("\n")
            current, lines = line[3:].strip(), []
        elif current is not None:
            lines.append(line)
    if current is not None:
        out[current] = "\n".join(lines).strip("\n")
    return out


def fill(template: str, values: dict) -> str:
    """Put the finding's names into a template; leave unknown {placeholders} untouched."""
    def sub(m):
        v = values.get(m.group(1))
        return m.group(0) if v is None else str(v)

    return sysctl_spelling(_PLACEHOLDER.sub(sub, template))


def sysctl_spelling(text: str) -> str:
    """Per-interface sysctl keys as sysctl(8) reads them: a dot parts the key, so an
    interface named with one (flannel.1, eth0.100) is written with a slash in its place,
    as sysctl itself prints it (net.ipv4.conf.flannel/1.rp_filter)."""
    return _INTERFACE_KEY.sub(
        lambda m: f"net.{m[1]}.{m[2]}.{m[3].replace('.', '/')}.{m[4]}", text)

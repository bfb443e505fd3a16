"""A picture of the path as a Mermaid flowchart: it renders where reports are pasted (GitHub,
GitLab, many wikis). Built from the JSON documents (trace/2, path/2), so a saved report can
be drawn again elsewhere.

One node per hop, grouped by namespace; the edges carry what crossed them (request and
reply counts, the addresses seen, NAT included); the hop where the probe stopped is marked,
with the cause on the edge it did not cross.
"""

from __future__ import annotations

from typing import Optional


def _text(value) -> str:
    """Mermaid label text: no double quotes, pipes or brackets that end a label."""
    out = str(value).replace(" -> ", " → ")
    for bad, good in (('"', "'"), ("|", "/"), ("[", "("), ("]", ")"), ("{", "("),
                      ("}", ")"), ("<", "&lt;"), (">", "&gt;")):
        out = out.replace(bad, good)
    return out.replace("&lt;br/&gt;", "<br/>")


def _node(i: int, hop: dict, extra: Optional[str] = None) -> str:
    label = f"{hop['role']}<br/>{hop['name']}"
    addresses = hop.get("addresses")
    if addresses:
        label += "<br/>" + ", ".join(addresses)
    if extra:
        label += "<br/>" + extra
    return f'    h{i}["{_text(label)}"]'


def _grouped(hops: list, nodes: list) -> list:
    """Nodes in one subgraph per namespace, in path order (a namespace met twice, as the
    host is on an east-west path, keeps one group)."""
    order, groups = [], {}
    for hop, node in zip(hops, nodes):
        ns = hop.get("netns") or "?"
        if ns not in groups:
            order.append(ns)
            groups[ns] = []
        groups[ns].append(node)
    lines = []
    for n, ns in enumerate(order):
        lines.append(f'  subgraph ns{n}["netns {_text(ns)}"]')
        lines += groups[ns]
        lines.append("  end")
    return lines


def trace_flowchart(doc: dict) -> list:
    """The lines of a ```mermaid block for a trace document."""
    hops, v = doc.get("hops") or [], doc.get("verdict") or {}
    if not hops:
        return []
    stopped = None if v.get("reachable") else v.get("stopped_at")
    nodes = []
    for i, h in enumerate(hops):
        seen = h.get("addresses_seen") or {}
        extra = "<br/>".join(_text(f"{k}: {a}") for k, a in seen.items()) or None
        if h.get("observes", "all") != "all" and not h.get("request_seen"):
            extra = "cannot see bridged unicast"
        nodes.append(_node(i, dict(h, addresses=None), extra))
    lines = ["flowchart LR"] + _grouped(hops, nodes)
    # The edge the probe did not cross: past the hop it stopped at (a request), or toward it
    # (a reply); a request that never left the container stops at the first edge.
    cut, broken = None, None
    if not v.get("reachable") and v.get("direction"):
        roles = [h["role"] for h in hops]
        cut = roles.index(stopped) if stopped in roles else 0
        broken = cut if v["direction"] == "request" else cut - 1
    why = _text(f"✗ {v.get('cause') or 'stopped'}" + (" (reply)" if v.get("direction") == "reply"
                                                      else ""))
    for i in range(len(hops) - 1):
        b = hops[i + 1]
        if i == broken:
            lines.append(f'  h{i} -.->|"{why}"| h{i + 1}')
        elif b.get("observes", "all") != "all" and not b.get("request_seen"):
            lines.append(f'  h{i} -->|"bridged past its device"| h{i + 1}')
        else:
            counts = f"{b.get('request_seen', 0)} req / {b.get('reply_seen', 0)} reply"
            lines.append(f'  h{i} -->|"{_text(counts)}"| h{i + 1}')
    lines.append("  classDef stop fill:#fdd,stroke:#c00,stroke-width:2px")
    if cut is not None:
        lines.append(f"  class h{cut} stop")
    return lines


def path_flowchart(doc: dict) -> list:
    """The lines of a ```mermaid block for a path document."""
    hops = doc.get("hops") or []
    if not hops:
        return []
    nodes = [_node(i, h, f"via {h['via']}" if h.get("via") else None)
             for i, h in enumerate(hops)]
    lines = ["flowchart LR"] + _grouped(hops, nodes)
    lines += [f"  h{i} --> h{i + 1}" for i in range(len(hops) - 1)]
    return lines


def block(lines: list) -> list:
    return ["```mermaid"] + lines + ["```"] if lines else []

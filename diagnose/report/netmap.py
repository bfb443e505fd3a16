"""`netdoctor map` drawn: Mermaid (the trace pictures' dialect), Graphviz DOT, text. Built
from the map's JSON document (netdoctor.map/1), so a saved map can be drawn again."""

from __future__ import annotations

from ..reason.netmap import LINKS
from .mermaid import _text

ROLE_WORDS = {"container": "container", "host-veth": "veth", "bridge": "bridge",
              "uplink": "uplink", "tunnel": "tunnel", "underlay": "underlay",
              "out-bridge": "bridge"}


def _label(node: dict, sep: str) -> str:
    head = ", ".join(node.get("containers") or [node["name"]]) \
        if node["role"] == "container" else \
        f"{ROLE_WORDS.get(node['role'], node['role'])} {node['name']}"
    parts = [head]
    if node["role"] == "container":
        parts.append(f"{node['name']}" + (f" ({node.get('mode')})" if node.get("mode") else ""))
    if node.get("addresses"):
        parts.append(", ".join(node["addresses"]))
    parts += node.get("findings", [])
    return sep.join(parts)


def _by_netns(nodes: list) -> list:
    order = []
    for n in nodes:
        if n.get("netns") not in order:
            order.append(n.get("netns"))
    return [(ns, [n for n in nodes if n.get("netns") == ns]) for ns in order]


def mermaid(doc: dict) -> list:
    ids = {n["id"]: f"h{i}" for i, n in enumerate(doc["nodes"])}
    lines = ["flowchart LR"]
    for k, (ns, nodes) in enumerate(_by_netns(doc["nodes"])):
        lines.append(f'  subgraph ns{k}["{_text(ns or "?")}"]')
        lines += [f'    {ids[n["id"]]}["{_text(_label(n, "<br/>"))}"]' for n in nodes]
        lines.append("  end")
    for e in doc["edges"]:
        lines.append(f'  {ids[e["from"]]} -->|"{_text(e["how"])}"| {ids[e["to"]]}')
    problems = [ids[n["id"]] for n in doc["nodes"] if n.get("findings")]
    if problems:
        lines.append("  classDef problem fill:#fdd,stroke:#c00")
        lines += [f"  class {p} problem" for p in problems]
    return lines


def _dot_escape(value) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")


def _dot_quote(value: str) -> str:
    return f'"{_dot_escape(value)}"'


def dot(doc: dict) -> list:
    ids = {n["id"]: f"n{i}" for i, n in enumerate(doc["nodes"])}
    lines = ["digraph netdoctor_map {", "  rankdir=LR;", "  node [shape=box];"]
    for k, (ns, nodes) in enumerate(_by_netns(doc["nodes"])):
        lines.append(f"  subgraph cluster_{k} {{")
        lines.append(f"    label={_dot_quote(ns or '?')};")
        for n in nodes:
            style = ', color="red"' if n.get("findings") else ""
            label = "\\n".join(_dot_escape(p) for p in _label(n, "\n").split("\n"))
            lines.append(f'    {ids[n["id"]]} [label="{label}"{style}];')
        lines.append("  }")
    for e in doc["edges"]:
        lines.append(f"  {ids[e['from']]} -> {ids[e['to']]} [label={_dot_quote(e['how'])}];")
    lines.append("}")
    return lines


def text(doc: dict) -> list:
    lines = []
    names = {n["id"]: n for n in doc["nodes"]}
    for net in doc["networks"]:
        node = names.get(net["id"], {})
        lines.append(f"network {net['device']} in {net.get('netns')} ({net.get('mode')}"
                     + (f", {net['subnet']}" if net.get("subnet") else "") + ")"
                     + ("  " + "; ".join(node.get("findings", [])) if node.get("findings")
                        else ""))
        for c in net["containers"]:
            cnode = next((n for n in doc["nodes"] if c in n.get("containers", ())), {})
            lines.append(f"  {c:<24} {', '.join(cnode.get('addresses', [])) or '-'}"
                         + ("  " + "; ".join(cnode.get("findings", []))
                            if cnode.get("findings") else ""))
        out = [e["to"] for e in doc["edges"] if e["from"] == net["id"]]
        for o in out:
            n = names[o]
            lines.append(f"  -> {ROLE_WORDS.get(n['role'], n['role'])} {n['name']}"
                         + (f" {', '.join(n['addresses'])}" if n.get("addresses") else ""))
    if doc["reach"]:
        lines.append("")
        lines.append("between networks (the host's FORWARD rules):")
        dev = {n["id"]: n["device"] for n in doc["networks"]}
        for r in doc["reach"]:
            lines.append(f"  {dev[r['from']]} -> {dev[r['to']]}: {r['verdict']}"
                         + (f" ({r['rule']})" if r.get("rule") and r["verdict"] != "accept"
                            else ""))
    if doc["isolation_groups"]:
        dev = {n["id"]: n["device"] for n in doc["networks"]}
        groups = ["{" + ", ".join(dev.get(i, i) for i in g) + "}"
                  for g in doc["isolation_groups"]]
        lines.append("isolation groups: " + " ".join(groups))
    lines += [f"note: {n}" for n in doc.get("notes", ())]
    return lines


def path_dot(doc: dict) -> list:
    """A saved trace or path document's hops as DOT: one node per hop, in path order, the
    hop where the probe stopped in red."""
    verdict = doc.get("verdict") or {}
    stopped = verdict.get("stopped_at") if not verdict.get("reachable", True) else None
    path_hops = (doc.get("path") or {}).get("hops") or doc.get("hops") or []
    t = doc.get("target") or {}
    me = f"{t.get('kind')}:{t.get('name')}" if t else "container"
    nodes = [{"id": str(i), "role": h["role"], "name": h["name"], "netns": h.get("netns"),
              "addresses": h.get("addresses") or [], "containers": [me],
              "findings": ([f"stopped here: {verdict.get('cause')}"]
                           if h["role"] == stopped else [])}
             for i, h in enumerate(path_hops)]
    edges = [{"from": str(i), "to": str(i + 1), "how": LINKS.get(h["role"], "")}
             for i, h in enumerate(path_hops[1:])]
    return dot({"nodes": nodes, "edges": edges})


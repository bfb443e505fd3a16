"""Reports for a terminal: path, checks and trace as text (checks' severities in colour when
stdout is a terminal)."""

from __future__ import annotations

from typing import Optional

from ..parse.hosts_file import PATH as HOSTS_FILE
from .as_json import summary, target_rows


def table(rows: list, header: tuple) -> list:
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    out = []
    for r in [header] + rows:
        out.append("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
    return out


def path_text(report) -> str:
    t = report.target
    dest = report.destination
    where = "its default route"
    if dest.get("address"):
        where = dest["address"]
        if dest.get("query") and dest["query"] != dest["address"]:
            where = f"{dest['query']} ({dest['address']}"
            where += f", {resolved_by(dest)})" if dest.get("nameserver") else ")"
    netns_label = t["netns"]["name"] or f"net:[{t['netns']['inode']}]"
    lines = [f"path from {t['kind']}:{t['name']} (netns {netns_label}) toward {where}"]
    choice = address_choice(dest)
    if choice:
        lines.append(choice)
    lines.append(f"mode: {report.mode}")
    if report.hops:
        rows = []
        for i, h in enumerate(report.hops, 1):
            d = h.to_dict()
            extra = []
            if h.master and h.role != "bridge":
                extra.append(f"master {h.master}")
            if h.via:
                extra.append(f"via {h.via}")
            rows.append((i, h.role, h.name, d["netns"], h.mac or "-",
                         ",".join(h.addresses) or "-", h.mtu, h.state, " ".join(extra)))
        for i, h in enumerate(report.far_hops, len(report.hops) + 1):
            rows.append((i, h["role"], h["name"], f"{h.get('netns') or '?'} (peer)",
                         h.get("mac") or "-", ",".join(h.get("addresses") or ()) or "-",
                         h.get("mtu") or "-", h.get("state") or "-", ""))
        lines.append("")
        lines += table(rows, ("#", "ROLE", "INTERFACE", "NETNS", "MAC", "ADDRESSES", "MTU",
                               "STATE", ""))
    lines.append("")
    lines.append("path: complete" if report.complete else "path: INCOMPLETE")
    if report.peer:
        lines.append(f"  - the far host's hops are {report.peer}'s, as its agent finds them")
    for note in report.notes:
        lines.append(f"  - {note}")
    return "\n".join(lines) + "\n"


def _rich_colour(text: str) -> str:
    """Severity words in colour, through Rich (only called when stdout is a terminal)."""
    import io

    from rich.console import Console
    from rich.text import Text

    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=10_000, highlight=False)
    for line in text.splitlines():
        t = Text(line)
        for word, style in (("ERROR", "bold red"), ("WARNING", "yellow"), ("INFO", "cyan")):
            if line.startswith(word):
                t.stylize(style, 0, len(word))
        console.print(t)
    return buf.getvalue()


def checks_text(snapshot, findings: list, colour: bool = False) -> str:
    lines = []
    targets = target_rows(snapshot)
    hosts = len(snapshot.hosts)
    lines.append(f"checked {hosts} host namespace{'s' if hosts != 1 else ''} and "
                 f"{len(targets)} container{'s' if len(targets) != 1 else ''}"
                 + (": " + ", ".join(t["target"] for t in targets) if targets else ""))
    for p in snapshot.problems:
        lines.append(f"  not checked: {p}")
    lines.append("")
    for f in findings:
        lines.append(f"{f.severity.upper().ljust(7)} {f.id}  {f.subject}")
        lines.append(f"        {f.message}")
        lines.append(f"        {f.action}")
        lines.append(f"        runbook: runbooks/{f.id}.md")
    s = summary(findings)
    if not findings:
        lines.append("no problems found" + (" in what could be checked" if snapshot.problems
                                            else ""))
    lines.append(f"{s['error']} error(s), {s['warning']} warning(s), {s['info']} note(s)")
    text = "\n".join(lines) + "\n"
    return _rich_colour(text) if colour else text


def arp_note(hop: dict) -> str:
    """What a hop's capture says of its unanswered ARP questions ("" for none)."""
    asked = hop.get("arp_unanswered")
    return f"ARP for {', '.join(asked)}: no reply" if asked else ""


def resolved_by(dest: dict) -> str:
    """Who gave the destination's address: a nameserver, or the container's hosts file
    (read first; DNS was not asked)."""
    if dest.get("nameserver") == HOSTS_FILE:
        return "from the container's /etc/hosts, which its resolver reads before DNS"
    return f"resolved by {dest['nameserver']}"


def address_choice(d: dict) -> Optional[str]:
    """Which of a name's addresses was followed, and why, when it had more than one."""
    addresses = d.get("addresses") or []
    if len(addresses) < 2 or not d.get("address"):
        return None
    other = next((a for a in addresses if (":" in a) != (":" in d["address"])), None)
    hint = f"; --{'ipv4' if ':' in d['address'] else 'ipv6'} for {other}" if other else ""
    return (f"address: {d.get('name') or d['query']} has {', '.join(addresses)}; following "
            f"{d['address']}: {d.get('choice') or 'the first'}{hint}")


def trace_title(report) -> str:
    t, d, p = report.target, report.destination, report.probe
    what = {"icmp": "ICMP echo", "tcp": f"TCP SYN to port {p['port']}",
            "udp": f"UDP (DNS) to port {p['port']}"}[p["kind"]]
    where = d["query"]
    said = [d["container"]] if d.get("container") and d["container"] != d["query"] else []
    if d.get("address") and d["address"] != d["query"]:
        pinned = d.get("nameserver") == HOSTS_FILE
        said.append(f"{d['address']}, {resolved_by(d)}" if pinned else d["address"])
    if said:  # the container that holds it (by name or address), the address followed
        where += f" ({', '.join(said)})"
    if not d.get("resolved", True):
        where += f": name not resolved, tracing the path to nameserver {d.get('nameserver')}"
    return f"trace {t['kind']}:{t['name']} -> {where}, {what}"


def _runbook_exists(check_id: str) -> bool:
    from netdoctor import runbooks

    return runbooks.text(check_id) is not None


def verdict_lines(v: dict, report) -> list:
    if v["reachable"] and not v["cause"]:
        rtt = report.probe.get("rtt_ms")
        return ["verdict: REACHABLE" + (f" (rtt {rtt:.2f} ms)" if rtt else "")
                + (f"; {report.probe['detail']}" if report.probe.get("detail") else "")]
    lines = []
    if v["reachable"]:
        lines.append(f"verdict: REACHABLE, but {v['cause']}: {v['explanation']}")
    else:
        if v["direction"] is None and v["stopped_at"] is None:  # e.g. a name with no address
            lines.append(f"verdict: NOT REACHABLE; {v['explanation']}")
        else:
            where = v["stopped_at"] or "inside the container (never left it)"
            lines.append(f"verdict: NOT REACHABLE; the {v['direction'] or 'probe'} stopped "
                         f"at {where}")
        lines.append(f"cause: {v['cause']}")
        if v.get("mechanism"):
            lines.append(f"mechanism: {v['mechanism']}")
        plain = (f"the {v['direction']} was last seen at {v['stopped_at']}",
                 "the request never left the container")
        if v["explanation"] and v["explanation"] not in plain:
            lines.append(f"why: {v['explanation']}")
    if v.get("kernel_drop_reason"):
        lines.append(f"kernel: dropped with reason {v['kernel_drop_reason']}"
                     + (f" at {v['kernel_location']}" if v.get("kernel_location") else ""))
    if v.get("rule"):
        lines.append(f"rule: {v['rule']}")
    return lines


def nftrace_lines(met: list) -> list:
    """A line per traced packet: where, which way, and what decided it."""
    if not met:
        return ["(no probe packet was traced: nftables saw none, or the rules are "
                "iptables-legacy's)"]
    out = []
    for m in met:
        chains = " -> ".join(dict.fromkeys(s["where"].split(" rule ")[0].split(" handle ")[0]
                                           for s in m["steps"]))
        fate = (f"DROPPED by {m['dropped_by']['where']}: {m['dropped_by']['text']}"
                if m["dropped_by"] else f"accepted, through {chains}" if chains
                else "met no rule")
        out.append(f"{m['netns']} ({m['scope']}) {m['direction']} {m['packet']}: {fate}")
    return out


def trace_text(report) -> str:
    doc = report.to_dict()
    choice = address_choice(report.destination)
    lines = [trace_title(report)] + ([choice] if choice else []) + [""]
    rows = []
    v = doc["verdict"]
    for h in doc["hops"]:
        seen = []
        for k in ("request", "reply"):
            if k in h["addresses_seen"]:
                seen.append(f"{k} {h['addresses_seen'][k]}")
        mark = ""
        if not v["reachable"] and v["stopped_at"] == h["role"]:
            mark = "<- stopped here"
        first = "-" if h["first_seen_us"] is None else f"+{h['first_seen_us']}"
        note = h["capture_error"] or ""
        if h.get("observes", "all") != "all" and not h["request_seen"]:
            note = f"sees {h['observes']}"
        note = arp_note(h) or note
        rows.append((h["role"], h["name"], h["netns"], h["request_seen"], h["reply_seen"], first,
                     "; ".join(seen) or "-", "; ".join(filter(None, (mark, note)))))
    lines += table(rows, ("HOP", "INTERFACE", "NETNS", "REQ", "REPLY", "FIRST µs",
                           "ADDRESSES SEEN", ""))
    if not doc["hops"]:
        lines.append("(no hops: the container has no path to trace)")
    journal = report.evidence.get("journal") or []
    if journal:
        lines += ["", "kernel decisions (tracefs):"]
        lines += [f"  {e['hop']:<11} {e['said']}" for e in journal]
    for d in report.evidence.get("divergences") or ():
        lines.append(f"  DIVERGES: {d}")
    met = report.evidence.get("nftrace")
    if met is not None:
        lines += ["", "rules the probe met (nftables trace, --allow-trace-rules):"]
        lines += [f"  {line}" for line in nftrace_lines(met)]
    lines.append("")
    lines += verdict_lines(v, report)
    if report.pmtu is not None:
        p = report.pmtu
        if p["answered"]:
            how = "answered"
        elif p.get("discovery_works"):
            how = (f"not answered, but the sender was told ({p['detail']}): the path MTU is "
                   f"smaller than the container's, and path MTU discovery works")
        else:
            how = f"NOT answered ({p['detail'] or 'no reply'})"
        lines.append(f"path MTU: a {p['size']}-byte don't-fragment probe was {how}")
    # The finding to act on: the cause's, else its mechanism's (a DNS failure caused by a
    # FORWARD drop is mended by the FORWARD fix).
    cause = next((f for f in report.findings if f.id == v["cause"]), None) or next(
        (f for f in report.findings if f.id == v.get("mechanism")), None)
    if cause is not None:
        lines += ["", f"{cause.severity.upper()} {cause.id}: {cause.message}",
                  f"  {cause.action}", f"  runbook: runbooks/{cause.id}.md"]
    elif not v["reachable"] and v["cause"] and _runbook_exists(v["cause"]):
        # The cause rests on the probe's evidence alone (no check found it beforehand).
        lines += ["", f"runbook: runbooks/{v['cause']}.md"]
    others = [f for f in report.findings if f is not cause]
    if others:
        lines.append("")
        lines.append("other findings on this path:")
        for f in others:
            lines.append(f"  {f.severity:<7} {f.id}: {f.message}")
    lines.append("")
    lines.append(f"evidence: {', '.join(v['evidence_used'])}; took {report.elapsed_ms} ms")
    return "\n".join(lines) + "\n"

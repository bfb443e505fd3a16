"""The decision journal: what the kernel decided for the probe, hop by hop (pure, no I/O).

tracefs records every FIB lookup made for the probe's protocol and port and every neighbour
event of the probe window (capture/tracefs.py); entries() keeps the probe's own, says which
hop of the path each belongs to, and words it as a person reads `ip route get`:
"table main iif ndbr0: 172.29.0.2 -> 203.0.113.80 ==> dev eth0 via 198.51.100.1".
divergences() compares the decisions with the path the engine predicted from the facts.

Tracepoints carry no namespace: a decision is tied to a hop by what it says (its input
interface's index, the device it chose, the neighbour's address), and one that fits no hop
of the path is left out rather than guessed.
"""

from __future__ import annotations

from typing import Optional

from .path import HOST_EGRESS_ROLES as HOST_EGRESS

TABLES = {"253": "default", "254": "main", "255": "local"}
# A lookup in one table that found nothing makes the rules go on to the next: no decision.
NOT_IN_THIS_TABLE = "-11"


def _direction(src: str, dst: str, flow) -> Optional[str]:
    # The sender's own lookup is made before its socket has a source: 0.0.0.0.
    if dst == flow.dst and src in (flow.src, "0.0.0.0"):
        return "request"
    if (src, dst) == (flow.dst, flow.src):
        return "reply"
    return None


def _route_hop(d, hops: list, direction: str) -> Optional[dict]:
    """The hop whose kernel made this lookup: for a request, the container's own (an output
    lookup, iif 0 or 1) or the host's as the packet arrived (iif = the bridge's or the host
    veth's index); for a reply, the host's as it came in by the hop it left by, choosing a
    device of the host's side of the path (an ifindex alone names a device in more than one
    namespace)."""
    iif, dev = int(d.get("iif") or 0), d.get("dev")
    if dev == "lo":
        return None  # delivered locally: not a decision about where the probe goes
    if direction == "request":
        if iif in (0, 1):
            return next((h for h in hops if h["role"] == "container" and h["name"] == dev),
                        None)
        for role in ("bridge", "host-veth"):
            h = next((h for h in hops if h["role"] == role), None)
            if h is not None and h.get("ifindex") == iif:
                return h
        return None
    host_side = {h["name"] for h in hops if h["role"] in ("host-veth", "bridge")}
    # A refused lookup chose no device: its incoming interface is all there is to go by.
    refused = d.get("err") not in ("0", None)
    for role in HOST_EGRESS:
        h = next((h for h in hops if h["role"] == role), None)
        if h is not None and h.get("ifindex") == iif and (dev in host_side or refused):
            return h
    return None


def _chosen(d, hop: dict, hops: list) -> Optional[dict]:
    """The hop of the path the lookup sent the packet to (same namespace), if it is one."""
    return next((h for h in hops if h["name"] == d.get("dev")
                 and h.get("netns_inode") == hop.get("netns_inode")), None)


# What a FIB lookup's error says the kernel met: the error each refusing route type gives
# (fib_props), and none at all (-ENETUNREACH).
# (The route types by the error alone: what kernel_refusal in checks/_routing.py reads too.)
ROUTE_TYPE_BY_ERROR = {-22: "blackhole", -113: "unreachable", -13: "prohibit"}
REFUSED_BY = dict({str(e): f"{kind} route" for e, kind in ROUTE_TYPE_BY_ERROR.items()},
                  **{"-101": "no route"})


def _route_text(d, hop: dict, hops: list) -> str:
    table = TABLES.get(d.get("table"), d.get("table"))
    iif = int(d.get("iif") or 0)
    came = next((h["name"] for h in hops if h.get("ifindex") == iif
                 and h.get("netns_inode") == hop.get("netns_inode")), None)
    where = f"table {table}" + (f" iif {came}" if came and iif > 1 else "")
    said = f"{where}: {d.get('src')} -> {d.get('dst')} ==> "
    if d.get("err") != "0":
        what = REFUSED_BY.get(d.get("err"), "no route")
        return said + f"{what} (error {d.get('err')})"
    gw = _gateway(d, _chosen(d, hop, hops))
    return said + f"dev {d.get('dev') or '?'}" + (f" via {gw}" if gw else "")


def entries(decisions: list, hops: list, flow) -> list:
    """[{"hop", "direction", "kind", "said"}] for the probe's decisions, in kernel order."""
    out = []
    neighbours = {h["via"]: h for h in hops if h.get("via")}
    for d in decisions:
        if d.kind == "route":
            if d.get("err") == NOT_IN_THIS_TABLE:
                continue
            direction = _direction(d.get("src"), d.get("dst"), flow)
            hop = _route_hop(d, hops, direction) if direction else None
            if hop is None:
                continue
            out.append({"hop": hop["role"], "direction": direction, "kind": "route",
                        "table": TABLES.get(d.get("table"), d.get("table")),
                        "dev": d.get("dev") or None,
                        "gateway": _gateway(d, _chosen(d, hop, hops)),
                        "error": None if d.get("err") == "0" else int(d.get("err")),
                        "said": _route_text(d, hop, hops)})
        else:
            key, dev = d.get("primary_key4"), d.get("dev")
            hop = neighbours.get(key)
            if hop is None and key == flow.dst:
                hop = next((h for h in hops if h["name"] == dev), None)
            if hop is None or hop["name"] != dev:
                continue
            state = d.get("new_state") or d.get("nud_state")
            verb = {"neigh_create": "created", "neigh_event_send_dead": "dead, packet dropped"
                    }.get(d.event, state)
            out.append({"hop": hop["role"], "direction": None, "kind": "neighbour",
                        "dev": dev, "gateway": key, "error": None, "state": state,
                        "said": f"neighbour {key} on {dev}: {verb}"})
    return _without_repeats(out)


def _gateway(d, hop: Optional[dict] = None) -> Optional[str]:
    """The gateway the lookup chose. This tracepoint fills its gateway field only when the
    route has one, and prints what was in memory otherwise: a gateway is believed only when
    it lies in a network of the device chosen (as the facts show it), else it is left out."""
    gw = d.get("gw4")
    if not gw or gw == "0.0.0.0" or hop is None:
        return None
    if gw == hop.get("via"):
        return gw  # the gateway the facts route to (an onlink one need not be in a network)
    import ipaddress

    try:
        ip = ipaddress.ip_address(gw)
        nets = [ipaddress.ip_interface(a).network for a in hop.get("addresses", ())]
    except ValueError:
        return None
    return gw if any(ip in n for n in nets) else None


def _without_repeats(out: list) -> list:
    """The same decision made for each of the probe's packets is said once."""
    seen, kept = set(), []
    for e in out:
        key = (e["hop"], e["said"])
        if key not in seen:
            seen.add(key)
            kept.append(e)
    return kept


def divergences(journal: list, hops: list) -> list:
    """Where the kernel's routing decision left by another device than the path the facts
    predicted: one sentence each."""
    out = []
    by_role = {h["role"]: h for h in hops}
    for e in journal:
        if e["kind"] != "route" or e["direction"] != "request" or e["error"] is not None:
            continue
        if e["hop"] == "container":
            expected = by_role.get("container")
        else:
            expected = next((by_role[r] for r in HOST_EGRESS if r in by_role), None)
        if expected is None or not e["dev"]:
            continue
        if e["dev"] != expected["name"]:  # (the tracepoint's gateway field is no evidence)
            predicted = expected["name"] + (f" via {expected['via']}" if expected.get("via")
                                            else "")
            chosen = e["dev"] + (f" via {e['gateway']}" if e["gateway"] else "")
            out.append(f"at {e['hop']} the kernel routed the request out of {chosen}; the "
                       f"path read from the facts leaves by {predicted}")
    return out

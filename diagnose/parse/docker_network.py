"""The one parser of a Docker overlay network as the engine describes it with `verbose`
(`docker network inspect --verbose NET`, GET /networks/NET?verbose=true): the intent of a
swarm's overlay on this node.

    {"Name": "ndov", "Id": "aswwe3yqd1...", "Driver": "overlay",
     "Options": {"com.docker.network.driver.overlay.vxlanid_list": "4097"},
     "Peers": [{"Name": "6420fb028473", "IP": "192.168.78.1"}, ...],
     "Services": {"": {"Tasks": [{"Name": "c1", "EndpointIP": "10.0.9.4",
                                  "Info": {"Host IP": "192.168.78.2"}}, ...]}}}

Peers are the nodes the network spans (their VTEP addresses); each task (a service's, or
an attached container's under the service "") is an endpoint and the node it lives on;
Containers are the endpoints on this node.
"""

from __future__ import annotations

import ipaddress

from ..errors import ParseError


def _address(value, what: str) -> str:
    try:
        return str(ipaddress.ip_address(str(value).split("/")[0]))
    except ValueError:
        raise ParseError(f"Docker network: {what} {value!r} is not an address") from None


def parse_overlay_network(doc) -> dict:
    """{name, id, vnis, peers: [VTEP address], endpoints: [{name, ip, node}], local: [the
    addresses of this node's endpoints]}; ParseError for a document that is not an overlay
    network's."""
    if not isinstance(doc, dict) or not isinstance(doc.get("Name"), str):
        raise ParseError("Docker network: not a network document")
    if doc.get("Driver") != "overlay":
        raise ParseError(f"Docker network {doc['Name']}: driver {doc.get('Driver')!r}, not "
                         f"overlay")
    options = doc.get("Options") or {}
    vnis = str(options.get("com.docker.network.driver.overlay.vxlanid_list", "") if
               isinstance(options, dict) else "")
    peers = []
    if not isinstance(doc.get("Peers") or [], list):
        raise ParseError("Docker network: Peers is not a list")
    for p in doc.get("Peers") or ():
        if not isinstance(p, dict):
            raise ParseError("Docker network: a peer is not an object")
        peers.append(_address(p.get("IP"), "peer"))
    endpoints = []
    services = doc.get("Services") or {}
    if not isinstance(services, dict):
        raise ParseError("Docker network: Services is not an object")
    for service in services.values():
        tasks = service.get("Tasks") if isinstance(service, dict) else None
        if not isinstance(tasks or [], list):
            raise ParseError("Docker network: a service's Tasks is not a list")
        for t in tasks or ():
            if not isinstance(t, dict) or not t.get("EndpointIP"):
                continue
            info = t.get("Info") if isinstance(t.get("Info"), dict) else {}
            node = info.get("Host IP")
            endpoints.append({"name": str(t.get("Name") or "?"),
                              "ip": _address(t["EndpointIP"], "endpoint"),
                              "node": _address(node, "node") if node else None})
    local = []
    containers = doc.get("Containers") or {}
    if not isinstance(containers, dict):
        raise ParseError("Docker network: Containers is not an object")
    for c in containers.values():
        if isinstance(c, dict) and c.get("IPv4Address"):
            local.append(_address(c["IPv4Address"], "container"))
    return {"name": doc["Name"], "id": str(doc.get("Id") or ""),
            "vnis": [v for v in vnis.split(",") if v.strip().isdigit()],
            "peers": peers, "endpoints": endpoints, "local": local}

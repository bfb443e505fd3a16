"""`netdoctor map` on recorded snapshots: the graph of a host's container network, drawn as
Mermaid (checked with the pictures' grammar), DOT (read back with networkx's reader) and
JSON, with the checks' findings on the device they are about."""

import json

import pytest

from netdoctor.checks import run_checks
from netdoctor.diagnose.reason import netmap
from netdoctor.diagnose.report import netmap as draw

import recorded
import snapshot_edits as E
from test_pictures import check_flowchart

nx = pytest.importorskip("networkx")


def test_the_lab_map_merges_the_containers_paths_where_they_share_devices(healthy_lab):
    doc = netmap.build(healthy_lab).to_dict()
    by_name = {}
    for n in doc["nodes"]:
        by_name.setdefault((n["netns"], n["name"]), n)
    bridge = by_name[("ndlab-host", "ndbr0")]
    assert bridge["role"] == "bridge" and bridge["addresses"] == ["172.29.0.1/24"]
    # Two containers, two veths, one bridge, one uplink: six nodes, five edges.
    assert len(doc["nodes"]) == 6 and len(doc["edges"]) == 5
    into_bridge = [e for e in doc["edges"] if e["to"] == bridge["id"]]
    assert len(into_bridge) == 2 and {e["how"] for e in into_bridge} == {"bridge port"}
    assert [n["containers"] for n in doc["networks"]] == [["lab:test", "lab:web"]]
    assert json.loads(json.dumps(doc))["schema"] == "netdoctor.map/1"


@pytest.mark.parametrize("fixture", ["healthy_lab", "healthy_docker"])
def test_the_map_is_valid_mermaid_and_dot(fixture, request):
    doc = netmap.build(request.getfixturevalue(fixture)).to_dict()
    check_flowchart(draw.mermaid(doc))
    g = nx.nx_pydot.from_pydot(__import__("pydot").graph_from_dot_data(
        "\n".join(draw.dot(doc)))[0])
    assert g.number_of_nodes() == len(doc["nodes"])
    assert g.number_of_edges() == len(doc["edges"])


def test_problems_are_drawn_on_the_device_they_are_about():
    snap = E.edit_host_ns(E.load(), lambda ns: E.without_flag(ns, "veth-test"))
    findings = run_checks(snap)
    doc = netmap.build(snap, findings).to_dict()
    veth = next(n for n in doc["nodes"] if n["name"] == "veth-test")
    assert "error veth-down" in veth["findings"]
    lines = draw.mermaid(doc)
    check_flowchart(lines)
    assert any(line.startswith("  class ") and line.endswith(" problem") for line in lines)
    assert 'color="red"' in "\n".join(draw.dot(doc))


def test_a_saved_trace_is_drawn_as_dot_with_its_stop():
    doc = recorded.document("lab-trace-forward-drop.json")
    text = "\n".join(draw.path_dot(doc))
    g = nx.nx_pydot.from_pydot(__import__("pydot").graph_from_dot_data(text)[0])
    assert g.number_of_nodes() == len(doc["hops"])
    assert "stopped here: forward-dropped" in text

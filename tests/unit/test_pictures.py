"""The pictures in reports: Mermaid flowcharts of recorded trace and path documents, checked
against a small grammar of the Mermaid flowchart syntax they use."""

import re

import pytest

from netdoctor.diagnose.report import mermaid

import recorded

NODE = re.compile(r'^    h\d+\["[^"\[\]{}|]*"\]$')
EDGE = re.compile(r'^  h(\d+) (-->|-\.->)\|"[^"|]*"\| h(\d+)$|^  h(\d+) --> h(\d+)$')
SUBGRAPH = re.compile(r'^  subgraph ns\d+\["[^"\[\]]*"\]$')
CLASSDEF = re.compile(r"^  classDef \w+ [\w#:,\-]+$")
CLASS = re.compile(r"^  class h\d+ \w+$")


def check_flowchart(lines: list) -> None:
    """Fails unless lines are a flowchart: a header, balanced subgraphs, nodes defined once
    before the edges that use them, edges between defined nodes only."""
    assert lines[0] == "flowchart LR"
    depth, nodes = 0, set()
    for line in lines[1:]:
        if SUBGRAPH.match(line):
            assert depth == 0, "nested subgraph"
            depth += 1
        elif line == "  end":
            assert depth == 1, "end without subgraph"
            depth -= 1
        elif NODE.match(line):
            node = line.split("[", 1)[0].strip()
            assert node not in nodes, f"node {node} twice"
            nodes.add(node)
        elif EDGE.match(line):
            ends = [g for g in EDGE.match(line).groups() if g and g.isdigit()]
            assert all(f"h{n}" in nodes for n in ends), line
        elif CLASSDEF.match(line) or CLASS.match(line):
            continue
        else:
            raise AssertionError(f"not flowchart syntax: {line!r}")
    assert depth == 0


def test_the_grammar_check_rejects_what_mermaid_would():
    with pytest.raises(AssertionError):
        check_flowchart(["flowchart LR", '    h0["a "quoted" label"]'])
    with pytest.raises(AssertionError):
        check_flowchart(["flowchart LR", '  subgraph ns0["x"]', '    h0["a"]'])
    with pytest.raises(AssertionError):
        check_flowchart(["flowchart LR", '    h0["a"]', '  h0 --> h1'])


def test_a_stopped_trace_is_drawn_with_the_cause_on_the_edge_it_did_not_cross():
    doc = recorded.document("lab-trace-forward-drop.json")
    lines = mermaid.trace_flowchart(doc)
    check_flowchart(lines)
    stopped = [h["role"] for h in doc["hops"]].index(doc["verdict"]["stopped_at"])
    assert f"  class h{stopped} stop" in lines
    assert f'  h{stopped} -.->|"✗ forward-dropped"| h{stopped + 1}' in lines
    # The hops sit in their namespaces, with the addresses each saw (NAT shown).
    assert any('subgraph' in l and "ndlab-host" in l for l in lines)
    assert any("request: 172.29.0.2 → 203.0.113.80" in l for l in lines)


def test_a_healthy_east_west_trace_and_a_path_are_drawn():
    doc = recorded.document("lab-trace-east-west.json")
    lines = mermaid.trace_flowchart(doc)
    check_flowchart(lines)
    assert not any(l.startswith("  class ") for l in lines)
    assert sum(l.startswith("  subgraph") for l in lines) == 3  # test, host, web
    path = recorded.document("lab-checks-snapshot.json")["containers"][0]["path"]
    check_flowchart(mermaid.path_flowchart(path))


def test_the_trace_markdown_report_carries_the_picture():
    from netdoctor.diagnose.report import markdown
    from netdoctor.diagnose.report.saved import trace_report

    text = markdown.trace_markdown(trace_report(recorded.document("lab-trace-forward-drop.json")))
    block = text.split("```mermaid\n", 1)[1].split("```", 1)[0].splitlines()
    check_flowchart(block)


def test_the_checks_markdown_report_draws_every_path_it_judged():
    from netdoctor.checks import run_checks
    from netdoctor.diagnose.facts.snapshot import Snapshot
    from netdoctor.diagnose.report import markdown

    snap = Snapshot.from_dict(recorded.document("lab-checks-snapshot.json"))
    text = markdown.checks_markdown(snap, run_checks(snap))
    blocks = [b.split("```", 1)[0].splitlines() for b in text.split("```mermaid\n")[1:]]
    assert len(blocks) == len(snap.containers) == 2
    for b in blocks:
        check_flowchart(b)

"""--allow-trace-rules, its pure parts: nft's trace lines, the rules they name (recorded from
the lab: one healthy trace, one with a DROP rule at the top of FORWARD), and the verdict
naming the rule nftables saw drop the probe rather than one whose counter moved."""

import json
import os

import pytest

from netdoctor.capture.nftrace import marking_rules, table_name, table_text
from netdoctor.diagnose.facts.ruleset import Ruleset
from netdoctor.diagnose.parse.nft_json import parse_nft_json
from netdoctor.diagnose.parse.nft_trace import parse_trace
from netdoctor.diagnose.reason import evidence as E
from netdoctor.diagnose.reason import verdict as V
from netdoctor.diagnose.reason.nftrace import first_drop, rules_met

DATA = os.path.join(os.path.dirname(__file__), os.pardir, "data")


def recorded(name):
    with open(os.path.join(DATA, f"nftrace-{name}.json")) as f:
        rec = json.load(f)
    flow = E.Flow(rec["flow"]["kind"], rec["flow"]["src"], rec["flow"]["dst"],
                  cookie=rec["flow"]["cookie"], sport=rec["flow"]["sport"])
    ruleset = Ruleset.from_dict(rec["host_ruleset"])
    met = []
    for ns in rec["namespaces"]:
        chains = [c for _, doc in ns["chains"] for c in parse_nft_json(doc)]
        scope = "host" if ns["label"] == "ndlab-host" else "container"
        met += rules_met(ns["label"], scope, parse_trace(ns["lines"]), chains,
                         ruleset if scope == "host" else None, flow)
    return met


def test_trace_lines_parse_into_passages():
    lines = [
        'add table inet netdoctor_1_2_3 # handle 3\n',
        'trace id 8b7f5d39 ip filter FORWARD packet: iif "ndbr0" oif "eth0" ip saddr '
        '172.29.0.2 ip daddr 203.0.113.80 ip protocol icmp icmp type echo-request\n',
        'trace id 8b7f5d39 ip filter FORWARD rule counter packets 0 bytes 0 jump X '
        '# handle 6 (verdict jump X)\n',
        'trace id 8b7f5d39 ip filter X verdict return\n',
        'trace id 8b7f5d39 ip filter FORWARD unknown rule handle 13 (verdict drop)\n',
        'trace id 11111111 ip6 filter FORWARD packet: iif "br0" ip6 saddr fd00::2 ip6 daddr '
        '2001:db8::80 tcp sport 40000 tcp dport 80\n',
        'trace id 11111111 ip6 filter FORWARD policy drop \n',
        '# new generation 5 by process 20019 (nft)\n',
    ]
    first, second = parse_trace(lines)
    assert first.packet == {"iif": "ndbr0", "oif": "eth0", "saddr": "172.29.0.2",
                            "daddr": "203.0.113.80", "icmp": "echo-request"}
    assert [(s.chain, s.kind, s.verdict, s.handle) for s in first.steps] == [
        ("FORWARD", "rule", "jump X", 6), ("X", "verdict", "return", None),
        ("FORWARD", "rule", "drop", 13)]
    assert first.steps[0].text == "counter packets 0 bytes 0 jump X"
    assert first.dropped_by.handle == 13
    assert second.packet["sport"] == 40000 and second.packet["saddr"] == "fd00::2"
    assert second.dropped_by.kind == "policy"


def test_the_dropping_rule_is_named_as_iptables_save_writes_it():
    met = recorded("forward-drop")
    drop = first_drop(met, "request")
    assert drop["scope"] == "host" and drop["netns"] == "ndlab-host"
    assert (drop["where"], drop["text"]) == ("iptables-nft -t filter FORWARD rule 1",
                                             "-A FORWARD -s 172.29.0.2/32 -j DROP")
    assert first_drop(met, "reply") is None
    # The container's packets left its namespace: it has no rules to meet.
    assert all(not m["steps"] for m in met if m["scope"] == "container")


def test_a_healthy_trace_shows_both_ways_and_no_drop():
    met = recorded("healthy")
    assert first_drop(met) is None
    host = [m for m in met if m["scope"] == "host"]
    assert {m["direction"] for m in host} == {"request", "reply"}
    texts = [s["text"] for m in host for s in m["steps"]]
    assert any("RELATED,ESTABLISHED" in t and "ACCEPT" in t for t in texts), texts
    assert any(t.startswith("-A POSTROUTING") and "MASQUERADE" in t for t in texts), texts
    # Our own marking table is never shown as a rule the probe met.
    assert not any("netdoctor_" in s["where"] for m in met for s in m["steps"])


def test_the_traced_rule_outranks_a_counter_moved_by_other_traffic():
    s = [E.HopSighting(r, n, "ns", q, 0) for r, n, q in
         (("container", "eth0", 1), ("host-veth", "veth-test", 1), ("bridge", "ndbr0", 1),
          ("uplink", "eth0", 0))]
    hv = E.HopVerdict(False, "bridge", "request")
    flow = E.Flow("icmp", "172.29.0.2", "203.0.113.80", cookie=1)
    other = [{"where": "iptables-nft -t filter FORWARD rule 1",
              "text": "-A FORWARD -p udp --dport 9 -j DROP", "policy": False}]
    v = V.decide(V.Case(hv, s, [], [], other, flow, ()))
    assert v.rule.endswith("--dport 9 -j DROP")  # counters alone: the wrong rule
    traced = recorded("forward-drop")
    v = V.decide(V.Case(hv, s, [], [], other, flow, (), traced=traced))
    assert v.cause == "forward-dropped"
    assert v.rule == "iptables-nft -t filter FORWARD rule 1: -A FORWARD -s 172.29.0.2/32 -j DROP"
    # With no counter at all, nftables' word alone names the cause.
    assert V.decide(V.Case(hv, s, [], [], [], flow, (), traced=traced)).cause == \
        "forward-dropped"


@pytest.mark.parametrize("kind", ["icmp", "tcp", "udp"])
def test_the_marking_table_matches_only_the_probe(kind):
    rules = marking_rules(kind, cookie=0xDEADBEEF, port=41234)
    text = table_text(table_name("netdoctor-12-34-5"), rules)
    assert text.startswith("table inet netdoctor_12_34_5 {")
    assert "hook prerouting priority -350" in text and "hook output priority -350" in text
    assert all("meta nftrace set 1" in r for r in rules)
    if kind == "icmp":
        assert rules == ["meta l4proto { icmp, ipv6-icmp } @th,64,32 0xdeadbeef "
                         "meta nftrace set 1"]
    else:
        assert [r.split(" th ")[1].split(" meta")[0] for r in rules] == ["sport 41234",
                                                                         "dport 41234"]

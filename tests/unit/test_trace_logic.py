"""The trace's pure parts: the kernel filter, frame and tracefs parsers, localization, cause."""

import json
import struct
from dataclasses import replace

from netdoctor.capture import bpf
from netdoctor.capture.probe import echo_packet
from netdoctor.capture.sockets import parse_frame
from netdoctor.capture.tracefs import parse_trace
from netdoctor.checks import Finding
from netdoctor.diagnose.reason import evidence as E
from netdoctor.diagnose.reason import verdict as V
from netdoctor.diagnose.facts.ruleset import Ruleset
from netdoctor.diagnose.parse import iptables_save
from netdoctor.diagnose.reason import rules

from frames import echo, ether, ipv4


def test_icmp_filter_admits_the_probe_and_its_reply_only():
    prog = bpf.probe_filter("icmp", cookie=0xDEADBEEF, ident=7)
    assert bpf.run(prog, echo("172.29.0.2", "203.0.113.80", 0xDEADBEEF))
    assert bpf.run(prog, echo("203.0.113.80", "198.51.100.2", 0xDEADBEEF, reply=True))
    assert not bpf.run(prog, echo("172.29.0.2", "203.0.113.80", 0x12345678))
    arp = ether(b"\x00\x01\x08\x00\x06\x04\x00\x01" + b"\x00" * 20, 0x0806)
    assert bpf.run(prog, arp)
    # An ICMP error is admitted when it quotes the probe, and not for anyone else's packet.
    probe_ip = ipv4("172.29.0.2", "203.0.113.80", 1, echo_packet(7, 1, 0xDEADBEEF, 61))
    about_probe = ether(ipv4("172.29.0.1", "172.29.0.2", 1, b"\x03\x01\0\0\0\0\0\0" +
                             probe_ip[:28]))
    assert bpf.run(prog, about_probe)  # a quote of only 8 bytes of ICMP: matched by its id
    prog_other_id = bpf.probe_filter("icmp", cookie=0xDEADBEEF, ident=9)
    assert not bpf.run(prog_other_id, about_probe)  # id differs, cookie not quoted
    full_quote = ether(ipv4("172.29.0.1", "172.29.0.2", 1, b"\x03\x01\0\0\0\0\0\0" +
                            probe_ip))
    assert bpf.run(prog_other_id, full_quote)  # id rewritten (NAT), cookie quoted
    blaster = ipv4("172.29.0.2", "203.0.113.80", 17, struct.pack("!HHHH", 40000, 9, 26, 0))
    about_other = ether(ipv4("203.0.113.80", "198.51.100.2", 1,
                             b"\x03\x03\0\0\0\0\0\0" + blaster))
    assert not bpf.run(prog, about_other)
    other_udp = ether(ipv4("1.1.1.1", "2.2.2.2", 17, struct.pack("!HHHH", 53, 4000, 8, 0)))
    assert not bpf.run(prog, other_udp)
    assert not bpf.run(prog, b"\x00" * 10)  # too short: the kernel drops it


def test_tcp_filter_matches_the_probe_port_both_ways():
    prog = bpf.probe_filter("tcp", port=41000)
    syn = ether(ipv4("172.29.0.2", "203.0.113.80", 6, struct.pack("!HH", 41000, 80) + b"\x00" * 16))
    synack = ether(ipv4("203.0.113.80", "198.51.100.2", 6,
                        struct.pack("!HH", 80, 41000) + b"\x00" * 16))
    other = ether(ipv4("172.29.0.2", "203.0.113.80", 6, struct.pack("!HH", 41001, 80) + b"\0" * 16))
    assert bpf.run(prog, syn) and bpf.run(prog, synack) and not bpf.run(prog, other)
    quoted = ipv4("172.29.0.2", "203.0.113.80", 6, struct.pack("!HHI", 41000, 80, 0))
    unreach = ether(ipv4("172.29.0.1", "172.29.0.2", 1, b"\x03\x0d\0\0\0\0\0\0" + quoted))
    assert bpf.run(prog, unreach)
    quoted_other = ipv4("172.29.0.2", "203.0.113.80", 6, struct.pack("!HHI", 41001, 80, 0))
    assert not bpf.run(prog, ether(ipv4("172.29.0.1", "172.29.0.2", 1,
                                        b"\x03\x0d\0\0\0\0\0\0" + quoted_other)))


def test_frame_parser():
    f = parse_frame(echo("172.29.0.2", "203.0.113.80", 0xCAFEF00D), 5, True)
    assert (f.src, f.dst, f.proto, f.icmp_type, f.cookie, f.outgoing, f.ttl) == \
        ("172.29.0.2", "203.0.113.80", "icmp", 8, 0xCAFEF00D, True, 64)
    inner = ipv4("172.29.0.2", "203.0.113.80", 1, b"\x08\x00" + b"\x00" * 6)
    err = parse_frame(ether(ipv4("172.29.0.1", "172.29.0.2", 1, b"\x03\x0d\x00\x00\x00\x00\x00\x00"
                                 + inner)))
    assert err.inner == ("172.29.0.2", "203.0.113.80", 1)
    assert parse_frame(b"\x01\x02").ethertype == 0


TRACE = """# tracer: nop
#
         busybox-24709   [001] b....  2342.621266: net_dev_queue: dev=eth0 skbaddr=00000000ada97750 len=103
         busybox-24709   [001] ..s1.  2342.621269: netif_receive_skb: dev=veth-test skbaddr=00000000ada97750 len=89
         busybox-24709   [001] ..s1.  2342.621282: netif_receive_skb: dev=ndbr0 skbaddr=00000000ada97750 len=89
         busybox-24709   [001] ..s1.  2342.621289: kfree_skb: skbaddr=00000000ada97750 rx_sk=0000000000000000 protocol=2048 location=ip_error+0x94/0x220 reason: IP_INADDRERRORS
          <idle>-0       [000] ..s1.  2342.700000: kfree_skb: skbaddr=00000000ffff0000 rx_sk=0000000000000000 protocol=2048 location=x+0x1 reason: NETFILTER_DROP
garbage line
"""


def test_tracefs_parser_and_probe_drops():

    events = parse_trace(TRACE)
    assert [e.event for e in events] == ["net_dev_queue", "netif_receive_skb", "netif_receive_skb",
                                         "kfree_skb", "kfree_skb"]
    assert events[3].reason == "IP_INADDRERRORS" and events[3].location == "ip_error+0x94/0x220"
    # Only the skb that carried the probe's length counts; the other drop is someone else's.
    assert E.probe_drops(events, (89, 103)) == [("IP_INADDRERRORS", "ip_error+0x94/0x220", "ndbr0")]


def sightings(req, rep, uplink_capture_error=None):
    roles = ("container", "host-veth", "bridge", "uplink")
    names = ("eth0", "veth-test", "ndbr0", "eth0")
    return [E.HopSighting(r, names[i], "ns", req[i], rep[i],
                          capture_error=uplink_capture_error if r == "uplink" else None)
            for i, r in enumerate(roles)]


def test_localize():
    assert E.localize(sightings([1, 1, 1, 1], [1, 1, 1, 1]), True).reachable
    assert E.localize(sightings([1, 1, 1, 0], [0, 0, 0, 0]), False) == \
        E.HopVerdict(False, "bridge", "request")
    assert E.localize(sightings([1, 1, 1, 1], [0, 0, 0, 1]), False) == \
        E.HopVerdict(False, "uplink", "reply")
    assert E.localize(sightings([0, 0, 0, 0], [0, 0, 0, 0]), False) == \
        E.HopVerdict(False, None, "request")
    # An answer that never crossed the uplink came from the host (a REJECT), not the server.
    assert E.localize(sightings([1, 1, 1, 0], [1, 1, 0, 0]), True) == \
        E.HopVerdict(False, "bridge", "request")


def finding(cid, **evidence):
    return Finding(cid, "error", "host", "lab:test", "m", evidence, "fix")


FLOW = E.Flow("icmp", "172.29.0.2", "203.0.113.80", cookie=1)


def test_decide_prefers_the_root_cause_and_the_kernel_reason():
    hv = E.HopVerdict(False, None, "request")
    v = V.decide(V.Case(hv, [], [finding("neighbour-failed"), finding("veth-down")], [], [], FLOW, ()))
    assert v.cause == "veth-down"
    hv = E.HopVerdict(False, "bridge", "request")
    both = [finding("forward-dropped", direction="request"), finding("ip-forward-disabled")]
    v = V.decide(V.Case(hv, sightings([1, 1, 1, 0], [0] * 4), both,
                 [("NETFILTER_DROP", "nft_do_chain", "ndbr0")], [], FLOW, ()))
    assert v.cause == "forward-dropped" and v.kernel_drop_reason == "NETFILTER_DROP"
    v = V.decide(V.Case(hv, sightings([1, 1, 1, 0], [0] * 4), both,
                 [("IP_INADDRERRORS", "ip_error", "ndbr0")], [], FLOW, ()))
    assert v.cause == "ip-forward-disabled"


def test_a_drop_reason_several_causes_give_names_none_without_a_finding():
    """OTHERHOST at the bridge while the reply was lost there: veth-not-attached,
    ip-conflict and container-wrong-gateway all make the kernel drop a frame as not the
    host's, and flooded copies of a frame for a MAC the bridge does not know are dropped so
    too. With no finding for any of them, the verdict named the first (a veth that was
    attached); a reason that names one cause alone still names it."""
    hv = E.HopVerdict(False, "bridge", "reply")
    s = sightings([1, 1, 1, 1], [0, 0, 1, 1])
    v = V.decide(V.Case(hv, s, [], [("OTHERHOST", "ip_rcv_core+0x22c", "ndbr0")], [], FLOW, ()))
    assert v.cause != "veth-not-attached" and v.kernel_drop_reason == "OTHERHOST", v
    # Unnamed, it says so: what the kernel said, and where to look next.
    assert v.cause == "unknown" and "reason OTHERHOST (at ip_rcv_core+0x22c), which more " \
        "than one fault gives: netdoctor cannot name the cause; look next at the bridge's " \
        "way to the container" in v.explanation, v.explanation
    v = V.decide(V.Case(hv, s, [finding("ip-conflict")],
                        [("OTHERHOST", "ip_rcv_core+0x22c", "ndbr0")], [], FLOW, ()))
    assert v.cause == "ip-conflict", v
    v = V.decide(V.Case(hv, s, [], [("IP_RPFILTER", "ip_rcv_finish", "ndbr0")], [], FLOW, ()))
    assert v.cause == "rp-filter-drop", v


def test_decide_from_evidence_alone():
    up = E.HopVerdict(False, "uplink", "request")
    s = sightings([1, 1, 1, 1], [0] * 4)
    s[3] = E.HopSighting("uplink", "eth0", "ns", 1, 0,
                         addresses_seen={"request": "172.29.0.2 -> 203.0.113.80"})
    assert V.decide(V.Case(up, s, [], [], [], FLOW, ())).cause == "nat-missing"
    s[3] = E.HopSighting("uplink", "eth0", "ns", 1, 0,
                         addresses_seen={"request": "198.51.100.2 -> 203.0.113.80"})
    v = V.decide(V.Case(up, s, [], [("NETFILTER_DROP", "x", "wan0")], [], FLOW, (),
                        {"uplink": "198.51.100.1"}))
    assert v.cause == "upstream-no-reply" and v.kernel_drop_reason is None  # not on our path
    # It says what left, to whom, and that what lies beyond is not seen.
    assert "(as 198.51.100.2 -> 203.0.113.80), sent to the next hop 198.51.100.1" in \
        v.explanation and "beyond this host" in v.explanation, v.explanation
    br = E.HopVerdict(False, "bridge", "request")
    v = V.decide(V.Case(br, sightings([1, 1, 1, 0], [0] * 4), [], [("IP_RPFILTER", "x", "ndbr0")], [],
                 FLOW, ()))
    assert v.cause == "rp-filter-drop"


def arp_frame(op, sender, target):
    body = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, op, b"\x04" * 6,
                       bytes(map(int, sender.split("."))), b"\x00" * 6,
                       bytes(map(int, target.split("."))))
    return parse_frame(ether(body, 0x0806), 0, op == 1)


def test_duplicate_address_probes_ask_no_neighbour():
    """A new interface's duplicate address detection (an IPv6 solicitation from ::, an ARP
    probe from 0.0.0.0) expects no answer when the address is free: no unanswered question."""
    from frames import neighbour_solicitation

    dad = [parse_frame(neighbour_solicitation("::", "fe80::3069:2eff:fe90:b09f"), 0, True),
           arp_frame(1, "0.0.0.0", "198.51.100.2")]
    assert E.sight("uplink", "eth0", "ns", dad, FLOW).arp_unanswered == ()
    asked = [parse_frame(neighbour_solicitation("fe80::1", "fe80::2"), 0, True)]
    assert E.sight("uplink", "eth0", "ns", asked, FLOW).arp_unanswered == ("fe80::2",)


def test_unanswered_arp_for_the_next_hop_is_a_failed_neighbour():
    # The request is last seen on the bridge; the uplink asks for the host's gateway again and
    # again, and nothing answers: the request waits in the neighbour queue.
    asked = [arp_frame(1, "198.51.100.2", "198.51.100.99") for _ in range(2)]
    up = E.sight("uplink", "eth0", "ns", asked, FLOW)
    assert up.arp_unanswered == ("198.51.100.99",)
    s = sightings([2, 2, 2, 0], [0] * 4)
    s[3] = up
    br = E.HopVerdict(False, "bridge", "request")
    v = V.decide(V.Case(br, s, [], [], [], FLOW, (), {"uplink": "198.51.100.99"}))
    assert v.cause == "neighbour-failed" and "198.51.100.99" in v.explanation
    # ARP for someone else on the uplink says nothing about the probe's next hop.
    assert V.decide(V.Case(br, s, [], [], [], FLOW, (), {"uplink": "198.51.100.1"})).cause == "unknown"
    # Answered ARP is no failure.
    answered = asked + [arp_frame(2, "198.51.100.99", "198.51.100.2")]
    s[3] = E.sight("uplink", "eth0", "ns", answered, FLOW)
    assert s[3].arp_unanswered == ()
    assert V.decide(V.Case(br, s, [], [], [], FLOW, (), {"uplink": "198.51.100.99"})).cause == "unknown"
    # A dropping rule whose counter moved outranks it.
    hit = [{"where": "iptables-nft filter FORWARD rule 1", "text": "-j DROP"}]
    s[3] = up
    assert V.decide(V.Case(br, s, [], [], hit, FLOW, (), {"uplink": "198.51.100.99"})).cause == \
        "forward-dropped"


def test_rule_hits_name_the_rule_whose_counter_moved():
    before = Ruleset(iptables_save.parse_iptables_save(
        "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [5:300]\n:OUTPUT ACCEPT [0:0]\n"
        "[0:0] -A FORWARD -s 172.29.0.2/32 -j DROP\n[9:900] -A FORWARD -j ACCEPT\nCOMMIT\n"))
    after = Ruleset(iptables_save.parse_iptables_save(
        "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [6:360]\n:OUTPUT ACCEPT [0:0]\n"
        "[2:168] -A FORWARD -s 172.29.0.2/32 -j DROP\n[12:1000] -A FORWARD -j ACCEPT\nCOMMIT\n"))
    hits = rules.rule_hits(before, after)
    assert hits[0]["text"] == "-A FORWARD -s 172.29.0.2/32 -j DROP" and hits[0]["delta"] == 2
    assert hits[1]["policy"] and hits[1]["delta"] == 1
    assert all("ACCEPT" not in h["text"] for h in hits)


def test_destination_forms():
    from netdoctor.diagnose.targets.destination import parse_destination
    import pytest
    from netdoctor.diagnose.errors import UsageError

    assert parse_destination("www.baidu.com", None, None) == ("www.baidu.com", None, "icmp")
    assert parse_destination("203.0.113.80:443", None, None) == ("203.0.113.80", 443, "tcp")
    assert parse_destination("[2001:db8::1]:53", None, "udp") == ("2001:db8::1", 53, "udp")
    assert parse_destination("x", 8080, None) == ("x", 8080, "tcp")
    for bad in (("x:y", None, None), ("x", 0, None), ("x", None, "tcp"), ("x", None, "gre")):
        with pytest.raises(UsageError):
            parse_destination(*bad)


def test_trace_parser_can_pass_over_other_packets_drops():
    text = ("  ping-42  [000] .....  10.000100: net_dev_queue: dev=eth0 skbaddr=00000000aaaa "
            "len=103\n"
            "  <idle>-0  [001] ..s1.  10.000200: kfree_skb: skbaddr=00000000aaaa protocol=2048 "
            "location=nft_do_chain+0x46f/0x690 reason: NETFILTER_DROP\n"
            "  <idle>-0  [001] ..s1.  10.000300: kfree_skb: skbaddr=00000000bbbb protocol=2048 "
            "location=ip_error+0x94/0x220 reason: IP_INADDRERRORS\n")
    every = parse_trace(text)
    ours = parse_trace(text, seen_only=True)
    assert [e.skbaddr for e in every] == ["00000000aaaa", "00000000aaaa", "00000000bbbb"]
    assert [(e.event, e.reason) for e in ours] == [("net_dev_queue", None),
                                                   ("kfree_skb", "NETFILTER_DROP")]


def test_trace_parser_remembers_the_probe_skbs_between_reads():
    # trace_pipe hands the events over in pieces; a drop read later still belongs to the
    # probe's skb, and a drop recorded before the probe's skb was ever seen at that address
    # (another packet's, at memory the probe's skb reuses afterwards) does not.
    from netdoctor.capture.tracefs import TraceParser

    earlier_drop = ("  <idle>-0  [001] ..s1.  9.990000: kfree_skb: skbaddr=00000000aaaa "
                    "protocol=2048 location=udp_queue_rcv_skb+0x1/0x2 reason: NO_SOCKET\n")
    queued = ("  ping-42  [000] .....  10.000100: net_dev_queue: dev=eth0 skbaddr=00000000aaaa "
              "len=103\n")
    dropped = ("  <idle>-0  [001] ..s1.  10.000200: kfree_skb: skbaddr=00000000aaaa "
               "protocol=2048 location=nft_do_chain+0x46f/0x690 reason: NETFILTER_DROP\n")
    parser = TraceParser(seen_only=True)
    assert parser.feed(earlier_drop) == []
    assert [e.event for e in parser.feed(queued)] == ["net_dev_queue"]
    assert [(e.event, e.reason) for e in parser.feed(dropped)] == [("kfree_skb",
                                                                    "NETFILTER_DROP")]
    assert [e.reason for e in parse_trace(earlier_drop + queued + dropped, seen_only=True)
            if e.event == "kfree_skb"] == ["NETFILTER_DROP"]


def test_a_hop_in_no_namespace_of_the_path_is_netdoctors_bug_not_the_users():
    # An internal inconsistency was a UsageError: exit 2, "check your arguments".
    from netdoctor.diagnose.pipeline import trace
    from netdoctor.diagnose.errors import InternalError
    from netdoctor.diagnose.cli.status import ExitStatus, exit_status_for

    path = {"target": {"netns": {"name": "c", "inode": 1, "path": "/run/netns/c"}},
            "host_netns": {"name": "h", "inode": 2, "path": "/run/netns/h"}}
    assert trace.hop_netns(path, {"name": "eth0", "netns_inode": 2}).name == "h"
    try:
        trace.hop_netns(path, {"name": "eth9", "netns_inode": 3})
    except InternalError as e:
        assert exit_status_for(e) == ExitStatus.INTERNAL and "eth9" in str(e)
    else:
        raise AssertionError("no error for a hop outside the path's namespaces")


def test_name_resolution_and_path_mtu_are_verdict_rules_too():
    reached = E.HopVerdict(True, None, None)
    failure = "cannot resolve 'x' (x: REFUSED from 203.0.113.53)"
    v = V.decide(V.Case(reached, sightings([1, 1, 1, 1], [1, 1, 1, 1]), [], flow=FLOW,
                        dns_failure=failure))
    assert (v.reachable, v.cause) == (False, "dns-no-answer") and failure in v.explanation
    silent = E.HopVerdict(False, "uplink", "request")
    s = sightings([1, 1, 1, 1], [0] * 4)
    s[3] = E.HopSighting("uplink", "eth0", "ns", 1, 0,
                         addresses_seen={"request": "198.51.100.2 -> 203.0.113.53"})
    v = V.decide(V.Case(silent, s, [], flow=FLOW, dns_failure=failure))
    assert (v.cause, v.stopped_at, v.mechanism) == ("dns-unreachable", "uplink", None)
    # The query was dropped in FORWARD on its way: the DNS failure is the cause, the drop how.
    dropped = E.HopVerdict(False, "bridge", "request")
    v = V.decide(V.Case(dropped, sightings([1, 1, 1, 0], [0] * 4),
                        [finding("forward-dropped")], [("NETFILTER_DROP", "x", "ndbr0")], [],
                        FLOW, dns_failure=failure))
    assert (v.cause, v.mechanism, v.kernel_drop_reason) == ("dns-unreachable", "forward-dropped",
                                                            "NETFILTER_DROP")
    hole = {"size": 1500, "discovery_works": False}
    v = V.decide(V.Case(reached, sightings([1, 1, 1, 1], [1, 1, 1, 1]), [], flow=FLOW,
                        pmtu=hole))
    assert (v.reachable, v.cause) == (True, "mtu-mismatch") and "1500-byte" in v.explanation
    v = V.decide(V.Case(reached, [], [], pmtu=dict(hole, discovery_works=True)))
    assert (v.reachable, v.cause) == (True, None)
    # The rules are one ordered list, each saying what it decides on.
    assert [name for name, _ in V.RULES][:2] == [
        "the name did not resolve: the container cannot reach its resolver",
        "the name did not resolve, but the nameserver answers"]
    # A nameserver that answered the probe but was silent for the name: it answers, and
    # waits on servers of its own (a forwarding resolver), which the verdict says.
    quiet = "cannot resolve 'x' (x: 10.89.7.1 did not answer within 1 s)"
    v = V.decide(V.Case(reached, sightings([1, 1, 1, 1], [1, 1, 1, 1]), [], flow=FLOW,
                        dns_failure=quiet, dns_silent=True))
    assert v.cause == "dns-no-answer" and "forward" in v.explanation and \
        "nameserver answers, but" not in v.explanation, v.explanation


def test_a_bridge_device_reports_no_unanswered_arp_it_could_not_see_answered():
    # Container 172.17.0.2 asks for its neighbour 172.17.0.3 on docker0. The question is a
    # broadcast, so the bridge device sees it; the answer is unicast between two ports, which
    # the bridge device never sees. Only the bridge's own questions can be judged there.
    theirs = [arp_frame(1, "172.17.0.2", "172.17.0.3")]
    ours = [arp_frame(1, "172.17.0.1", "172.17.0.9")]
    bridge = E.sight("bridge", "docker0", "ns", theirs + ours, FLOW,
                     own_addresses=("172.17.0.1",))
    assert bridge.arp_unanswered == ("172.17.0.9",)
    assert bridge.arp_requests == 2  # every question it saw still counts as seen
    # A veth or an uplink sees every frame of its link: any unanswered question counts.
    veth = E.sight("host-veth", "veth1", "ns", theirs, FLOW)
    assert veth.arp_unanswered == ("172.17.0.3",)


def test_a_tc_or_ebpf_drop_is_named_and_not_blamed_on_a_rule():
    """The kernel's TC_INGRESS: no firewall finding is guessed, the device is named."""
    hv = E.HopVerdict(False, "host-veth", "request")
    s = sightings([1, 1, 0, 0], [0] * 4)
    v = V.decide(V.Case(hv, s, [finding("forward-dropped", direction="request")],
                        [("TC_INGRESS", "tcf_classify+0x1", "veth-test")], [], FLOW, ()))
    assert v.cause == "tc-drop" and v.kernel_drop_reason == "TC_INGRESS"
    assert "veth-test" in v.explanation and "does not evaluate" in v.explanation


def ew_sightings(req, rep):
    roles = ("container", "host-veth", "bridge", "bridge-port", "destination")
    names = ("eth0", "veth-test", "ndbr0", "veth-web", "eth0")
    return [E.HopSighting(r, names[i], "ns", req[i], rep[i],
                          observes=E.BRIDGED_PAST if r == "bridge" else "all")
            for i, r in enumerate(roles)]


def test_a_netfilter_drop_inside_the_destination_is_its_own_firewall():
    """The request reached the destination's interface and its kernel dropped it in
    netfilter: the destination's INPUT, not the host's FORWARD (no finding needed)."""
    ew = E.Flow("icmp", "172.29.0.2", "172.29.0.3", cookie=1)
    hv = E.HopVerdict(False, "destination", "request")
    v = V.decide(V.Case(hv, ew_sightings([1, 1, 0, 1, 1], [0] * 5), [],
                        [("NETFILTER_DROP", "nft_do_chain", "eth0")], [], ew, ()))
    assert v.cause == "container-input-dropped", v
    # At the bridge, the same reason is the host's FORWARD still.
    hv = E.HopVerdict(False, "bridge", "request")
    v = V.decide(V.Case(hv, sightings([1, 1, 1, 0], [0] * 4), [],
                        [("NETFILTER_DROP", "nft_do_chain", "ndbr0")], [], FLOW, ()))
    assert v.cause == "forward-dropped", v


def test_east_west_localisation_passes_over_a_bridge_that_cannot_see():
    # Seen on both ends and never on the bridge between two of its ports: reachable.
    assert E.localize(ew_sightings([1, 1, 0, 1, 1], [1, 1, 0, 1, 1]), True).reachable
    # Lost after the sender's veth and before the far port: lost in the bridge.
    assert E.localize(ew_sightings([1, 1, 0, 0, 0], [0] * 5), False) == \
        E.HopVerdict(False, "bridge", "request")
    # Received by the destination, nothing back: it stopped there.
    hv = E.localize(ew_sightings([1, 1, 0, 1, 1], [0] * 5), False)
    assert hv == E.HopVerdict(False, "destination", "request")
    assert V.decide(V.Case(hv, ew_sightings([1, 1, 0, 1, 1], [0] * 5), [], flow=FLOW)).cause \
        == "destination-no-reply"
    # The reply came back as far as the far port: lost in the bridge on its way back.
    assert E.localize(ew_sightings([1, 1, 0, 1, 1], [0, 0, 0, 1, 1]), False) == \
        E.HopVerdict(False, "bridge", "reply")


def test_a_far_side_finding_is_a_cause_but_claims_no_hop_of_the_path():
    from dataclasses import replace

    far = replace(finding("veth-down"), side="destination")
    assert far.blocks_at == ()
    hv = E.HopVerdict(False, None, "request")
    assert V.decide(V.Case(hv, ew_sightings([0] * 5, [0] * 5), [far], flow=FLOW)).cause == \
        "veth-down"


# Recorded from this kernel's tracefs during a healthy lab trace (the second line's gateway
# field is what the tracepoint leaves in memory for a route without one).
JOURNAL_TRACE = """\
 python3-1 [001] ..... 10.000001: fib_table_lookup: table 254 oif 0 iif 1 proto 1 0.0.0.0/0 -> 203.0.113.80/0 tos 0 scope 0 flags 0 ==> dev eth0 gw 172.29.0.1/:: err 0
 python3-1 [001] ..s1. 10.000002: fib_table_lookup: table 254 oif 0 iif 3 proto 0 172.29.0.2/0 -> 203.0.113.80/0 tos 0 scope 0 flags 0 ==> dev eth0 gw 198.51.100.1/:: err 0
 python3-1 [001] ..s1. 10.000003: fib_table_lookup: table 254 oif 0 iif 2 proto 0 198.51.100.2/0 -> 203.0.113.80/0 tos 0 scope 0 flags 0 ==> dev lo gw 198.51.100.1/:: err 0
 python3-1 [001] ..s1. 10.000004: fib_table_lookup: table 254 oif 0 iif 2 proto 0 203.0.113.80/0 -> 172.29.0.2/0 tos 0 scope 0 flags 0 ==> dev ndbr0 gw 198.51.100.1/0:7761:6e30:: err 0
 python3-1 [001] ..s1. 10.000005: fib_table_lookup: table 254 oif 0 iif 2 proto 0 203.0.113.80/0 -> 172.29.0.2/0 tos 0 scope 0 flags 0 ==> dev eth0 gw 198.51.100.1/:: err 0
 ping-5 [000] b.s1. 10.000006: neigh_update: family 2 dev eth0 lladdr 000000000000 flags 00 nud_state incomplete type 01 dead 0 refcnt 3 primary_key4 198.51.100.1 primary_key6 :: confirmed 1 updated 2 used 3 new_lladdr 000000000000 new_state failed update_flags 00 pid 0
"""


def test_the_journal_ties_each_kernel_decision_to_its_hop():
    from netdoctor.capture.tracefs import TraceParser
    from netdoctor.diagnose.reason import journal as J

    import recorded

    hops = json.loads(json.dumps(recorded.document("lab-checks-snapshot.json")
                                 ["containers"][0]["path"]["hops"]))
    parser = TraceParser(seen_only=True)
    parser.feed(JOURNAL_TRACE)
    flow = E.Flow("icmp", "172.29.0.2", "203.0.113.80", cookie=1)
    said = [(e["hop"], e["said"]) for e in J.entries(parser.decisions, hops, flow)]
    assert said == [
        ("container", "table main: 0.0.0.0 -> 203.0.113.80 ==> dev eth0 via 172.29.0.1"),
        ("bridge", "table main iif ndbr0: 172.29.0.2 -> 203.0.113.80 ==> dev eth0 via "
                   "198.51.100.1"),
        # The reply into the bridge: no gateway, whatever the field held; the container's
        # own lookup for it (iif 2 there too) is not the host's.
        ("uplink", "table main iif eth0: 203.0.113.80 -> 172.29.0.2 ==> dev ndbr0"),
        ("uplink", "neighbour 198.51.100.1 on eth0: failed")]
    assert J.divergences(J.entries(parser.decisions, hops, flow), hops) == []
    assert {e.get("table") for e in J.entries(parser.decisions, hops, flow)} == {"main", None}


def test_a_refused_lookup_names_the_route_type_the_kernel_met():
    """The FIB's error says what refused: -22 a blackhole route, -113 an unreachable one,
    -13 a prohibit one, -101 no route at all."""
    from netdoctor.capture.tracefs import TraceParser
    from netdoctor.diagnose.reason import journal as J

    import recorded

    hops = json.loads(json.dumps(recorded.document("lab-checks-snapshot.json")
                                 ["containers"][0]["path"]["hops"]))
    line = (" python3-1 [001] ..s1. 10.000002: fib_table_lookup: table 254 oif 0 iif 3 proto 0 "
            "172.29.0.2/0 -> 203.0.113.80/0 tos 0 scope 0 flags 0 ==> dev - gw 0.0.0.0/:: "
            "err {}\n")
    flow = E.Flow("icmp", "172.29.0.2", "203.0.113.80", cookie=1)
    for err, what in (("-22", "blackhole route"), ("-113", "unreachable route"),
                      ("-13", "prohibit route"), ("-101", "no route")):
        parser = TraceParser(seen_only=True)
        parser.feed(line.format(err))
        said = [e["said"] for e in J.entries(parser.decisions, hops, flow)]
        assert said == [f"table main iif ndbr0: 172.29.0.2 -> 203.0.113.80 ==> {what} "
                        f"(error {err})"], said


def test_a_refused_reply_is_tied_to_the_hop_it_came_in_by():
    """A reply the host's lookup refused chose no device: its incoming interface (the
    uplink's index) ties it to the uplink, with the table it was refused in."""
    from netdoctor.capture.tracefs import TraceParser
    from netdoctor.diagnose.reason import journal as J

    import recorded

    hops = json.loads(json.dumps(recorded.document("lab-checks-snapshot.json")
                                 ["containers"][0]["path"]["hops"]))
    uplink = next(h for h in hops if h["role"] == "uplink")
    parser = TraceParser(seen_only=True)
    parser.feed(f" busybox-1 [001] ..s1. 10.000002: fib_table_lookup: table 207 oif 0 iif "
                f"{uplink['ifindex']} proto 0 203.0.113.80/0 -> 172.29.0.2/0 tos 0 scope 0 "
                f"flags 0 ==> dev - gw 0.0.0.0/:: err -113\n")
    flow = E.Flow("icmp", "172.29.0.2", "203.0.113.80", cookie=1)
    [e] = J.entries(parser.decisions, hops, flow)
    assert (e["hop"], e["direction"], e["table"], e["error"]) == ("uplink", "reply", "207", -113)


def test_the_filter_and_the_parser_speak_ipv6_and_vxlan():
    from frames import echo6, neighbour_solicitation, vxlan

    from netdoctor.capture.sockets import parse_frame, parse_tunnelled

    prog = bpf.probe_filter("icmp", cookie=0xDEADBEEF, ident=7)
    req = echo6("fd00:29::2", "2001:db8:80::80", 0xDEADBEEF)
    assert bpf.run(prog, req) and bpf.run(prog, echo6("2001:db8:80::80", "2001:db8:1::2",
                                                     0xDEADBEEF, reply=True))
    assert not bpf.run(prog, echo6("fd00:29::2", "2001:db8:80::80", 0x1234))
    ns = neighbour_solicitation("fe80::1", "2001:db8:1::1")
    assert bpf.run(prog, ns)  # IPv6's ARP is admitted, as ARP is
    f = parse_frame(req)
    assert (f.proto, f.icmp_type, f.cookie, f.src) == ("icmp", 8, 0xDEADBEEF, "fd00:29::2")
    f = parse_frame(ns)
    assert (f.proto, f.arp_op, f.dst) == ("arp", 1, "2001:db8:1::1")
    # On an underlay the probe travels inside VXLAN: matched past the outer headers.
    inner = echo("10.244.0.2", "10.244.1.2", 0xDEADBEEF)
    tunnelled = bpf.probe_filter("icmp", cookie=0xDEADBEEF, ident=7, tunnel_port=8472)
    assert bpf.run(tunnelled, vxlan(inner)) and not bpf.run(tunnelled, vxlan(inner, port=4789))
    assert not bpf.run(tunnelled, vxlan(echo("10.244.0.2", "10.244.1.2", 0x1)))
    f = parse_tunnelled(vxlan(inner), 0, False, 8472)
    assert (f.src, f.dst, f.outer) == ("10.244.0.2", "10.244.1.2",
                                       ("192.168.77.1", "192.168.77.2", 1))


def test_a_drop_on_a_namesake_device_off_the_path_is_not_the_probes():
    """A reply the host's bridge sent to the wrong port (a stale neighbour entry after a
    duplicate address) is freed in the other container, on *its* eth0. That eth0 shares its
    name with the path's own eth0 devices but came after a veth off the path: it is not a
    drop on the path, and its reason must not become the verdict's."""
    trace = "".join(
        f"          <idle>-0       [000] ..s1.  2342.62{i:04d}: {line}\n" for i, line in enumerate([
            "netif_receive_skb: dev=eth0 skbaddr=00000000aaaa0001 len=104",
            "net_dev_queue: dev=ndbr0 skbaddr=00000000aaaa0001 len=118",
            "net_dev_queue: dev=veth-web skbaddr=00000000aaaa0001 len=118",
            "netif_receive_skb: dev=eth0 skbaddr=00000000aaaa0001 len=104",
            "kfree_skb: skbaddr=00000000aaaa0001 rx_sk=0000000000000000 protocol=34525 "
            "location=ip6_forward+0x642/0xae0 reason: IP_INADDRERRORS"]))
    events = parse_trace(trace)
    path = {"eth0", "veth-test", "ndbr0"}
    (drop,) = E.probe_drops(events, (104, 118), path, frozenset({"veth-web"}))
    assert drop[0] == "IP_INADDRERRORS" and drop[2] not in path, drop
    # Without the bridge's other ports the last device is all it can say.
    assert E.probe_drops(events, (104, 118), path)[0][2] == "eth0"
    # A reply that crossed the uplink's veth pair from the far side (wan0, off the path but
    # no port of the bridge) is the path's own.
    crossed = parse_trace(trace.replace("dev=veth-web", "dev=wan0"))
    assert E.probe_drops(crossed, (104, 118), path, frozenset({"veth-web"}))[0][2] == "eth0"


def _stopped_at_the_uplink(src, dst, seen_src=None, asked=(), seen_dst=None):
    """The verdict for a request last seen leaving the uplink (from seen_src there), with
    these addresses asked for there and never answered."""
    flow = E.Flow("icmp", src, dst, cookie=1)
    s = sightings([1, 1, 1, 1], [0] * 4)
    s[3] = E.HopSighting("uplink", "eth0", "ns", 1, 0, arp_requests=len(asked),
                         addresses_seen={"request": f"{seen_src or src} -> {seen_dst or dst}"},
                         arp_unanswered=tuple(asked))
    return V.decide(V.Case(E.HopVerdict(False, "uplink", "request"), s, [], [], [], flow, ()))


def test_a_routed_source_the_upstream_asks_for_has_no_route_back():
    """A global container address leaves untranslated (a routed network, no NAT). Nothing
    comes back: with no more evidence that is all netdoctor can say, and says so; when the
    upstream asks for that address on the uplink and nobody answers, the upstream treats
    the prefix as on its link: no route back."""
    src, dst = "2001:db8:29::2", "2001:db8:80::80"
    v = _stopped_at_the_uplink(src, dst)
    assert v.cause == "upstream-no-reply" and "cannot see the upstream" in v.explanation
    v = _stopped_at_the_uplink(src, dst, asked=(src,))
    assert v.cause == "no-route-back" and "on its link" in v.explanation
    # Translated by NAT, the container's address never appears outside: not this cause.
    v = _stopped_at_the_uplink(src, dst, seen_src="2001:db8:1::2", asked=(src,))
    assert v.cause == "upstream-no-reply"


def test_a_port_unreachable_counts_as_reached_only_from_outside():
    """The destination's own "port unreachable", seen arriving on the uplink, means it was
    reached. The same error made by a REJECT on this host carries the destination's address
    too, but never crosses the uplink; a router's error comes from another address."""
    s = sightings([1, 1, 1, 1], [0] * 4)
    s[3] = E.HopSighting("uplink", "eth0", "ns", 1, 0,
                         icmp_errors=("ICMP type 3 from 203.0.113.80",))
    assert E.port_closed_at_destination(s, ["port unreachable"], "203.0.113.80")
    assert not E.port_closed_at_destination(s, ["port unreachable"], "203.0.113.8")
    assert not E.port_closed_at_destination(s, ["host unreachable"], "203.0.113.80")
    s[3] = E.HopSighting("uplink", "eth0", "ns", 0, 0)
    s[2] = E.HopSighting("bridge", "ndbr0", "ns", 1, 0,
                         icmp_errors=("ICMP type 3 from 203.0.113.80",))
    assert not E.port_closed_at_destination(s, ["port unreachable"], "203.0.113.80")


def test_a_private_source_to_a_private_destination_needs_no_nat():
    """flannel host-gw, Calico without encapsulation: a pod's own address leaves the uplink
    toward another pod network by design. Nothing came back: that is the far side's to
    explain (it was nat-missing, whose fix would have masqueraded a routed design)."""
    assert _stopped_at_the_uplink("10.244.0.2", "10.244.1.2").cause == "upstream-no-reply"
    # Toward the internet, the same private source untranslated is still nat-missing.
    assert _stopped_at_the_uplink("10.244.0.2", "203.0.113.80").cause == "nat-missing"


def test_an_ip6tables_rule_is_named_by_the_command_that_lists_it():
    """A FORWARD rule of ip6tables was named "iptables-nft -t filter FORWARD rule 1", which
    sends a user to the IPv4 table; the fix already said ip6tables."""
    chains = iptables_save.parse_iptables_save(
        "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
        "-A FORWARD -p tcp -m tcp --dport 80 -j DROP\nCOMMIT\n", "iptables-nft", "ip6")
    rule = next(c for c in chains if c.name == "FORWARD").rules[0]
    assert rule.where == "ip6tables-nft -t filter FORWARD rule 1"
    legacy = iptables_save.parse_iptables_save(
        "*filter\n:FORWARD ACCEPT [0:0]\n-A FORWARD -j DROP\nCOMMIT\n", "iptables-legacy")
    assert legacy[0].rules[0].where == "iptables-legacy -t filter FORWARD rule 1"


def test_a_drop_on_a_device_the_request_had_already_passed_is_not_this_hosts():
    """Two lab hosts on one kernel have namesake devices (cni0, flannel.1): the far host
    dropping the reply on its cni0 (no route back) showed in tracefs as a drop on the near
    path's cni0, and the verdict named the far fault from the near host's view. The
    captures saw the request pass the near cni0 and leave by the underlay: a drop there
    afterwards is another namespace's."""
    roles = ("container", "host-veth", "bridge", "tunnel", "underlay")
    names = ("eth0", "veth0", "cni0", "flannel.1", "ens4")
    s = [E.HopSighting(r, n, "ns", 1, 0) for r, n in zip(roles, names)]
    hv = E.HopVerdict(False, "underlay", "request")
    flow = E.Flow("icmp", "10.244.0.2", "10.244.1.2", cookie=1)
    v = V.decide(V.Case(hv, s, [], [("IP_INNOROUTES", "ip_error+0x94", "cni0")], [], flow, ()))
    assert (v.cause, v.kernel_drop_reason) == ("upstream-no-reply", None), v
    # The same drop where the request was last seen is this host's.
    hv = E.HopVerdict(False, "bridge", "request")
    s = [E.HopSighting(r, n, "ns", 1 if i <= 2 else 0, 0)
         for i, (r, n) in enumerate(zip(roles, names))]
    v = V.decide(V.Case(hv, s, [], [("IP_INNOROUTES", "ip_error+0x94", "cni0")], [], flow, ()))
    assert v.kernel_drop_reason == "IP_INNOROUTES", v


def test_a_flood_of_drop_events_does_not_hold_the_reader(monkeypatch):
    """Under load with FORWARD dropping a flood, the kernel records a kfree_skb per packet
    faster than they are parsed: reading until the pipe is empty never ended (the load
    benchmark's trace ran for minutes and grew to 2 GB). One look reads a bounded amount;
    the rest waits for the next."""
    from netdoctor.capture import tracefs

    line = (b"          <idle>-0       [001] ..s1.  1000.000001: kfree_skb: "
            b"skbaddr=000000001234abcd protocol=2048 location=nf_hook_slow+0x9a "
            b"reason: NETFILTER_DROP\n") * 400
    reads = []

    def endless(fd, n):
        reads.append(n)
        if len(reads) > 100_000:
            raise AssertionError("the reader never stopped")
        return line[:n]

    kt = tracefs.KernelTrace((84,))
    kt._pipe = 99
    monkeypatch.setattr(tracefs.os, "read", endless)
    kt.peek()
    first = len(reads)
    kt.peek()
    assert first * len(line) <= 8 << 20 and len(reads) == 2 * first


def test_a_lookup_the_kernel_repeats_is_parsed_once():
    """A flood from the probe's own container to its destination makes the same forwarding
    lookup 100,000 times a second (forwarded packets carry no protocol or port to filter
    on): parsing each, and wording each in the journal, took 5 s of a 7 s trace under the
    load benchmark. The journal says each decision once anyway."""
    from netdoctor.capture.tracefs import TraceParser

    line = ("  <idle>-0  [001] ..s1.  10.%06d: fib_table_lookup: table 254 oif 0 iif 5 proto 0 "
            "172.29.0.2/0 -> 203.0.113.80/0 tos 0 scope 0 flags 0 ==> dev eth0 "
            "gw 198.51.100.1/:: err 0\n")
    other = line.replace("iif 5", "iif 7")
    parser = TraceParser(seen_only=True)
    parser.feed("".join(line % i for i in range(1000)) + other % 1000 + line % 1001)
    assert [(d.get("iif"), d.ts) for d in parser.decisions] == [("5", 10.0), ("7", 10.001)]


def test_memory_a_delivered_probe_leaves_behind_is_not_the_probe_when_reused():
    """The far host of a two-host lab, without its neighbour for this one's VTEP, asks ARP
    for it again and again; its VXLAN device drops each broadcast (NO_TX_TARGET). The
    request's skb had been delivered (consumed: no event) and an ARP skb took its memory:
    that drop became the probe's, and the verdict blamed vxlan-fdb-missing on a host whose
    FDB was whole. A free ends an skb whatever its reason, and an ARP skb is never the
    probe's."""
    lines = [
        "net_dev_queue: dev=eth0 skbaddr=00000000aaaa0001 len=98",
        "net_dev_queue: dev=flannel.1 skbaddr=00000000aaaa0001 len=98",
        "net_dev_queue: dev=ens4 skbaddr=00000000aaaa0001 len=148",
        "netif_receive_skb: dev=eth0 skbaddr=00000000aaaa0001 len=84",
    ]
    arp_drop = ("kfree_skb: skbaddr=00000000aaaa0001 rx_sk=0000000000000000 protocol=2054 "
                "location=vxlan_xmit+0x5c4/0xb90 reason: NO_TX_TARGET")
    trace = "".join(f"          <idle>-0       [000] ..s1.  2342.62{i:04d}: {line}\n"
                    for i, line in enumerate(lines + [arp_drop]))
    path = {"eth0", "veth0", "cni0", "flannel.1", "ens4"}
    assert E.probe_drops(parse_trace(trace, seen_only=True), (84, 98, 148), path) == []
    # Recorded so (the far pod's eth0 consumed the request; an IPv6 packet on the far
    # flannel.1 took its memory): the consume ends the probe's skb.
    consumed = ("consume_skb: skbaddr=00000000aaaa0001 location=icmp_rcv+0x1a5/0x3c0",
                "kfree_skb: skbaddr=00000000aaaa0001 rx_sk=0000000000000000 protocol=34525 "
                "location=vxlan_xmit+0xd25/0x15a0 reason: NO_TX_TARGET")
    trace = "".join(f"          <idle>-0       [000] ..s1.  2342.62{i:04d}: {line}\n"
                    for i, line in enumerate(lines + list(consumed)))
    for events in (parse_trace(trace), parse_trace(trace, seen_only=True)):
        assert E.probe_drops(events, (84, 98, 148), path) == []
    # Freed for no named reason, then reused by another IP packet that is dropped: not ours.
    freed = "kfree_skb: skbaddr=00000000aaaa0001 protocol=2048 location=x+0x1/0x2 " \
            "reason: NOT_SPECIFIED"
    other = "kfree_skb: skbaddr=00000000aaaa0001 protocol=2048 location=nft_do_chain+0x1/0x2 " \
            "reason: NETFILTER_DROP"
    trace = "".join(f"          <idle>-0       [000] ..s1.  2342.62{i:04d}: {line}\n"
                    for i, line in enumerate(lines + [freed, other]))
    assert E.probe_drops(parse_trace(trace, seen_only=True), (84, 98, 148), path) == []
    # The probe's own drop still counts.
    trace = "".join(f"          <idle>-0       [000] ..s1.  2342.62{i:04d}: {line}\n"
                    for i, line in enumerate(lines + [other]))
    assert [d[0] for d in E.probe_drops(parse_trace(trace), (84, 98, 148), path)] == [
        "NETFILTER_DROP"]


def test_a_finding_that_names_where_it_stops_blocks_only_there():
    """arp-disabled on the uplink stops the request at the uplink; beside it, a request that
    never left the container has another cause (here the container's own link)."""
    uplink_noarp = finding("arp-disabled", stops_at=["uplink"])
    hv = E.HopVerdict(False, None, "request")
    case = V.Case(hv, [], [uplink_noarp, finding("neighbour-failed")], [], [], FLOW, ())
    assert [f.id for f in case.blocking_here] == ["neighbour-failed"]
    hv = E.HopVerdict(False, "uplink", "request")
    case = V.Case(hv, sightings([1, 1, 1, 1], [0] * 4), [uplink_noarp], [], [], FLOW, ())
    assert [f.id for f in case.blocking_here] == ["arp-disabled"]
    assert V.decide(case).cause == "arp-disabled"


def test_a_host_that_routes_the_request_back_out_of_its_bridge_asks_there():
    """The host routes the destination via 172.29.0.99 back out of ndbr0, where nobody holds
    it: the request is last seen on the bridge, the last hop of the path, whose own ARP
    question for that gateway went unanswered. It was `unknown`."""
    ours = arp_frame(1, "172.29.0.1", "172.29.0.99")
    s = [E.sight("container", "eth0", "ns", [], FLOW),
         E.sight("host-veth", "veth-test", "ns", [], FLOW),
         E.sight("bridge", "ndbr0", "ns", [ours], FLOW, own_addresses=("172.29.0.1",))]
    s = [replace(x, request_seen=2) for x in s]
    hv = E.HopVerdict(False, "bridge", "request")
    next_hops = {"container": "172.29.0.1", "host-veth": "203.0.113.80",
                 "bridge": "172.29.0.99"}
    v = V.decide(V.Case(hv, s, [], [], [], FLOW, (), next_hops))
    assert v.cause == "neighbour-failed" and "ARP asked for 172.29.0.99" in v.explanation, v
    # Another address asked for there is not the next hop's: no such verdict.
    v = V.decide(V.Case(hv, s, [], [], [], FLOW, (), dict(next_hops, bridge="172.29.0.7")))
    assert v.cause != "neighbour-failed", v



def test_a_request_sent_elsewhere_by_the_hosts_dnat_says_where_it_went():
    """A DNAT rule on the host rewrote the destination of the container's own request
    (203.0.113.80 -> 10.9.9.9): nothing came back from beyond the uplink, and the
    explanation says where the request went, not only that it was lost."""
    v = _stopped_at_the_uplink("172.29.0.2", "203.0.113.80", seen_src="198.51.100.2",
                               seen_dst="10.9.9.9")
    assert v.cause == "upstream-no-reply"
    assert "destination was translated from 203.0.113.80 to 10.9.9.9" in v.explanation, \
        v.explanation
    v = _stopped_at_the_uplink("172.29.0.2", "203.0.113.80", seen_src="198.51.100.2")
    assert "translated from" not in v.explanation


def test_a_neighbour_the_answered_probe_went_through_is_no_finding_after_it():
    """The uplink gateway's entry was INCOMPLETE when the facts were read (a link that had
    been down); the probe resolved it and was answered. A REACHABLE verdict beside "nothing
    answers ARP for it" contradicts itself: the probe is the later, and better, evidence.
    An entry for an address the probe did not go through still stands."""
    stale = Finding(id="neighbour-failed", severity="error", scope="host", subject="lab:test",
                    message="the uplink gateway 198.51.100.1 on eth0 is INCOMPLETE",
                    evidence={}, fix="", vars={"next_hop": "198.51.100.1"})
    other = Finding(id="neighbour-failed", severity="error", scope="host", subject="lab:test",
                    message="its gateway 172.29.0.1 on eth0 is FAILED", evidence={},
                    fix="", vars={"next_hop": "172.29.0.1"})
    rule = finding("forward-dropped")
    hops = {"container": None, "uplink": "198.51.100.1"}
    assert V.still_standing([stale, other, rule], hops, reachable=True) == [other, rule]
    assert V.still_standing([stale, other, rule], hops, reachable=False) == [stale, other, rule]


def test_an_answer_from_where_the_hosts_dnat_sent_the_request_is_an_answer():
    """A Service-style DNAT of 10.96.0.10:80 to a container on the same bridge: the SYN was
    seen leaving the bridge for 172.29.0.3, and its SYN-ACK came back without crossing the
    uplink. That is the service answering, not the host answering in its place (a REJECT's
    RST, which is seen with the destination untranslated): the verdict was NOT REACHABLE,
    cause unknown, for a connection that was made."""
    s = sightings([1, 1, 1, 0], [1, 1, 0, 0])
    s[0] = replace(s[0], addresses_seen={"request": "172.29.0.2 -> 10.96.0.10",
                                         "reply": "10.96.0.10 -> 172.29.0.2"})
    s[2] = replace(s[2], addresses_seen={"request": "172.29.0.2 -> 172.29.0.3"})
    host = ("172.29.0.1", "198.51.100.2")
    assert E.answered_elsewhere(s, "10.96.0.10", host)
    assert E.localize(s, True, elsewhere=True).reachable
    # The same answer with the request seen untranslated is the host's (a REJECT).
    s[2] = replace(s[2], addresses_seen={"request": "172.29.0.2 -> 10.96.0.10"})
    assert not E.answered_elsewhere(s, "10.96.0.10", host)
    assert not E.localize(s, True).reachable
    # Translated to one of the host's own addresses (REDIRECT): the host answered.
    s[2] = replace(s[2], addresses_seen={"request": "172.29.0.2 -> 172.29.0.1"})
    assert not E.answered_elsewhere(s, "10.96.0.10", host)


def test_a_question_flooded_onto_the_containers_veth_is_not_the_containers_to_answer():
    """The host asked for 172.29.0.3 (another container) by ARP: the bridge floods the
    question to every port, the container's veth among them, and the answer goes from
    veth-web to the bridge, past this link. The container and host-veth hops said "ARP for
    172.29.0.3: no reply". On a bridge port's link only the container's own questions count
    (on a routed veth the host's do too: they are answered on that link)."""
    hops = [{"role": "container", "name": "eth0", "addresses": ["172.29.0.2/24"]},
            {"role": "host-veth", "name": "veth-test", "master": "ndbr0", "addresses": []},
            {"role": "bridge", "name": "ndbr0", "kind": "bridge",
             "addresses": ["172.29.0.1/24"]}]
    assert E.asking_addresses(hops, 0) == ("172.29.0.2",)
    assert E.asking_addresses(hops, 1) == ("172.29.0.2",)
    assert E.asking_addresses(hops, 2) == ("172.29.0.1",)
    routed = [dict(hops[0]), dict(hops[1], master=None)]
    assert E.asking_addresses(routed, 0) is None and E.asking_addresses(routed, 1) is None
    flooded = [arp_frame(1, "172.29.0.1", "172.29.0.3")]
    s = E.sight("container", "eth0", "ns", flooded, FLOW,
                own_addresses=E.asking_addresses(hops, 0))
    assert s.arp_unanswered == ()


def test_a_ttl_that_ran_out_is_said_so_and_an_answer_contradicts_a_foretold_one():
    """The host answered 'time exceeded' and nothing netdoctor read lowers the TTL: the
    verdict stays unknown, and says the TTL ran out where it did (a routing loop, or a rule).
    A finding that foretold it at a router netdoctor cannot see is confirmed by that
    router's answer, and an answered probe contradicts it."""
    s = sightings([1, 1, 1, 0], [0, 0, 0, 0])
    s = [E.HopSighting(x.role, x.name, "ns", x.request_seen, 0,
                       icmp_errors=("ICMP type 11 from 172.29.0.1",) if x.role != "uplink"
                       else ()) for x in s]
    v = V.decide(V.Case(E.HopVerdict(False, "bridge", "request"), s, [],
                        [("IP_INHDR", "ip_forward+0x2c0/0x780", "ndbr0")], [], FLOW))
    assert v.cause == "unknown"
    assert "172.29.0.1 answered 'time exceeded': the packet's TTL" in v.explanation
    # ICMPv6's type 3 is its time exceeded; IPv4's type 3 is "destination unreachable".
    assert V._time_exceeded(["ICMP type 3 from fd00:29::1", "ICMP type 3 from 10.0.0.1",
                             "ICMP type 11 from 10.0.0.2"]) == ["fd00:29::1", "10.0.0.2"]
    foretold = Finding(id="ttl-too-low", severity="warning", scope="container",
                       subject="lab:test", message="", fix="x",
                       evidence={"expires_at": "198.51.100.1"})
    other = finding("forward-dropped")
    (confirmed, same) = V.confirmed_by_answer([foretold, other],
                                              ["time exceeded from 198.51.100.1"])
    assert confirmed.severity == "error" and same is other
    assert V.confirmed_by_answer([foretold], ["time exceeded from 172.29.0.1"]) == [foretold]
    assert V.still_standing([foretold, other], {}, reachable=True) == [other]


def test_a_request_that_comes_back_round_is_a_routing_loop():
    """The bridge saw the request arrive again and again, its TTL two lower each time: it
    goes round a loop. Without a finding for the route that sends it back, the cause is the
    loop; with one (even a warning: the loop confirms it), that finding. One TTL per hop,
    however many copies, is no loop."""
    from netdoctor.capture.sockets import Frame

    flow = E.Flow("icmp", "172.29.0.2", "203.0.113.80", cookie=7)

    def request(ttl, outgoing=False):
        return Frame(0, outgoing, b"", ethertype=0x800, src="172.29.0.2",
                     dst="203.0.113.80", proto="icmp", icmp_type=8, cookie=7, ttl=ttl)

    bridge = E.sight("bridge", "ndbr0", "ndlab-host",
                     [request(64), request(63, True), request(62), request(61, True),
                      request(60)], flow)
    assert bridge.request_ttls == (64, 62, 60) and bridge.came_back
    assert not E.sight("host-veth", "veth-test", "ndlab-host", [request(64)] * 3, flow).came_back
    s = sightings([1, 1, 1, 0], [0, 0, 0, 0])
    s[2] = bridge
    hv = E.HopVerdict(False, "bridge", "request")
    v = V.decide(V.Case(hv, s, [], [], [], flow))
    assert (v.cause, v.stopped_at) == ("routing-loop", "bridge")
    assert "came back to ndbr0 (ndlab-host) 2 times, its TTL falling from 64 to 60" \
        in v.explanation
    back = Finding(id="route-back-out", severity="warning", scope="host", subject="lab:test",
                   message="", fix="ip route del unicast 203.0.113.80/32",
                   evidence={"stops_at": ["bridge"]})
    assert V.decide(V.Case(hv, s, [back], [], [], flow)).cause == "route-back-out"
    # No loop seen: the host still sent it back out where it stopped.
    plain = sightings([1, 1, 1, 0], [0, 0, 0, 0])
    assert V.decide(V.Case(hv, plain, [back], [], [], flow)).cause == "route-back-out"
    assert V.decide(V.Case(E.HopVerdict(False, "uplink", "request"), sightings(
        [1, 1, 1, 1], [0, 0, 0, 0]), [back], [], [], flow)).cause != "route-back-out"


def test_a_translated_destination_nothing_answered_for_during_the_probe_is_an_error():
    """The host DNATs the destination to an address netdoctor knew nothing of (a warning,
    verify only); during the probe the uplink asked ARP for it and nothing answered: that
    confirms it, and deleting the rule becomes the fix."""
    warned = Finding(id="destination-redirected", severity="warning", scope="host",
                     subject="lab:test", message="sent to 198.51.100.77 instead", fix="",
                     verify="ip netns exec h iptables -t nat -S PREROUTING",
                     evidence={"address": "198.51.100.77"},
                     vars={"deletion": "ip netns exec h iptables -t nat -D PREROUTING 1"})
    s = sightings([1, 1, 1, 0], [0, 0, 0, 0])
    s[3] = E.HopSighting("uplink", "eth0", "ns", 0, 0, arp_requests=3,
                         arp_unanswered=("198.51.100.77",))
    (f,) = V.confirmed_by_answer([warned], [], s)
    assert (f.severity, f.fix, f.verify) == \
        ("error", "ip netns exec h iptables -t nat -D PREROUTING 1", "")
    assert V.confirmed_by_answer([warned], [], sightings([1, 1, 1, 0], [0, 0, 0, 0])) == [warned]


def test_a_namesake_drop_off_the_path_does_not_end_the_wait():
    """Trace stops waiting once the kernel has dropped every probe on the path. After the
    bridge was down and up, its forwarding table was empty and the replies were flooded:
    the copy to lab:web was dropped on web's own eth0, a namesake of the path's eth0. That
    counted as the probe's drop, the wait ended before the real reply was read, and the
    verdict said the reply stopped at the container (a flaky live test). The bridge's other
    ports tell the namesake apart here too."""
    trace = "".join(
        f"          <idle>-0       [000] ..s1.  2342.62{i:04d}: {line}\n" for i, line in enumerate([
            "net_dev_queue: dev=ndbr0 skbaddr=00000000aaaa0001 len=98",
            "net_dev_queue: dev=veth-web skbaddr=00000000aaaa0001 len=98",
            "netif_receive_skb: dev=eth0 skbaddr=00000000aaaa0001 len=84",
            "kfree_skb: skbaddr=00000000aaaa0001 rx_sk=0000000000000000 protocol=2048 "
            "location=ip_rcv_core+0x22c reason: OTHERHOST"]))
    events = parse_trace(trace)
    path = {"eth0", "veth-test", "ndbr0"}
    assert not E.all_probes_dropped(events, (84, 98), path, frozenset({"veth-web"}), 1)
    # The same drop after the path's own veth is the probe's.
    ours = parse_trace(trace.replace("dev=veth-web", "dev=veth-test"))
    assert E.all_probes_dropped(ours, (84, 98), path, frozenset({"veth-web"}), 1)
    assert not E.all_probes_dropped(ours, (84, 98), path, frozenset({"veth-web"}), 0)


def test_a_rule_netdoctor_could_not_evaluate_is_confirmed_by_its_counter():
    """forward-dropped could not evaluate a rule's matches (physdev, mac, a set): a warning,
    verify only. Its packet counter moved during the probe: it did drop the request, and
    deleting it becomes the fix (for the requests; the replies' warning stays one)."""
    def warned(direction):
        return Finding(id="forward-dropped", severity="warning", scope="host",
                       subject="lab:test", message=f"{direction}s may be dropped", fix="",
                       verify="ip netns exec h iptables-save -c | grep -n -- 'FORWARD'",
                       evidence={"direction": direction, "where": "iptables-nft -t filter "
                                 "FORWARD rule 1", "rule": "-A FORWARD -m physdev "
                                 "--physdev-in veth-test -j DROP"},
                       vars={"deletion": "ip netns exec h iptables -t filter -D FORWARD 1"})
    hit = {"where": "iptables-nft -t filter FORWARD rule 1",
           "text": "-A FORWARD -m physdev --physdev-in veth-test -j DROP", "delta": 2,
           "policy": False}
    request, reply = warned("request"), warned("reply")
    (f, same) = V.confirmed_by_counters([request, reply], [hit])
    assert (f.severity, f.fix, f.verify) == \
        ("error", "ip netns exec h iptables -t filter -D FORWARD 1", "")
    assert "counter" in f.message and same == reply
    assert V.confirmed_by_counters([request, reply], []) == [request, reply]


def test_the_neighbour_solicitation_and_the_advertisements_that_answer_it():
    """The one question netdoctor asks for an IPv6 next hop a static entry pins: a Neighbor
    Solicitation to the target's solicited-node group carrying our MAC; the answer's target
    link-layer address is the MAC the neighbour has (a real advertisement, recorded from
    the lab's upstream router)."""
    from netdoctor.capture import probe as P

    message, group = P.neighbour_solicitation("02:00:00:00:00:01", "2001:db8:1::1")
    assert group == "ff02::1:ff00:1"
    assert message[0] == 135 and message[8:24] == bytes.fromhex(
        "20010db8000100000000000000000001") and message[24:] == bytes.fromhex("0101020000000001")
    real = bytes.fromhex("880088616000000020010db800010000000000000000000102017e0e7e0142bb")
    assert P.ndp_answers([real], "2001:db8:1::1") == ["7e:0e:7e:01:42:bb"]
    assert P.ndp_answers([real, real], "2001:db8:1::1") == ["7e:0e:7e:01:42:bb"]
    assert P.ndp_answers([real], "2001:db8:1::9") == [] and P.ndp_answers([message],
                                                                           "2001:db8:1::1") == []
    assert P.ndp_answers([real[:24] + b"\x02\x00"], "2001:db8:1::1") == []  # a 0-length option


def test_every_question_to_a_neighbour_is_waited_for_at_once():
    """Many namespaces' questions (a fleet of containers whose gateway entries failed) are
    waited for together: the answered get theirs, the silent nothing, and every socket is
    closed."""
    import socket

    from netdoctor.capture import probe as P

    def parse(messages, target):
        return sorted({m.decode() for m in messages if m.startswith(target.encode())})

    pairs = [socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM) for _ in range(40)]
    for i, (ours, theirs) in enumerate(pairs):
        ours.setblocking(False)
        if i % 2 == 0:
            theirs.send(f"q{i} from mac{i}".encode())
            theirs.send(b"noise")
    got = P.answers_to([(ours, parse, f"q{i}") for i, (ours, _) in enumerate(pairs)], 0.3)
    assert got == [[f"q{i} from mac{i}"] if i % 2 == 0 else [] for i in range(40)]
    assert all(ours.fileno() == -1 for ours, _ in pairs)
    for _, theirs in pairs:
        theirs.close()


def test_a_probe_the_container_answered_itself_is_not_the_destinations_answer():
    """The container holds the destination's address on lo: the probe is answered inside
    it. The verdict said REACHABLE; it says the container answered itself (exit 1)."""
    local = Finding(id="destination-is-local", severity="error", scope="container",
                    subject="lab:test", message="lab:test holds 203.0.113.80 itself, on lo",
                    fix="ip netns exec ndlab-test ip addr del 203.0.113.80/32 dev lo",
                    evidence={})
    v = V.decide(V.Case(E.HopVerdict(True, None, None), sightings([1, 1, 1, 1], [1, 1, 1, 1]),
                        [local], flow=FLOW))
    assert (v.reachable, v.cause) == (True, "destination-is-local") and "inside" in v.explanation
    v = V.decide(V.Case(E.HopVerdict(True, None, None), sightings([1, 1, 1, 1], [1, 1, 1, 1]),
                        [], flow=FLOW))
    assert v.cause is None


def test_a_tracefs_instance_busy_for_a_moment_is_removed_all_the_same(monkeypatch, tmp_path):
    """Interrupted while another thread starts the rule counters' programs, trace removed
    its instance while a forked child still held the trace pipe: rmdir said EBUSY, and the
    instance was left behind (the random-interrupt test, about one run in a hundred). It is
    asked again until the child has gone on to exec."""
    import errno
    import os

    from netdoctor.capture import runs

    instance = tmp_path / "netdoctor-1-2-3"
    instance.mkdir()
    real, calls = os.rmdir, []

    def busy_twice(path):
        calls.append(path)
        if len(calls) <= 2:
            raise OSError(errno.EBUSY, "Device or resource busy")
        real(path)

    def no_switches(path, *args, **kwargs):  # (a real instance's tracing_on and events/)
        raise OSError(errno.ENOENT, "not a tracefs instance")

    monkeypatch.setattr(runs.os, "rmdir", busy_twice)
    monkeypatch.setattr(runs, "open", no_switches, raising=False)
    assert runs.remove_instance(str(instance)) and len(calls) == 3
    assert not instance.exists()


def test_a_rule_without_counters_is_named_by_the_finding_that_evaluated_it():
    """An nft rule with no counter statement leaves no counter to move, and without
    --allow-trace-rules nftables traces nothing: the verdict names the rule the finding's
    evaluation found dropping this direction, where the kernel said netfilter dropped it."""
    hv = E.HopVerdict(False, "uplink", "reply")
    rule = "nft table inet x chain pre handle 2: iifname eth0 th sport 53 drop"
    f = Finding("forward-dropped", "error", "host", "lab:test", "m",
                {"direction": "reply", "verdict": "drop"}, "fix", vars={"rule": rule})
    s = sightings([1, 1, 1, 1], [0, 0, 0, 1])
    v = V.decide(V.Case(hv, s, [f], [("NETFILTER_DROP", "nft_do_chain", "eth0")], [], FLOW, ()))
    assert v.cause == "forward-dropped" and v.rule == rule
    # The request's finding does not name what dropped the reply.
    other = replace(f, evidence={"direction": "request", "verdict": "drop"})
    v = V.decide(V.Case(hv, s, [other], [("NETFILTER_DROP", "nft_do_chain", "eth0")], [],
                        FLOW, ()))
    assert v.rule is None
    # Nor is a rule named when the kernel did not say netfilter dropped it.
    v = V.decide(V.Case(hv, s, [f], [], [], FLOW, ()))
    assert v.rule is None


def test_who_refused_a_tcp_probe_is_read_from_the_captures():
    """The socket says "refused" for a RST and for an ICMP port unreachable alike: a RST is
    seen as an answer on the container's interface; an ICMP error names its sender, the
    destination itself or the host's bridge (a REJECT on the way)."""
    s = sightings([1, 1, 1, 1], [1, 1, 1, 1])
    assert E.refused_by(s) == "rst"
    s = sightings([1, 1, 1, 0], [0] * 4)
    s[0] = replace(s[0], icmp_errors=["ICMP type 3 from 172.29.0.1"])
    assert E.refused_by(s) == "172.29.0.1"
    assert E.refused_by(sightings([1, 1, 1, 1], [0] * 4)) is None
    tcp = E.Flow("tcp", "172.29.0.2", "203.0.113.80", cookie=1, dport=80)
    v = V.decide(V.Case(E.HopVerdict(True, None, None), [], [], flow=tcp, port_closed=True))
    assert v.reachable and "refused" in v.explanation, v


def test_the_title_names_the_container_a_destination_is():
    from types import SimpleNamespace

    from netdoctor.diagnose.report.text import trace_title

    def title(**d):
        return trace_title(SimpleNamespace(target={"kind": "docker", "name": "c1"},
                                           destination=dict(resolved=True, **d),
                                           probe={"kind": "icmp", "port": None}))

    assert title(query="172.30.0.3", address="172.30.0.3", container="docker:c3") == \
        "trace docker:c1 -> 172.30.0.3 (docker:c3), ICMP echo"
    assert title(query="c3", address="172.30.0.3", container="docker:c3") == \
        "trace docker:c1 -> c3 (docker:c3, 172.30.0.3), ICMP echo"
    assert title(query="www.baidu.com", address="203.0.113.80") == \
        "trace docker:c1 -> www.baidu.com (203.0.113.80), ICMP echo"


def test_a_far_hosts_reply_waiting_for_a_next_hop_nobody_answers():
    """Two hosts routed (host-gw): the far host routes the reply to the source's pods via an
    address nobody holds. The reply is last seen on the far bridge and the far uplink asked
    ARP for that address in vain: the verdict said unknown."""
    roles = ("container", "host-veth", "bridge", "uplink", "far-uplink", "far-bridge",
             "far-veth", "destination")
    s = [E.HopSighting(r, f"if{i}", "ns", 1, 1 if r in ("far-bridge", "far-veth",
                                                         "destination") else 0,
                       arp_unanswered=["192.168.77.99"] if r == "far-uplink" else [])
         for i, r in enumerate(roles)]
    hv = E.HopVerdict(False, "far-bridge", "reply")
    flow = E.Flow("icmp", "10.244.0.2", "10.244.1.2", cookie=1)
    v = V.decide(V.Case(hv, s, [], flow=flow))
    assert v.cause == "neighbour-failed" and "192.168.77.99" in v.explanation, v

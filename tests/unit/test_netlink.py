"""The rtnetlink answers netdoctor reads: an acknowledgement is not an answer, and a message
meant for another request (another sequence number or socket) is not taken for ours."""

import struct

import pytest

from netdoctor.diagnose.host import netlink
from netdoctor.diagnose.host import rtnetlink
from netdoctor.diagnose.errors import ParseError

HEADER = struct.Struct("=IHHII")


def message(kind, body, seq=1, portid=4242):
    return HEADER.pack(HEADER.size + len(body), kind, 0, seq, portid) + body


def error(code, seq=1, portid=4242):
    # An NLMSG_ERROR carries the negative errno (0: an acknowledgement) and the request's header.
    return message(2, struct.pack("=i", -code) + HEADER.pack(16, 26, 1, seq, 0), seq, portid)


def new_route(oif, seq=1, portid=4242):
    body = struct.pack("=BBBBBBBBI", 2, 32, 0, 0, 254, 0, 0, 1, 0)
    body += struct.pack("=HH", 8, 4) + struct.pack("=I", oif)  # RTA_OIF
    return message(24, body, seq, portid)


def test_a_refusal_is_the_kernels_reason():
    answer = rtnetlink.parse_route_answer(error(101), "203.0.113.80", "q")
    assert answer.dev is None and answer.error == "Network is unreachable"


def test_an_acknowledgement_is_not_a_missing_route():
    # Error code 0 is "done, nothing to say": reading it as "no route" gave a false
    # host-no-route. It is no answer to a route question at all.
    with pytest.raises(ParseError):
        rtnetlink.parse_route_answer(error(0), "203.0.113.80", "q")


def test_only_the_answer_to_our_request_is_read():
    stale = new_route(7, seq=1, portid=999)  # another socket's
    earlier = new_route(8, seq=0)  # an earlier question's
    ours = new_route(3, seq=1)
    data = stale + earlier + ours
    picked = netlink.answer_to(data, seq=1, portid=4242)
    assert picked == ours
    assert netlink.answer_to(stale + earlier, seq=1, portid=4242) is None
    route = rtnetlink.parse_route_answer(picked, "203.0.113.80", "q", lambda i: f"if{i}")
    assert route.dev == "if3"

"""BIRD's control-socket replies: the state of each BGP session (BIRD 2, and Calico's 1.6)."""

import pytest

from netdoctor.diagnose.errors import ParseError
from netdoctor.diagnose.parse.bird_ctl import parse_protocols, reply_complete

# Recorded from bird 2.0.12 in the two-host lab: its peer refuses the connection.
BIRD2 = (
    "2002-Name       Proto      Table      State  Since         Info\n"
    "1002-device1    Device     ---        up     10:40:29.778  \n"
    "1006-\n"
    "1002-kernel1    Kernel     master4    up     10:40:29.778  \n"
    "1006-  Channel ipv4\n"
    "     State:          UP\n"
    "     Routes:         0 imported, 1 exported, 0 preferred\n"
    " \n"
    "1002-Mesh_192_168_77_2 BGP        ---        start  10:40:38.164  Active        "
    "Socket: Connection refused\n"
    "1006-  BGP state:          Active\n"
    "     Neighbor address: 192.168.77.2\n"
    "     Neighbor AS:      64512\n"
    "     Connect delay:    0.503/1\n"
    "     Last error:       Socket: Connection refused\n"
    "   Channel ipv4\n"
    "     State:          DOWN\n"
    " \n"
    "0000 \n")
# As Calico's BIRD 1.6 writes it: a session up, one switched off.
BIRD16 = (
    "2002-name     proto    table    state  since       info\n"
    "1002-Mesh_10_0_0_2 BGP      master   up     2026-11-20  Established   \n"
    "1006-  Description:    Connection to BGP peer\n"
    "  Preference:     100\n"
    "  BGP state:          Established\n"
    "    Neighbor address: 10.0.0.2\n"
    "    Neighbor AS:      64512\n"
    "1002-Mesh_10_0_0_3 BGP      master   down   2026-11-20  \n"
    "1006-  Description:    Connection to BGP peer\n"
    "  BGP state:          Down\n"
    "    Neighbor address: 10.0.0.3\n"
    "\n"
    "0000 \n")


def test_bird2_sessions():
    protocols = parse_protocols(BIRD2)
    assert [p["name"] for p in protocols] == ["device1", "kernel1", "Mesh_192_168_77_2"]
    bgp = protocols[-1]
    assert bgp == {"name": "Mesh_192_168_77_2", "proto": "BGP", "state": "start",
                   "bgp_state": "Active", "neighbor": "192.168.77.2",
                   "last_error": "Socket: Connection refused"}


def test_calicos_bird16_sessions():
    a, b = parse_protocols(BIRD16)
    assert (a["bgp_state"], a["neighbor"], a["state"]) == ("Established", "10.0.0.2", "up")
    assert (b["bgp_state"], b["neighbor"], b["last_error"]) == ("Down", "10.0.0.3", None)


def test_a_reply_is_complete_at_its_last_line():
    assert reply_complete("0001 BIRD 2.0.12 ready.\n")
    assert not reply_complete(BIRD2[:200])
    assert not reply_complete("0000 ")  # the line has not ended yet
    assert reply_complete(BIRD2)


@pytest.mark.parametrize("text", ["9001 syntax error, unexpected CF_SYM_UNDEFINED\n",
                                  "8003 No protocols match\n", "0000 \n"])
def test_errors_and_replies_without_the_table(text):
    with pytest.raises(ParseError):
        parse_protocols(text)

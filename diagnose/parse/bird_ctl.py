"""The one parser of BIRD's control-socket replies (what `birdcl` prints, with the codes it
strips): the state of each BGP session, from `show protocols all`.

A reply is a run of lines; each starts with a four-digit code and a dash (more follows) or
a space (the reply's last line), or with a space alone (more of the code before):

    0001 BIRD 2.0.12 ready.
    2002-Name       Proto      Table      State  Since         Info
    1002-Mesh_192_168_77_2 BGP        ---        start  10:40:38.164  Active  Socket: ...
    1006-  BGP state:          Active
         Neighbor address: 192.168.77.2
         Last error:       Socket: Connection refused
    0000

Codes 8xxx and 9xxx are errors (a run-time one, a command BIRD did not parse). BIRD 1.6
(Calico's) and BIRD 2 write the same keys.
"""

from __future__ import annotations

import re

from ..errors import ParseError

_LINE = re.compile(r"^(\d{4})([ -])(.*)$")


def reply_complete(text: str) -> bool:
    """Whether text holds a whole reply: a line whose code is followed by a space."""
    return any(_LINE.match(line) and line[4] == " " for line in text.split("\n")[:-1]
               if len(line) >= 5)


def _lines(text: str) -> list:
    """(code, text) of each line of the last reply in text, continuations given the code of
    the line they continue."""
    out, code = [], None
    for line in text.split("\n"):
        m = _LINE.match(line)
        if m:
            code = m.group(1)
            out.append((code, m.group(3)))
        elif line.startswith(" ") and code is not None:
            out.append((code, line[1:]))
    return out


def parse_protocols(text: str) -> list:
    """[{name, proto, state, bgp_state, neighbor, last_error}] of a `show protocols all`
    reply: every protocol, the BGP keys where it has them (None otherwise). ParseError for
    an error reply or one without the table."""
    lines = _lines(text)
    errors = [t for c, t in lines if c[0] in "89"]
    if errors:
        raise ParseError(f"BIRD: {errors[0].strip()}")
    if not any(c == "2002" for c, _ in lines):
        raise ParseError("BIRD: the reply to `show protocols all` has no protocol table")
    out: list = []
    for code, t in lines:
        if code == "1002":
            words = t.split()
            if len(words) < 4:
                raise ParseError(f"BIRD: a protocol line with {len(words)} columns: {t!r}")
            out.append({"name": words[0], "proto": words[1], "state": words[3],
                        "bgp_state": None, "neighbor": None, "last_error": None})
        elif code == "1006" and out and ":" in t:
            key, _, value = t.strip().partition(":")
            field = {"BGP state": "bgp_state", "Neighbor address": "neighbor",
                     "Last error": "last_error"}.get(key.strip())
            if field is not None and out[-1][field] is None:
                out[-1][field] = value.strip() or None
    return out

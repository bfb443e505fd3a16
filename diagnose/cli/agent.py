"""netdoctor agent (hidden): the far host's half of `trace --peer`."""

from __future__ import annotations

import typer


def agent() -> None:
    """Answer a near host's trace over stdin/stdout (JSON lines): started by `trace --peer`
    through ssh, not by hand. Reads and captures in this host's namespace; sends nothing."""
    from ..host import privileges
    from ..pipeline.agent import serve

    privileges.require(privileges.CAP_SYS_ADMIN, privileges.CAP_NET_RAW,
                       privileges.CAP_NET_ADMIN, why="the agent enters namespaces and captures")
    raise typer.Exit(serve())

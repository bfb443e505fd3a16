"""The tracefs instance made ahead (while trace reads the path): whoever takes it removes it,
and one nobody took is removed when its block ends, on an error too. Real tracefs, run in a
private mount namespace so that a host without tracefs mounted gets netdoctor's own mount."""

import json
import os
import sys

import pytest

from sandbox import sh, tracefs_instances

pytestmark = [pytest.mark.live]

SCRIPT = r"""
import json, os, signal, socket, sys, threading, time
from netdoctor.capture.tracefs import Ahead, KernelTrace
mode = sys.argv[1]
seen = {}
if mode == "interrupted":
    # A signal that lands while the thread is being started (the caller waits for it to
    # run): the block never got its Ahead, and the thread goes on to make the instance.
    start = threading.Thread.start

    def interrupted_start(self):
        start(self)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.2)

    threading.Thread.start = interrupted_start
try:
    with Ahead() as ahead:
        if mode == "taken":
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            with KernelTrace((28 + 77,)) as kt:
                seen["instance"] = os.path.basename(kt.instance)
                # Nothing listens on this port: the datagram is freed as "no socket".
                s.sendto(b"x" * 77, ("127.0.0.1", 9))
            seen["reasons"] = sorted({e.reason for e in kt.events if e.reason})
            seen["unavailable"] = kt.unavailable
        else:
            raise RuntimeError("the plan failed")
except RuntimeError as e:
    seen["error"] = str(e)
except KeyboardInterrupt:
    time.sleep(0.5)  # (a thread left running would have made its instance by now)
    seen["error"] = "interrupted"
print(json.dumps(seen))
"""


def _run(mode):
    res = sh("unshare", "-n", sys.executable, "-c", "import subprocess;"
             "subprocess.run(['ip','link','set','lo','up']);"
             f"exec(compile({SCRIPT!r}, 'ahead', 'exec'))", mode, check=False)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def test_an_instance_made_ahead_is_armed_by_the_trace_and_removed_after():
    before = tracefs_instances()
    seen = _run("taken")
    assert seen["unavailable"] is None
    assert seen["instance"].startswith("netdoctor-")
    assert "NO_SOCKET" in seen["reasons"]  # the events came from the instance made ahead
    assert tracefs_instances() == before


def test_an_instance_nobody_took_is_removed_when_the_block_fails():
    before = tracefs_instances()
    assert _run("untaken") == {"error": "the plan failed"}
    assert tracefs_instances() == before
    assert not os.path.exists("/run/netdoctor/mnt") or os.listdir("/run/netdoctor/mnt") == []


def test_an_interrupt_while_the_thread_starts_leaves_no_instance():
    """A SIGINT that lands while the thread making the instance is being started: the block
    had not got its Ahead yet, and the thread made an instance nothing removed (found by the
    random-interrupt test, about one run in fifty)."""
    before = tracefs_instances()
    assert _run("interrupted") == {"error": "interrupted"}
    assert tracefs_instances() == before

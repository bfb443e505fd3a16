"""The `netdoctor` console script: signal handling first, before the heavier imports,
so Ctrl-C and SIGTERM unwind through netdoctor's own cleanup as early as possible.

A signal that lands inside an import can leave CPython's module lock in a state where a
later import waits forever. So the first signal also starts a watchdog: if the process has
not ended a few seconds later, the watchdog removes what the run recorded on the host
(using only modules already imported) and ends the process. Nothing can hang, and nothing
is left behind.
"""

import os
import signal
import sys
import threading

GRACE = 5.0  # seconds for the normal unwinding before the watchdog steps in
_watchdog = None


def _last_resort() -> None:
    runs = sys.modules.get("netdoctor.capture.runs")
    try:
        if runs is not None:
            runs.release_own()
    finally:
        try:
            os.write(2, b"netdoctor: interrupted\n")
        finally:
            os._exit(130)


def _interrupted(signum, frame):
    global _watchdog
    if _watchdog is None:
        _watchdog = threading.Timer(GRACE, _last_resort)
        _watchdog.daemon = True
        _watchdog.start()
    raise KeyboardInterrupt


def install() -> None:
    # SIGHUP too: an agent (`trace --peer`) loses its ssh session that way.
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, _interrupted)


def main() -> None:
    install()
    try:
        from .app import main as run
    except KeyboardInterrupt:
        sys.stderr.write("netdoctor: interrupted\n")
        sys.exit(130)
    run()

"""The `netdoctor` console script: signal handling first, before the heavier imports,
so Ctrl-C and SIGTERM unwind through netdoctor's own cleanup as early as possible."""

import signal
import sys


def _interrupted(signum, frame):
    raise KeyboardInterrupt


def main() -> None:
    signal.signal(signal.SIGTERM, _interrupted)
    try:
        from netdoctor.diagnose.cli import main as run
    except KeyboardInterrupt:
        sys.stderr.write("netdoctor: interrupted\n")
        sys.exit(130)
    run()

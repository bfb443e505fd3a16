"""The `netdoctor` console script: signal handling first, before the heavier imports,
so Ctrl-C and SIGTERM unwind through netdoctor's own cleanup as early as possible.

A signal that lands in a finalizer or weakref callback cannot raise there: it is delivered
again (see _unraisable). A signal that lands inside an import can leave CPython's module lock
in a state where a later import waits forever. So the first signal also starts a watchdog: if the process has
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


_signum = signal.SIGINT  # the last signal that interrupted, to deliver again


def _interrupted(signum, frame):
    global _watchdog, _signum
    _signum = signum
    if _watchdog is None:
        _watchdog = threading.Timer(GRACE, _last_resort)
        _watchdog.daemon = True
        _watchdog.start()
    raise KeyboardInterrupt


def _unraisable(unraisable) -> None:
    """A signal that landed in a finalizer or weakref callback (the import system's module
    locks have one) raised where nothing can catch it, and Python would print "Exception
    ignored" with a traceback and go on. Deliver the signal again instead: it then
    interrupts the run where the run can unwind."""
    if isinstance(unraisable.exc_value, KeyboardInterrupt):
        # From another thread, a moment later, to the main thread (so that a blocking call
        # there is woken): a signal made pending here would run its handler inside this
        # hook, where the interrupt would be lost again.
        again = threading.Timer(0.001, signal.pthread_kill,
                                (threading.main_thread().ident, _signum))
        again.daemon = True
        again.start()
        return
    sys.__unraisablehook__(unraisable)


def install() -> None:
    # SIGHUP too: an agent (`trace --peer`) loses its ssh session that way.
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, _interrupted)
    sys.unraisablehook = _unraisable


def _leave(status) -> None:
    """End the process as sys.exit(status) would, without taking the interpreter apart: every
    context manager of the run has exited by now (captures, tracefs instances, lab objects
    are released), and freeing a large run's objects one by one took a tenth of a second
    with a thousand containers. Other threads that must finish, exit handlers and the
    output are seen to first."""
    import atexit

    if status is None:
        code = 0
    elif isinstance(status, int):
        code = status
    else:
        sys.stderr.write(f"{status}\n")
        code = 1
    me = threading.current_thread()
    for t in threading.enumerate():
        if t is not me and not t.daemon:
            t.join()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass  # a reader that went away (`| head`) has all it wanted
    os._exit(code & 0xFF)


def main() -> None:
    install()
    try:
        from .app import main as run
    except BaseException as e:
        # A signal that lands while an import makes a class comes wrapped in the
        # RuntimeError of __set_name__ (typer imports platform, which has such a class).
        from .status import interrupted  # small: the enum and netdoctor's errors

        if not interrupted(e):
            raise
        sys.stderr.write("netdoctor: interrupted\n")
        sys.exit(130)
    try:
        run()
    except SystemExit as e:
        if sys.getprofile() or sys.gettrace():
            raise  # a profiler or coverage writes its report as the interpreter ends
        _leave(e.code)

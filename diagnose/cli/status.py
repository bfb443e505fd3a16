"""Exit statuses of the `netdoctor` command, and which error gets which: in one place
(documented in README.md), as httpie maps its outcomes in http_status_to_exit_status."""

from enum import IntEnum

from .. import errors


class ExitStatus(IntEnum):
    OK = 0
    # The network answer is negative: an incomplete path, findings at or above
    # --fail-on, an unreachable destination.
    PROBLEM = 1
    # Bad arguments or options (click's own usage errors use 2 as well).
    USAGE = 2
    # The target (container, pid, netns) does not exist or is ambiguous.
    TARGET_NOT_FOUND = 3
    # The destination cannot be probed: its name does not resolve, or it is of an address
    # family the container has no address in.
    UNRESOLVED = 4
    # Not root, or lacking a capability netdoctor needs.
    NO_PERMISSION = 5
    # A program or service netdoctor needs is missing or not answering.
    MISSING_DEPENDENCY = 6
    # A lab command that needs the lab up (or down) found it otherwise.
    LAB_STATE = 7
    # The path changed while netdoctor was looking at it (an interface went away): the
    # evidence no longer describes one configuration, so no verdict is given.
    PATH_CHANGED = 8
    # The far host given with --peer could not be used: ssh failed, it runs another
    # netdoctor version, or its agent broke off.
    PEER = 9
    # A bug in netdoctor.
    INTERNAL = 70
    INTERRUPTED = 130


# The most specific kinds first; anything else of netdoctor's is a bug.
_BY_ERROR = (
    (errors.UsageError, ExitStatus.USAGE),
    (errors.TargetNotFound, ExitStatus.TARGET_NOT_FOUND),
    (errors.Unresolved, ExitStatus.UNRESOLVED),
    (errors.NoPermission, ExitStatus.NO_PERMISSION),
    (errors.MissingDependency, ExitStatus.MISSING_DEPENDENCY),
    (errors.LabStateError, ExitStatus.LAB_STATE),
    (errors.PathChanged, ExitStatus.PATH_CHANGED),
    (errors.PeerError, ExitStatus.PEER),
)


def exit_status_for(error: BaseException) -> ExitStatus:
    """The exit status of a run that ended with error. Pure."""
    for kind, status in _BY_ERROR:
        if isinstance(error, kind):
            return status
    if interrupted(error):
        return ExitStatus.INTERRUPTED
    return ExitStatus.INTERNAL


def interrupted(error: BaseException) -> bool:
    """Whether error is Ctrl-C or SIGTERM, or came of one: a signal that lands while Python
    makes a class (an import mid-run) surfaces as the RuntimeError it was wrapped in."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, KeyboardInterrupt):
            return True
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return False

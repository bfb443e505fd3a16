"""netdoctor's own exceptions; cli.main() maps each to its exit status."""

from netdoctor.diagnose.cli.status import ExitStatus


class NetdoctorError(Exception):
    """An error the user can act on. The message is one line: what is wrong and what to do."""

    status = ExitStatus.INTERNAL


class UsageError(NetdoctorError):
    status = ExitStatus.USAGE


class TargetNotFound(NetdoctorError):
    status = ExitStatus.TARGET_NOT_FOUND


class Unresolved(NetdoctorError):
    status = ExitStatus.UNRESOLVED


class NoPermission(NetdoctorError):
    status = ExitStatus.NO_PERMISSION


class MissingDependency(NetdoctorError):
    status = ExitStatus.MISSING_DEPENDENCY


class LabStateError(NetdoctorError):
    status = ExitStatus.LAB_STATE


class PathChanged(NetdoctorError):
    status = ExitStatus.PATH_CHANGED


class InternalError(NetdoctorError):
    """netdoctor contradicted itself: a bug, never the user's input."""

    status = ExitStatus.INTERNAL


class CommandFailed(NetdoctorError):
    """An external program netdoctor relies on failed in a way it cannot interpret."""

    status = ExitStatus.INTERNAL


class ParseError(NetdoctorError):
    """External text (ip JSON, /proc files, runtime answers) was not in the expected form."""

    status = ExitStatus.INTERNAL

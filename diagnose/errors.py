"""netdoctor's own exceptions. Each says, in one line, what is wrong and what to do;
cli/status.py maps each kind to its exit status, in one place."""


class NetdoctorError(Exception):
    """An error the user can act on."""


class UsageError(NetdoctorError):
    """Bad arguments or options."""


class TargetNotFound(NetdoctorError):
    """The target (container, pid, netns) does not exist, is ambiguous, or went away."""


class Unresolved(NetdoctorError):
    """The destination cannot be probed: its name does not resolve, or its family is one
    the container has no address in. silent: the nameservers that did not answer at all."""

    def __init__(self, message: str = "", silent: tuple = ()):
        super().__init__(message)
        self.silent = tuple(silent)


class NoPermission(NetdoctorError):
    """Not root, or lacking a capability netdoctor needs."""


class MissingDependency(NetdoctorError):
    """A program or service netdoctor needs is missing or not answering."""


class LabStateError(NetdoctorError):
    """A lab command found the lab down (or up) when it needs the other."""


class PathChanged(NetdoctorError):
    """The path changed while netdoctor looked at it."""


class PeerError(NetdoctorError):
    """The far host (--peer) could not be reached, refused, or answered nonsense."""


class InternalError(NetdoctorError):
    """netdoctor contradicted itself: a bug, never the user's input."""


class CommandFailed(NetdoctorError):
    """An external program netdoctor relies on failed in a way it cannot interpret."""


class ParseError(NetdoctorError):
    """External text (ip JSON, /proc files, runtime answers) was not in the expected form."""

"""Run external programs as argv, with a timeout and no shell (the sos way).

This is the only place netdoctor starts a program. Callers get the status and the
output back and decide what a failure means.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from typing import Optional, Sequence

from ..errors import CommandFailed, MissingDependency

DEFAULT_TIMEOUT = 15.0


@dataclass(frozen=True)
class CommandResult:
    argv: tuple
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def first_error_line(self) -> str:
        for line in (self.stderr or self.stdout).splitlines():
            if line.strip():
                return line.strip()
        return f"exit status {self.returncode}"


def run(
    argv: Sequence[str],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    input: Optional[str] = None,
    check: bool = False,
    env: Optional[dict] = None,
) -> CommandResult:
    """Run argv and return its result. A missing program raises MissingDependency;
    a timeout or (with check=True) a non-zero exit raises CommandFailed."""
    argv = tuple(str(a) for a in argv)
    try:
        proc = subprocess.run(
            argv,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
    except FileNotFoundError:
        raise MissingDependency(f"'{argv[0]}' is not installed or not on PATH") from None
    except subprocess.TimeoutExpired:
        raise CommandFailed(f"'{' '.join(argv)}' did not finish within {timeout:g} s") from None
    result = CommandResult(argv, proc.returncode, proc.stdout, proc.stderr)
    if check and not result.ok:
        raise CommandFailed(f"'{' '.join(argv)}' failed: {result.first_error_line()}")
    return result

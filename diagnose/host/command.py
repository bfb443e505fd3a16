"""Run external programs as argv, with a timeout and no shell (the sos way).

This is the only place netdoctor starts a program. Callers get the status and the
output back and decide what a failure means.
"""

from __future__ import annotations

import os
import subprocess
import time
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


def _output_file() -> int:
    """A file for a program's output that nobody else can open (in memory where the kernel
    allows)."""
    try:
        return os.memfd_create("netdoctor-output", os.MFD_CLOEXEC)
    except (AttributeError, OSError):
        import tempfile

        with tempfile.TemporaryFile() as f:
            return os.dup(f.fileno())


class Started:
    """A program started now, its output going to files of its own: no thread or pipe of
    netdoctor's has to drain it meanwhile, and result() waits for it. A missing program
    raises MissingDependency at once."""

    def __init__(self, argv: Sequence[str]):
        self.argv = tuple(str(a) for a in argv)
        self._files = (_output_file(), _output_file())
        self._began = time.monotonic()
        try:
            self._proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                          stdout=self._files[0], stderr=self._files[1])
        except FileNotFoundError:
            self._close()
            raise MissingDependency(f"'{self.argv[0]}' is not installed or not on PATH") \
                from None

    def result(self, timeout: float = DEFAULT_TIMEOUT) -> CommandResult:
        try:
            code = self._proc.wait(timeout=max(0.0, self._began + timeout - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.close()
            raise CommandFailed(f"'{' '.join(self.argv)}' did not finish within {timeout:g} s") \
                from None
        out, err = (os.pread(fd, os.fstat(fd).st_size, 0).decode("utf-8", "replace")
                    for fd in self._files)
        self._close()
        return CommandResult(self.argv, code, out, err)

    def close(self) -> None:
        """Stop it (when its output is no longer wanted)."""
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._close()

    def _close(self) -> None:
        for fd in self._files:
            try:
                os.close(fd)
            except OSError:
                pass
        self._files = ()

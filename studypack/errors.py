"""One error hierarchy: each class carries a sentence a researcher understands,
a hint for the fix, and the exit code the CLI uses.

Exit codes (also listed by ``studypack --help``):

====  =========================================================
0     success (replay: every output reproduced)
1     the bundle is damaged or unsafe (verify/unpack refused it)
2     bad input: wrong arguments, invalid studypack.toml, missing file
3     replay finished but some output differs or is missing
4     the container engine (Docker/Podman) is missing or failed
5     the study's own command failed while it was traced or replayed
6     a network service (Zenodo) refused or could not be reached
7     not enough room, or no permission, to write
70    an unexpected internal error (a bug: please report it)
130   cancelled by the user
====  =========================================================
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_DAMAGED = 1
EXIT_USAGE = 2
EXIT_NOT_REPRODUCED = 3
EXIT_ENGINE = 4
EXIT_RUN_FAILED = 5
EXIT_REMOTE = 6
EXIT_WRITE = 7
EXIT_INTERNAL = 70
EXIT_CANCELLED = 130


class StudypackError(Exception):
    """Base of every error a user can cause. ``str(err)`` is the one sentence."""

    exit_code = EXIT_INTERNAL

    def __init__(self, message: str, hint: str | None = None, *, exit_code: int | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message

    def full_text(self) -> str:
        """The sentence and, when there is one, the hint on the next line."""
        return self.message if not self.hint else f"{self.message}\n{self.hint}"


class UsageError(StudypackError):
    """Wrong arguments or a file that does not exist."""

    exit_code = EXIT_USAGE


class SpecError(UsageError):
    """studypack.toml is invalid: names the key and the file/line."""


class BundleError(StudypackError):
    """The bundle is damaged, truncated, of an unknown version, or unsafe."""

    exit_code = EXIT_DAMAGED


class UnsafeBundleError(BundleError):
    """A member would escape the destination, is a device, a bomb, ..."""


class UnsupportedFormatError(BundleError):
    """The bundle was written by a newer studypack."""


class EngineError(StudypackError):
    """Docker/Podman is missing, refused, or a build/run failed."""

    exit_code = EXIT_ENGINE


class BuildError(EngineError):
    pass


class ImageLoadError(EngineError):
    pass


class RunFailedError(StudypackError):
    """The study's own command exited non-zero."""

    exit_code = EXIT_RUN_FAILED


class TraceError(StudypackError):
    """ReproZip could not trace the run."""

    exit_code = EXIT_RUN_FAILED


class EnvironmentCaptureError(StudypackError):
    """The software environment could not be locked or vendored."""

    exit_code = EXIT_USAGE


class RemoteError(StudypackError):
    """A remote service (Zenodo) refused or could not be reached."""

    exit_code = EXIT_REMOTE


class WriteError(StudypackError):
    """Disk full or permission denied while writing."""

    exit_code = EXIT_WRITE


class Cancelled(StudypackError):
    exit_code = EXIT_CANCELLED

    def __init__(self, message: str = "Cancelled.", hint: str | None = None):
        super().__init__(message, hint)


def write_error(path, exc: OSError) -> WriteError:
    """Turn an OSError raised while writing ``path`` into a user sentence."""
    import errno

    if exc.errno == errno.ENOSPC:
        return WriteError(f"The disk is full while writing {path}.",
                          "Free some space or choose another destination.")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return WriteError(f"No permission to write {path}.",
                          "Choose a folder you can write to.")
    return WriteError(f"Could not write {path}: {exc.strerror or exc}.")

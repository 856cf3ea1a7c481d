"""The one error tree of nanorepo.

Every error says what is wrong and how to fix it. Each subclass also inherits the
matching builtin so callers that know nothing of nanorepo can still catch it
(``DatasetNotFound`` is a ``LookupError``). The service maps these classes to HTTP
statuses in exactly one place.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "AuthenticationRequired",
    "Busy",
    "ConfigurationError",
    "Conflict",
    "DatasetNotFound",
    "ImageNotFound",
    "IntegrityError",
    "InvalidImage",
    "InvalidInput",
    "InvalidMetadata",
    "MissingExtra",
    "NanorepoError",
    "PathNotAllowed",
    "PermissionDenied",
    "RepositoryNotFound",
    "RunNotFound",
    "UnsafeInput",
    "VersionNotFound",
]


class NanorepoError(Exception):
    """Base of every error nanorepo raises on purpose.

    Parameters
    ----------
    message:
        What is wrong, naming the file, accession or field concerned.
    hint:
        How to fix it; appended to ``str(error)``.
    """

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message if not hint else f"{message}\n  hint: {hint}")

    def _render_traceback_(self) -> list[str]:
        """What IPython (a notebook, a console) shows for this error: the message and the
        hint, not a traceback through nanorepo's internals, which would bury them."""
        return [
            f"{type(self).__name__}: {self.message}",
            *([f"  hint: {self.hint}"] if self.hint else []),
        ]


class InvalidInput(NanorepoError, ValueError):
    """Input given by a user (file, argument, value) is not acceptable."""


class InvalidImage(InvalidInput):
    """An image file cannot be read, or is not what it claims to be."""

    def __init__(self, path: object, problem: str, *, hint: str | None = None) -> None:
        self.path = str(path)
        super().__init__(f"{path}: {problem}", hint=hint)


class InvalidMetadata(InvalidInput):
    """Metadata is missing required fields or contradicts the data.

    All problems are collected and reported at once, so a depositor fixes them in
    one round instead of one per attempt.
    """

    def __init__(
        self, problems: Iterable[str], *, source: str | None = None, hint: str | None = None
    ) -> None:
        self.problems = list(problems)
        head = f"{source}: " if source else ""
        lines = "\n".join(f"  - {p}" for p in self.problems)
        n = len(self.problems)
        super().__init__(
            f"{head}{n} metadata problem{'s' if n != 1 else ''}:\n{lines}",
            hint=hint
            or "fix the metadata file (or the instrument export) and run the command again",
        )


class UnsafeInput(InvalidInput):
    """A deposit input is a link, a FIFO, a device file, or a file a format reader would
    follow out of the deposit (e.g. an OME-TIFF companion named by an absolute path).

    Deposits read only regular files inside the caller's own staging area or upload; the
    message names the file relative to the deposit.
    """


class DatasetNotFound(NanorepoError, LookupError):
    """No dataset with that accession exists (or the caller may not know it exists)."""

    def __init__(self, accession: str) -> None:
        self.accession = accession
        super().__init__(
            f"no dataset {accession!r}",
            hint="check the accession (e.g. S-NANO1); `nanorepo list` shows what exists",
        )


class VersionNotFound(DatasetNotFound):
    """The dataset exists but not in the version asked for."""

    def __init__(self, accession: str, version: int, latest: int) -> None:
        self.version = version
        NanorepoError.__init__(
            self,
            f"dataset {accession!r} has no version {version}",
            hint=f"versions run from 1 to {latest}; bare {accession} means the latest",
        )
        self.accession = accession


class ImageNotFound(NanorepoError, LookupError):
    """A dataset version holds no image of that name."""


class RunNotFound(NanorepoError, LookupError):
    """No run (or batch) of that id, or none the caller may see: both get the same answer."""

    def __init__(self, run_id: str, what: str = "run") -> None:
        super().__init__(
            f"no {what} {run_id!r}",
            hint="`nanorepo runs` lists the runs you can see; ids are 32 hex digits "
            "(a unique prefix of at least 8 works)",
        )
        self.run_id = run_id


class PathNotAllowed(NanorepoError, PermissionError):
    """A path lies outside the roots nanorepo may read from or write to."""


class PermissionDenied(NanorepoError, PermissionError):
    """The caller may not do this."""


class AuthenticationRequired(PermissionDenied):
    """The action needs a signed-in user and the request carried no (valid) credentials."""


class Conflict(NanorepoError, RuntimeError):
    """The resource changed since the caller read it (stale ETag) or is busy."""


class IntegrityError(NanorepoError, RuntimeError):
    """Stored bytes or sealed metadata do not match their recorded digest."""


class ConfigurationError(NanorepoError, RuntimeError):
    """The environment or settings are inconsistent."""


class RepositoryNotFound(ConfigurationError):
    """This process was not pointed at a repository, or the one it was pointed at has no
    catalog; nanorepo never creates one implicitly (only ``nanorepo init``, ``demo``, ``up``)."""


class MissingExtra(NanorepoError, ImportError):
    """A part of nanorepo needs packages of an extra that is not installed."""

    def __init__(self, part: str, extra: str, missing: str) -> None:
        self.extra = extra
        super().__init__(
            f"{part} needs {missing!r}, which comes with the [{extra}] extra and is not installed",
            hint=f"pip install 'nanorepo[{extra}]'",
        )
        self.name = missing


class Busy(NanorepoError, RuntimeError):
    """The service has no capacity for this now (every worker of a bounded pool is busy);
    trying again later works."""

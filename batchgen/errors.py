"""The product's exception types.

Every error a user can cause is a :class:`BatchgenError` carrying the exit code of the contract, so the
CLI can print one ``error: ...`` line and exit without a traceback.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_PARTIAL = 1
EXIT_USAGE = 2
EXIT_FATAL = 3
EXIT_INTERRUPTED = 130


class BatchgenError(Exception):
    """Base class: a message for the user and the exit code that goes with it."""

    exit_code = EXIT_USAGE


class UsageError(BatchgenError):
    """A wrong flag, a missing key or an output that cannot be written: nothing was sent."""


class InputError(BatchgenError):
    """The input file cannot be read or has no usable rows: nothing was sent."""


class InvalidInputError(InputError):
    """The file was read but some cells are invalid; ``problems`` lists every one of them."""

    def __init__(self, problems: list) -> None:
        self.problems = problems
        super().__init__(f"{len(problems)} invalid cell(s); nothing was sent")


class FatalAPIError(BatchgenError):
    """The provider refused the key or the account (401/402/403): the run stops."""

    exit_code = EXIT_FATAL


class UnreachableError(BatchgenError):
    """No request was ever answered: DNS failure or connection refused on every attempt."""

    exit_code = EXIT_FATAL


class OutputError(BatchgenError):
    """The output could not be written after the run; the journal still holds every job id."""

    exit_code = EXIT_PARTIAL


class JournalError(BatchgenError):
    """The journal could not be written (a full disk, a removed file): the run stops at once."""

    exit_code = EXIT_PARTIAL

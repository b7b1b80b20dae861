"""The exceptions of the library. Each carries the data a caller needs to act on it (httpx's model).

Exit codes are the command line's business (:mod:`batchgen.cli` maps these classes to them); the library
only says what went wrong. Errors raised after the run started carry its :class:`~batchgen.results.RunResult` as
``result``, so a caller still learns what was done and where the output is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .results import CellError, RunResult


class BatchgenError(Exception):
    """Base class of every error batchgen raises on purpose; ``str()`` is one line for the user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.result: RunResult | None = None


class UsageError(BatchgenError):
    """A setting, flag or path that cannot work (bad base URL or key, unwritable output): nothing was sent.

    ``setting`` names the keyword argument at fault (``base_url``), so the command line can name its flag.
    """

    def __init__(self, message: str, setting: str | None = None) -> None:
        super().__init__(f"{setting}: {message}" if setting else message)
        self.setting = setting
        self.detail = message


class InputError(BatchgenError):
    """The input cannot be read, or has no usable rows: nothing was sent."""


class InvalidInputError(InputError):
    """The input was read but some cells are invalid; ``errors`` lists every one of them. Nothing was sent."""

    def __init__(self, errors: Sequence[CellError], source: str) -> None:
        rows = len({error.row for error in errors})
        super().__init__(f"{source}: {len(errors)} problem(s) in {rows} row(s); nothing was sent")
        self.errors = list(errors)


class FatalAPIError(BatchgenError):
    """The provider's answers stopped the run: 401/402/403, or the same rejection on every first answer."""

    def __init__(self, message: str, status: int | None) -> None:
        super().__init__(message)
        self.status = status


class UnreachableError(BatchgenError):
    """No request was ever answered: DNS failure or connection refused on every attempt."""

    def __init__(self, message: str, host: str) -> None:
        super().__init__(message)
        self.host = host


class NoAnswerError(BatchgenError):
    """Requests were sent but none were answered in time: ``unknown`` rows may have been billed."""

    def __init__(self, message: str, unknown: int) -> None:
        super().__init__(message)
        self.unknown = unknown


@dataclass(frozen=True, slots=True)
class UnsavedIds:
    """Job ids the provider returned that the journal could not store: the user must see them."""

    row: int | str
    title: str
    key: str
    job_ids: tuple[str, ...]


class JournalError(BatchgenError):
    """The journal could not be written: the run stopped at once.

    ``unsaved`` lists every job id received but not stored; ``rescue`` is the file in the state folder that
    holds them (the next run on the output imports it), or None when that could not be written either.
    """

    def __init__(self, message: str, unsaved: Sequence[UnsavedIds] = (), rescue: Path | None = None) -> None:
        super().__init__(message)
        self.unsaved = list(unsaved)
        self.rescue = rescue


class OutputError(BatchgenError):
    """A local file other than the journal (the output, a copy, the log file) could not be written.

    Every job id is in the journal; running again rewrites the output.
    """

    def __init__(self, message: str, path: Path | None = None) -> None:
        super().__init__(message)
        self.path = path

"""batchgen: turn producer spreadsheets into music-generation jobs, one request per row, safely resumable.

::

    import batchgen
    report = batchgen.validate("catalog.xlsx")              # every bad cell, nothing sent
    result = batchgen.run("catalog.xlsx", "results.xlsx")   # or a pandas DataFrame, or a list of dicts
    result.jobs                                             # a DataFrame: one line per job id

``import batchgen`` (and the ``batchgen`` command) starts fast: pandas, aiohttp, httpx and openpyxl are
imported only by the code that needs them, when it runs.
"""

from __future__ import annotations

__version__ = "0.2.0"

# The front door is imported at once: its module keeps heavy imports inside the functions that need them.
from .api import arun, attempts, report, run, validate
from .errors import (
    BatchgenError,
    FatalAPIError,
    InputError,
    InvalidInputError,
    JournalError,
    NoAnswerError,
    OutputError,
    UnreachableError,
    UnsavedIds,
    UsageError,
)
from .progress import Progress
from .results import CellError, RunResult, State, ValidationReport

__all__ = [
    "BatchgenError",
    "CellError",
    "FatalAPIError",
    "InputError",
    "InvalidInputError",
    "JournalError",
    "NoAnswerError",
    "OutputError",
    "Progress",
    "RunResult",
    "State",
    "UnreachableError",
    "UnsavedIds",
    "UsageError",
    "ValidationReport",
    "__version__",
    "arun",
    "attempts",
    "report",
    "run",
    "validate",
]

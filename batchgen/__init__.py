"""batchgen: turn producer spreadsheets into music-generation jobs, one request per row, safely resumable.

The library can be used without the command line::

    from batchgen import Source, Settings, run_batch
    result = run_batch(Source(Path("catalog.xlsx")), "results.xlsx", Settings(base_url=..., api_key=...))
"""

from .errors import (
    BatchgenError,
    FatalAPIError,
    InputError,
    InvalidInputError,
    UnreachableError,
    UsageError,
)
from .journal import Journal
from .loader import Table, load
from .pipeline import RunResult, Source, run_batch, validate_file
from .simulator import BackgroundSimulator, Faults, Simulator
from .submit import Settings
from .validate import Problem, Validation, validate_table

__all__ = [
    "BackgroundSimulator", "BatchgenError", "FatalAPIError", "Faults", "InputError", "InvalidInputError", "Journal",
    "Problem", "RunResult", "Settings", "Simulator", "Source", "Table", "UnreachableError", "UsageError", "Validation",
    "load", "run_batch", "validate_file", "validate_table",
]
